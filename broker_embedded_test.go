package mqttspec

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	mqtt "github.com/mochi-mqtt/server/v2"
	mochipackets "github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"
)

// brokerTestWait bounds every wait of the broker tests.
const brokerTestWait = 5 * time.Second

// brokerTestPrefix is the topic prefix of the broker tests.
const brokerTestPrefix = "spec"

// brokerTestDisconnect is one disconnected call of brokerTestEvents.
type brokerTestDisconnect struct {
	client      *Client
	cause       error
	sessionKept bool
}

// brokerTestEvents is a fake brokerEvents that records what the broker
// reports.
type brokerTestEvents struct {
	refuse func(ConnectInfo) error // nil accepts every CONNECT

	mu    sync.Mutex
	infos []ConnectInfo

	connC chan *Client
	discC chan brokerTestDisconnect
	expC  chan string
	dropC chan string
}

func brokerTestNewEvents() *brokerTestEvents {
	return &brokerTestEvents{
		connC: make(chan *Client, 100),
		discC: make(chan brokerTestDisconnect, 100),
		expC:  make(chan string, 100),
		dropC: make(chan string, 100),
	}
}

func (e *brokerTestEvents) authenticate(info ConnectInfo) (*Client, error) {
	e.mu.Lock()
	e.infos = append(e.infos, info)
	e.mu.Unlock()
	if e.refuse != nil {
		if err := e.refuse(info); err != nil {
			return nil, err
		}
	}
	return NewClient(info.ClientID, info.Username, nil), nil
}

func (e *brokerTestEvents) connected(c *Client) { e.connC <- c }

func (e *brokerTestEvents) disconnected(c *Client, cause error, sessionKept bool) {
	e.discC <- brokerTestDisconnect{client: c, cause: cause, sessionKept: sessionKept}
}

func (e *brokerTestEvents) sessionExpired(clientID string) { e.expC <- clientID }

func (e *brokerTestEvents) publishDropped(clientID, topic string) { e.dropC <- clientID + " " + topic }

func (e *brokerTestEvents) connectInfos() []ConnectInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]ConnectInfo(nil), e.infos...)
}

// brokerTestRecv waits for a value on ch.
func brokerTestRecv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(brokerTestWait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// brokerTestNothing fails if ch holds a value.
func brokerTestNothing[T any](t testing.TB, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	default:
	}
}

// brokerTestEmbedded starts an embedded broker on a free loopback port with
// the fake events and stops it when the test ends.
func brokerTestEmbedded(t testing.TB, cfg BrokerConfig, ev brokerEvents) *EmbeddedBroker {
	t.Helper()
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = -1
	}
	b := NewEmbeddedBroker(cfg, NewClientManager(context.Background()))
	b.setEvents(ev, brokerTestPrefix)
	require.NoError(t, b.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), brokerTestWait)
		defer cancel()
		require.NoError(t, b.Stop(ctx))
	})
	return b
}

// brokerTestMessage is a message received by a test client or callback.
type brokerTestMessage struct {
	topic   string
	payload string
}

// brokerTestClient is a paho test client that records received messages.
type brokerTestClient struct {
	paho.Client
	msgs chan brokerTestMessage
	lost chan error
}

// brokerTestConnect connects a paho client (MQTT 3.1.1, clean session, no
// auto-reconnect) to url; opts adjust the options.
func brokerTestConnect(t testing.TB, url, id string, opts ...func(*paho.ClientOptions)) (*brokerTestClient, error) {
	t.Helper()
	tc := &brokerTestClient{msgs: make(chan brokerTestMessage, 1000), lost: make(chan error, 1)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).
		SetAutoReconnect(false).SetConnectTimeout(brokerTestWait).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			tc.msgs <- brokerTestMessage{m.Topic(), string(m.Payload())}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) { tc.lost <- err })
	for _, f := range opts {
		f(o)
	}
	tc.Client = paho.NewClient(o)
	tok := tc.Connect()
	if !tok.WaitTimeout(brokerTestWait) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { tc.Disconnect(0) })
	return tc, nil
}

func brokerTestMustConnect(t testing.TB, url, id string, opts ...func(*paho.ClientOptions)) *brokerTestClient {
	t.Helper()
	tc, err := brokerTestConnect(t, url, id, opts...)
	require.NoError(t, err, "connect %s", id)
	return tc
}

