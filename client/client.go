package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"

	"github.com/mqttspec/mqttspec"
)

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("mqttspec client: closed")

// Client is a connection to an mqttspec server. It is safe for concurrent
// use; Close it when done.
type Client struct {
	cfg     config
	mq      paho.Client
	topics  topics
	run     string // part of every request id: ids of an earlier run are never reused
	seq     atomic.Uint64
	present atomic.Bool // the broker kept the session at the last CONNECT
	conns   atomic.Int64

	mu      sync.Mutex
	waiting map[string]*call
	views   map[string]*View // by subscription id
	ended   map[string]bool  // subscriptions without a view this client has unsubscribed from
	open    map[*View]struct{}
	closed  chan struct{}
	once    sync.Once
}

// topics are the client's own topics.
type topics struct{ request, response, notify string }

// call is a request waiting for its answer.
type call struct {
	answer   chan *answer
	onAnswer func(*answer) // run by the message router before the answer is handed over
}

// answer is a response as it arrives.
type answer struct {
	ID       string              `json:"id"`
	Type     string              `json:"type"`
	Success  bool                `json:"success"`
	Data     json.RawMessage     `json:"data"`
	Error    *mqttspec.ErrorInfo `json:"error"`
	Metadata map[string]any      `json:"metadata"`
}

// Dial connects to the broker at url (tcp://, mqtt://, ssl://, tls://,
// mqtts://, ws:// or wss://) and subscribes to the client's response and
// notify topics. ctx bounds the first connection; later reconnects are
// automatic.
func Dial(ctx context.Context, url string, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.clientID == "" || strings.ContainsAny(cfg.clientID, "/+#") {
		return nil, fmt.Errorf("mqttspec client: client id %q must be non-empty and contain no '/', '+' or '#'", cfg.clientID)
	}
	own := cfg.prefix + "/" + cfg.clientID + "/"
	c := &Client{
		cfg:     cfg,
		run:     uuid.NewString()[:8],
		topics:  topics{request: own + "request", response: own + "response", notify: own + "notify/"},
		waiting: map[string]*call{},
		views:   map[string]*View{},
		ended:   map[string]bool{},
		open:    map[*View]struct{}{},
		closed:  make(chan struct{}),
	}
	o := paho.NewClientOptions().
		AddBroker(url).
		SetClientID(cfg.clientID).
		SetProtocolVersion(4).
		SetCleanSession(cfg.clean).
		SetOrderMatters(true).
		SetKeepAlive(cfg.keepAlive).
		SetConnectTimeout(cfg.connectTimeout).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(cfg.maxReconnect).
		SetCustomOpenConnectionFn(c.openConn).
		SetDefaultPublishHandler(c.route).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.cfg.logger.Warn("mqttspec client: connection lost", "client", c.cfg.clientID, "error", err)
		})
	if cfg.username != "" || cfg.password != "" {
		o.SetUsername(cfg.username).SetPassword(cfg.password)
	}
	if cfg.tls != nil {
		o.SetTLSConfig(cfg.tls)
	}
	c.mq = paho.NewClient(o)
	if err := wait(ctx, c.mq.Connect()); err != nil {
		c.mq.Disconnect(0)
		return nil, fmt.Errorf("mqttspec client: connect to %s: %w", url, err)
	}
	if err := c.subscribeTopics(ctx); err != nil {
		c.mq.Disconnect(0)
		return nil, err
	}
	return c, nil
}

// ID returns the client id, the {client_id} of the client's topics.
func (c *Client) ID() string { return c.cfg.clientID }

// Close ends the client's views and disconnects. The broker keeps a
// persistent session until it expires; calls still waiting return
// ErrClosed.
func (c *Client) Close() error {
	c.once.Do(func() {
		close(c.closed)
		for _, v := range c.openViews() {
			v.end(nil)
		}
		c.mq.Disconnect(250)
	})
	return nil
}

// openViews returns the views that have not ended.
func (c *Client) openViews() []*View {
	c.mu.Lock()
	defer c.mu.Unlock()
	views := make([]*View, 0, len(c.open))
	for v := range c.open {
		views = append(views, v)
	}
	return views
}

