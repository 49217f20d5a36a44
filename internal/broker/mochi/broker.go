// Package mochi is the embedded-broker edge of mqttspec: a Mochi MQTT v2
// server in the process, with listeners that bind at Start, an auth and
// ACL hook that keeps each client to its own {prefix}/{client id}/ topics,
// connection events reported to the core, and subscriptions of the core
// served on the publishing client's own goroutine (so that the core knows
// who sent a message and can hold that client back).
package mochi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttspec/mqttspec/internal/broker"
)

// Listener and hook ids inside the Mochi server.
const (
	tcpListenerID = "mqttspec-tcp"
	wsListenerID  = "mqttspec-ws"
	hookID        = "mqttspec"
)

// handshakeTimeout bounds the wait for a new connection's CONNECT packet.
// Mochi sets no deadline before CONNECT (it sets the keep-alive deadline
// after), so a silent connection would hold a goroutine forever.
const handshakeTimeout = 10 * time.Second

var (
	errNotRunning = errors.New("broker is not running")
	errStopped    = errors.New("broker was stopped; create a new one")
)

// Config configures the embedded broker.
type Config struct {
	// Host and Port are the TCP listen address (Port -1 picks a free port).
	Host string
	Port int
	// EnableWebSocket adds a WebSocket listener on Host:WSPort (-1: free port).
	EnableWebSocket bool
	WSPort          int
	// MaxConnections > 0 refuses a CONNECT beyond that many connected
	// clients (CONNACK "server unavailable"), and any connection beyond
	// twice that many, those that have not sent CONNECT yet included.
	MaxConnections int
	// MaxConnectionsPerAddress > 0 refuses connections from one remote IP
	// beyond that many.
	MaxConnectionsPerAddress int
	// KeepAlive > 0 caps the keep-alive of MQTT 5 clients.
	KeepAlive time.Duration
	// Prefix is the topic prefix whose topics are private to their client.
	Prefix string
	// EnableSysTopics lets clients read $SYS topics.
	EnableSysTopics bool
	// MaxPacketSize caps a packet read from a client (bytes).
	MaxPacketSize int
	// SessionExpiry is the longest a disconnected persistent session is kept.
	SessionExpiry time.Duration
	// MaxQueuedMessages and MaxQueuedBytes cap the QoS 1/2 messages held
	// for one session.
	MaxQueuedMessages int
	MaxQueuedBytes    int
	// WriteTimeout > 0 closes a connection that takes no data written to
	// it for that long.
	WriteTimeout time.Duration
}

// writesPending is the length of each client's write queue. Mochi
// allocates it with every connection, so it stays small; the core keeps
// it from filling (AwaitRoom) for its answers.
const writesPending = 128

type state int

const (
	stateNew state = iota
	stateRunning
	stateStopped
)

// Broker is the embedded Mochi broker. Create it with New, then Start it.
// It starts once; after Stop create a new one.
type Broker struct {
	config        Config
	events        broker.Events
	logger        *slog.Logger
	server        *mqtt.Server
	writesPending int
	outboxes      sync.Map     // client id -> *outbox (outbox.go)
	written       atomic.Int64 // messages writeDirect wrote or tried to (direct.go)

	running atomic.Bool
	conns   sync.Map // *mqtt.Client -> broker.Session, from CONNECT to disconnect
	kept    sync.Map // client id -> *conn of a session kept without connection

	subsMu sync.RWMutex
	subs   map[string]broker.Handler // the core's subscriptions by filter

	mu     sync.Mutex
	state  state
	tcp    listeners.Listener
	ws     listeners.Listener
	closed chan struct{} // closed when Stop's server.Close has returned
}

