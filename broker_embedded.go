package mqttspec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Listener ids of the embedded broker inside the Mochi server.
const (
	embeddedTCPListenerID = "mqttspec-tcp"
	embeddedWSListenerID  = "mqttspec-ws"
	embeddedHookID        = "mqttspec"
)

var (
	errEmbeddedNotRunning = errors.New("broker is not running")
	errEmbeddedStopped    = errors.New("broker was stopped; create a new one")
	errEmbeddedNoHandler  = errors.New("SetHandler must be called before Start")
)

type embeddedState int

const (
	embeddedNew embeddedState = iota
	embeddedRunning
	embeddedStopped
)

// EmbeddedBroker runs a Mochi MQTT v2 broker inside the process and connects
// it to a Handler. It authenticates every CONNECT through the handler, keeps
// each client to its own topics under the topic prefix (see broker_acl.go),
// reports connects, disconnects, expired sessions and dropped messages to
// the handler, and serves the handler's request subscription with Mochi's
// inline client.
//
// Create one with NewEmbeddedBroker, call SetHandler, then Start. A broker
// starts once; after Stop create a new one.
type EmbeddedBroker struct {
	config  BrokerConfig
	clients *ClientManager
	server  *mqtt.Server
	logs    *brokerLogSwitch

	// Set by SetHandler (or setEvents in tests) before Start.
	events brokerEvents
	prefix string
	logger *slog.Logger

	running atomic.Bool
	conns   sync.Map // *mqtt.Client -> *Client, from CONNECT to disconnect

	mu      sync.Mutex
	state   embeddedState
	tcp     listeners.Listener
	ws      listeners.Listener
	subs    map[string]*embeddedSub // inline subscriptions by filter
	lastSub int
	closed  chan struct{} // closed when Stop's server.Close has returned
}

// embeddedHandshakeTimeout bounds the wait for a new connection's CONNECT
// packet. Mochi sets no deadline before CONNECT (it sets the keep-alive
// deadline after), so a silent connection would hold a goroutine forever.
const embeddedHandshakeTimeout = 10 * time.Second

// embeddedSub is one inline subscription of the broker.
type embeddedSub struct {
	id     int
	active atomic.Bool
}

// NewEmbeddedBroker returns a broker configured by config that registers its
// clients in clientManager. The Mochi server is created here (see Server),
// but nothing listens before Start.
//
// config.MaxConnections > 0 refuses connections beyond that many connected
// clients (CONNACK "server unavailable"). config.KeepAlive > 0 caps the
// keep-alive of MQTT 5 clients (sent as Server Keep Alive); MQTT 3.1.1 has no
// way to tell a client, so 3.1.1 clients keep the interval they asked for.
func NewEmbeddedBroker(config BrokerConfig, clientManager *ClientManager) *EmbeddedBroker {
	caps := mqtt.NewDefaultServerCapabilities()
	if config.MaxConnections > 0 {
		caps.MaximumClients = int64(config.MaxConnections)
	}
	logs := newBrokerLogSwitch(slog.New(slog.DiscardHandler))
	b := &EmbeddedBroker{
		config:  config,
		clients: clientManager,
		logs:    logs,
		logger:  slog.New(slog.DiscardHandler),
		subs:    map[string]*embeddedSub{},
	}
	b.server = mqtt.New(&mqtt.Options{
		InlineClient: true,
		Capabilities: caps,
		Logger:       slog.New(logs),
	})
	// AddHook only fails for a hook whose Init fails; ours cannot.
	if err := b.server.AddHook(&embeddedHook{b: b}, nil); err != nil {
		panic(fmt.Sprintf("mqttspec: embedded broker: add hook: %v", err))
	}
	return b
}

// SetHandler connects the broker to h: h authenticates connections and is
// told about connects and disconnects, h's topic prefix decides which topics
// are private, and h's logger receives the broker's (and Mochi's) logs.
// Call it before Start.
func (b *EmbeddedBroker) SetHandler(h *Handler) {
	b.setEvents(h, h.config.Topics.Prefix)
	if h.logger != nil {
		b.logger = h.logger
		b.logs.set(h.logger)
	}
}

// setEvents sets the receiver of connection events and the topic prefix
// without a Handler (tests use a fake brokerEvents). Call it before Start.
func (b *EmbeddedBroker) setEvents(ev brokerEvents, prefix string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = ev
	b.prefix = prefix
}

// Server returns the underlying Mochi server, for adding hooks or listeners
// of your own (add them before Start). Mochi ORs the answers of hooks: a hook
// that allows a CONNECT or a topic the broker's own hook refuses overrides
// it, so an added auth or ACL hook must be at least as strict for the
// {prefix}/{client id}/ topics. Do not call Serve or Close on it; use Start
// and Stop.
func (b *EmbeddedBroker) Server() *mqtt.Server { return b.server }

