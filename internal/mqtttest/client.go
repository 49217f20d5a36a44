// Package mqtttest holds the helpers every test of mqttspec shares: a paho
// test client that records what it receives and speaks the JSON protocol,
// bounded waits, and polling with a deadline.
package mqtttest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
)

// Wait bounds every wait of the tests.
const Wait = 10 * time.Second

// Prefix is the default topic prefix.
const Prefix = "spec"

// Msg is one message a Client received.
type Msg struct {
	Topic   string
	Payload string
}

// Option adjusts a Client's paho options before it connects.
type Option func(*paho.ClientOptions)

// Persistent asks for a persistent session (clean session false).
func Persistent(o *paho.ClientOptions) { o.SetCleanSession(false) }

// Credentials sets username and password.
func Credentials(user, pass string) Option {
	return func(o *paho.ClientOptions) { o.SetUsername(user).SetPassword(pass) }
}

// Client is a paho client (MQTT 3.1.1, no auto-reconnect) for tests. Answers
// on its own {prefix}/{id}/response topic are routed to the request that
// waits for them (Orphans when none does), notifications on
// {prefix}/{id}/notify/+ go to Notes, and every other message to Msgs.
type Client struct {
	paho.Client
	t      testing.TB
	ID     string
	Prefix string

	// Msgs receives messages that are neither answers nor notifications.
	Msgs chan Msg
	// Lost receives the error of a lost connection.
	Lost chan error
	// Orphans receives answers no request waits for (e.g. without id).
	Orphans chan map[string]any
	// Notes receives notifications.
	Notes chan map[string]any

	raw     bool // every message goes to Msgs
	mu      sync.Mutex
	waiters map[string]chan map[string]any
	seq     int
}

// Dial connects a test client with id to url; it disconnects when the test
// ends.
func Dial(t testing.TB, url, id string, opts ...Option) (*Client, error) {
	t.Helper()
	return dial(t, url, id, false, opts)
}

// DialRaw is Dial for a client that does not speak the protocol: every
// message it receives goes to Msgs.
func DialRaw(t testing.TB, url, id string, opts ...Option) (*Client, error) {
	t.Helper()
	return dial(t, url, id, true, opts)
}

// MustDialRaw is DialRaw that fails the test on error.
func MustDialRaw(t testing.TB, url, id string, opts ...Option) *Client {
	t.Helper()
	c, err := DialRaw(t, url, id, opts...)
	require.NoError(t, err, "connect %s", id)
	return c
}

func dial(t testing.TB, url, id string, raw bool, opts []Option) (*Client, error) {
	t.Helper()
	c := &Client{raw: raw,
		t: t, ID: id, Prefix: Prefix,
		Msgs: make(chan Msg, 10000), Lost: make(chan error, 1),
		Orphans: make(chan map[string]any, 1000), Notes: make(chan map[string]any, 10000),
		waiters: map[string]chan map[string]any{},
	}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).
		SetAutoReconnect(false).SetConnectTimeout(Wait).SetOrderMatters(true).
		SetDefaultPublishHandler(c.route).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case c.Lost <- err:
			default:
			}
		})
	for _, opt := range opts {
		opt(o)
	}
	c.Client = paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(Wait) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(20) })
	return c, nil
}

// MustDial is Dial that fails the test on error.
func MustDial(t testing.TB, url, id string, opts ...Option) *Client {
	t.Helper()
	c, err := Dial(t, url, id, opts...)
	require.NoError(t, err, "connect %s", id)
	return c
}

// Connect dials and subscribes to the client's response and notify topics:
// a client of the protocol, ready for Request.
func Connect(t testing.TB, url, id string, opts ...Option) *Client {
	t.Helper()
	c := MustDial(t, url, id, opts...)
	c.Subscribe(c.Prefix+"/"+id+"/response", c.Prefix+"/"+id+"/notify/+")
	return c
}

func (c *Client) route(_ paho.Client, m paho.Message) {
	topic, own := m.Topic(), c.Prefix+"/"+c.ID+"/"
	answer := topic == own+"response"
	note := strings.HasPrefix(topic, own+"notify/")
	if c.raw || !answer && !note {
		deliver(c, c.Msgs, Msg{Topic: topic, Payload: string(m.Payload())})
		return
	}
	var msg map[string]any
	if err := json.Unmarshal(m.Payload(), &msg); err != nil {
		c.t.Errorf("client %s got non-JSON on %s: %q", c.ID, topic, m.Payload())
		return
	}
	msg["_topic"] = topic
	if note {
		deliver(c, c.Notes, msg)
		return
	}
	id, _ := msg["id"].(string)
	c.mu.Lock()
	ch := c.waiters[id]
	delete(c.waiters, id)
	c.mu.Unlock()
	if ch == nil {
		deliver(c, c.Orphans, msg)
		return
	}
	ch <- msg
}