// New returns a broker configured by cfg that reports connections to
// events and logs (Mochi's own logs included) to logger. The Mochi server
// is created here (see Server), but nothing listens before Start.
func New(cfg Config, events broker.Events, logger *slog.Logger) *Broker {
	if cfg.MaxQueuedMessages <= 0 {
		cfg.MaxQueuedMessages = 4096
	}
	if cfg.MaxQueuedBytes <= 0 {
		cfg.MaxQueuedBytes = 16 << 20
	}
	caps := mqtt.NewDefaultServerCapabilities()
	if cfg.MaxConnections > 0 {
		caps.MaximumClients = int64(cfg.MaxConnections)
	}
	if cfg.MaxPacketSize > 0 {
		caps.MaximumPacketSize = uint32(min(cfg.MaxPacketSize, math.MaxUint32))
	}
	if cfg.SessionExpiry > 0 {
		caps.MaximumSessionExpiryInterval = uint32(min(max(cfg.SessionExpiry/time.Second, 1), math.MaxUint32))
	}
	caps.MaximumInflight = uint16(min(cfg.MaxQueuedMessages, math.MaxUint16))
	caps.MaximumClientWritesPending = writesPending
	b := &Broker{config: cfg, events: events, logger: logger, subs: map[string]broker.Handler{}, writesPending: writesPending}
	// Every connection allocates its read buffer: 1 KiB instead of Mochi's
	// 2 KiB keeps idle connections cheap (a larger packet is read in more
	// steps).
	b.server = mqtt.New(&mqtt.Options{InlineClient: true, Capabilities: caps, Logger: logger, ClientNetReadBufferSize: 1024})
	// AddHook only fails for a hook whose Init fails; ours cannot.
	if err := b.server.AddHook(&hook{b: b}, nil); err != nil {
		panic(fmt.Sprintf("mqttspec: embedded broker: add hook: %v", err))
	}
	return b
}

// Features reports what the embedded broker provides: connection events,
// the verified sender of every message, and backpressure (a subscription
// handler runs on the publisher's goroutine).
func (b *Broker) Features() broker.Features {
	return broker.Features{ConnectEvents: true, VerifiedSender: true, Backpressure: true, Refusable: true}
}

// Server returns the Mochi server, for adding hooks or listeners.
func (b *Broker) Server() *mqtt.Server { return b.server }

// Addr returns the address the TCP listener is bound to, or "" before Start.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tcp == nil {
		return ""
	}
	return b.tcp.Address()
}

// WSAddr returns the address the WebSocket listener is bound to, or "".
func (b *Broker) WSAddr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ws == nil {
		return ""
	}
	return b.ws.Address()
}

// IsConnected reports whether the broker is serving.
func (b *Broker) IsConnected() bool { return b.running.Load() }

// Start listens on Host:Port (and Host:WSPort with EnableWebSocket) and
// starts serving. When it returns nil, clients can connect. A port that
// cannot be bound fails Start with an error naming the address; the broker
// can then be started again.
func (b *Broker) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case stateRunning:
		return errors.New("mqttspec: embedded broker: already started")
	case stateStopped:
		return fmt.Errorf("mqttspec: embedded broker: start: %w", errStopped)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mqttspec: embedded broker: start: %w", err)
	}
	addr := listenAddr(b.config.Host, b.config.Port)
	limits := b.connLimits()
	tcp := newTCPListener(tcpListenerID, addr, limits, b.disconnectListener)
	// The listener binds in Init (called by AddListener), so a port in use
	// fails here and clients can connect as soon as Start returns.
	if err := b.server.AddListener(tcp); err != nil {
		return fmt.Errorf("mqttspec: embedded broker: listen on %s: %w", addr, err)
	}
	var ws *wsListener
	if b.config.EnableWebSocket {
		wsAddr := listenAddr(b.config.Host, b.config.WSPort)
		ws = newWSListener(wsListenerID, wsAddr, limits, b.disconnectListener)
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
	wsAddr := ""
	if ws != nil {
		b.ws, wsAddr = ws, ws.Address()
	}
	b.state = stateRunning
	b.running.Store(true)
	b.logger.Info("embedded MQTT broker listening", "addr", tcp.Address(), "websocket", wsAddr)
	return nil
}

// dropListener closes a listener added by a Start that then failed, so the
// port is free and Start can be tried again.
func (b *Broker) dropListener(l listeners.Listener) {
	l.Close(func(string) {})
	b.server.Listeners.Delete(l.ID())
}

