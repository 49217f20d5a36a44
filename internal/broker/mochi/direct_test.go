package mochi

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/internal/mqtttest"
	"github.com/mqttspec/mqttspec/internal/mqttwire"
)

// directTestSubscribe subscribes r to filters at their QoS and checks that
// the SUBACK grants them.
func directTestSubscribe(t *testing.T, r *mqtttest.Raw, filters map[string]byte) {
	t.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1}
	for f, qos := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: qos})
	}
	require.NoError(t, r.Write(pk))
	ack, _ := r.Expect(packets.Suback)
	for i, f := range pk.Filters {
		require.Equal(t, f.Qos, ack.ReasonCodes[i], "SUBACK for %s", f.Filter)
	}
}

// directTestClient connects a raw MQTT 3.1.1 client with id (clean or
// persistent session) to b.
func directTestClient(t *testing.T, b *Broker, id string, clean bool) *mqtttest.Raw {
	t.Helper()
	r := mqtttest.DialRawTCP(t, b.Addr())
	pk := mqtttest.ConnectPacket(id)
	pk.Connect.Clean = clean
	r.MustConnect(pk)
	return r
}

// directTestRead reads the next PUBLISH, failing on any other packet.
func directTestRead(t *testing.T, r *mqtttest.Raw) packets.Packet {
	t.Helper()
	pk, err := r.Read()
	require.NoError(t, err, "reading a PUBLISH")
	require.Equal(t, packets.Publish, pk.FixedHeader.Type)
	return pk
}

// TestDirectWriteFollowsTheClientsSubscriptions: a message to a client's
// own topic, written to it without Mochi's routing, is delivered as Mochi
// would deliver it: not at all without a matching subscription, at the
// lower of the message's and the subscription's QoS, once for overlapping
// subscriptions (at the highest QoS), through a shared subscription. Each
// case ends with a marker message; the packets before it are all that was
// delivered.
func TestDirectWriteFollowsTheClientsSubscriptions(t *testing.T) {
	type delivery struct {
		topic, payload string
		qos            byte
	}
	for _, tc := range []struct {
		name    string
		filters map[string]byte
		publish []delivery // the last one is the marker
		want    []delivery
	}{
		{
			name:    "no matching subscription",
			filters: map[string]byte{"spec/A/response": 1},
			publish: []delivery{{"spec/A/notify/s1", "not subscribed", 1}, {"spec/A/response", "marker", 1}},
			want:    []delivery{{"spec/A/response", "marker", 1}},
		},
		{
			name:    "subscription at QoS 0",
			filters: map[string]byte{"spec/A/response": 0, "spec/A/notify/+": 1},
			publish: []delivery{{"spec/A/response", "answer", 1}, {"spec/A/notify/s1", "marker", 1}},
			want:    []delivery{{"spec/A/response", "answer", 0}, {"spec/A/notify/s1", "marker", 1}},
		},
		{
			name:    "QoS 0 messages",
			filters: map[string]byte{"spec/A/response": 1},
			publish: []delivery{{"spec/A/response", "answer", 0}, {"spec/A/response", "marker", 0}},
			want:    []delivery{{"spec/A/response", "answer", 0}, {"spec/A/response", "marker", 0}},
		},
		{
			name:    "overlapping subscriptions",
			filters: map[string]byte{"spec/A/#": 1, "spec/A/response": 0},
			publish: []delivery{{"spec/A/response", "answer", 1}, {"spec/A/notify/s1", "marker", 1}},
			want:    []delivery{{"spec/A/response", "answer", 1}, {"spec/A/notify/s1", "marker", 1}},
		},
		{
			name:    "shared subscription",
			filters: map[string]byte{"$share/g/spec/A/response": 1},
			publish: []delivery{{"spec/A/response", "answer", 1}, {"spec/A/response", "marker", 1}},
			want:    []delivery{{"spec/A/response", "answer", 1}, {"spec/A/response", "marker", 1}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := brokerTestEmbedded(t, Config{}, brokerTestNewEvents())
			r := directTestClient(t, b, "A", true)
			directTestSubscribe(t, r, tc.filters)
			before := b.written.Load()
			for _, d := range tc.publish {
				require.NoError(t, b.Publish(d.topic, d.qos, []byte(d.payload)))
			}
			var got []delivery
			ids := map[uint16]bool{}
			for len(got) == 0 || got[len(got)-1].payload != "marker" {
				pk := directTestRead(t, r)
				got = append(got, delivery{pk.TopicName, string(pk.Payload), pk.FixedHeader.Qos})
				if pk.FixedHeader.Qos > 0 {
					require.NotZero(t, pk.PacketID, "a QoS 1 delivery has a packet id")
					require.False(t, ids[pk.PacketID], "packet id %d used twice", pk.PacketID)
					ids[pk.PacketID] = true
					require.NoError(t, r.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}))
				}
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, int64(len(tc.want)), b.written.Load()-before, "written directly")
		})
	}
}

