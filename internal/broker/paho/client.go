// Package paho is the external-broker edge of mqttspec: one MQTT 3.1.1
// client connection (paho.mqtt.golang) to a broker you operate, that keeps
// its subscriptions across reconnects and delivers every message, in
// arrival order, on paho's router goroutine.
package paho

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"

	"github.com/mqttspec/mqttspec/internal/broker"
)

// ErrNotConnected is returned while the connection to the broker is down.
var ErrNotConnected = errors.New("mqttspec: not connected to broker")

// Defaults for zero Config fields.
const (
	defaultConnectTimeout = 30 * time.Second
	defaultPublishTimeout = 5 * time.Second
)

// Config configures the connection.
type Config struct {
	// BrokerURL is the broker address, e.g. tcp://host:1883 or ssl://host:8883.
	BrokerURL string
	// ClientID is this connection's client id ("" generates one at Start).
	ClientID string
	// Username and Password authenticate to the broker.
	Username string
	Password string
	// CleanSession starts a fresh session on each connect.
	CleanSession bool
	// KeepAlive is the MQTT keep-alive interval (0: paho's default).
	KeepAlive time.Duration
	// ConnectTimeout bounds a connect and a (re)subscribe.
	ConnectTimeout time.Duration
	// ReconnectDelay is the longest wait between reconnect attempts.
	ReconnectDelay time.Duration
	// MaxReconnect > 0 gives up after that many failed attempts in a row.
	MaxReconnect int
	// TLSConfig is used for ssl:// and tls:// URLs.
	TLSConfig *tls.Config
	// PublishTimeout bounds a publish's wait for paho's queue and the
	// broker's acknowledgement (which is only logged).
	PublishTimeout time.Duration
	// Will, when set, is published by the broker for this connection when
	// it ends without a DISCONNECT (a crash, a lost network).
	Will *Will
	// OnConnect, when set, runs after every successful reconnect (not the
	// first connect, which Start reports), before the
	// remembered subscriptions are restored (so that what the broker sends
	// on them, retained messages included, arrives after it), in its own
	// goroutine.
	OnConnect func()
}

// Will is a connection's last will.
type Will struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Retained bool
}

const (
	// externalPendingMax bounds the messages kept for filters not (yet)
	// subscribed, e.g. the backlog of a persistent session that the broker
	// sends right after CONNACK, before the handler calls Subscribe.
	externalPendingMax = 1024
	// externalWatchQueue bounds the publish tokens waiting to be checked.
	externalWatchQueue = 4096
	// externalQuiesce is the longest Stop waits for in-flight work.
	externalQuiesce = 250 * time.Millisecond
)

type externalState int

const (
	externalNew externalState = iota
	externalRunning
	externalStopped
)

// Client connects the core to another MQTT broker (MQTT 3.1.1) as one
// client. It keeps its subscriptions across reconnects, delivers every
// message on paho's single router goroutine in arrival order, and
// publishes without waiting for each acknowledgement.
//
// The broker does not tell this client who sent a message or when a client
// leaves (Features is all false): the core learns clients from their
// request topics. Protect {prefix}/{client id}/ topics with the broker's
// own ACLs.
//
// MaxReconnect > 0 stops reconnecting after that many failed attempts in a
// row (the connection then stays down until Stop; IsConnected reports
// false); 0 retries forever. ReconnectDelay caps the backoff between
// attempts.
type Client struct {
	config         Config
	logger         *slog.Logger
	publishTimeout time.Duration

	mu       sync.Mutex
	state    externalState
	client   mqtt.Client
	clientID string
	done     chan struct{} // closed by Stop; ends the publish watcher
	watch    chan externalPublish

	subMu   sync.Mutex
	subs    map[string]*externalSub
	pending []mqtt.Message // messages that matched no subscription yet

	reconnects atomic.Int64 // attempts since the last successful connect
	connects   atomic.Int64 // successful connects seen by onConnect
	gaveUp     atomic.Bool
}

