package client

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/google/uuid"
)

// Defaults of a Client.
const (
	DefaultPrefix         = "spec"
	DefaultRequestTimeout = 10 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultKeepAlive      = 30 * time.Second
	DefaultMaxReconnect   = 10 * time.Second
	DefaultGapWait        = time.Second
	DefaultViewBuffer     = 1024
)

// config is what the options set.
type config struct {
	clientID       string
	username       string
	password       string
	prefix         string
	qos            byte
	clean          bool
	requestTimeout time.Duration
	resend         time.Duration
	connectTimeout time.Duration
	keepAlive      time.Duration
	maxReconnect   time.Duration
	gapWait        time.Duration
	viewBuffer     int
	tls            *tls.Config
	dial           func(ctx context.Context, network, addr string) (net.Conn, error)
	logger         *slog.Logger
}

func defaultConfig() config {
	return config{
		clientID:       "go-" + uuid.NewString(),
		prefix:         DefaultPrefix,
		qos:            1,
		requestTimeout: DefaultRequestTimeout,
		connectTimeout: DefaultConnectTimeout,
		keepAlive:      DefaultKeepAlive,
		maxReconnect:   DefaultMaxReconnect,
		gapWait:        DefaultGapWait,
		viewBuffer:     DefaultViewBuffer,
		logger:         slog.Default(),
	}
}

// Option configures a Client.
type Option func(*config)

// WithClientID sets the MQTT client id, which is also the {client_id} of
// the client's topics (default "go-" and a random UUID). A device that
// wants its session back after a restart must use the same id each time.
func WithClientID(id string) Option { return func(c *config) { c.clientID = id } }

// WithCredentials sets the username and password of the CONNECT.
func WithCredentials(username, password string) Option {
	return func(c *config) { c.username, c.password = username, password }
}

// WithTopicPrefix sets the topic prefix of the server (default "spec").
func WithTopicPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithQoS sets the QoS of requests and of the client's MQTT subscriptions
// (default 1). At QoS 0 nothing is sent again after a reconnect.
func WithQoS(qos byte) Option { return func(c *config) { c.qos = min(qos, 2) } }

// WithCleanSession asks the broker not to keep the client's session: after
// a reconnect every view subscribes again with a fresh snapshot, and
// answers the broker would have queued are lost (their calls time out).
func WithCleanSession() Option { return func(c *config) { c.clean = true } }

// WithRequestTimeout bounds a call whose context has no deadline (default
// DefaultRequestTimeout).
func WithRequestTimeout(d time.Duration) Option { return func(c *config) { c.requestTimeout = d } }

// WithResend sends a request again, with the same id and payload, every d
// until it is answered or its deadline passes (default 0: sent once, which
// QoS 1 and the kept session deliver). Use it with a group of server
// instances: a request taken by an instance that dies is lost with it, and
// the instance that takes the client over answers a write it finds
// already run from its record instead of running it again. A single
// server answers a repeated write from its duplicate window the same way;
// a repeated read is read again.
func WithResend(d time.Duration) Option { return func(c *config) { c.resend = max(d, 0) } }

// WithConnectTimeout bounds each connection attempt (default
// DefaultConnectTimeout).
func WithConnectTimeout(d time.Duration) Option { return func(c *config) { c.connectTimeout = d } }

// WithKeepAlive sets the MQTT keep-alive (default DefaultKeepAlive): how
// soon a dead connection is noticed.
func WithKeepAlive(d time.Duration) Option { return func(c *config) { c.keepAlive = d } }

// WithMaxReconnectInterval caps the wait between reconnect attempts, which
// doubles from one second (default DefaultMaxReconnect).
func WithMaxReconnectInterval(d time.Duration) Option {
	return func(c *config) { c.maxReconnect = d }
}

// WithGapWait sets how long a view waits for a missing notification that
// later ones overtook before it takes a fresh snapshot (default
// DefaultGapWait).
func WithGapWait(d time.Duration) Option { return func(c *config) { c.gapWait = d } }

// WithViewBuffer sets how many changes a view holds for a reader that is
// behind (default DefaultViewBuffer). Beyond that the view drops them and
// takes a fresh snapshot, delivered when the reader catches up.
func WithViewBuffer(n int) Option { return func(c *config) { c.viewBuffer = max(n, 1) } }

// WithTLSConfig sets the TLS configuration of ssl://, tls://, mqtts:// and
// wss:// URLs.
func WithTLSConfig(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithDialer sets how the client opens the TCP connection of tcp://,
// mqtt:// and TLS URLs (a proxy, a VPN, a test's flaky network); the
// default is a net.Dialer.
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(c *config) { c.dial = dial }
}

// WithLogger sends the client's logs (reconnects, resnapshots) to logger
// (default slog.Default()).
func WithLogger(logger *slog.Logger) Option {
	return func(c *config) {
		if logger != nil {
			c.logger = logger
		}
	}
}