// TestDirectWriteFollowsUnsubscribe: once the client unsubscribes from its
// notify topics, a notification is no longer written to it; before, it is.
func TestDirectWriteFollowsUnsubscribe(t *testing.T) {
	b := brokerTestEmbedded(t, Config{}, brokerTestNewEvents())
	r := directTestClient(t, b, "U", true)
	directTestSubscribe(t, r, map[string]byte{"spec/U/response": 1, "spec/U/notify/+": 1})
	require.NoError(t, b.Publish("spec/U/notify/s1", 1, []byte("subscribed")))
	require.Equal(t, "subscribed", string(directTestRead(t, r).Payload))

	require.NoError(t, r.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Unsubscribe, Qos: 1}, PacketID: 2,
		Filters: packets.Subscriptions{{Filter: "spec/U/notify/+"}}}))
	r.Expect(packets.Unsuback)
	require.NoError(t, b.Publish("spec/U/notify/s1", 1, []byte("unsubscribed")))
	require.NoError(t, b.Publish("spec/U/response", 1, []byte("marker")))
	require.Equal(t, "marker", string(directTestRead(t, r).Payload), "the notification after UNSUBSCRIBE")
}

// TestDirectWriteKeepsOrderBehindMochisQueue: messages published through
// Mochi itself (as a program may, with Server) wait in its write queue; a
// message the broker publishes after them goes out after them, not past
// them.
func TestDirectWriteKeepsOrderBehindMochisQueue(t *testing.T) {
	b := brokerTestEmbedded(t, Config{}, brokerTestNewEvents())
	for round := range 20 {
		id := fmt.Sprint("ordered-", round)
		r := directTestClient(t, b, id, true)
		directTestSubscribe(t, r, map[string]byte{"spec/" + id + "/response": 1, "spec/" + id + "/notify/+": 1})
		const queued = 100
		for i := range queued {
			require.NoError(t, b.server.Publish("spec/"+id+"/response", fmt.Appendf(nil, "q0-%d", i), false, 0))
		}
		require.NoError(t, b.Publish("spec/"+id+"/notify/s1", 1, []byte("last")))
		require.NoError(t, b.Publish("spec/"+id+"/response", 0, []byte("last at QoS 0")))
		for i := range queued {
			require.Equal(t, fmt.Sprint("q0-", i), string(directTestRead(t, r).Payload), "round %d", round)
		}
		require.Equal(t, "last", string(directTestRead(t, r).Payload))
		require.Equal(t, "last at QoS 0", string(directTestRead(t, r).Payload))
		r.Reset()
	}
}

