package mochi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

	"github.com/mqttspec/mqttspec/internal/broker"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// brokerTestPrefix is the topic prefix of the broker tests.
const brokerTestPrefix = "spec"

// brokerTestSession is the Session brokerTestEvents gives a connection.
type brokerTestSession struct{ ID string }

// brokerTestDisconnect is one Disconnected call of brokerTestEvents.
type brokerTestDisconnect struct {
	client      *brokerTestSession
	cause       error
	sessionKept bool
}

// brokerTestEvents is a fake broker.Events that records what the broker
// reports.
type brokerTestEvents struct {
	refuse func(broker.ConnectInfo) error // nil accepts every CONNECT
	fresh  func(broker.ConnectInfo) bool  // nil resumes every session

	mu    sync.Mutex
	infos []broker.ConnectInfo

	connC chan *brokerTestSession
	discC chan brokerTestDisconnect
	expC  chan string
	dropC chan string
}

func brokerTestNewEvents() *brokerTestEvents {
	return &brokerTestEvents{
		connC: make(chan *brokerTestSession, 100),
		discC: make(chan brokerTestDisconnect, 100),
		expC:  make(chan string, 100),
		dropC: make(chan string, 100),
	}
}

func (e *brokerTestEvents) Authenticate(info broker.ConnectInfo) (broker.Admission, error) {
	e.mu.Lock()
	e.infos = append(e.infos, info)
	e.mu.Unlock()
	if e.refuse != nil {
		if err := e.refuse(info); err != nil {
			return broker.Admission{}, err
		}
	}
	fresh := e.fresh != nil && e.fresh(info)
	return broker.Admission{Session: &brokerTestSession{ID: info.ClientID}, Fresh: fresh}, nil
}

func (e *brokerTestEvents) Connected(s broker.Session) error {
	e.connC <- s.(*brokerTestSession)
	return nil
}

func (e *brokerTestEvents) Disconnected(s broker.Session, cause error, sessionKept bool) {
	e.discC <- brokerTestDisconnect{client: s.(*brokerTestSession), cause: cause, sessionKept: sessionKept}
}

func (e *brokerTestEvents) SessionExpired(clientID string) { e.expC <- clientID }

func (e *brokerTestEvents) Dropped(clientID, topic, _ string) { e.dropC <- clientID + " " + topic }

func (e *brokerTestEvents) connectInfos() []broker.ConnectInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]broker.ConnectInfo(nil), e.infos...)
}

// brokerTestNew returns a broker for cfg (on a free loopback port unless
// cfg says otherwise, prefix "spec") reporting to ev.
func brokerTestNew(cfg Config, ev broker.Events) *Broker {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = -1
	}
	cfg.Prefix = brokerTestPrefix
	return New(cfg, ev, slog.New(slog.DiscardHandler))
}

// brokerTestEmbedded starts an embedded broker on a free loopback port with
// the fake events and stops it when the test ends.
func brokerTestEmbedded(t testing.TB, cfg Config, ev broker.Events) *Broker {
	t.Helper()
	b := brokerTestNew(cfg, ev)
	require.NoError(t, b.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Wait)
		defer cancel()
		require.NoError(t, b.Stop(ctx))
	})
	return b
}

// brokerTestDelivery is a message routed to a subscription, with its sender.
type brokerTestDelivery struct {
	mqtttest.Msg
	sender broker.Session
}

// brokerTestCallback subscribes a channel-backed handler to filter.
func brokerTestCallback(t testing.TB, b *Broker, filter string) chan mqtttest.Msg {
	t.Helper()
	ch := make(chan mqtttest.Msg, 1000)
	require.NoError(t, b.Subscribe(filter, 1, func(m broker.Message) bool {
		ch <- mqtttest.Msg{Topic: m.Topic, Payload: string(m.Payload)}
		return true
	}))
	return ch
}

// brokerTestSenders subscribes a handler that records senders too.
func brokerTestSenders(t testing.TB, b *Broker, filter string) chan brokerTestDelivery {
	t.Helper()
	ch := make(chan brokerTestDelivery, 1000)
	require.NoError(t, b.Subscribe(filter, 1, func(m broker.Message) bool {
		ch <- brokerTestDelivery{mqtttest.Msg{Topic: m.Topic, Payload: string(m.Payload)}, m.Sender}
		return true
	}))
	return ch
}

