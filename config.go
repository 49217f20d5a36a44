package mqttspec

import (
	"crypto/tls"
	"runtime"
	"time"
)

// BrokerMode chooses between the embedded broker and an external one.
type BrokerMode string

const (
	// BrokerModeEmbedded runs a Mochi MQTT broker inside the process.
	BrokerModeEmbedded BrokerMode = "embedded"
	// BrokerModeExternal connects to another broker as an MQTT client.
	BrokerModeExternal BrokerMode = "external"
)

// Defaults used by DefaultConfig and for zero fields of a Config.
const (
	DefaultHost             = "localhost"
	DefaultPort             = 1883
	DefaultWSPort           = 1884
	DefaultTopicPrefix      = "spec"
	DefaultQoS              = 1
	DefaultKeepAlive        = 60 * time.Second
	DefaultConnectTimeout   = 30 * time.Second
	DefaultReconnectDelay   = 5 * time.Second
	DefaultPublishTimeout   = 5 * time.Second
	DefaultDisconnectTime   = 10 * time.Second
	DefaultRequestTimeout   = 10 * time.Second
	DefaultPageSize         = 100
	DefaultMaxPageSize      = 1000
	DefaultMaxSubsPerClient = 100
	DefaultMaxPending       = 256
	DefaultExternalIdle     = 10 * time.Minute
)

// Config holds every setting of a Handler. Build one with DefaultConfig and
// change fields, or use the With* options.
type Config struct {
	// BrokerMode selects the embedded broker (default) or an external one.
	BrokerMode BrokerMode
	// Broker configures the embedded broker.
	Broker BrokerConfig
	// ExternalBroker configures the connection to an external broker.
	ExternalBroker ExternalBrokerConfig
	// Topics configures the topic layout.
	Topics TopicConfig
	// QoS sets the QoS of requests, responses and notifications.
	QoS QoSConfig
	// Auth configures MQTT-level authentication (embedded broker).
	Auth AuthConfig
	// Timeouts bounds connection, publish and shutdown waits.
	Timeouts TimeoutConfig
	// Limits bounds paging, subscriptions and concurrency.
	Limits LimitConfig
}

// BrokerConfig configures the embedded Mochi MQTT broker.
type BrokerConfig struct {
	// Host is the address to listen on (default "localhost").
	Host string
	// Port is the TCP port (default 1883; -1 picks a free port, see Handler.Addr).
	Port int
	// EnableWebSocket adds an MQTT-over-WebSocket listener.
	EnableWebSocket bool
	// WSPort is the WebSocket port (default 1884).
	WSPort int
	// MaxConnections refuses new connections beyond this many (0 = no limit).
	MaxConnections int
	// KeepAlive is the keep-alive the broker assigns to MQTT 5 clients
	// (0 = the client's choice; MQTT 3.1.1 clients always keep their own).
	KeepAlive time.Duration
	// EnableAuth checks username and password with AuthConfig.ValidateCredentials.
	EnableAuth bool
}

// ExternalBrokerConfig configures the connection to an external broker.
type ExternalBrokerConfig struct {
	// BrokerURL is the broker address, e.g. tcp://host:1883 or ssl://host:8883.
	BrokerURL string
	// ClientID identifies this handler instance; it must be unique per instance.
	ClientID string
	// Username and Password authenticate the handler to the broker.
	Username string
	Password string
	// CleanSession starts a fresh session on each connect.
	CleanSession bool
	// KeepAlive is the MQTT keep-alive interval (default 60s).
	KeepAlive time.Duration
	// ConnectTimeout bounds the initial connection (default 30s).
	ConnectTimeout time.Duration
	// ReconnectDelay is the longest wait between reconnect attempts (default 5s).
	ReconnectDelay time.Duration
	// MaxReconnect limits reconnect attempts (0 = unlimited).
	MaxReconnect int
	// TLSConfig is used for ssl:// and tls:// URLs.
	TLSConfig *tls.Config
}

// TopicConfig sets the topic layout {Prefix}/{client_id}/request|response|notify/{sub_id}.
type TopicConfig struct {
	// Prefix is the first topic level (default "spec").
	Prefix string
}

// QoSConfig sets the MQTT QoS of each message kind. DefaultConfig sets 1 for
// all three; a Config built by hand with a zero QoSConfig uses QoS 0.
type QoSConfig struct {
	Request      byte
	Response     byte
	Notification byte
}

// AuthConfig configures MQTT-level authentication.
type AuthConfig struct {
	// ValidateCredentials is called at CONNECT when BrokerConfig.EnableAuth is
	// set; returning false refuses the connection.
	ValidateCredentials func(username, password string) bool
}