// TestDirectWriteHeldForAResumedSession: a QoS 1 message written directly
// and not acknowledged is held in the session and sent again, marked as a
// duplicate, when the client resumes it; the one it acknowledged is not.
func TestDirectWriteHeldForAResumedSession(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, Config{}, ev)
	r := directTestClient(t, b, "P", false)
	mqtttest.Recv(t, ev.connC, "the connection")
	directTestSubscribe(t, r, map[string]byte{"spec/P/notify/+": 1})
	before := b.written.Load()

	require.NoError(t, b.Publish("spec/P/notify/s1", 1, []byte("acknowledged")))
	pk := directTestRead(t, r)
	require.Equal(t, "acknowledged", string(pk.Payload))
	require.NoError(t, r.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}))
	require.NoError(t, b.Publish("spec/P/notify/s1", 1, []byte("unacknowledged")))
	pk = directTestRead(t, r)
	require.Equal(t, "unacknowledged", string(pk.Payload))
	require.False(t, pk.FixedHeader.Dup)
	require.Equal(t, int64(2), b.written.Load()-before, "both written directly")
	r.Reset()
	require.True(t, mqtttest.Recv(t, ev.discC, "the disconnect").sessionKept)

	back := directTestClient(t, b, "P", false)
	again := directTestRead(t, back)
	require.Equal(t, "unacknowledged", string(again.Payload))
	require.True(t, again.FixedHeader.Dup, "a resent message is marked")
	require.Equal(t, pk.PacketID, again.PacketID)
	require.NoError(t, back.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: again.PacketID}))
	require.NoError(t, b.Publish("spec/P/notify/s1", 1, []byte("marker")))
	require.Equal(t, "marker", string(directTestRead(t, back).Payload), "nothing else was held")
}

// TestDirectWriteRespectsTheSessionLimits: a connected client that
// acknowledges nothing is written MaxQueuedMessages messages; the rest are
// dropped and reported. Control: once it acknowledges one, the next
// message reaches it.
func TestDirectWriteRespectsTheSessionLimits(t *testing.T) {
	ev := brokerTestNewEvents()
	b := brokerTestEmbedded(t, Config{MaxQueuedMessages: 4, MaxQueuedBytes: 1 << 20}, ev)
	r := directTestClient(t, b, "slow", true)
	directTestSubscribe(t, r, map[string]byte{"spec/slow/notify/+": 1})
	for i := range 10 {
		require.NoError(t, b.Publish("spec/slow/notify/s1", 1, fmt.Appendf(nil, "n%d", i)))
	}
	var held []packets.Packet
	for i := range 4 {
		pk := directTestRead(t, r)
		require.Equal(t, fmt.Sprint("n", i), string(pk.Payload))
		held = append(held, pk)
	}
	for range 6 {
		require.Equal(t, "slow spec/slow/notify/s1", mqtttest.Recv(t, ev.dropC, "a drop"))
	}
	mqtttest.Nothing(t, ev.dropC, "a seventh drop")

	require.NoError(t, r.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: held[0].PacketID}))
	mqtttest.Eventually(t, func() bool {
		cl, ok := b.server.Clients.Get("slow")
		return ok && cl.State.Inflight.Len() == 3
	}, "the acknowledgement")
	require.NoError(t, b.Publish("spec/slow/notify/s1", 1, []byte("after the ack")))
	require.Equal(t, "after the ack", string(directTestRead(t, r).Payload))
}

// TestDirectWriteLeavesMQTT5ToMochi: an MQTT 5 client's messages go
// through Mochi (which applies topic aliases, receive maximum and
// subscription identifiers), and still reach it.
func TestDirectWriteLeavesMQTT5ToMochi(t *testing.T) {
	b := brokerTestEmbedded(t, Config{}, brokerTestNewEvents())
	nc, err := net.DialTimeout("tcp", b.Addr(), mqtttest.Wait)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(mqtttest.Wait))
	in := bufio.NewReader(nc)
	send := func(pk packets.Packet) {
		var buf bytes.Buffer
		require.NoError(t, mqttwire.EncodeVersion(&buf, pk, 5))
		_, err := nc.Write(buf.Bytes())
		require.NoError(t, err)
	}
	read := func(typ byte) packets.Packet {
		pk, err := mqttwire.ReadVersion(in, 5)
		require.NoError(t, err)
		require.Equal(t, typ, pk.FixedHeader.Type)
		return pk
	}
	send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{ClientIdentifier: "five", Clean: true, Keepalive: 30}})
	require.Zero(t, read(packets.Connack).ReasonCode)
	send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: "spec/five/response", Qos: 1}}})
	require.Equal(t, []byte{1}, read(packets.Suback).ReasonCodes)

	before := b.written.Load()
	require.NoError(t, b.Publish("spec/five/response", 1, []byte("answer")))
	pk := read(packets.Publish)
	require.Equal(t, "answer", string(pk.Payload))
	require.Equal(t, byte(1), pk.FixedHeader.Qos)
	require.Equal(t, before, b.written.Load(), "handed to Mochi, not written directly")
}
