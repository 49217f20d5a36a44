package mqttspec

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mqttspec/mqttspec/internal/broker/paho"
)

// ExternalBrokerClient connects a Handler to another MQTT broker (MQTT
// 3.1.1, with paho.mqtt.golang) as one client (see package
// internal/broker/paho for the machinery). It keeps its subscriptions
// across reconnects, delivers every message on paho's single router
// goroutine in arrival order, and publishes without waiting for each
// acknowledgement.
//
// The broker does not tell this client who sent a message: the handler
// learns clients from their request topics and cannot check that a sender
// owns its topic. Protect {prefix}/{client id}/ topics with the broker's
// own ACLs.
type ExternalBrokerClient struct {
	config  ExternalBrokerConfig
	clients *ClientManager

	mu   sync.Mutex
	edge *paho.Client
}

var _ BrokerInterface = (*ExternalBrokerClient)(nil)

// NewExternalBrokerClient returns a client for the broker at
// config.BrokerURL. It does not connect before Start.
func NewExternalBrokerClient(config ExternalBrokerConfig, clientManager *ClientManager) *ExternalBrokerClient {
	return &ExternalBrokerClient{config: config, clients: clientManager,
		edge: paho.New(pahoConfig(config, DefaultPublishTimeout), slog.New(slog.DiscardHandler))}
}

func pahoConfig(c ExternalBrokerConfig, publishTimeout time.Duration) paho.Config {
	return paho.Config{
		BrokerURL: c.BrokerURL, ClientID: c.ClientID, Username: c.Username, Password: c.Password,
		CleanSession: c.CleanSession, KeepAlive: c.KeepAlive, ConnectTimeout: c.ConnectTimeout,
		ReconnectDelay: c.ReconnectDelay, MaxReconnect: c.MaxReconnect, TLSConfig: c.TLSConfig,
		PublishTimeout: publishTimeout,
	}
}

// SetHandler applies h's logger and publish timeout (and, for a member of
// a group, its presence: a clean session, a will that clears it, and an
// announcement at every connect). Call it before Start.
func (b *ExternalBrokerClient) SetHandler(h *Handler) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cfg := pahoConfig(b.config, h.config.Timeouts.Publish)
	if g := h.group; g != nil {
		cfg.CleanSession = true
		cfg.Will = g.will()
		cfg.OnConnect = g.reconnected
	}
	b.edge = paho.New(cfg, h.logger)
}

func (b *ExternalBrokerClient) client() *paho.Client {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.edge
}

// GetClientManager returns the registry of known MQTT clients.
func (b *ExternalBrokerClient) GetClientManager() *ClientManager { return b.clients }

// Addr returns the broker URL.
func (b *ExternalBrokerClient) Addr() string { return b.config.BrokerURL }

// ClientID returns the MQTT client id used (generated at Start when the
// config leaves it empty).
func (b *ExternalBrokerClient) ClientID() string { return b.client().ClientID() }

// IsConnected reports whether the connection to the broker is up.
func (b *ExternalBrokerClient) IsConnected() bool { return b.client().IsConnected() }

// Start connects to the broker. It fails when the broker cannot be reached
// within ctx and ConnectTimeout, naming the URL; it can then be called
// again. Once connected, lost connections are re-established in the
// background. MaxReconnect > 0 stops reconnecting after that many failed
// attempts in a row; ReconnectDelay caps the backoff between attempts.
func (b *ExternalBrokerClient) Start(ctx context.Context) error { return b.client().Start(ctx) }

// Stop disconnects from the broker, waiting briefly for work in flight.
// Calling it again, or before Start, is safe.
func (b *ExternalBrokerClient) Stop(ctx context.Context) error { return b.client().Stop(ctx) }

// Publish hands payload for topic to paho and returns without waiting for
// the broker's acknowledgement; when the connection is down it fails at
// once with ErrNotConnected. Later failures are logged.
func (b *ExternalBrokerClient) Publish(topic string, qos byte, payload []byte) error {
	return b.client().Publish(topic, qos, payload)
}

// Subscribe subscribes to topicFilter and routes matching messages to
// callback, in arrival order, on paho's router goroutine (callback must not
// block). The subscription is restored after every reconnect.
func (b *ExternalBrokerClient) Subscribe(topicFilter string, qos byte, callback MessageCallback) error {
	if callback == nil {
		return fmt.Errorf("mqttspec: external broker: subscribe %s: nil callback", topicFilter)
	}
	return b.client().Subscribe(topicFilter, qos, callbackHandler(callback))
}

// Unsubscribe forgets topicFilter and unsubscribes from it.
func (b *ExternalBrokerClient) Unsubscribe(topicFilter string) error {
	return b.client().Unsubscribe(topicFilter)
}