// externalSub is a remembered subscription, subscribed again on reconnect.
type externalSub struct {
	qos byte
	fn  broker.Handler
}

// externalPublish is a publish whose outcome the watcher logs.
type externalPublish struct {
	tok      mqtt.Token
	topic    string
	deadline time.Time
}

// New returns a client for the broker at cfg.BrokerURL that logs to
// logger. It does not connect before Start.
func New(cfg Config, logger *slog.Logger) *Client {
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = defaultPublishTimeout
	}
	return &Client{config: cfg, logger: logger, publishTimeout: cfg.PublishTimeout, subs: map[string]*externalSub{}}
}

// Features reports that the external broker tells nothing about
// connections and senders, and that a handler must not block.
func (b *Client) Features() broker.Features { return broker.Features{} }

// Addr returns the broker URL.
func (b *Client) Addr() string { return b.config.BrokerURL }

// AwaitRoom returns at once: the external broker does not say how much a
// client has yet to read.
func (b *Client) AwaitRoom(context.Context, string) error { return nil }

// Backlogged reports false: the external broker does not say.
func (b *Client) Backlogged(string) bool { return false }

// Flush returns at once: Stop waits for paho's queue (see Stop).
func (b *Client) Flush(context.Context) error { return nil }

// ClientID returns the MQTT client id used (generated at Start when the
// config leaves it empty).
func (b *Client) ClientID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.clientID
}

// IsConnected reports whether the connection to the broker is up.
func (b *Client) IsConnected() bool {
	c := b.pahoClient()
	return c != nil && c.IsConnectionOpen()
}

func (b *Client) pahoClient() mqtt.Client {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != externalRunning {
		return nil
	}
	return b.client
}

// Start connects to the broker. It fails when the broker cannot be reached
// within ctx and ConnectTimeout, naming the URL; it can then be called
// again. Once connected, lost connections are re-established in the
// background.
func (b *Client) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case externalRunning:
		return fmt.Errorf("mqttspec: external broker %s: already started", b.config.BrokerURL)
	case externalStopped:
		return fmt.Errorf("mqttspec: external broker %s: stopped; create a new client", b.config.BrokerURL)
	}
	if b.config.BrokerURL == "" {
		return errors.New("mqttspec: external broker: no BrokerURL")
	}
	if b.clientID == "" {
		b.clientID = b.config.ClientID
		if b.clientID == "" {
			b.clientID = "mqttspec-" + uuid.NewString()
		}
	}
	b.reconnects.Store(0)
	b.gaveUp.Store(false)
	client := mqtt.NewClient(b.options())
	tok := client.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqttspec: external broker %s: connect: %w", b.config.BrokerURL, err)
		}
	case <-ctx.Done():
		// paho finishes (or times out) the attempt before Disconnect acts.
		go client.Disconnect(0)
		return fmt.Errorf("mqttspec: external broker %s: connect: %w", b.config.BrokerURL, ctx.Err())
	}
	b.client = client
	b.done = make(chan struct{})
	b.watch = make(chan externalPublish, externalWatchQueue)
	go b.watchPublishes(b.watch, b.done)
	b.state = externalRunning
	b.logger.Info("connected to external MQTT broker", "url", b.config.BrokerURL, "client_id", b.clientID)
	return nil
}

