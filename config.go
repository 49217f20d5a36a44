package mqttspec

import (
	"crypto/tls"
	"runtime"
	"time"

	"github.com/mqttspec/mqttspec/query"
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
	DefaultClientWrite      = 30 * time.Second
	DefaultPageSize         = 100
	DefaultMaxPageSize      = 1000
	DefaultMaxSubsPerClient = 100
	DefaultMaxPending       = 256
	DefaultExternalIdle     = 10 * time.Minute

	DefaultMaxConnections    = 10000
	DefaultMaxPacketSize     = 1 << 20
	DefaultMaxResponseBytes  = 1 << 20
	DefaultMaxFilters        = query.DefaultMaxFilters
	DefaultMaxSortKeys       = query.DefaultMaxSortKeys
	DefaultMaxInValues       = query.DefaultMaxInValues
	DefaultMaxValueBytes     = query.DefaultMaxValueBytes
	DefaultMaxRecordBytes    = query.DefaultMaxRecordBytes
	DefaultMaxSubscriptions  = 100000
	DefaultSessionExpiry     = time.Hour
	DefaultMaxQueuedMessages = 4096
	DefaultMaxQueuedBytes    = 16 << 20
	DefaultDedupWindow       = 5 * time.Minute
	DefaultMaxDedupBytes     = 32 << 20
	DefaultTotalMaxAge       = time.Second
	DefaultGroupSettle       = time.Second
	DefaultFeedPoll          = 200 * time.Millisecond
	DefaultFeedGapWait       = 30 * time.Second
	DefaultFeedRetention     = 10 * time.Minute
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
	// ChangeFeed notifies changes from the database itself (PostgreSQL).
	ChangeFeed ChangeFeedConfig
}

// BrokerConfig configures the embedded Mochi MQTT broker.
type BrokerConfig struct {
	// Host is the address to listen on (default "localhost").
	Host string
	// Port is the TCP port (default 1883; -1 picks a free port, see Handler.Addr).
	Port int
	// EnableWebSocket adds an MQTT-over-WebSocket listener.
	EnableWebSocket bool
	// WSPort is the WebSocket port (default Port+1: 1884 beside the
	// default Port; a free port when Port is -1). A WSPort left at the
	// default 1884 while Port is 1884 moves to 1885: the two never collide.
	WSPort int
	// MaxConnections refuses connections beyond this many, counting those
	// that have not sent CONNECT yet (0 = DefaultMaxConnections, 10,000;
	// negative = no limit).
	MaxConnections int
	// KeepAlive is the keep-alive the broker assigns to MQTT 5 clients
	// (0 = the client's choice; MQTT 3.1.1 clients always keep their own).
	KeepAlive time.Duration
	// EnableAuth checks username and password with AuthConfig.ValidateCredentials.
	EnableAuth bool
	// EnableSysTopics lets clients subscribe to the broker's $SYS topics
	// (closed by default: they describe the server to anyone).
	EnableSysTopics bool
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
	// CleanSession starts a fresh session on each connect (default false:
	// requests sent while the handler reconnects wait at the broker).
	CleanSession bool
	// ClientIDIsUsername says the broker makes each client's id its
	// username (mosquitto use_username_as_clientid): hooks then get
	// Client.Username (and the principal) equal to the client id.
	ClientIDIsUsername bool
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
	// Group makes this instance one of a group that serves one topic
	// prefix together (see the README, "Running several instances"):
	// every client id is served by exactly one member, members find each
	// other through retained presence messages on
	// {prefix}/$group/{Group}/members/{ClientID} and their wills, and writes,
	// subscriptions and changes go through the shared PostgreSQL database
	// (the change feed is turned on). Each member needs its own ClientID.
	// A member always starts a clean session: requests sent while it was
	// away went to the others. Empty: a single instance.
	Group string
	// GroupSettle is how long a member that joins (or comes back after a
	// lost connection) waits before serving the clients that move to it,
	// so that the members serving them until then have heard of it and
	// let them go (default 1s). Requests those clients send meanwhile are
	// not answered; clients send them again.
	GroupSettle time.Duration
}

// ChangeFeedConfig configures the change feed: on PostgreSQL, triggers on
// the tables of the registered models record every committed insert,
// update and delete in the table mqttspec_changes, whatever made it (this
// handler, another instance, another service, psql), and the handler
// notifies its subscriptions from there, in commit order per record.
type ChangeFeedConfig struct {
	// Enabled turns the feed on (Start installs the table and triggers;
	// the database must be PostgreSQL). ExternalBrokerConfig.Group turns
	// it on by itself.
	Enabled bool
	// PollInterval is how often the feed is read when nothing signals a
	// change (default 200ms): writes made outside mqttspec are notified
	// within about that; writes of the group's members signal at once.
	PollInterval time.Duration
	// GapWait is how long the feed waits for a change whose number was
	// taken by a transaction that has not committed yet, before it takes
	// it for rolled back (default 30s). A transaction that stays open
	// longer than this between its write and its commit is not notified.
	GapWait time.Duration
	// Retention is how long recorded changes (and, in a group, the
	// answers of writes kept against repeats) stay in the database
	// (default 10 minutes, at least DedupWindow for the answers).
	Retention time.Duration
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
	// ClientWrite is how long the embedded broker waits for a client's
	// connection to take data it writes (default 30s); a connection that
	// takes nothing for that long is closed. It frees what a client that
	// stops reading holds, keep-alive or not.
	ClientWrite time.Duration
}