// subscribeTopics subscribes to the response and notify topics. Mochi
// keeps a client's packet ids and its own in one table: a SUBSCRIBE sent
// while messages the broker resends from a kept session are still
// unacknowledged can be refused with 0x91 (packet id in use) when its id
// is one of theirs (mochi-mqtt/server#545); it is sent again, with another
// id, once those are acknowledged.
func (c *Client) subscribeTopics(ctx context.Context) error {
	filters := map[string]byte{c.topics.response: c.cfg.qos, c.topics.notify + "+": c.cfg.qos}
	pause := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		tok := c.mq.SubscribeMultiple(filters, nil)
		if err := wait(ctx, tok); err != nil {
			return fmt.Errorf("mqttspec client: subscribe to %s and %s+: %w", c.topics.response, c.topics.notify, err)
		}
		idInUse := false
		for filter, code := range tok.(*paho.SubscribeToken).Result() {
			switch {
			case code == packetIDInUse && attempt < 10:
				idInUse = true
			case code > 2:
				return fmt.Errorf("mqttspec client: subscribe to %s refused by the broker (code %#x)", filter, code)
			}
		}
		if !idInUse {
			return nil
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return fmt.Errorf("mqttspec client: subscribe to %s and %s+: %w", c.topics.response, c.topics.notify, ctx.Err())
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// strayWait is how long a subscription whose notifications no view follows
// waits before the client ends it.
const strayWait = time.Second

// packetIDInUse is the SUBACK code of a SUBSCRIBE whose packet id the
// broker has in use (MQTT 5's 0x91, which Mochi also sends to 3.1.1
// clients).
const packetIDInUse = 0x91

// onConnect runs after every (re)connect. When the broker kept the
// session, its subscriptions and queued messages carry on and the views'
// seq checks find anything lost. When it did not, the topics are
// subscribed to again and every view takes a fresh snapshot: the server
// ended the subscriptions of the forgotten session.
func (c *Client) onConnect(paho.Client) {
	if c.conns.Add(1) == 1 {
		return // Dial subscribes
	}
	present := c.present.Load()
	c.cfg.logger.Info("mqttspec client: reconnected", "client", c.cfg.clientID, "session_present", present)
	if present {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.requestTimeout)
		defer cancel()
		if err := c.subscribeTopics(ctx); err != nil {
			c.cfg.logger.Error("mqttspec client: resubscribe after reconnect", "client", c.cfg.clientID, "error", err)
		}
		for _, v := range c.openViews() {
			v.resync("the broker did not keep the session")
		}
	}()
}

// route handles every message the client receives, one at a time in
// arrival order (paho's ordered router): answers go to their calls,
// notifications to their views.
func (c *Client) route(_ paho.Client, m paho.Message) {
	topic := m.Topic()
	if sub, ok := strings.CutPrefix(topic, c.topics.notify); ok {
		c.mu.Lock()
		v := c.views[sub]
		stray := v == nil && !c.ended[sub]
		if stray {
			if len(c.ended) >= 1024 {
				clear(c.ended) // at worst one more unsubscribe of an old one
			}
			c.ended[sub] = true
		}
		c.mu.Unlock()
		if stray {
			// A subscription no view follows: one this client made in an
			// earlier run (the broker kept the session) or one a view has
			// left. End it, once, rather than be fed it forever; but only
			// if no answer has made it a view's meanwhile (a notification
			// overtaking its subscription's answer must not end it).
			time.AfterFunc(strayWait, func() {
				c.mu.Lock()
				_, followed := c.views[sub]
				c.mu.Unlock()
				if !followed {
					c.unsubscribe(sub)
				}
			})
		}
		if v == nil {
			return
		}
		var n note
		if err := json.Unmarshal(m.Payload(), &n); err != nil {
			c.cfg.logger.Warn("mqttspec client: notification is not JSON", "topic", topic, "error", err)
			return
		}
		v.onNote(sub, &n)
		return
	}
	if topic != c.topics.response {
		return
	}
	var a answer
	if err := json.Unmarshal(m.Payload(), &a); err != nil {
		c.cfg.logger.Warn("mqttspec client: answer is not JSON", "topic", topic, "error", err)
		return
	}
	c.mu.Lock()
	w := c.waiting[a.ID]
	delete(c.waiting, a.ID)
	c.mu.Unlock()
	if w == nil {
		return // an answer sent again, or to a call that gave up
	}
	if w.onAnswer != nil && a.Success {
		w.onAnswer(&a)
	}
	w.answer <- &a
}

// request is a message as the client sends it.
type request struct {
	ID             string                   `json:"id"`
	Type           mqttspec.MessageType     `json:"type"`
	Operation      mqttspec.OperationType   `json:"operation,omitempty"`
	Schema         string                   `json:"schema,omitempty"`
	Entity         string                   `json:"entity,omitempty"`
	RecordID       string                   `json:"record_id,omitempty"`
	Data           any                      `json:"data,omitempty"`
	Options        *mqttspec.RequestOptions `json:"options,omitempty"`
	SubscriptionID string                   `json:"subscription_id,omitempty"`
}

// do sends req and waits for its answer. A failed answer is returned as a
// *mqttspec.Error. An "overloaded" answer (the server did not run the
// request) is retried after a growing pause while ctx allows. onAnswer, if
// set, runs on the message router with a successful answer before any
// later message is routed.
func (c *Client) do(ctx context.Context, req request, onAnswer func(*answer)) (*answer, error) {
	if _, ok := ctx.Deadline(); !ok && c.cfg.requestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.requestTimeout)
		defer cancel()
	}
	// The server answers a write it sees again with the same id and payload
	// from its first answer, for DedupWindow: a client restarted under the
	// same id must not reuse its ids.
	req.ID = c.run + "-" + strconv.FormatUint(c.seq.Add(1), 36)
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("mqttspec client: encode %s request: %w", describe(req), err)
	}
	pause := 10 * time.Millisecond
	for {
		a, err := c.attempt(ctx, req, payload, onAnswer)
		var refused *mqttspec.Error
		if !errors.As(err, &refused) || refused.Code != mqttspec.CodeOverloaded {
			return a, err
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return a, err
		case <-c.closed:
			return nil, ErrClosed
		}
		pause = min(2*pause, time.Second)
	}
}

