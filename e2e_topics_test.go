package mqttspec_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// The embedded broker serves other MQTT traffic as a plain broker would:
// these tests check the behaviours the Eclipse Paho interoperability
// suite checks, through the wildcards that reach private topics too ('+/+'
// and '#'), while private topics stay private.

// retained publishes a retained message.
func retained(t *testing.T, c *mqtttest.Client, topic, payload string, qos byte) {
	t.Helper()
	tok := c.Client.Publish(topic, qos, true, payload)
	require.True(t, tok.WaitTimeout(mqtttest.Wait))
	require.NoError(t, tok.Error())
}

// observer connects a plain MQTT client that is subscribed to its own
// response topic before anything else, so that drain can use it.
//
// The subscription comes first because Mochi keeps the client's packet
// identifiers and its own in one table: a SUBSCRIBE whose identifier
// equals that of a delivery the client has not acknowledged yet is
// refused (mochi-mqtt/server#545).
func observer(t *testing.T, url, id string, opts ...mqtttest.Option) *mqtttest.Client {
	t.Helper()
	c := mqtttest.MustDialRaw(t, url, id, opts...)
	require.Equal(t, byte(1), c.SubscribeCode("spec/"+id+"/response", 1))
	return c
}

// drain returns the topics c (an observer) has received outside its own
// private topics. It makes a round trip through the handler first: the
// marker's answer is published after anything that was published to c
// before it.
func drain(t *testing.T, c *mqtttest.Client) []string {
	t.Helper()
	own := "spec/" + c.ID + "/"
	require.NoError(t, c.Publish(own+"request", 0, `{"id":"marker","type":"ping"}`))
	var topics []string
	for {
		m := mqtttest.Recv(t, c.Msgs, "the marker's pong")
		switch {
		case m.Topic == own+"response":
			return topics
		case !strings.HasPrefix(m.Topic, own):
			topics = append(topics, m.Topic)
		}
	}
}

func TestRetainedMessagesThroughWildcards(t *testing.T) {
	srv := startServer(t, nil)
	pub := mqtttest.MustDialRaw(t, srv.url, "publisher")
	retained(t, pub, "TopicA/B", "qos 0", 0)
	retained(t, pub, "Topic/C", "qos 1", 1)
	retained(t, pub, "TopicA/C", "qos 2", 2)
	// A private request published retained is not kept.
	require.NoError(t, pub.Client.Publish("spec/publisher/request", 1, true, `{"id":"r","type":"ping"}`).Error())

	for i, filter := range []string{"+/+", "#"} {
		sub := observer(t, srv.url, fmt.Sprint("sub-", i))
		require.Equal(t, byte(2), sub.SubscribeCode(filter, 2), "%s is granted", filter)
		got := drain(t, sub)
		require.ElementsMatch(t, []string{"TopicA/B", "Topic/C", "TopicA/C"}, got, "retained messages through %s", filter)
		sub.Disconnect(10)
	}

	// Clearing them with empty retained messages, as the suite's cleanup does.
	for _, topic := range []string{"TopicA/B", "Topic/C", "TopicA/C"} {
		retained(t, pub, topic, "", 0)
	}
	// A QoS 0 publish is done once written; a QoS 1 publish on the same
	// connection is acknowledged after the broker has processed the ones
	// before it, so the clears have taken effect once it is.
	tok := pub.Client.Publish("barrier", 1, false, "x")
	require.True(t, tok.WaitTimeout(mqtttest.Wait))
	require.NoError(t, tok.Error())
	sub := observer(t, srv.url, "after-clear")
	require.Equal(t, byte(1), sub.SubscribeCode("#", 1))
	require.Empty(t, drain(t, sub))
}