// brokerTestDone waits for tok and returns its error.
func brokerTestDone(t testing.TB, tok paho.Token) error {
	t.Helper()
	require.True(t, tok.WaitTimeout(brokerTestWait), "token not done in time")
	return tok.Error()
}

// brokerTestSubscribe subscribes and returns the SUBACK code.
func brokerTestSubscribe(t testing.TB, c paho.Client, filter string, qos byte) byte {
	t.Helper()
	tok := c.Subscribe(filter, qos, nil)
	require.NoError(t, brokerTestDone(t, tok))
	result := tok.(*paho.SubscribeToken).Result() // keyed without a $share/{group}/ prefix
	require.Len(t, result, 1)
	for _, code := range result {
		return code
	}
	panic("unreachable")
}

// brokerTestCallback subscribes a channel-backed callback to filter.
func brokerTestCallback(t testing.TB, b BrokerInterface, filter string) chan brokerTestMessage {
	t.Helper()
	ch := make(chan brokerTestMessage, 1000)
	require.NoError(t, b.Subscribe(filter, 1, func(topic string, payload []byte) {
		ch <- brokerTestMessage{topic, string(payload)}
	}))
	return ch
}

func brokerTestURL(b *EmbeddedBroker) string { return "tcp://" + b.Addr() }

func TestEmbeddedBrokerRequestReachesCallback(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, BrokerConfig{}, ev)
	require.True(t, b.IsConnected())
	require.True(t, strings.HasPrefix(b.Addr(), "127.0.0.1:"), b.Addr())
	requests := brokerTestCallback(t, b, "spec/+/request")

	a := brokerTestMustConnect(t, brokerTestURL(b), "A", func(o *paho.ClientOptions) {
		o.SetUsername("alice").SetPassword("secret")
	})
	c := brokerTestRecv(t, ev.connC, "connected")
	require.Equal(t, "A", c.ID)
	infos := ev.connectInfos()
	require.Len(t, infos, 1)
	require.Equal(t, "A", infos[0].ClientID)
	require.Equal(t, "alice", infos[0].Username)
	require.Equal(t, []byte("secret"), infos[0].Password)
	require.True(t, infos[0].CleanSession)
	require.True(t, strings.HasPrefix(infos[0].RemoteAddr, "127.0.0.1:"), infos[0].RemoteAddr)

	require.Equal(t, byte(1), brokerTestSubscribe(t, a, "spec/A/response", 1))
	for qos := byte(0); qos <= 1; qos++ {
		require.NoError(t, brokerTestDone(t, a.Publish("spec/A/request", qos, false, fmt.Sprintf(`{"n":%d}`, qos))))
		got := brokerTestRecv(t, requests, "request")
		require.Equal(t, brokerTestMessage{"spec/A/request", fmt.Sprintf(`{"n":%d}`, qos)}, got)
	}

	require.NoError(t, b.Publish("spec/A/response", 1, []byte("pong")))
	require.Equal(t, brokerTestMessage{"spec/A/response", "pong"}, brokerTestRecv(t, a.msgs, "response"))

	a.Disconnect(100)
	d := brokerTestRecv(t, ev.discC, "disconnected")
	require.Same(t, c, d.client)
	require.False(t, d.sessionKept)
}

func TestEmbeddedBrokerRefusedConnect(t *testing.T) {
	ev := brokerTestNewEvents()
	ev.refuse = func(info ConnectInfo) error {
		if info.Username != "good" {
			return errors.New("bad credentials")
		}
		return nil
	}
	b := brokerTestEmbedded(t, BrokerConfig{}, ev)

	_, err := brokerTestConnect(t, brokerTestURL(b), "A", func(o *paho.ClientOptions) { o.SetUsername("bad") })
	require.ErrorIs(t, err, packets.ErrorRefusedNotAuthorised)
	brokerTestNothing(t, ev.connC, "connected event")

	brokerTestMustConnect(t, brokerTestURL(b), "B", func(o *paho.ClientOptions) { o.SetUsername("good") })
	require.Equal(t, "B", brokerTestRecv(t, ev.connC, "connected").ID)
}