// GetClientManager returns the registry of known MQTT clients.
func (b *EmbeddedBroker) GetClientManager() *ClientManager { return b.clients }

// Addr returns the address the TCP listener is bound to, such as
// "127.0.0.1:40123" (with BrokerConfig.Port -1 the port is picked by the
// system). It is empty before Start.
func (b *EmbeddedBroker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tcp == nil {
		return ""
	}
	return b.tcp.Address()
}

// WSAddr returns the address the WebSocket listener is bound to, or "" when
// WebSocket is disabled or the broker is not started.
func (b *EmbeddedBroker) WSAddr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wsAddrLocked()
}

// IsConnected reports whether the broker is serving (between a successful
// Start and Stop).
func (b *EmbeddedBroker) IsConnected() bool { return b.running.Load() }

// Start listens on Host:Port (and Host:WSPort with EnableWebSocket) and
// starts serving. When it returns nil, clients can connect. A port that
// cannot be bound fails Start with an error naming the address; the broker
// can then be started again.
func (b *EmbeddedBroker) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case embeddedRunning:
		return errors.New("mqttspec: embedded broker: already started")
	case embeddedStopped:
		return fmt.Errorf("mqttspec: embedded broker: start: %w", errEmbeddedStopped)
	}
	if b.events == nil {
		return fmt.Errorf("mqttspec: embedded broker: start: %w", errEmbeddedNoHandler)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqttspec: embedded broker: start: %w", err)
	}

	addr := embeddedListenAddr(b.config.Host, b.config.Port)
	tcp := newTCPListener(embeddedTCPListenerID, addr)
	// The listener binds in Init (called by AddListener), so a port in use
	// fails here and clients can connect as soon as Start returns.
	if err := b.server.AddListener(tcp); err != nil {
		return fmt.Errorf("mqttspec: embedded broker: listen on %s: %w", addr, err)
	}
	var ws *wsListener
	if b.config.EnableWebSocket {
		wsAddr := embeddedListenAddr(b.config.Host, b.config.WSPort)
		ws = newWSListener(embeddedWSListenerID, wsAddr)
		if err := b.server.AddListener(ws); err != nil {
			b.dropListener(tcp)
			return fmt.Errorf("mqttspec: embedded broker: websocket listen on %s: %w", wsAddr, err)
		}
	}
	// Serve starts the accept loops in goroutines and returns; the sockets
	// are already listening, so the broker is ready when it returns.
	if err := b.server.Serve(); err != nil {
		b.dropListener(tcp)
		if ws != nil {
			b.dropListener(ws)
		}
		return fmt.Errorf("mqttspec: embedded broker: serve: %w", err)
	}
	b.tcp = tcp
	if ws != nil {
		b.ws = ws
	}
	b.state = embeddedRunning
	b.running.Store(true)
	b.logger.Info("embedded MQTT broker listening", "addr", tcp.Address(), "websocket", b.wsAddrLocked())
	return nil
}

// wsAddrLocked is WSAddr for callers holding b.mu.
func (b *EmbeddedBroker) wsAddrLocked() string {
	if b.ws == nil {
		return ""
	}
	return b.ws.Address()
}

// dropListener closes a listener added by a Start that then failed, so the
// port is free and Start can be tried again.
func (b *EmbeddedBroker) dropListener(l listeners.Listener) {
	l.Close(func(string) {})
	b.server.Listeners.Delete(l.ID())
}