func TestOfflineQueueingThroughWildcards(t *testing.T) {
	offline := make(chan string, 4)
	srv := startServer(t, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.AfterDisconnect, func(ctx *mqttspec.HookContext) error {
			offline <- ctx.Client.ID
			return nil
		})
	})
	away := observer(t, srv.url, "away", mqtttest.Persistent)
	require.Equal(t, byte(2), away.SubscribeCode("+/+", 2))
	away.Disconnect(10)
	require.Equal(t, "away", mqtttest.Recv(t, offline, "the session going offline"))

	pub := observer(t, srv.url, "publisher")
	for qos, topic := range []string{"TopicA/B", "Topic/C", "TopicA/C"} {
		require.NoError(t, pub.Publish(topic, byte(qos), "offline"))
	}
	// The publisher's own round trip: its publishes were routed before it.
	require.Empty(t, drain(t, pub))

	// The session still holds the response subscription.
	back := mqtttest.MustDialRaw(t, srv.url, "away", mqtttest.Persistent)
	got := drain(t, back)
	require.ElementsMatch(t, []string{"Topic/C", "TopicA/C"}, got, "QoS 1 and 2 messages are kept for the offline session, QoS 0 ones are not")
}

func TestOverlappingSubscriptionsAndUnsubscribe(t *testing.T) {
	srv := startServer(t, nil)
	c := observer(t, srv.url, "overlap")
	require.Equal(t, byte(2), c.SubscribeCode("TopicA/#", 2))
	require.Equal(t, byte(1), c.SubscribeCode("TopicA/+", 1))
	require.NoError(t, c.Publish("TopicA/C", 2, "overlapping topic filters"))
	got := drain(t, c)
	require.NotEmpty(t, got)
	for _, topic := range got {
		require.Equal(t, "TopicA/C", topic)
	}

	for _, f := range []string{"TopicA/#", "TopicA/+"} {
		tok := c.Unsubscribe(f)
		require.True(t, tok.WaitTimeout(mqtttest.Wait))
		require.NoError(t, tok.Error())
	}
	require.NoError(t, c.Publish("TopicA/C", 1, "after unsubscribe"))
	require.Empty(t, drain(t, c), "nothing after unsubscribing")
}

// TestWildcardSubscribersSeeNoPrivateTopics: a client subscribed to '#'
// and '+/+/+' gets other applications' messages and its own private
// topics, never another client's answers, notifications or requests.
func TestWildcardSubscribersSeeNoPrivateTopics(t *testing.T) {
	srv := startServer(t, nil)
	spy := observer(t, srv.url, "spy")
	for _, f := range []string{"#", "+/+/+", "spec/+/notify/+"} {
		require.Equal(t, byte(1), spy.SubscribeCode(f, 1))
	}
	victim := mqtttest.Connect(t, srv.url, "victim")
	subscribe(t, victim)
	mqtttest.OK(t, victim.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "secret"}})))
	victim.NextNote()
	other := mqtttest.MustDialRaw(t, srv.url, "sensor")
	require.NoError(t, other.Publish("sensors/1/temp", 1, "21"))
	// The sensor's message is the control: it reaches the spy's '#' and
	// '+/+/+', so the spy's subscriptions work.
	for {
		m := mqtttest.Recv(t, spy.Msgs, "the sensor's reading")
		require.NotContains(t, m.Topic, "victim", "the spy received %s", m.Topic)
		if m.Topic == "sensors/1/temp" {
			break
		}
	}
	for _, topic := range drain(t, spy) {
		require.NotContains(t, topic, "victim", "the spy received %s", topic)
	}
}

// TestSysTopics: $SYS is closed unless enabled; '#' never matches $ topics.
func TestSysTopics(t *testing.T) {
	closed := startServer(t, nil)
	c := observer(t, closed.url, "curious")
	require.Equal(t, byte(0x80), c.SubscribeCode("$SYS/#", 1))
	require.Equal(t, byte(1), c.SubscribeCode("#", 1))
	require.NoError(t, c.Publish("$TopicA/B", 1, "dollar"))
	require.Empty(t, drain(t, c), "'#' matches no $ topic, $SYS included")

	open := startServer(t, nil, mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1, EnableSysTopics: true}))
	admin := mqtttest.MustDialRaw(t, open.url, "admin")
	require.Equal(t, byte(1), admin.SubscribeCode("$SYS/broker/version", 1))
	m := mqtttest.Recv(t, admin.Msgs, "the retained $SYS/broker/version")
	require.Equal(t, "$SYS/broker/version", m.Topic)
}