func brokerTestURL(b *Broker) string { return "tcp://" + b.Addr() }

func TestEmbeddedBrokerRequestReachesCallback(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, Config{}, ev)
	require.True(t, b.IsConnected())
	require.True(t, strings.HasPrefix(b.Addr(), "127.0.0.1:"), b.Addr())
	requests := brokerTestSenders(t, b, "spec/+/request")

	a := mqtttest.MustDialRaw(t, brokerTestURL(b), "A", func(o *paho.ClientOptions) {
		o.SetUsername("alice").SetPassword("secret")
	})
	c := mqtttest.Recv(t, ev.connC, "connected")
	require.Equal(t, "A", c.ID)
	infos := ev.connectInfos()
	require.Len(t, infos, 1)
	require.Equal(t, "A", infos[0].ClientID)
	require.Equal(t, "alice", infos[0].Username)
	require.Equal(t, []byte("secret"), infos[0].Password)
	require.True(t, infos[0].CleanSession)
	require.True(t, strings.HasPrefix(infos[0].RemoteAddr, "127.0.0.1:"), infos[0].RemoteAddr)

	require.Equal(t, byte(1), a.SubscribeCode("spec/A/response", 1))
	for qos := byte(0); qos <= 1; qos++ {
		require.NoError(t, a.Publish("spec/A/request", qos, fmt.Sprintf(`{"n":%d}`, qos)))
		got := mqtttest.Recv(t, requests, "request")
		require.Equal(t, mqtttest.Msg{Topic: "spec/A/request", Payload: fmt.Sprintf(`{"n":%d}`, qos)}, got.Msg)
		require.Same(t, c, got.sender, "the message carries its connection's session")
	}

	require.NoError(t, b.Publish("spec/A/response", 1, []byte("pong")))
	require.Equal(t, mqtttest.Msg{Topic: "spec/A/response", Payload: "pong"}, mqtttest.Recv(t, a.Msgs, "response"))

	a.Disconnect(100)
	d := mqtttest.Recv(t, ev.discC, "disconnected")
	require.Same(t, c, d.client)
	require.False(t, d.sessionKept)
}

func TestEmbeddedBrokerRefusedConnect(t *testing.T) {
	ev := brokerTestNewEvents()
	ev.refuse = func(info broker.ConnectInfo) error {
		if info.Username != "good" {
			return errors.New("bad credentials")
		}
		return nil
	}
	b := brokerTestEmbedded(t, Config{}, ev)

	_, err := mqtttest.DialRaw(t, brokerTestURL(b), "A", func(o *paho.ClientOptions) { o.SetUsername("bad") })
	require.ErrorIs(t, err, packets.ErrorRefusedNotAuthorised)
	mqtttest.Nothing(t, ev.connC, "connected event")

	mqtttest.MustDialRaw(t, brokerTestURL(b), "B", func(o *paho.ClientOptions) { o.SetUsername("good") })
	require.Equal(t, "B", mqtttest.Recv(t, ev.connC, "connected").ID)
}