func TestEmbeddedBrokerBlocksImpersonation(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, BrokerConfig{}, ev)
	requests := brokerTestCallback(t, b, "spec/+/request")
	url := brokerTestURL(b)

	a := brokerTestMustConnect(t, url, "A")
	cA := brokerTestRecv(t, ev.connC, "connected A")

	// QoS 0: Mochi drops the forged publish silently. A's own request, sent
	// after it on the same connection, arrives; the forged one never does.
	require.NoError(t, brokerTestDone(t, a.Publish("spec/B/request", 0, false, "forged")))
	require.NoError(t, brokerTestDone(t, a.Publish("spec/A/response", 0, false, "forged response")))
	require.NoError(t, brokerTestDone(t, a.Publish("spec/A/request", 0, false, "own")))
	require.Equal(t, brokerTestMessage{"spec/A/request", "own"}, brokerTestRecv(t, requests, "A's own request"))
	brokerTestNothing(t, requests, "forged request")

	// QoS 1: Mochi disconnects an MQTT 3.1.1 client that publishes where it
	// may not. The forged message is processed (and refused) before the
	// disconnect is reported.
	a.Publish("spec/B/request", 1, false, "forged qos1")
	d := brokerTestRecv(t, ev.discC, "A disconnected")
	require.Same(t, cA, d.client)
	brokerTestRecv(t, a.lost, "A's connection lost")
	brokerTestNothing(t, requests, "forged QoS 1 request")

	// B's own request still arrives.
	bc := brokerTestMustConnect(t, url, "B")
	require.NoError(t, brokerTestDone(t, bc.Publish("spec/B/request", 1, false, "real")))
	require.Equal(t, brokerTestMessage{"spec/B/request", "real"}, brokerTestRecv(t, requests, "B's request"))
	brokerTestNothing(t, requests, "forged request")
}

// brokerTestAllowHook is a user hook that allows every topic.
type brokerTestAllowHook struct{ mqtt.HookBase }

func (h *brokerTestAllowHook) ID() string { return "allow-topics" }

func (h *brokerTestAllowHook) Provides(b byte) bool { return b == mqtt.OnACLCheck }

func (h *brokerTestAllowHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

func TestEmbeddedBrokerDropsForgedRequestWhenACLIsOverridden(t *testing.T) {
	// A user hook that allows everything overrides the broker's ACL (Mochi
	// ORs hooks); the request subscription still checks the sender.
	ev := brokerTestNewEvents()
	cfg := BrokerConfig{Host: "127.0.0.1", Port: -1}
	b := NewEmbeddedBroker(cfg, NewClientManager(context.Background()))
	b.setEvents(ev, brokerTestPrefix)
	require.NoError(t, b.Server().AddHook(new(brokerTestAllowHook), nil))
	require.NoError(t, b.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, b.Stop(context.Background())) })
	requests := brokerTestCallback(t, b, "spec/+/request")

	a := brokerTestMustConnect(t, brokerTestURL(b), "A")
	require.NoError(t, brokerTestDone(t, a.Publish("spec/B/request", 1, false, "forged")))
	require.NoError(t, brokerTestDone(t, a.Publish("spec/A/request", 1, false, "own")))
	require.Equal(t, brokerTestMessage{"spec/A/request", "own"}, brokerTestRecv(t, requests, "A's own request"))
	brokerTestNothing(t, requests, "forged request")
}

func TestEmbeddedBrokerBlocksEavesdropping(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, BrokerConfig{}, ev)
	url := brokerTestURL(b)

	victim := brokerTestMustConnect(t, url, "B")
	require.Equal(t, byte(1), brokerTestSubscribe(t, victim, "spec/B/response", 1))

	spy := brokerTestMustConnect(t, url, "A")
	for _, filter := range []string{
		"spec/B/response", "spec/+/response", "spec/#", "#", "+/B/response", "spec/+/+",
		"$share/g/spec/B/response", "$share/g/#",
	} {
		require.Equal(t, byte(0x80), brokerTestSubscribe(t, spy, filter, 1), "SUBACK for %s", filter)
	}
	require.Equal(t, byte(1), brokerTestSubscribe(t, spy, "spec/A/#", 1))
	require.Equal(t, byte(1), brokerTestSubscribe(t, spy, "sensors/#", 1))

	require.NoError(t, b.Publish("spec/B/response", 1, []byte("secret")))
	require.Equal(t, brokerTestMessage{"spec/B/response", "secret"}, brokerTestRecv(t, victim.msgs, "B's response"))
	// The marker is published after the secret: had the spy received the
	// secret, it would come first on its connection.
	require.NoError(t, b.Publish("spec/A/response", 1, []byte("marker")))
	require.Equal(t, brokerTestMessage{"spec/A/response", "marker"}, brokerTestRecv(t, spy.msgs, "spy's marker"))
	brokerTestNothing(t, spy.msgs, "message for the spy")
}