// options builds the paho options from the config.
func (b *Client) options() *mqtt.ClientOptions {
	o := mqtt.NewClientOptions().
		AddBroker(b.config.BrokerURL).
		SetClientID(b.clientID).
		SetUsername(b.config.Username).
		SetPassword(b.config.Password).
		SetCleanSession(b.config.CleanSession).
		// MQTT 3.1.1 only: left to itself paho tries 3.1 after a refused
		// 3.1.1 CONNECT, doubling the time a failed connect takes.
		SetProtocolVersion(4).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		// Subscriptions are restored by onConnect (paho's ResumeSubs only
		// replays SUBSCRIBE packets it persisted).
		SetResumeSubs(false).
		// Order matters (paho's default): messages are handed to deliver one
		// at a time on paho's router goroutine, so each client's requests
		// reach the handler in the order the broker sent them. This is safe
		// because nothing on that goroutine blocks: the handler's callback
		// only queues the request (answering "overloaded" when the client's
		// queue is full) and never waits for a publish.
		SetOrderMatters(true).
		SetDefaultPublishHandler(b.deliver).
		SetOnConnectHandler(b.onConnect).
		SetConnectionLostHandler(b.onConnectionLost).
		SetReconnectingHandler(b.onReconnecting).
		// Bounds how long Publish may wait for paho's outbound queue, and
		// each network write.
		SetWriteTimeout(b.publishTimeout)
	if b.config.KeepAlive > 0 {
		o.SetKeepAlive(b.config.KeepAlive)
	}
	if b.config.ConnectTimeout > 0 {
		o.SetConnectTimeout(b.config.ConnectTimeout)
	}
	if b.config.ReconnectDelay > 0 {
		o.SetMaxReconnectInterval(b.config.ReconnectDelay)
	}
	if b.config.TLSConfig != nil {
		o.SetTLSConfig(b.config.TLSConfig)
	}
	if w := b.config.Will; w != nil {
		o.SetBinaryWill(w.Topic, w.Payload, w.QoS, w.Retained)
	}
	if dial := bufferedDialer(b.config.BrokerURL); dial != nil {
		o.SetCustomOpenConnectionFn(dial)
	}
	return o
}

// onConnect runs (in its own goroutine) after every successful connect and
// subscribes to the remembered filters again.
func (b *Client) onConnect(c mqtt.Client) {
	b.reconnects.Store(0)
	b.subMu.Lock()
	filters := make(map[string]byte, len(b.subs))
	for f, s := range b.subs {
		filters[f] = s.qos
	}
	b.subMu.Unlock()
	if fn := b.config.OnConnect; fn != nil && b.connects.Add(1) > 1 {
		fn()
	}
	if len(filters) == 0 {
		return
	}
	tok := c.SubscribeMultiple(filters, nil)
	if !tok.WaitTimeout(b.subscribeTimeout()) {
		b.logger.Warn("resubscribe after reconnect not acknowledged in time", "url", b.config.BrokerURL)
		return
	}
	if err := subscribeError(tok); err != nil {
		b.logger.Error("resubscribe after reconnect failed", "url", b.config.BrokerURL, "error", err)
		return
	}
	b.logger.Info("reconnected to external MQTT broker", "url", b.config.BrokerURL, "subscriptions", len(filters))
}

// onConnectionLost logs a lost connection; paho reconnects on its own.
func (b *Client) onConnectionLost(_ mqtt.Client, err error) {
	b.logger.Warn("connection to external MQTT broker lost", "url", b.config.BrokerURL, "error", err)
}

// onReconnecting runs before every reconnect attempt and enforces
// MaxReconnect.
func (b *Client) onReconnecting(c mqtt.Client, _ *mqtt.ClientOptions) {
	n := b.reconnects.Add(1)
	limit := int64(b.config.MaxReconnect)
	if limit <= 0 || n <= limit {
		b.logger.Debug("reconnecting to external MQTT broker", "url", b.config.BrokerURL, "attempt", n)
		return
	}
	if b.gaveUp.CompareAndSwap(false, true) {
		b.logger.Error("giving up reconnecting to external MQTT broker", "url", b.config.BrokerURL, "attempts", limit)
		// Disconnect waits for the reconnect loop (this goroutine) to see
		// the status change, so it must not run here.
		go c.Disconnect(0)
	}
}