func TestEmbeddedBrokerBlocksImpersonation(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, Config{}, ev)
	requests := brokerTestCallback(t, b, "spec/+/request")
	url := brokerTestURL(b)

	a := mqtttest.MustDialRaw(t, url, "A")
	cA := mqtttest.Recv(t, ev.connC, "connected A")

	// QoS 0: Mochi drops the forged publish silently. A's own request, sent
	// after it on the same connection, arrives; the forged one never does.
	require.NoError(t, a.Publish("spec/B/request", 0, "forged"))
	require.NoError(t, a.Publish("spec/A/response", 0, "forged response"))
	require.NoError(t, a.Publish("spec/A/request", 0, "own"))
	require.Equal(t, mqtttest.Msg{Topic: "spec/A/request", Payload: "own"}, mqtttest.Recv(t, requests, "A's own request"))
	mqtttest.Nothing(t, requests, "forged request")

	// QoS 1: Mochi disconnects an MQTT 3.1.1 client that publishes where it
	// may not. The forged message is processed (and refused) before the
	// disconnect is reported.
	a.Client.Publish("spec/B/request", 1, false, "forged qos1")
	d := mqtttest.Recv(t, ev.discC, "A disconnected")
	require.Same(t, cA, d.client)
	mqtttest.Recv(t, a.Lost, "A's connection lost")
	mqtttest.Nothing(t, requests, "forged QoS 1 request")

	// B's own request still arrives.
	bc := mqtttest.MustDialRaw(t, url, "B")
	require.NoError(t, bc.Publish("spec/B/request", 1, "real"))
	require.Equal(t, mqtttest.Msg{Topic: "spec/B/request", Payload: "real"}, mqtttest.Recv(t, requests, "B's request"))
	mqtttest.Nothing(t, requests, "forged request")
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
	b := brokerTestNew(Config{}, ev)
	require.NoError(t, b.Server().AddHook(new(brokerTestAllowHook), nil))
	require.NoError(t, b.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, b.Stop(context.Background())) })
	requests := brokerTestCallback(t, b, "spec/+/request")

	a := mqtttest.MustDialRaw(t, brokerTestURL(b), "A")
	require.NoError(t, a.Publish("spec/B/request", 1, "forged"))
	require.NoError(t, a.Publish("spec/A/request", 1, "own"))
	require.Equal(t, mqtttest.Msg{Topic: "spec/A/request", Payload: "own"}, mqtttest.Recv(t, requests, "A's own request"))
	mqtttest.Nothing(t, requests, "forged request")
}

func TestEmbeddedBrokerBlocksEavesdropping(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, Config{}, ev)
	url := brokerTestURL(b)

	victim := mqtttest.MustDialRaw(t, url, "B")
	require.Equal(t, byte(1), victim.SubscribeCode("spec/B/response", 1))

	// Every filter is granted; what the spy may not read is withheld.
	spy := mqtttest.MustDialRaw(t, url, "A")
	for _, filter := range []string{
		"spec/B/response", "spec/+/response", "spec/#", "#", "+/B/response", "spec/+/+",
		"$share/g/spec/B/response", "$share/g/#",
	} {
		require.Equal(t, byte(1), spy.SubscribeCode(filter, 1), "SUBACK for %s", filter)
	}
	require.Equal(t, byte(0x80), spy.SubscribeCode("$SYS/#", 1), "$SYS is closed")
	require.Equal(t, byte(1), spy.SubscribeCode("spec/A/#", 1))
	require.Equal(t, byte(1), spy.SubscribeCode("sensors/#", 1))

	require.NoError(t, b.Publish("spec/B/response", 1, []byte("secret")))
	require.Equal(t, mqtttest.Msg{Topic: "spec/B/response", Payload: "secret"}, mqtttest.Recv(t, victim.Msgs, "B's response"))
	// The marker is published after the secret: had the spy received the
	// secret, it would come first on its connection.
	require.NoError(t, b.Publish("spec/A/response", 1, []byte("marker")))
	require.Equal(t, mqtttest.Msg{Topic: "spec/A/response", Payload: "marker"}, mqtttest.Recv(t, spy.Msgs, "spy's marker"))
	mqtttest.Nothing(t, spy.Msgs, "message for the spy")
}

func TestEmbeddedBrokerRefusesReservedIDAndForgedWill(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, Config{}, ev)
	url := brokerTestURL(b)

	_, err := mqtttest.DialRaw(t, url, mqtt.InlineClientId)
	require.ErrorIs(t, err, packets.ErrorRefusedNotAuthorised)

	_, err = mqtttest.DialRaw(t, url, "A", func(o *paho.ClientOptions) { o.SetWill("spec/B/response", "forged", 1, false) })
	require.ErrorIs(t, err, packets.ErrorRefusedNotAuthorised)
	_, err = mqtttest.DialRaw(t, url, "A", func(o *paho.ClientOptions) { o.SetWill("spec/A/request", "x", 1, true) })
	require.ErrorIs(t, err, packets.ErrorRefusedNotAuthorised, "retained will under the prefix")
	require.Empty(t, ev.connectInfos(), "refused before authenticate")

	mqtttest.MustDialRaw(t, url, "A", func(o *paho.ClientOptions) { o.SetWill("clients/A/status", "gone", 1, true) })
}

