package mqttspec

import (
	"context"
	"errors"
	"fmt"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/mqttspec/mqttspec/internal/broker/mochi"
)

var errEmbeddedNoHandler = errors.New("mqttspec: embedded broker: SetHandler must be called before Start")

// EmbeddedBroker runs a Mochi MQTT v2 broker inside the process for a
// Handler (see package internal/broker/mochi for the machinery). It
// authenticates every CONNECT through the handler, keeps each client to
// its own topics under the topic prefix, reports connects, disconnects,
// expired sessions and dropped messages to the handler, and hands each
// request to the handler on its sender's connection.
//
// Create one with NewEmbeddedBroker, call SetHandler, then Start; a
// Handler does this itself in Start. A broker starts once; after Stop
// create a new one.
type EmbeddedBroker struct {
	config  BrokerConfig
	clients *ClientManager

	mu   sync.Mutex
	edge *mochi.Broker // created by SetHandler
}

var _ BrokerInterface = (*EmbeddedBroker)(nil)

// NewEmbeddedBroker returns a broker configured by config that registers
// its clients in clientManager. Nothing listens before Start.
//
// config.MaxConnections > 0 refuses connections beyond that many connected
// clients (CONNACK "server unavailable"). config.KeepAlive > 0 caps the
// keep-alive of MQTT 5 clients (sent as Server Keep Alive); MQTT 3.1.1 has
// no way to tell a client, so 3.1.1 clients keep the interval they asked for.
func NewEmbeddedBroker(config BrokerConfig, clientManager *ClientManager) *EmbeddedBroker {
	return &EmbeddedBroker{config: config, clients: clientManager}
}

// SetHandler connects the broker to h: h authenticates connections and is
// told about connects and disconnects, h's topic prefix decides which
// topics are private, and h's logger receives the broker's (and Mochi's)
// logs. Call it before Start.
func (b *EmbeddedBroker) SetHandler(h *Handler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := h.config.Limits
	b.edge = mochi.New(mochi.Config{
		Host: b.config.Host, Port: b.config.Port,
		EnableWebSocket: b.config.EnableWebSocket, WSPort: b.config.WSPort,
		MaxConnections: b.config.MaxConnections, MaxConnectionsPerAddress: l.MaxConnectionsPerAddress,
		KeepAlive: b.config.KeepAlive, Prefix: h.config.Topics.Prefix, EnableSysTopics: b.config.EnableSysTopics,
		MaxPacketSize: l.MaxPacketSize, SessionExpiry: l.SessionExpiry,
		MaxQueuedMessages: l.MaxQueuedMessages, MaxQueuedBytes: l.MaxQueuedBytes,
		WriteTimeout: h.config.Timeouts.ClientWrite,
	}, sessionEvents{h}, h.logger)
}

func (b *EmbeddedBroker) broker() *mochi.Broker {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.edge
}

// Server returns the underlying Mochi server, for adding hooks or
// listeners of your own (nil before SetHandler; a Handler's broker has
// one). Mochi ORs the answers of hooks: a hook that allows a CONNECT or a
// topic the broker's own hook refuses overrides it, so an added auth or ACL
// hook must be at least as strict for the {prefix}/{client id}/ topics.
// Answers and notifications the handler sends to a connected MQTT 3.1.1
// client are written to that client's connection without Mochi's routing (no other client may read them): inline subscriptions and the
// OnPublish and OnQosPublish of added hooks do not see them, while
// OnPacketSent and OnQosComplete do. Do not call Serve or Close on it; use
// Start and Stop.
func (b *EmbeddedBroker) Server() *mqtt.Server {
	if e := b.broker(); e != nil {
		return e.Server()
	}
	return nil
}

// GetClientManager returns the registry of known MQTT clients.
func (b *EmbeddedBroker) GetClientManager() *ClientManager { return b.clients }

// Addr returns the address the TCP listener is bound to, such as
// "127.0.0.1:40123" (with BrokerConfig.Port -1 the port is picked by the
// system). It is empty before Start.
func (b *EmbeddedBroker) Addr() string {
	if e := b.broker(); e != nil {
		return e.Addr()
	}
	return ""
}

// WSAddr returns the address the WebSocket listener is bound to, or "" when
// WebSocket is disabled or the broker is not started.
func (b *EmbeddedBroker) WSAddr() string {
	if e := b.broker(); e != nil {
		return e.WSAddr()
	}
	return ""
}

// IsConnected reports whether the broker is serving (between a successful
// Start and Stop).
func (b *EmbeddedBroker) IsConnected() bool {
	e := b.broker()
	return e != nil && e.IsConnected()
}

// Start listens on Host:Port (and Host:WSPort with EnableWebSocket) and
// starts serving. When it returns nil, clients can connect. A port that
// cannot be bound fails Start with an error naming the address; the broker
// can then be started again.
func (b *EmbeddedBroker) Start(ctx context.Context) error {
	e := b.broker()
	if e == nil {
		return errEmbeddedNoHandler
	}
	return e.Start(ctx)
}

// Stop closes the listeners (freeing the ports), disconnects every client
// and stops the broker. It waits for the connections to end until ctx is
// done. Calling it again, or before Start, is safe.
func (b *EmbeddedBroker) Stop(ctx context.Context) error {
	if e := b.broker(); e != nil {
		return e.Stop(ctx)
	}
	return nil
}

// Publish publishes payload to topic as the broker's inline client. The
// message reaches subscribers at up to qos.
func (b *EmbeddedBroker) Publish(topic string, qos byte, payload []byte) error {
	e := b.broker()
	if e == nil {
		return fmt.Errorf("mqttspec: embedded broker: publish %s: not started", topic)
	}
	return e.Publish(topic, qos, payload)
}

// Subscribe routes the messages clients publish on topics matching
// topicFilter to callback, on the publishing client's connection goroutine:
// while it runs, that client's next packets wait, other clients are not
// affected. Messages on {prefix}/{id}/request whose sender is not client
// {id} are dropped before the callback.
func (b *EmbeddedBroker) Subscribe(topicFilter string, qos byte, callback MessageCallback) error {
	e := b.broker()
	if e == nil {
		return fmt.Errorf("mqttspec: embedded broker: subscribe %s: not started", topicFilter)
	}
	return e.Subscribe(topicFilter, qos, callbackHandler(callback))
}

// Unsubscribe removes the subscription to topicFilter.
func (b *EmbeddedBroker) Unsubscribe(topicFilter string) error {
	if e := b.broker(); e != nil {
		return e.Unsubscribe(topicFilter)
	}
	return nil
}
