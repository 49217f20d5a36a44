package mqttspec_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
	"github.com/mqttspec/mqttspec/internal/mqttwire"
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

// TestClientsThatDoNotReadTakeNoWorkers: more clients than the handler
// runs requests at once pipeline reads with big answers and never read
// them. They are held back without holding the workers, so a client that
// reads is served meanwhile.
func TestClientsThatDoNotReadTakeNoWorkers(t *testing.T) {
	const workers = 2
	srv := startServer(t, nil, mqttspec.WithLimits(mqttspec.LimitConfig{MaxConcurrency: workers}))
	for i := 0; i < 100; i++ {
		require.NoError(t, srv.db.Create(&User{Name: fmt.Sprintf("user %d with a name long enough to make pages big", i), Email: "someone@example.com"}).Error)
	}
	page := []byte(`{"id":"p","type":"request","operation":"read","schema":"public","entity":"users","options":{"limit":100}}`)
	blocked := make(chan struct{}, 2*workers)
	for i := 0; i < 2*workers; i++ {
		id := fmt.Sprint("deaf-", i)
		c := rawClient(t, srv, id)
		var pk bytes.Buffer
		require.NoError(t, mqttwire.Encode(&pk, mqtttest.PublishPacket("spec/"+id+"/request", 0, 0, false, page)))
		go func() {
			// Requests until the server stops reading them: its queue for
			// this client is full, because the client's answers wait for
			// room (its connection is full) that never comes.
			for {
				_ = c.Conn().SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
				if _, err := c.Conn().Write(pk.Bytes()); err != nil {
					blocked <- struct{}{}
					return
				}
			}
		}()
	}
	for i := 0; i < 2*workers; i++ {
		mqtttest.Recv(t, blocked, "a deaf client held back")
	}
	// More clients are held back than there are workers: a client that
	// reads is served all the same.
	reader := mqtttest.Connect(t, srv.url, "reader")
	for i := 0; i < 20; i++ {
		mqtttest.OK(t, reader.Request(mqtttest.Req("read", "users", map[string]any{"options": map[string]any{"limit": 1}})))
	}
}

// TestSubscriberThatDoesNotReadStallsNoWriter: a subscriber that stops
// reading its connection (its socket fills up) costs other clients
// nothing: writes of the entity it watches go on being answered, and
// another subscriber gets every notification; its own notifications are
// dropped, counted. The writer's answers (24 MB in all, acknowledged)
// keep flowing past MaxQueuedBytes: only what is held counts.
func TestSubscriberThatDoesNotReadStallsNoWriter(t *testing.T) {
	srv := startServer(t, nil)
	deaf := rawClient(t, srv, "deaf")
	require.Equal(t, byte(1), deaf.Subscribe("spec/deaf/notify/+", 2))
	require.NoError(t, deaf.Write(mqtttest.PublishPacket("spec/deaf/request", 1, 3, false,
		[]byte(`{"id":"s","type":"subscription","operation":"subscribe","schema":"public","entity":"users"}`))))
	answer, _ := deaf.Expect(packets.Publish)
	require.Contains(t, string(answer.Payload), "subscription_id")
	// From here on deaf reads nothing at all.

	watcher := mqtttest.Connect(t, srv.url, "watcher")
	subscribe(t, watcher)
	writer := mqtttest.Connect(t, srv.url, "writer")
	big := strings.Repeat("x", 60000)
	const n = 400 // 24 MB of notifications for deaf: far more than its socket holds
	for i := 0; i < n; i++ {
		mqtttest.OK(t, writer.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": big, "age": i}})))
		require.EqualValues(t, i, watcher.NextNote()["data"].(map[string]any)["age"])
	}
	require.NotZero(t, srv.h.Stats().DroppedNotifications, "deaf's notifications were dropped")
}

// TestConnectionThatTakesNothingIsClosed: a client without keep-alive
// that stops reading is disconnected once its connection has taken
// nothing for TimeoutConfig.ClientWrite; an idle client that reads stays.
func TestConnectionThatTakesNothingIsClosed(t *testing.T) {
	gone := make(chan string, 4)
	srv := startServer(t, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.AfterDisconnect, func(ctx *mqttspec.HookContext) error {
			gone <- ctx.Client.ID
			return nil
		})
	}, mqttspec.WithTimeouts(mqttspec.TimeoutConfig{ClientWrite: 300 * time.Millisecond}))
	for i := 0; i < 50; i++ {
		require.NoError(t, srv.db.Create(&User{Name: strings.Repeat("n", 1000)}).Error)
	}
	idle := mqtttest.Connect(t, srv.url, "idle")
	deaf := mqtttest.DialRawTCP(t, strings.TrimPrefix(srv.url, "tcp://"))
	pk := mqtttest.ConnectPacket("deaf")
	pk.Connect.Keepalive = 0
	deaf.MustConnect(pk)
	require.Equal(t, byte(1), deaf.Subscribe("spec/deaf/response", 1))
	page := []byte(`{"id":"p","type":"request","operation":"read","schema":"public","entity":"users"}`)
	go func() {
		for deaf.Write(mqtttest.PublishPacket("spec/deaf/request", 0, 0, false, page)) == nil {
		}
	}()
	require.Equal(t, "deaf", mqtttest.Recv(t, gone, "the deaf client's disconnect"))
	mqtttest.OK(t, idle.Request(map[string]any{"type": "ping"}))
	mqtttest.Nothing(t, gone, "another disconnect")
}