func TestEmbeddedBrokerRefusesReservedIDAndForgedWill(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, BrokerConfig{}, ev)
	url := brokerTestURL(b)

	_, err := brokerTestConnect(t, url, mqtt.InlineClientId)
	require.ErrorIs(t, err, packets.ErrorRefusedNotAuthorised)

	_, err = brokerTestConnect(t, url, "A", func(o *paho.ClientOptions) { o.SetWill("spec/B/response", "forged", 1, false) })
	require.ErrorIs(t, err, packets.ErrorRefusedNotAuthorised)
	_, err = brokerTestConnect(t, url, "A", func(o *paho.ClientOptions) { o.SetWill("spec/A/request", "x", 1, true) })
	require.ErrorIs(t, err, packets.ErrorRefusedNotAuthorised, "retained will under the prefix")
	require.Empty(t, ev.connectInfos(), "refused before authenticate")

	brokerTestMustConnect(t, url, "A", func(o *paho.ClientOptions) { o.SetWill("clients/A/status", "gone", 1, true) })
}

func TestEmbeddedBrokerAssignsIDBeforeAuthenticate(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, BrokerConfig{}, ev)

	brokerTestMustConnect(t, brokerTestURL(b), "")
	c := brokerTestRecv(t, ev.connC, "connected")
	require.NotEmpty(t, c.ID)
	infos := ev.connectInfos()
	require.Len(t, infos, 1)
	require.Equal(t, c.ID, infos[0].ClientID)
	cl, ok := b.Server().Clients.Get(c.ID)
	require.True(t, ok, "Mochi knows the client under the id the handler saw")
	require.Equal(t, c.ID, cl.ID)
}

func TestEmbeddedBrokerTakeoverReportsOldClient(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, BrokerConfig{}, ev)
	url := brokerTestURL(b)

	brokerTestMustConnect(t, url, "A")
	first := brokerTestRecv(t, ev.connC, "first connection")
	second := brokerTestMustConnect(t, url, "A")
	secondClient := brokerTestRecv(t, ev.connC, "second connection")
	require.NotSame(t, first, secondClient)

	d := brokerTestRecv(t, ev.discC, "first connection ends")
	require.Same(t, first, d.client, "the old connection reports its own client")
	require.False(t, d.sessionKept, "clean session")
	brokerTestNothing(t, ev.discC, "second disconnect")

	second.Disconnect(100)
	d = brokerTestRecv(t, ev.discC, "second connection ends")
	require.Same(t, secondClient, d.client)
}

func TestEmbeddedBrokerSessionKeptForPersistentClient(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, BrokerConfig{}, ev)

	a := brokerTestMustConnect(t, brokerTestURL(b), "P", func(o *paho.ClientOptions) { o.SetCleanSession(false) })
	c := brokerTestRecv(t, ev.connC, "connected")
	require.False(t, ev.connectInfos()[0].CleanSession)
	a.Disconnect(100)
	d := brokerTestRecv(t, ev.discC, "disconnected")
	require.Same(t, c, d.client)
	require.True(t, d.sessionKept, "MQTT 3.1.1 clean session false keeps the session")
}

func TestEmbeddedBrokerMaxConnections(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, BrokerConfig{MaxConnections: 2}, ev)
	url := brokerTestURL(b)

	first := brokerTestMustConnect(t, url, "A")
	brokerTestMustConnect(t, url, "B")
	_, err := brokerTestConnect(t, url, "C")
	require.ErrorIs(t, err, packets.ErrorRefusedServerUnavailable)

	first.Disconnect(100)
	brokerTestRecv(t, ev.discC, "A disconnected")
	// Mochi decrements its count just after the disconnect event.
	deadline := time.Now().Add(brokerTestWait)
	for {
		_, err = brokerTestConnect(t, url, "C")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	require.NoError(t, err)
}

func TestEmbeddedBrokerPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := busy.Addr().(*net.TCPAddr).Port
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	b := NewEmbeddedBroker(BrokerConfig{Host: "127.0.0.1", Port: port}, NewClientManager(context.Background()))
	b.setEvents(brokerTestNewEvents(), brokerTestPrefix)
	err = b.Start(context.Background())
	require.Error(t, err)
	require.Contains(t, err.Error(), addr)
	require.False(t, b.IsConnected())
	require.Error(t, b.Publish("spec/A/response", 0, nil))

	// Start can be retried once the port is free.
	require.NoError(t, busy.Close())
	require.NoError(t, b.Start(context.Background()))
	require.Equal(t, addr, b.Addr())
	require.NoError(t, b.Stop(context.Background()))
}

func TestEmbeddedBrokerWebSocketPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	wsPort := busy.Addr().(*net.TCPAddr).Port

	b := NewEmbeddedBroker(BrokerConfig{Host: "127.0.0.1", Port: -1, EnableWebSocket: true, WSPort: wsPort},
		NewClientManager(context.Background()))
	b.setEvents(brokerTestNewEvents(), brokerTestPrefix)
	err = b.Start(context.Background())
	require.Error(t, err)
	require.Contains(t, err.Error(), fmt.Sprintf("127.0.0.1:%d", wsPort))
	require.Empty(t, b.Addr())
	require.NoError(t, b.Stop(context.Background()))
}

func TestEmbeddedBrokerStopIsIdempotentAndFreesPort(t *testing.T) {
	ev := brokerTestNewEvents()
	b := NewEmbeddedBroker(BrokerConfig{Host: "127.0.0.1", Port: -1}, NewClientManager(context.Background()))
	b.setEvents(ev, brokerTestPrefix)
	require.NoError(t, b.Stop(context.Background()), "Stop before Start")

	b = NewEmbeddedBroker(BrokerConfig{Host: "127.0.0.1", Port: -1}, NewClientManager(context.Background()))
	b.setEvents(ev, brokerTestPrefix)
	require.NoError(t, b.Start(context.Background()))
	addr := b.Addr()
	a := brokerTestMustConnect(t, "tcp://"+addr, "A")
	c := brokerTestRecv(t, ev.connC, "connected")

	require.NoError(t, b.Stop(context.Background()))
	require.NoError(t, b.Stop(context.Background()))
	require.False(t, b.IsConnected())
	require.Error(t, b.Publish("spec/A/response", 0, []byte("x")))
	require.Error(t, b.Start(context.Background()), "a stopped broker does not start again")
	brokerTestRecv(t, a.lost, "client connection lost")
	d := brokerTestRecv(t, ev.discC, "disconnected on Stop")
	require.Same(t, c, d.client)

	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	var p int
	_, err = fmt.Sscan(port, &p)
	require.NoError(t, err)
	again := brokerTestEmbedded(t, BrokerConfig{Port: p}, ev)
	require.Equal(t, addr, again.Addr())
	brokerTestMustConnect(t, brokerTestURL(again), "A")
}

func TestEmbeddedBrokerStartNeedsEvents(t *testing.T) {
	b := NewEmbeddedBroker(BrokerConfig{Host: "127.0.0.1", Port: -1}, NewClientManager(context.Background()))
	require.ErrorIs(t, b.Start(context.Background()), errEmbeddedNoHandler)
	require.Empty(t, b.Addr())
}

func TestEmbeddedBrokerWebSocket(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, BrokerConfig{EnableWebSocket: true, WSPort: -1}, ev)
	require.NotEmpty(t, b.WSAddr())
	require.NotEqual(t, b.Addr(), b.WSAddr())
	requests := brokerTestCallback(t, b, "spec/+/request")

	a := brokerTestMustConnect(t, "ws://"+b.WSAddr()+"/mqtt", "W")
	require.Equal(t, "W", brokerTestRecv(t, ev.connC, "connected").ID)
	require.Equal(t, byte(1), brokerTestSubscribe(t, a, "spec/W/response", 1))
	require.NoError(t, brokerTestDone(t, a.Publish("spec/W/request", 1, false, "over websocket")))
	require.Equal(t, brokerTestMessage{"spec/W/request", "over websocket"}, brokerTestRecv(t, requests, "request"))
	require.NoError(t, b.Publish("spec/W/response", 1, []byte("answer")))
	require.Equal(t, brokerTestMessage{"spec/W/response", "answer"}, brokerTestRecv(t, a.msgs, "response"))
}

