package mqttspec_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// rawCreate is the payload of create request i.
func rawCreate(i int) []byte {
	return fmt.Appendf(nil, `{"id":"c-%d","type":"request","operation":"create","schema":"public","entity":"users","data":{"name":"n-%d"}}`, i, i)
}

// answer is the id and outcome of an answer.
type answer struct {
	ID      string `json:"id"`
	Success bool   `json:"success"`
	Error   *struct {
		Code string `json:"code"`
	} `json:"error"`
}

func decodeAnswer(t testing.TB, payload []byte) answer {
	var a answer
	require.NoError(t, json.Unmarshal(payload, &a))
	return a
}

// answerID returns the request id of a successful answer.
func answerID(t testing.TB, payload []byte) string {
	a := decodeAnswer(t, payload)
	require.True(t, a.Success, "answer %s", payload)
	return a.ID
}

// TestSlowReaderLosesNoAnswers: a client pipelines thousands of creates
// and does not read for a while, then reads slowly. It is held back (its
// requests wait, then it is not read) and, once its acknowledgements lag
// too far behind, told "overloaded", instead of losing answers: every
// create is answered exactly once, as stored or as overloaded (not run),
// nothing is dropped, and another client is served meanwhile.
func TestSlowReaderLosesNoAnswers(t *testing.T) {
	const n = 3000
	srv := startServer(t, nil)
	c := rawClient(t, srv, "slow-reader")

	wrote := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			if err := c.Write(mqtttest.PublishPacket("spec/slow-reader/request", 1, uint16(i%65000+1), false, rawCreate(i))); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	// Not reading at all for a while: the server must hold the client back.
	other := mqtttest.Connect(t, srv.url, "bystander")
	for i := 0; i < 20; i++ {
		mqtttest.OK(t, other.Request(mqtttest.Req("read", "users", map[string]any{"options": map[string]any{"limit": 1}})))
	}
	time.Sleep(500 * time.Millisecond) // the client's own pace: it reads nothing for half a second

	answered, overloaded := map[string]bool{}, 0
	for len(answered) < n {
		pk, err := c.Read()
		require.NoError(t, err, "after %d answers (stats %+v)", len(answered), srv.h.Stats())
		if pk.FixedHeader.Type != packets.Publish {
			continue
		}
		if pk.FixedHeader.Qos == 1 {
			require.NoError(t, c.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}))
		}
		a := decodeAnswer(t, pk.Payload)
		require.False(t, answered[a.ID], "answer %s twice", a.ID)
		answered[a.ID] = true
		if !a.Success {
			require.Equal(t, "overloaded", a.Error.Code, "answer %s", pk.Payload)
			overloaded++
		}
		if len(answered)%100 == 0 {
			time.Sleep(5 * time.Millisecond) // reading slowly
		}
	}
	require.NoError(t, <-wrote)
	require.EqualValues(t, n-overloaded, countUsers(t, srv.db), "every create answered as stored is stored")
	st := srv.h.Stats()
	require.Zero(t, st.DroppedAnswers, "stats: %+v", st)
	require.EqualValues(t, overloaded, st.Overloaded)
	t.Logf("%d stored, %d answered overloaded", n-overloaded, overloaded)
}

// TestDroppedNotificationsAreCounted: a subscriber that takes its QoS 1
// notifications but never acknowledges them fills its session; from then
// on notifications to it are dropped, counted and logged, and once it
// acknowledges again it sees the gap in seq.
func TestDroppedNotificationsAreCounted(t *testing.T) {
	var logs syncBuffer
	srv := startServer(t, nil, mqttspec.WithLimits(mqttspec.LimitConfig{MaxQueuedMessages: 10}), mqttspec.WithLogger(slogTo(&logs)))
	sub := rawClient(t, srv, "hoarder")
	require.Equal(t, byte(1), sub.Subscribe("spec/hoarder/notify/+", 2))
	require.NoError(t, sub.Write(mqtttest.PublishPacket("spec/hoarder/request", 1, 1, false,
		[]byte(`{"id":"s","type":"subscription","operation":"subscribe","schema":"public","entity":"users"}`))))
	answer, _ := sub.Expect(packets.Publish)
	require.Contains(t, string(answer.Payload), "subscription_id")
	require.NoError(t, sub.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: answer.PacketID}))

	w := mqtttest.Connect(t, srv.url, "writer")
	for i := 0; i < 30; i++ {
		mqtttest.OK(t, w.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": fmt.Sprint("u", i)}})))
	}
	var held []packets.Packet
	for len(held) < 10 {
		pk, _ := sub.Expect(packets.Publish)
		held = append(held, pk) // taken, not acknowledged
	}
	mqtttest.Eventually(t, func() bool { return srv.h.Stats().DroppedNotifications == 20 }, "20 notifications dropped")
	require.Contains(t, logs.String(), "broker dropped a notification")

	for _, pk := range held {
		require.NoError(t, sub.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}))
	}
	// The broker reads a connection's packets in order: once it answers
	// the ping, it has taken the acknowledgements.
	require.NoError(t, sub.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}}))
	sub.Expect(packets.Pingresp)
	mqtttest.OK(t, w.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "after"}})))
	pk, _ := sub.Expect(packets.Publish)
	var note struct{ Seq int }
	require.NoError(t, json.Unmarshal(pk.Payload, &note))
	require.Equal(t, 31, note.Seq, "seq counts the dropped ones: the subscriber sees the gap after 10")
}

// TestShutdownAnswersEveryAcknowledgedRequest: a client pipelines creates
// while the handler shuts down. Every request the broker acknowledged is
// answered and stored; the others are left unacknowledged (the client sends
// them again) and not run.
func TestShutdownAnswersEveryAcknowledgedRequest(t *testing.T) {
	const n = 5000
	srv := startServer(t, nil)
	c := rawClient(t, srv, "pipeliner")
	go func() {
		for i := 0; i < n; i++ {
			if c.Write(mqtttest.PublishPacket("spec/pipeliner/request", 1, uint16(i+1), false, rawCreate(i))) != nil {
				return // the server has gone
			}
		}
	}()
	acked, answered := map[string]bool{}, map[string]bool{}
	var once sync.Once
	shutdown := make(chan error, 1)
	for {
		pk, err := c.Read()
		if err != nil {
			break // the server closed the connection
		}
		switch pk.FixedHeader.Type {
		case packets.Puback:
			acked[fmt.Sprint("c-", pk.PacketID-1)] = true
			if len(acked) == 500 {
				once.Do(func() { go func() { shutdown <- srv.h.Shutdown() }() })
			}
		case packets.Publish:
			answered[answerID(t, pk.Payload)] = true
			_ = c.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
		}
	}
	require.NoError(t, mqtttest.Recv(t, shutdown, "Shutdown"))
	for id := range acked {
		require.True(t, answered[id], "%s was acknowledged but not answered", id)
	}
	require.EqualValues(t, len(answered), countUsers(t, srv.db), "exactly the answered creates are stored")
	require.Less(t, len(acked), n, "the shutdown refused some requests (else the test proves little)")
	t.Logf("%d acknowledged, %d answered, %d refused (Stats %+v)", len(acked), len(answered), n-len(acked), srv.h.Stats())
}