func TestEmbeddedBrokerAssignsIDBeforeAuthenticate(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, Config{}, ev)

	mqtttest.MustDialRaw(t, brokerTestURL(b), "")
	c := mqtttest.Recv(t, ev.connC, "connected")
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
	b := brokerTestEmbedded(t, Config{}, ev)
	url := brokerTestURL(b)

	mqtttest.MustDialRaw(t, url, "A")
	first := mqtttest.Recv(t, ev.connC, "first connection")
	second := mqtttest.MustDialRaw(t, url, "A")
	secondClient := mqtttest.Recv(t, ev.connC, "second connection")
	require.NotSame(t, first, secondClient)

	d := mqtttest.Recv(t, ev.discC, "first connection ends")
	require.Same(t, first, d.client, "the old connection reports its own client")
	require.False(t, d.sessionKept, "clean session")
	mqtttest.Nothing(t, ev.discC, "second disconnect")

	second.Disconnect(100)
	d = mqtttest.Recv(t, ev.discC, "second connection ends")
	require.Same(t, secondClient, d.client)
}

// TestEmbeddedBrokerFreshSessionDropsOutbox: a message still waiting in a
// client id's outbox when another principal takes the id over (a fresh
// admission) is dropped with the earlier session; handed to Mochi later it
// would reach the newcomer, who subscribes under the same id. Control: the
// same principal's reconnect gets it.
func TestEmbeddedBrokerFreshSessionDropsOutbox(t *testing.T) {
	for _, tc := range []struct {
		user string
		gets bool
	}{{"intruder", false}, {"owner", true}} {
		t.Run(tc.user, func(t *testing.T) {
			ev := brokerTestNewEvents()
			ev.fresh = func(info broker.ConnectInfo) bool { return info.Username == "intruder" }
			b := brokerTestEmbedded(t, Config{}, ev)
			url := brokerTestURL(b)
			asOwner := []mqtttest.Option{mqtttest.Persistent, mqtttest.Credentials("owner", "x")}
			owner := mqtttest.MustDialRaw(t, url, "dev", asOwner...)
			owner.Subscribe("spec/dev/notify/+")
			owner.Disconnect(50)
			mqtttest.Recv(t, ev.discC, "the owner's disconnect")

			// A message taken into the outbox whose goroutine has not
			// handed it to Mochi yet.
			ob := &outbox{wake: make(chan struct{}, 1), running: true}
			ob.queue = []outMsg{{topic: "spec/dev/notify/s1", payload: []byte("queued for the owner"), qos: 1}}
			b.outboxes.Store("dev", ob)

			newcomer := mqtttest.MustDialRaw(t, url, "dev", mqtttest.Persistent, mqtttest.Credentials(tc.user, "x"))
			newcomer.Subscribe("spec/dev/notify/+")
			go b.drainOutbox("dev", ob)
			require.NoError(t, b.Publish("spec/dev/notify/s1", 1, []byte("after")))
			if tc.gets {
				require.Equal(t, "queued for the owner", mqtttest.Recv(t, newcomer.Msgs, "the queued message").Payload)
			}
			require.Equal(t, "after", mqtttest.Recv(t, newcomer.Msgs, "the later message").Payload)
		})
	}
}