func TestEmbeddedBrokerRetainedRequestNotReplayed(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, BrokerConfig{}, ev)
	requests := brokerTestCallback(t, b, "spec/+/request")

	a := brokerTestMustConnect(t, brokerTestURL(b), "A")
	require.NoError(t, brokerTestDone(t, a.Publish("spec/A/request", 1, true, "once")))
	require.Equal(t, brokerTestMessage{"spec/A/request", "once"}, brokerTestRecv(t, requests, "request"))

	// A new subscription gets retained messages at once, inside Subscribe.
	again := brokerTestCallback(t, b, "spec/A/#")
	brokerTestNothing(t, again, "replayed request")
}

func TestEmbeddedBrokerUnsubscribeStopsCallback(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, BrokerConfig{}, ev)
	requests := brokerTestCallback(t, b, "spec/+/request")
	markers := brokerTestCallback(t, b, "spec/A/+")
	require.NoError(t, b.Unsubscribe("spec/+/request"))
	require.NoError(t, b.Unsubscribe("spec/+/request"), "twice")

	a := brokerTestMustConnect(t, brokerTestURL(b), "A")
	require.NoError(t, brokerTestDone(t, a.Publish("spec/A/request", 1, false, "late")))
	// spec/A/+ also matches spec/A/request, so it arrives there.
	require.Equal(t, brokerTestMessage{"spec/A/request", "late"}, brokerTestRecv(t, markers, "marker"))
	brokerTestNothing(t, requests, "request after Unsubscribe")
}

func TestEmbeddedBrokerHookEvents(t *testing.T) {
	ev := brokerTestNewEvents()
	b := NewEmbeddedBroker(BrokerConfig{KeepAlive: 30 * time.Second}, NewClientManager(context.Background()))
	b.setEvents(ev, brokerTestPrefix)
	h := &embeddedHook{b: b}

	// Keep-alive: capped for MQTT 5 clients, left alone for 3.1.1.
	v5 := &mqtt.Client{ID: "v5"}
	v5.Properties.ProtocolVersion = 5
	v5.State.Keepalive = 120
	require.NoError(t, h.OnConnect(v5, mochipackets.Packet{}))
	require.Equal(t, uint16(30), v5.State.Keepalive)
	require.True(t, v5.State.ServerKeepalive)
	v5.State.Keepalive, v5.State.ServerKeepalive = 10, false
	require.NoError(t, h.OnConnect(v5, mochipackets.Packet{}))
	require.Equal(t, uint16(10), v5.State.Keepalive)
	require.False(t, v5.State.ServerKeepalive)
	v3 := &mqtt.Client{ID: "v3"}
	v3.Properties.ProtocolVersion = 4
	v3.State.Keepalive = 120
	require.NoError(t, h.OnConnect(v3, mochipackets.Packet{}))
	require.Equal(t, uint16(120), v3.State.Keepalive)

	// Expired sessions and dropped messages reach the events.
	h.OnClientExpired(&mqtt.Client{ID: "gone"})
	require.Equal(t, "gone", brokerTestRecv(t, ev.expC, "sessionExpired"))
	h.OnPublishDropped(&mqtt.Client{ID: "slow"}, mochipackets.Packet{TopicName: "spec/slow/notify/1"})
	require.Equal(t, "slow spec/slow/notify/1", brokerTestRecv(t, ev.dropC, "publishDropped"))

	// The inline client passes every check.
	inline := &mqtt.Client{ID: mqtt.InlineClientId}
	inline.Net.Inline = true
	require.True(t, h.OnACLCheck(inline, "spec/B/request", true))
	require.True(t, h.OnACLCheck(inline, "#", false))
	require.True(t, h.OnConnectAuthenticate(inline, mochipackets.Packet{}))
	require.Empty(t, ev.connectInfos())
}

func TestEmbeddedBrokerStopClosesSilentConnections(t *testing.T) {
	ev := brokerTestNewEvents()
	b := NewEmbeddedBroker(BrokerConfig{Host: "127.0.0.1", Port: -1}, NewClientManager(context.Background()))
	b.setEvents(ev, brokerTestPrefix)
	require.NoError(t, b.Start(context.Background()))

	// A connection that never sends CONNECT must not hold up Stop.
	silent, err := net.Dial("tcp", b.Addr())
	require.NoError(t, err)
	defer silent.Close()
	brokerTestMustConnect(t, brokerTestURL(b), "A")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.NoError(t, b.Stop(ctx))
	require.NoError(t, silent.SetReadDeadline(time.Now().Add(brokerTestWait)))
	_, err = silent.Read(make([]byte, 1))
	require.Error(t, err, "the broker closed the silent connection")
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "closed, not timed out: %v", err)
}