// deliver queues v on ch; a full buffer fails the test.
func deliver[T any](c *Client, ch chan T, v T) {
	select {
	case ch <- v:
	default:
		c.t.Errorf("client %s: buffer full, dropped a message", c.ID)
	}
}

// Subscribe subscribes to filters at QoS 1 and returns the SUBACK codes by
// filter (a $share/{group}/ prefix is not part of the key).
func (c *Client) Subscribe(filters ...string) map[string]byte {
	c.t.Helper()
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	tok := c.SubscribeMultiple(m, nil)
	require.True(c.t, tok.WaitTimeout(Wait), "%s: subscribe timed out", c.ID)
	require.NoError(c.t, tok.Error())
	return tok.(*paho.SubscribeToken).Result()
}

// SubscribeCode subscribes to one filter at qos and returns its SUBACK code.
func (c *Client) SubscribeCode(filter string, qos byte) byte {
	c.t.Helper()
	tok := c.Client.Subscribe(filter, qos, nil)
	require.True(c.t, tok.WaitTimeout(Wait), "%s: subscribe timed out", c.ID)
	require.NoError(c.t, tok.Error())
	for _, code := range tok.(*paho.SubscribeToken).Result() {
		return code
	}
	c.t.Fatalf("%s: no SUBACK code for %s", c.ID, filter)
	return 0
}

// Publish publishes payload at qos and waits until the broker has
// acknowledged it (QoS 1) or the write is done (QoS 0), returning the error
// (a broker may close the connection instead of acknowledging).
func (c *Client) Publish(topic string, qos byte, payload string) error {
	c.t.Helper()
	tok := c.Client.Publish(topic, qos, false, payload)
	require.True(c.t, tok.WaitTimeout(Wait), "%s: publish to %s timed out", c.ID, topic)
	return tok.Error()
}

// Send publishes raw (QoS 1) on the client's request topic and returns a
// channel that receives the answer carrying id.
func (c *Client) Send(id string, raw []byte) chan map[string]any {
	c.t.Helper()
	ch := make(chan map[string]any, 1)
	if id != "" {
		c.mu.Lock()
		c.waiters[id] = ch
		c.mu.Unlock()
	}
	require.NoError(c.t, c.Publish(c.Prefix+"/"+c.ID+"/request", 1, string(raw)))
	return ch
}

// Request sends msg (an "id" is added when missing) and waits for its answer.
func (c *Client) Request(msg map[string]any) map[string]any {
	c.t.Helper()
	if _, ok := msg["id"]; !ok {
		c.mu.Lock()
		c.seq++
		msg["id"] = fmt.Sprintf("%s-%d", c.ID, c.seq)
		c.mu.Unlock()
	}
	raw, err := json.Marshal(msg)
	require.NoError(c.t, err)
	return c.Await(c.Send(msg["id"].(string), raw))
}

// Await waits for the answer on ch.
func (c *Client) Await(ch chan map[string]any) map[string]any {
	c.t.Helper()
	return Recv(c.t, ch, "answer for client "+c.ID)
}

// NextNote waits for the next notification.
func (c *Client) NextNote() map[string]any {
	c.t.Helper()
	return Recv(c.t, c.Notes, "notification for client "+c.ID)
}

// NoNote asserts that no notification is pending after a round trip of
// marker, the client whose writes are in question: the handler publishes
// a write's notifications before it takes the writer's next request (when
// no earlier change of the entity is still being prepared), so a ping
// answered after the write proves that any notification it caused has
// arrived.
func (c *Client) NoNote(marker *Client) {
	c.t.Helper()
	marker.Request(map[string]any{"type": "ping"})
	c.Request(map[string]any{"type": "ping"})
	Nothing(c.t, c.Notes, "notification for client "+c.ID)
}

// Recv waits (at most Wait) for a value on ch.
func Recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// Nothing fails the test if ch holds a value.
func Nothing[T any](t testing.TB, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	default:
	}
}

// Eventually polls cond until it holds, failing the test after Wait. Use it
// only where nothing signals the condition.
func Eventually(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval; there is no signal to wait for
	}
}

// Req returns a request message for op on public.entity with fields.
func Req(op, entity string, fields map[string]any) map[string]any {
	m := map[string]any{"type": "request", "operation": op, "schema": "public", "entity": entity}
	for k, v := range fields {
		m[k] = v
	}
	return m
}

// OK asserts a successful answer and returns its data.
func OK(t testing.TB, resp map[string]any) any {
	t.Helper()
	require.Equal(t, true, resp["success"], "response: %v", resp)
	return resp["data"]
}

// Fails asserts a failed answer with code and a message.
func Fails(t testing.TB, resp map[string]any, code string) {
	t.Helper()
	require.Equal(t, false, resp["success"], "response: %v", resp)
	e, ok := resp["error"].(map[string]any)
	require.True(t, ok, "no error object in %v", resp)
	require.Equal(t, code, e["code"], "response: %v", resp)
	require.NotEmpty(t, e["message"])
}