// TestEmbeddedBrokerKeptSessionIsBounded: messages for a persistent
// session whose connection has ended count against MaxQueuedMessages like
// those of a connected one; beyond it they are dropped and reported.
// Control: the client that comes back gets the ones kept.
func TestEmbeddedBrokerKeptSessionIsBounded(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, Config{MaxQueuedMessages: 4, MaxQueuedBytes: 1 << 20}, ev)
	url := brokerTestURL(b)
	away := mqtttest.MustDialRaw(t, url, "away", mqtttest.Persistent)
	away.Subscribe("spec/away/notify/+")
	away.Disconnect(50)
	mqtttest.Recv(t, ev.discC, "the disconnect")

	for i := 0; i < 10; i++ {
		require.NoError(t, b.Publish("spec/away/notify/s1", 1, fmt.Appendf(nil, "n%d", i)))
	}
	for i := 0; i < 6; i++ {
		require.Equal(t, "away spec/away/notify/s1", mqtttest.Recv(t, ev.dropC, "a drop"))
	}
	mqtttest.Nothing(t, ev.dropC, "a seventh drop")

	back := mqtttest.MustDialRaw(t, url, "away", mqtttest.Persistent)
	var got []string
	for i := 0; i < 4; i++ {
		got = append(got, mqtttest.Recv(t, back.Msgs, "a kept message").Payload)
	}
	require.ElementsMatch(t, []string{"n0", "n1", "n2", "n3"}, got)
}

func TestEmbeddedBrokerSessionKeptForPersistentClient(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, Config{}, ev)

	a := mqtttest.MustDialRaw(t, brokerTestURL(b), "P", func(o *paho.ClientOptions) { o.SetCleanSession(false) })
	c := mqtttest.Recv(t, ev.connC, "connected")
	require.False(t, ev.connectInfos()[0].CleanSession)
	a.Disconnect(100)
	d := mqtttest.Recv(t, ev.discC, "disconnected")
	require.Same(t, c, d.client)
	require.True(t, d.sessionKept, "MQTT 3.1.1 clean session false keeps the session")
}

func TestEmbeddedBrokerMaxConnections(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, Config{MaxConnections: 2}, ev)
	url := brokerTestURL(b)

	first := mqtttest.MustDialRaw(t, url, "A")
	mqtttest.MustDialRaw(t, url, "B")
	_, err := mqtttest.DialRaw(t, url, "C")
	require.ErrorIs(t, err, packets.ErrorRefusedServerUnavailable)

	first.Disconnect(100)
	mqtttest.Recv(t, ev.discC, "A disconnected")
	// Mochi decrements its count just after the disconnect event.
	mqtttest.Eventually(t, func() bool {
		_, err := mqtttest.DialRaw(t, url, "C")
		return err == nil
	}, "a connection slot is free again")
}

func TestEmbeddedBrokerPortInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := busy.Addr().(*net.TCPAddr).Port
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	b := brokerTestNew(Config{Port: port}, brokerTestNewEvents())
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

	b := brokerTestNew(Config{EnableWebSocket: true, WSPort: wsPort}, brokerTestNewEvents())
	err = b.Start(context.Background())
	require.Error(t, err)
	require.Contains(t, err.Error(), fmt.Sprintf("127.0.0.1:%d", wsPort))
	require.Empty(t, b.Addr())
	require.NoError(t, b.Stop(context.Background()))
}

func TestEmbeddedBrokerStopIsIdempotentAndFreesPort(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestNew(Config{}, ev)
	require.NoError(t, b.Stop(context.Background()), "Stop before Start")

	b = brokerTestNew(Config{}, ev)
	require.NoError(t, b.Start(context.Background()))
	addr := b.Addr()
	a := mqtttest.MustDialRaw(t, "tcp://"+addr, "A")
	c := mqtttest.Recv(t, ev.connC, "connected")

	require.NoError(t, b.Stop(context.Background()))
	require.NoError(t, b.Stop(context.Background()))
	require.False(t, b.IsConnected())
	require.Error(t, b.Publish("spec/A/response", 0, []byte("x")))
	require.Error(t, b.Start(context.Background()), "a stopped broker does not start again")
	mqtttest.Recv(t, a.Lost, "client connection lost")
	d := mqtttest.Recv(t, ev.discC, "disconnected on Stop")
	require.Same(t, c, d.client)

	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	var p int
	_, err = fmt.Sscan(port, &p)
	require.NoError(t, err)
	again := brokerTestEmbedded(t, Config{Port: p}, ev)
	require.Equal(t, addr, again.Addr())
	mqtttest.MustDialRaw(t, brokerTestURL(again), "A")
}

