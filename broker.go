package mqttspec

import "context"

// MessageCallback receives a message the broker routed to the handler. For
// the request subscription the broker has already checked that the sender
// owns the topic's client id (embedded broker) or can only assume it
// (external broker, see README "External broker").
type MessageCallback func(topic string, payload []byte)

// BrokerInterface is the MQTT edge of the handler: the embedded Mochi broker
// and the external broker client both implement it.
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
	// SetHandler connects the broker to the handler whose connection hooks,
	// authentication and client bookkeeping it drives.
	SetHandler(handler *Handler)
}

// ConnectInfo is what a broker knows about a client at CONNECT time.
type ConnectInfo struct {
	ClientID     string
	Username     string
	Password     []byte
	CleanSession bool
	RemoteAddr   string
}

// brokerEvents is what a broker reports to the handler. *Handler implements
// it; broker tests may use a fake.
type brokerEvents interface {
	// authenticate decides whether a CONNECT is accepted; a non-nil error
	// refuses it. On success it returns the registered client, which the
	// broker passes back to connected and disconnected for this connection
	// (a reconnect with the same id yields a different *Client).
	authenticate(info ConnectInfo) (*Client, error)
	// connected runs once the session is established.
	connected(c *Client)
	// disconnected runs when the connection of c ends, however it ends.
	// sessionKept is true when the broker keeps the session for a reconnect.
	disconnected(c *Client, cause error, sessionKept bool)
	// sessionExpired runs when a kept session is discarded.
	sessionExpired(clientID string)
	// publishDropped reports a message the broker dropped for clientID.
	publishDropped(clientID, topic string)
}

// newBroker returns the broker edge the configuration asks for, connected
// to h.
func (h *Handler) newBroker() BrokerInterface {
	var b BrokerInterface
	switch h.config.BrokerMode {
	case BrokerModeExternal:
		b = NewExternalBrokerClient(h.config.ExternalBroker, h.clients)
	default:
		b = NewEmbeddedBroker(h.config.Broker, h.clients)
	}
	b.SetHandler(h)
	return b
}