// deliver is paho's default publish handler: every message arrives here,
// one at a time, on paho's router goroutine. It calls the callback of each
// remembered subscription whose filter matches; a message no subscription
// matches is kept (bounded) until a matching Subscribe. subMu is held while
// callbacks run so that kept messages and new ones are delivered in order.
func (b *Client) deliver(_ mqtt.Client, m mqtt.Message) {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	matched := false
	for filter, s := range b.subs {
		if broker.MatchTopic(filter, m.Topic()) {
			matched = true
			s.fn(broker.Message{Topic: m.Topic(), Payload: m.Payload()})
		}
	}
	if matched {
		return
	}
	if len(b.pending) >= externalPendingMax {
		b.logger.Debug("dropping unrouted message", "topic", b.pending[0].Topic())
		b.pending[0] = nil
		b.pending = b.pending[1:]
	}
	b.pending = append(b.pending, m)
}

// Subscribe subscribes to topicFilter and routes matching messages to
// fn, in arrival order, on paho's router goroutine (fn must not block). The subscription is restored after every reconnect. Messages
// that arrived before Subscribe for this filter are delivered first.
func (b *Client) Subscribe(topicFilter string, qos byte, fn broker.Handler) error {
	if fn == nil {
		return fmt.Errorf("mqttspec: external broker: subscribe %s: nil handler", topicFilter)
	}
	c := b.pahoClient()
	if c == nil {
		return fmt.Errorf("mqttspec: external broker: subscribe %s: %w", topicFilter, ErrNotConnected)
	}
	b.subMu.Lock()
	b.subs[topicFilter] = &externalSub{qos: qos, fn: fn}
	kept := b.pending[:0]
	for _, m := range b.pending {
		if broker.MatchTopic(topicFilter, m.Topic()) {
			fn(broker.Message{Topic: m.Topic(), Payload: m.Payload()})
		} else {
			kept = append(kept, m)
		}
	}
	clear(b.pending[len(kept):])
	b.pending = kept
	b.subMu.Unlock()

	tok := c.Subscribe(topicFilter, qos, nil) // nil: messages go to deliver
	err := errors.New("not acknowledged in time")
	if tok.WaitTimeout(b.subscribeTimeout()) {
		err = subscribeError(tok)
	}
	if err != nil {
		b.subMu.Lock()
		delete(b.subs, topicFilter)
		b.subMu.Unlock()
		return fmt.Errorf("mqttspec: external broker %s: subscribe %s: %w", b.config.BrokerURL, topicFilter, err)
	}
	return nil
}

// subscribeError returns the error of a finished subscribe token, including
// a refusal in the SUBACK.
func subscribeError(tok mqtt.Token) error {
	if err := tok.Error(); err != nil {
		return err
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for filter, code := range st.Result() {
			if code == 0x80 {
				return fmt.Errorf("broker refused the subscription to %s", filter)
			}
		}
	}
	return nil
}

func (b *Client) subscribeTimeout() time.Duration {
	if b.config.ConnectTimeout > 0 {
		return b.config.ConnectTimeout
	}
	return defaultConnectTimeout
}

// Unsubscribe forgets topicFilter and unsubscribes from it. Messages
// already on their way are no longer delivered to the callback.
func (b *Client) Unsubscribe(topicFilter string) error {
	b.subMu.Lock()
	_, ok := b.subs[topicFilter]
	delete(b.subs, topicFilter)
	b.subMu.Unlock()
	c := b.pahoClient()
	if !ok || c == nil || !c.IsConnectionOpen() {
		return nil // a new session will not have it
	}
	tok := c.Unsubscribe(topicFilter)
	if !tok.WaitTimeout(b.subscribeTimeout()) {
		return fmt.Errorf("mqttspec: external broker %s: unsubscribe %s: not acknowledged in time", b.config.BrokerURL, topicFilter)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqttspec: external broker %s: unsubscribe %s: %w", b.config.BrokerURL, topicFilter, err)
	}
	return nil
}