func TestEmbeddedBrokerWebSocket(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, Config{EnableWebSocket: true, WSPort: -1}, ev)
	require.NotEmpty(t, b.WSAddr())
	require.NotEqual(t, b.Addr(), b.WSAddr())
	requests := brokerTestCallback(t, b, "spec/+/request")

	a := mqtttest.MustDialRaw(t, "ws://"+b.WSAddr()+"/mqtt", "W")
	require.Equal(t, "W", mqtttest.Recv(t, ev.connC, "connected").ID)
	require.Equal(t, byte(1), a.SubscribeCode("spec/W/response", 1))
	require.NoError(t, a.Publish("spec/W/request", 1, "over websocket"))
	require.Equal(t, mqtttest.Msg{Topic: "spec/W/request", Payload: "over websocket"}, mqtttest.Recv(t, requests, "request"))
	require.NoError(t, b.Publish("spec/W/response", 1, []byte("answer")))
	require.Equal(t, mqtttest.Msg{Topic: "spec/W/response", Payload: "answer"}, mqtttest.Recv(t, a.Msgs, "response"))
}

func TestEmbeddedBrokerRetainedRequestNotReplayed(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, Config{}, ev)
	requests := brokerTestCallback(t, b, "spec/+/request")

	a := mqtttest.MustDialRaw(t, brokerTestURL(b), "A")
	tok := a.Client.Publish("spec/A/request", 1, true, "once")
	require.True(t, tok.WaitTimeout(mqtttest.Wait))
	require.NoError(t, tok.Error())
	require.Equal(t, mqtttest.Msg{Topic: "spec/A/request", Payload: "once"}, mqtttest.Recv(t, requests, "request"))

	// A client subscribing later gets no retained request.
	late := mqtttest.MustDialRaw(t, brokerTestURL(b), "A")
	require.Equal(t, byte(1), late.SubscribeCode("spec/A/#", 1))
	require.NoError(t, b.Publish("spec/A/response", 1, []byte("marker")))
	require.Equal(t, mqtttest.Msg{Topic: "spec/A/response", Payload: "marker"}, mqtttest.Recv(t, late.Msgs, "marker"))
	mqtttest.Nothing(t, late.Msgs, "replayed request")
}

func TestEmbeddedBrokerUnsubscribeStopsCallback(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, Config{}, ev)
	requests := brokerTestCallback(t, b, "spec/+/request")
	markers := brokerTestCallback(t, b, "spec/A/+")
	require.NoError(t, b.Unsubscribe("spec/+/request"))
	require.NoError(t, b.Unsubscribe("spec/+/request"), "twice")

	a := mqtttest.MustDialRaw(t, brokerTestURL(b), "A")
	require.NoError(t, a.Publish("spec/A/request", 1, "late"))
	// spec/A/+ also matches spec/A/request, so it arrives there.
	require.Equal(t, mqtttest.Msg{Topic: "spec/A/request", Payload: "late"}, mqtttest.Recv(t, markers, "marker"))
	mqtttest.Nothing(t, requests, "request after Unsubscribe")
}

func TestEmbeddedBrokerHookEvents(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestNew(Config{KeepAlive: 30 * time.Second}, ev)
	h := &hook{b: b}

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
	require.Equal(t, "gone", mqtttest.Recv(t, ev.expC, "sessionExpired"))
	h.OnPublishDropped(&mqtt.Client{ID: "slow"}, mochipackets.Packet{TopicName: "spec/slow/notify/1"})
	require.Equal(t, "slow spec/slow/notify/1", mqtttest.Recv(t, ev.dropC, "publishDropped"))

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
	b := brokerTestNew(Config{}, ev)
	require.NoError(t, b.Start(context.Background()))

	// A connection that never sends CONNECT must not hold up Stop.
	silent, err := net.Dial("tcp", b.Addr())
	require.NoError(t, err)
	defer silent.Close()
	mqtttest.MustDialRaw(t, brokerTestURL(b), "A")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.NoError(t, b.Stop(ctx))
	require.NoError(t, silent.SetReadDeadline(time.Now().Add(mqtttest.Wait)))
	_, err = silent.Read(make([]byte, 1))
	require.Error(t, err, "the broker closed the silent connection")
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "closed, not timed out: %v", err)
}
