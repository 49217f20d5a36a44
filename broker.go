package mqttspec

import (
	"context"

	"github.com/mqttspec/mqttspec/internal/broker"
)

// MessageCallback receives a message the broker routed to a subscription
// made with BrokerInterface.Subscribe.
type MessageCallback func(topic string, payload []byte)

// BrokerInterface is the MQTT edge of a handler as the API exposes it: the
// embedded Mochi broker (*EmbeddedBroker) and the external broker client
// (*ExternalBrokerClient) both implement it.
type BrokerInterface interface {
	// Start brings the broker or connection up and returns once it can carry
	// messages, or with the reason it cannot.
	Start(ctx context.Context) error
	// Stop shuts the broker or connection down; calling it twice is safe.
	Stop(ctx context.Context) error
	// Publish sends payload to topic at qos.
	Publish(topic string, qos byte, payload []byte) error
	// Subscribe routes messages matching topicFilter to callback.
	Subscribe(topicFilter string, qos byte, callback MessageCallback) error
	// Unsubscribe stops routing topicFilter.
	Unsubscribe(topicFilter string) error
	// IsConnected reports whether the broker is serving (embedded) or the
	// connection is up (external).
	IsConnected() bool
	// GetClientManager returns the registry of known MQTT clients.
	GetClientManager() *ClientManager
	// SetHandler connects the broker to handler: the handler's connection
	// hooks and client bookkeeping receive the broker's events, and its
	// configuration and logger apply. Call it before Start.
	SetHandler(handler *Handler)
}

// transport is the port through which the core reaches its MQTT edge. The
// embedded broker (internal/broker/mochi) and the external broker client
// (internal/broker/paho) implement it; Features tells the core what the
// edge can do, so the request path never asks which edge it has.
type transport interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Publish(topic string, qos byte, payload []byte) error
	Subscribe(filter string, qos byte, fn broker.Handler) error
	Unsubscribe(filter string) error
	Features() broker.Features
	// AwaitRoom waits until the client can take more answers (edges with
	// Backpressure; others return at once).
	AwaitRoom(ctx context.Context, clientID string) error
	// Backlogged reports whether the client has so many answers still
	// unacknowledged that it should be answered "overloaded" rather than
	// given more work (edges with Backpressure; others report false).
	Backlogged(clientID string) bool
	// Flush waits until what was published has been handed to the network.
	Flush(ctx context.Context) error
}

// callbackHandler adapts a MessageCallback of the API to the edge.
func callbackHandler(cb MessageCallback) broker.Handler {
	if cb == nil {
		return nil
	}
	return func(m broker.Message) bool {
		cb(m.Topic, m.Payload)
		return true
	}
}

// newBroker returns the broker edge the configuration asks for, connected
// to h: the API type that Handler.Broker returns and the port the core uses.
func (h *Handler) newBroker() (BrokerInterface, transport) {
	if h.config.BrokerMode == BrokerModeExternal {
		b := NewExternalBrokerClient(h.config.ExternalBroker, h.clients)
		b.SetHandler(h)
		return b, b.client()
	}
	b := NewEmbeddedBroker(h.config.Broker, h.clients)
	b.SetHandler(h)
	return b, b.broker()
}