// Publish hands payload for topic to paho and returns without waiting for
// the broker's acknowledgement: waiting would serialise the callers on
// broker round trips, and paho keeps the publish order of one connection
// anyway. When the connection is down it fails at once with
// ErrNotConnected. Later failures of QoS 1 and 2 publishes (no
// acknowledgement within the handler's publish timeout, connection lost)
// are logged by one watcher goroutine that checks the tokens in publish
// order, so there is no goroutine per message.
func (b *Client) Publish(topic string, qos byte, payload []byte) error {
	b.mu.Lock()
	c, watch := b.client, b.watch
	running := b.state == externalRunning
	b.mu.Unlock()
	if !running || !c.IsConnectionOpen() {
		return fmt.Errorf("mqttspec: external broker: publish %s: %w", topic, ErrNotConnected)
	}
	tok := c.Publish(topic, qos, false, payload)
	if qos == 0 {
		// Nothing to acknowledge: a write that fails ends the connection,
		// which is logged and re-established (onConnectionLost).
		return nil
	}
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqttspec: external broker: publish %s: %w", topic, err)
		}
		return nil
	default:
	}
	select {
	case watch <- externalPublish{tok: tok, topic: topic, deadline: time.Now().Add(b.publishTimeout)}:
	default:
		b.logger.Debug("publish watcher is behind; not checking this publish", "topic", topic)
	}
	return nil
}

// PublishRetained publishes a retained message (an empty payload clears
// the topic's retained message) and waits up to the publish timeout for
// the broker to take it.
func (b *Client) PublishRetained(topic string, qos byte, payload []byte) error {
	c := b.pahoClient()
	if c == nil || !c.IsConnectionOpen() {
		return fmt.Errorf("mqttspec: external broker: publish %s: %w", topic, ErrNotConnected)
	}
	tok := c.Publish(topic, qos, true, payload)
	if !tok.WaitTimeout(b.publishTimeout) {
		return fmt.Errorf("mqttspec: external broker: publish %s: not acknowledged within %s", topic, b.publishTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqttspec: external broker: publish %s: %w", topic, err)
	}
	return nil
}

// watchPublishes logs publishes that fail or are not acknowledged in time.
// Tokens arrive in publish order with increasing deadlines, so waiting for
// each in turn never waits longer than the publish timeout past the last.
func (b *Client) watchPublishes(watch <-chan externalPublish, done <-chan struct{}) {
	timer := time.NewTimer(time.Hour) // one timer, reset for each publish
	timer.Stop()
	defer timer.Stop()
	for {
		var p externalPublish
		select {
		case <-done:
			return
		case p = <-watch:
		}
		if wait := time.Until(p.deadline); wait > 0 {
			timer.Reset(wait)
			select {
			case <-p.tok.Done():
			case <-timer.C:
			case <-done:
				return
			}
			timer.Stop()
		}
		select {
		case <-p.tok.Done():
			if err := p.tok.Error(); err != nil {
				b.logger.Warn("publish to external broker failed", "topic", p.topic, "error", err)
			}
		default:
			b.logger.Warn("publish to external broker not acknowledged in time", "topic", p.topic, "timeout", b.publishTimeout)
		}
	}
}

// Stop disconnects from the broker, waiting briefly (at most 250ms, and
// never past ctx) for work in flight. Calling it again, or before Start,
// is safe.
func (b *Client) Stop(ctx context.Context) error {
	b.mu.Lock()
	prev := b.state
	b.state = externalStopped
	c := b.client
	if prev == externalRunning {
		close(b.done)
	}
	b.mu.Unlock()
	if prev != externalRunning {
		return nil
	}
	quiesce := externalQuiesce
	if dl, ok := ctx.Deadline(); ok {
		quiesce = max(min(quiesce, time.Until(dl)), 0)
	}
	c.Disconnect(uint(quiesce / time.Millisecond))
	b.subMu.Lock()
	clear(b.pending)
	b.pending = nil
	b.subMu.Unlock()
	b.logger.Info("disconnected from external MQTT broker", "url", b.config.BrokerURL)
	return nil
}