// TimeoutConfig bounds waits.
type TimeoutConfig struct {
	// Connect bounds connecting to an external broker (default 30s).
	Connect time.Duration
	// Publish bounds one publish to an external broker (default 5s).
	Publish time.Duration
	// Disconnect bounds Shutdown (default 10s).
	Disconnect time.Duration
	// Request bounds one request from the start of its handling to its
	// answer, hooks and database work included (default 10s). A request
	// that runs out of time is cancelled and answered "timeout".
	Request time.Duration
}

// LimitConfig bounds the work one request or client can cause.
type LimitConfig struct {
	// DefaultPageSize is the limit of a list read that gives none (default 100).
	DefaultPageSize int
	// MaxPageSize caps any list read's limit (default 1000); larger limits are clamped.
	MaxPageSize int
	// MaxSubscriptionsPerClient caps live subscriptions per client (default 100).
	MaxSubscriptionsPerClient int
	// MaxConcurrency caps requests running at once across all clients
	// (default 4 × GOMAXPROCS).
	MaxConcurrency int
	// MaxPendingPerClient caps requests queued for one client; beyond it the
	// embedded broker stops reading from that client and the external
	// broker answers "overloaded" (default 256).
	MaxPendingPerClient int
	// ExternalClientIdle is how long the handler remembers a client of an
	// external broker that holds no subscription after its last request
	// (default 10 minutes). External brokers do not report disconnects;
	// a forgotten client runs BeforeConnect again at its next request.
	ExternalClientIdle time.Duration
}

// DefaultConfig returns a new Config with every default filled in. Each call
// returns a fresh value, so changing it never affects another handler.
func DefaultConfig() *Config {
	c := &Config{QoS: QoSConfig{Request: DefaultQoS, Response: DefaultQoS, Notification: DefaultQoS}}
	c.fillDefaults()
	return c
}

// fillDefaults sets every zero field to its default. It is the one place
// defaults are applied.
func (c *Config) fillDefaults() {
	if c.BrokerMode == "" {
		c.BrokerMode = BrokerModeEmbedded
	}
	if c.Broker.Host == "" {
		c.Broker.Host = DefaultHost
	}
	if c.Broker.Port == 0 {
		c.Broker.Port = DefaultPort
	}
	if c.Broker.WSPort == 0 {
		c.Broker.WSPort = DefaultWSPort
	}
	if c.ExternalBroker.KeepAlive == 0 {
		c.ExternalBroker.KeepAlive = DefaultKeepAlive
	}
	if c.ExternalBroker.ConnectTimeout == 0 {
		c.ExternalBroker.ConnectTimeout = DefaultConnectTimeout
	}
	if c.ExternalBroker.ReconnectDelay == 0 {
		c.ExternalBroker.ReconnectDelay = DefaultReconnectDelay
	}
	if c.Topics.Prefix == "" {
		c.Topics.Prefix = DefaultTopicPrefix
	}
	if c.Timeouts.Connect == 0 {
		c.Timeouts.Connect = DefaultConnectTimeout
	}
	if c.Timeouts.Publish == 0 {
		c.Timeouts.Publish = DefaultPublishTimeout
	}
	if c.Timeouts.Disconnect == 0 {
		c.Timeouts.Disconnect = DefaultDisconnectTime
	}
	if c.Timeouts.Request <= 0 {
		c.Timeouts.Request = DefaultRequestTimeout
	}
	if c.Limits.DefaultPageSize <= 0 {
		c.Limits.DefaultPageSize = DefaultPageSize
	}
	if c.Limits.MaxPageSize <= 0 {
		c.Limits.MaxPageSize = DefaultMaxPageSize
	}
	if c.Limits.DefaultPageSize > c.Limits.MaxPageSize {
		c.Limits.DefaultPageSize = c.Limits.MaxPageSize
	}
	if c.Limits.MaxSubscriptionsPerClient <= 0 {
		c.Limits.MaxSubscriptionsPerClient = DefaultMaxSubsPerClient
	}
	if c.Limits.MaxConcurrency <= 0 {
		c.Limits.MaxConcurrency = 4 * runtime.GOMAXPROCS(0)
	}
	if c.Limits.MaxPendingPerClient <= 0 {
		c.Limits.MaxPendingPerClient = DefaultMaxPending
	}
	if c.Limits.ExternalClientIdle <= 0 {
		c.Limits.ExternalClientIdle = DefaultExternalIdle
	}
}