// LimitConfig bounds the work and memory one request, client or session
// can cause. Zero fields take the Default* constants; see the README's
// table of limits.
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

	// MaxPacketSize caps an MQTT packet the embedded broker reads (default
	// 1 MiB); a larger one closes the connection.
	MaxPacketSize int
	// MaxResponseBytes caps one answer; a larger one (a big page) is
	// answered "response_too_large" (default 1 MiB).
	MaxResponseBytes int
	// MaxFilters, MaxSortKeys and MaxInValues cap a request's filters, its
	// sort keys and the values of one in/not_in (defaults 50, 10, 1000).
	MaxFilters  int
	MaxSortKeys int
	MaxInValues int
	// MaxValueBytes caps one text or binary value in data or a filter
	// (default 64 KiB); MaxRecordBytes the data of one create or update,
	// as JSON (default 256 KiB).
	MaxValueBytes  int
	MaxRecordBytes int
	// MaxSubscriptions caps live subscriptions of all clients together
	// (default 100,000).
	MaxSubscriptions int
	// MaxConnectionsPerAddress caps the embedded broker's connections from
	// one remote IP address (0 = no cap: clients behind one NAT share it).
	MaxConnectionsPerAddress int
	// SessionExpiry is the longest the embedded broker keeps the session
	// of a disconnected persistent client (default 1 hour).
	SessionExpiry time.Duration
	// MaxQueuedMessages and MaxQueuedBytes cap the QoS 1 and 2 messages
	// the embedded broker holds for one session, unacknowledged or waiting
	// for the client to return (defaults 4096 and 16 MiB). Beyond them
	// messages are dropped, logged and counted (Handler.Stats).
	MaxQueuedMessages int
	MaxQueuedBytes    int
	// DedupWindow is how long a write's answer is kept so that the same
	// write delivered again (same client, principal, request id and
	// payload) is answered, not executed, again (default 5 minutes).
	DedupWindow time.Duration
	// MaxDedupBytes caps the answers kept for DedupWindow, all clients
	// together (default 32 MiB); the oldest go first.
	MaxDedupBytes int
	// TotalMaxAge is how long a full page's metadata.total (a COUNT(*)) is
	// given again for the same entity and filters while no write of the
	// entity commits through the handler or NotifyChange (default 1s;
	// negative: count every time). A write made behind the handler's back
	// shows in totals within TotalMaxAge.
	TotalMaxAge time.Duration
}

// wsPortFor returns the default WebSocket port beside TCP port port: the
// next one (1884 beside the default 1883), or a free one when port is.
func wsPortFor(port int) int {
	if port <= 0 || port >= 65535 {
		return -1
	}
	return port + 1
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
	if c.Broker.WSPort == 0 || c.Broker.EnableWebSocket && c.Broker.WSPort == DefaultWSPort && c.Broker.Port == DefaultWSPort {
		c.Broker.WSPort = wsPortFor(c.Broker.Port)
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
	if c.Timeouts.ClientWrite <= 0 {
		c.Timeouts.ClientWrite = DefaultClientWrite
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
	if c.Broker.MaxConnections == 0 {
		c.Broker.MaxConnections = DefaultMaxConnections
	}
	l := &c.Limits
	for _, f := range []struct {
		v   *int
		def int
	}{
		{&l.MaxPacketSize, DefaultMaxPacketSize}, {&l.MaxResponseBytes, DefaultMaxResponseBytes},
		{&l.MaxFilters, DefaultMaxFilters}, {&l.MaxSortKeys, DefaultMaxSortKeys}, {&l.MaxInValues, DefaultMaxInValues},
		{&l.MaxValueBytes, DefaultMaxValueBytes}, {&l.MaxRecordBytes, DefaultMaxRecordBytes},
		{&l.MaxSubscriptions, DefaultMaxSubscriptions}, {&l.MaxQueuedMessages, DefaultMaxQueuedMessages},
		{&l.MaxQueuedBytes, DefaultMaxQueuedBytes}, {&l.MaxDedupBytes, DefaultMaxDedupBytes},
	} {
		if *f.v <= 0 {
			*f.v = f.def
		}
	}
	if l.SessionExpiry <= 0 {
		l.SessionExpiry = DefaultSessionExpiry
	}
	if l.DedupWindow <= 0 {
		l.DedupWindow = DefaultDedupWindow
	}
	if l.TotalMaxAge == 0 {
		l.TotalMaxAge = DefaultTotalMaxAge
	}
	if c.ExternalBroker.GroupSettle <= 0 {
		c.ExternalBroker.GroupSettle = DefaultGroupSettle
	}
	f := &c.ChangeFeed
	if c.BrokerMode == BrokerModeExternal && c.ExternalBroker.Group != "" {
		f.Enabled = true
	}
	if f.PollInterval <= 0 {
		f.PollInterval = DefaultFeedPoll
	}
	if f.GapWait <= 0 {
		f.GapWait = DefaultFeedGapWait
	}
	if f.Retention <= 0 {
		f.Retention = DefaultFeedRetention
	}
}