// listenAddr joins host and port; port -1 picks a free port.
func listenAddr(host string, port int) string {
	if port < 0 {
		port = 0
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// disconnectListener disconnects the MQTT clients of listener id as the
// broker stops. It stands in for Mochi's own, which takes the client
// table's read lock twice and so deadlocks when a client connects or
// leaves in between (mochi-mqtt/server#488): Stop would then never end.
func (b *Broker) disconnectListener(id string) {
	for _, cl := range b.server.Clients.GetAll() {
		if cl.Net.Listener == id && !cl.Closed() {
			_ = b.server.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
}

// Stop closes the listeners (freeing the ports), disconnects every client
// and stops the broker. It waits for the connections to end until ctx is
// done. Calling it again, or before Start, is safe.
func (b *Broker) Stop(ctx context.Context) error {
	b.mu.Lock()
	switch b.state {
	case stateNew:
		b.state = stateStopped
		b.mu.Unlock()
		return nil
	case stateRunning:
		b.state = stateStopped
		b.running.Store(false)
		b.wakeOutboxes()
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
// message reaches subscribers at up to qos. A message to a connected
// client's own topics goes through the client's outbox (outbox.go) and
// Publish does not wait for it.
func (b *Broker) Publish(topic string, qos byte, payload []byte) error {
	if !b.running.Load() {
		return fmt.Errorf("mqttspec: embedded broker: publish %s: %w", topic, errNotRunning)
	}
	if topic == "" || strings.ContainsAny(topic, "+#") {
		return fmt.Errorf("mqttspec: embedded broker: publish: invalid topic %q", topic)
	}
	if id, ok := privateClient(b.config.Prefix, topic); ok && b.viaOutbox(id, topic, qos) {
		b.enqueue(id, outMsg{topic: topic, payload: payload, qos: qos})
		return nil
	}
	if err := b.server.Publish(topic, payload, false, qos); err != nil {
		return fmt.Errorf("mqttspec: embedded broker: publish %s: %w", topic, err)
	}
	return nil
}

// Subscribe routes the messages clients publish on topics matching filter
// to fn, with the publishing connection's Session. fn runs on that
// connection's goroutine before the broker acknowledges the message: while
// it runs, the client's next packets wait (per-client order and
// backpressure), other clients are not affected. A message on
// {prefix}/{id}/request whose sender is not client {id} never reaches fn.
// qos is not used: fn gets every message as it was published. Subscribing
// to a filter again replaces its handler.
func (b *Broker) Subscribe(filter string, _ byte, fn broker.Handler) error {
	if fn == nil {
		return fmt.Errorf("mqttspec: embedded broker: subscribe %s: nil handler", filter)
	}
	b.mu.Lock()
	stopped := b.state == stateStopped
	b.mu.Unlock()
	if stopped {
		return fmt.Errorf("mqttspec: embedded broker: subscribe %s: %w", filter, errNotRunning)
	}
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	b.subs[filter] = fn
	return nil
}

// Unsubscribe removes the subscription to filter: fn is not called for
// messages that arrive after Unsubscribe returns.
func (b *Broker) Unsubscribe(filter string) error {
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	delete(b.subs, filter)
	return nil
}

// routing is what became of a client's message in route.
type routing int

const (
	passed  routing = iota // no subscription of the core matches it: Mochi delivers it as usual
	taken                  // the core took it
	refused                // the core refused it (shutting down): left unacknowledged
)

// route hands a client's message to the core's subscriptions it matches,
// on the publishing connection's goroutine.
func (b *Broker) route(cl *mqtt.Client, topic string, payload []byte) routing {
	b.subsMu.RLock()
	var fns []broker.Handler
	for filter, fn := range b.subs {
		if broker.MatchTopic(filter, topic) {
			fns = append(fns, fn)
		}
	}
	b.subsMu.RUnlock()
	if len(fns) == 0 {
		return passed
	}
	if !senderOwnsTopic(b.config.Prefix, cl.ID, topic) {
		b.logger.Warn("dropped a request published by another client", "topic", topic, "sender", cl.ID)
		return taken
	}
	var session broker.Session
	if c, ok := b.connOf(cl); ok {
		session = c.session
	}
	took := true
	for _, fn := range fns {
		took = fn(broker.Message{Topic: topic, Payload: payload, Sender: session}) && took
	}
	if !took {
		return refused
	}
	return taken
}

// connLimits is what the listeners enforce before a connection reaches
// Mochi.
func (b *Broker) connLimits() connLimits {
	// Mochi refuses a CONNECT beyond MaxConnections with "server
	// unavailable"; the gate also bounds the connections that have not sent
	// CONNECT yet, at twice the limit in all.
	return connLimits{max: 2 * b.config.MaxConnections, perAddress: b.config.MaxConnectionsPerAddress,
		writeTimeout: b.config.WriteTimeout, logger: b.logger, gate: &gate{byAddr: map[string]int{}}}
}