// embeddedListenAddr joins host and port; port -1 picks a free port.
func embeddedListenAddr(host string, port int) string {
	if port < 0 {
		port = 0
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Stop closes the listeners (freeing the ports), disconnects every client
// and stops the broker. It waits for the connections to end until ctx is
// done. Calling it again, or before Start, is safe.
func (b *EmbeddedBroker) Stop(ctx context.Context) error {
	b.mu.Lock()
	switch b.state {
	case embeddedNew:
		b.state = embeddedStopped
		b.mu.Unlock()
		return nil
	case embeddedRunning:
		b.state = embeddedStopped
		b.running.Store(false)
		b.closed = make(chan struct{})
		go func(done chan struct{}) {
			_ = b.server.Close() // always nil; blocks until every client has finished
			close(done)
		}(b.closed)
	}
	done := b.closed
	b.mu.Unlock()
	if done == nil {
		return nil // stopped before it was started
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqttspec: embedded broker: stop: clients still disconnecting: %w", ctx.Err())
	}
}

// Publish publishes payload to topic as the broker's inline client. The
// message reaches subscribers at up to qos.
func (b *EmbeddedBroker) Publish(topic string, qos byte, payload []byte) error {
	if !b.running.Load() {
		return fmt.Errorf("mqttspec: embedded broker: publish %s: %w", topic, errEmbeddedNotRunning)
	}
	if topic == "" || strings.ContainsAny(topic, "+#") {
		return fmt.Errorf("mqttspec: embedded broker: publish: invalid topic %q", topic)
	}
	if err := b.server.Publish(topic, payload, false, qos); err != nil {
		return fmt.Errorf("mqttspec: embedded broker: publish %s: %w", topic, err)
	}
	return nil
}

// Subscribe routes messages matching topicFilter to callback through an
// inline subscription. The callback runs on the publishing client's
// connection goroutine: while it runs, that client's next packets wait
// (per-client order and backpressure), other clients are not affected.
// Messages on {prefix}/{id}/request whose sender is not client {id} are
// dropped before the callback. qos is not used: an inline subscription
// gets every message as it was published. Subscribing to the same filter
// again replaces the callback.
func (b *EmbeddedBroker) Subscribe(topicFilter string, qos byte, callback MessageCallback) error {
	if callback == nil {
		return fmt.Errorf("mqttspec: embedded broker: subscribe %s: nil callback", topicFilter)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == embeddedStopped {
		return fmt.Errorf("mqttspec: embedded broker: subscribe %s: %w", topicFilter, errEmbeddedNotRunning)
	}
	b.lastSub++
	sub := &embeddedSub{id: b.lastSub}
	sub.active.Store(true)
	handler := func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		if !sub.active.Load() {
			return
		}
		if !b.senderOwnsTopic(pk) {
			return
		}
		callback(pk.TopicName, pk.Payload)
	}
	if err := b.server.Subscribe(topicFilter, sub.id, handler); err != nil {
		return fmt.Errorf("mqttspec: embedded broker: subscribe %s: %w", topicFilter, err)
	}
	if old, ok := b.subs[topicFilter]; ok {
		old.active.Store(false)
		_ = b.server.Unsubscribe(topicFilter, old.id)
	}
	b.subs[topicFilter] = sub
	return nil
}

// senderOwnsTopic reports whether a message on {prefix}/{id}/request was
// published by client {id} (pk.Origin is set by Mochi from the publishing
// connection). Other topics pass. The ACL hook already refuses such
// publishes; this check is defence in depth.
func (b *EmbeddedBroker) senderOwnsTopic(pk packets.Packet) bool {
	p := splitTopic(b.prefix)
	t := splitTopic(pk.TopicName)
	if !aclUnderPrefix(p, t) || len(t) != len(p)+2 || t[len(t)-1] != "request" {
		return true
	}
	if owner := t[len(p)]; owner != pk.Origin {
		b.logger.Warn("dropped a request published by another client", "topic", pk.TopicName, "sender", pk.Origin)
		return false
	}
	return true
}

// Unsubscribe removes the inline subscription for topicFilter. The callback
// is not called for messages routed after Unsubscribe returns.
func (b *EmbeddedBroker) Unsubscribe(topicFilter string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	sub, ok := b.subs[topicFilter]
	if !ok {
		return nil
	}
	delete(b.subs, topicFilter)
	sub.active.Store(false)
	if err := b.server.Unsubscribe(topicFilter, sub.id); err != nil {
		return fmt.Errorf("mqttspec: embedded broker: unsubscribe %s: %w", topicFilter, err)
	}
	return nil
}

// brokerLogSwitch is a slog.Handler that forwards to a logger chosen later:
// the Mochi server is built before SetHandler supplies the handler's logger.
type brokerLogSwitch struct {
	target *atomic.Pointer[slog.Logger]
	derive []func(slog.Handler) slog.Handler // WithAttrs/WithGroup, in order
}

func newBrokerLogSwitch(l *slog.Logger) *brokerLogSwitch {
	s := &brokerLogSwitch{target: new(atomic.Pointer[slog.Logger])}
	s.target.Store(l)
	return s
}

func (s *brokerLogSwitch) set(l *slog.Logger) { s.target.Store(l) }

func (s *brokerLogSwitch) handler() slog.Handler {
	h := s.target.Load().Handler()
	for _, d := range s.derive {
		h = d(h)
	}
	return h
}

// Enabled reports whether the current logger logs at level.
func (s *brokerLogSwitch) Enabled(ctx context.Context, level slog.Level) bool {
	return s.target.Load().Handler().Enabled(ctx, level)
}

// Handle logs r with the current logger.
func (s *brokerLogSwitch) Handle(ctx context.Context, r slog.Record) error {
	return s.handler().Handle(ctx, r)
}

// WithAttrs returns a switch that adds attrs.
func (s *brokerLogSwitch) WithAttrs(attrs []slog.Attr) slog.Handler {
	return s.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

// WithGroup returns a switch that opens group name.
func (s *brokerLogSwitch) WithGroup(name string) slog.Handler {
	return s.with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

func (s *brokerLogSwitch) with(d func(slog.Handler) slog.Handler) slog.Handler {
	derive := make([]func(slog.Handler) slog.Handler, len(s.derive), len(s.derive)+1)
	copy(derive, s.derive)
	return &brokerLogSwitch{target: s.target, derive: append(derive, d)}
}