// attempt sends one request and waits for its answer.
func (c *Client) attempt(ctx context.Context, req request, payload []byte, onAnswer func(*answer)) (*answer, error) {
	select {
	case <-c.closed:
		return nil, ErrClosed
	default:
	}
	w := &call{answer: make(chan *answer, 1), onAnswer: onAnswer}
	c.mu.Lock()
	c.waiting[req.ID] = w
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, req.ID)
		c.mu.Unlock()
	}()
	sent := c.mq.Publish(c.topics.request, c.cfg.qos, false, payload)
	done := sent.Done()
	var resend <-chan time.Time
	if c.cfg.resend > 0 {
		tick := time.NewTicker(c.cfg.resend)
		defer tick.Stop()
		resend = tick.C
	}
	for {
		select {
		case <-resend: // the same id: the server answers, it does not run, a write it has seen
			sent = c.mq.Publish(c.topics.request, c.cfg.qos, false, payload)
			done = sent.Done()
		case a := <-w.answer:
			if !a.Success {
				return a, answerError(a)
			}
			return a, nil
		case <-done:
			done = nil
			// At QoS 1 and 2 with a kept session, paho has stored the
			// request and sends it again after the reconnect: the answer
			// can still come.
			if err := sent.Error(); err != nil && (c.cfg.qos == 0 || c.cfg.clean) {
				return nil, fmt.Errorf("mqttspec client: send %s request: %w", describe(req), err)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("mqttspec client: %s request %s: %w", describe(req), req.ID, ctx.Err())
		case <-c.closed:
			return nil, ErrClosed
		}
	}
}

// answerError returns the *mqttspec.Error of a failed answer.
func answerError(a *answer) error {
	if a.Error == nil {
		return &mqttspec.Error{Code: mqttspec.CodeInternalError, Message: "the server refused the request without an error"}
	}
	return &mqttspec.Error{Code: a.Error.Code, Message: a.Error.Message, Details: a.Error.Details}
}

// describe names a request in errors: "read public.users".
func describe(req request) string {
	if req.Operation == "" {
		return string(req.Type)
	}
	return string(req.Operation) + " " + req.Schema + "." + req.Entity
}

// wait waits for tok or the end of ctx.
func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
