package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/client"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
	"github.com/mqttspec/mqttspec/internal/testbroker"
)

// seed creates users with the statuses given, through c.
func seed(t *testing.T, c *client.Client, statuses ...string) {
	t.Helper()
	for _, s := range statuses {
		require.NoError(t, c.Create(bg(t), "public", "users", map[string]any{"name": s + " user", "status": s}, nil))
	}
}

// follow applies the view's changes to m until cond holds.
func follow(t *testing.T, v *client.View, m model, cond func(client.Change) bool) []client.Change {
	t.Helper()
	var seen []client.Change
	for {
		ch := next(t, v)
		seen = append(seen, ch)
		m.apply(t, ch)
		if cond(ch) {
			return seen
		}
	}
}

func TestLiveView(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil)
		writer := dial(t, srv, "writer")
		seed(t, writer, "active", "active", "inactive")

		reader := dial(t, srv, "reader")
		v, err := reader.Subscribe(bg(t), "public", "users", active, &mqttspec.RequestOptions{Limit: ptr(1000)})
		require.NoError(t, err)
		require.NotEmpty(t, v.ID())
		view := model{}
		view.load(t, v.Records())
		require.Len(t, view, 2)
		require.Equal(t, client.Page{Total: 2, Count: 2, Limit: 1000}, v.Page())

		var created User
		require.NoError(t, writer.Create(bg(t), "public", "users", map[string]any{"name": "Cy", "status": "active"}, &created))
		seed(t, writer, "inactive") // outside the view: no change
		require.NoError(t, writer.Update(bg(t), "public", "users", created.ID, map[string]any{"name": "Cyd"}, nil))
		require.NoError(t, writer.Update(bg(t), "public", "users", 1, map[string]any{"status": "inactive"}, nil))
		require.NoError(t, writer.Delete(bg(t), "public", "users", 2, nil))

		var ops []string
		var seqs []uint64
		follow(t, v, view, func(ch client.Change) bool {
			ops = append(ops, string(ch.Operation))
			seqs = append(seqs, ch.Seq)
			return len(ops) == 4
		})
		require.Equal(t, []string{"create", "update", "update", "delete"}, ops)
		require.Equal(t, []uint64{1, 2, 3, 4}, seqs)
		require.Equal(t, fresh(t, reader), view, "the view equals a fresh read")
		require.Equal(t, "Cyd", view[created.ID].Name)

		require.NoError(t, v.Close(bg(t)))
		_, open := <-v.Changes()
		require.False(t, open, "Close ends the changes")
		require.Zero(t, srv.h.Subscriptions().Count(), "Close unsubscribes")
	})
}

// flaky is a network whose connections a test can cut (the client sees
// them end as a peer's reset would look to it: its reads end), and which
// refuses new ones while it is down.
type flaky struct {
	mu    sync.Mutex
	down  bool
	links []io.Closer
}

func (f *flaky) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("network down (test)")}
	}
	remote, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	near, far := net.Pipe()
	go func() { _, _ = io.Copy(remote, far); _ = remote.Close() }()
	go func() { _, _ = io.Copy(far, remote); _ = far.Close() }()
	f.links = append(f.links, far, remote)
	return near, nil
}

// cut ends every connection and, with down, refuses new ones.
func (f *flaky) cut(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	for _, c := range f.links {
		_ = c.Close()
	}
	f.links = nil
}

func (f *flaky) up() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = false
}

// disconnects signals each client disconnect the handler sees.
func disconnects(h *mqttspec.Handler) chan string {
	gone := make(chan string, 100)
	h.Hooks().Register(mqttspec.AfterDisconnect, func(ctx *mqttspec.HookContext) error {
		gone <- ctx.Client.ID
		return nil
	})
	return gone
}

// TestReconnectResumesWithoutLoss: a reader whose connection drops gets,
// after it reconnects, every change made while it was away, in order and
// without a fresh snapshot (the broker kept its session); a write it sent
// while it was down is applied once.
func TestReconnectResumesWithoutLoss(t *testing.T) {
	var gone chan string
	srv := startEmbedded(t, func(h *mqttspec.Handler) { gone = disconnects(h) })
	writer := dial(t, srv, "writer")
	net := &flaky{}
	reader := dial(t, srv, "reader", client.WithDialer(net.dial), client.WithMaxReconnectInterval(200*time.Millisecond))
	v, err := reader.Subscribe(bg(t), "public", "users", active, nil)
	require.NoError(t, err)

	net.cut(true)
	require.Equal(t, "reader", mqtttest.Recv(t, gone, "the reader's disconnect"))
	seed(t, writer, "active", "active", "active")
	queued := make(chan error, 1)
	go func() {
		queued <- reader.Create(bg(t), "public", "users", map[string]any{"name": "sent while down", "status": "active"}, nil)
	}()
	net.up()
	require.NoError(t, <-queued)

	view := model{}
	changes := follow(t, v, view, func(ch client.Change) bool { return ch.Seq == 4 })
	for i, ch := range changes {
		require.NotEqual(t, client.OperationSnapshot, ch.Operation)
		require.EqualValues(t, i+1, ch.Seq)
	}
	require.Equal(t, fresh(t, reader), view)
	require.Len(t, view, 4, "the write sent while down was applied once")
	require.GreaterOrEqual(t, client.Connects(reader), int64(2))
}

// TestGapTakesFreshSnapshot: notifications the broker dropped while the
// reader was away (its queue holds 4) leave a gap in seq; the view takes
// a fresh snapshot instead of going on with a wrong copy.
func TestGapTakesFreshSnapshot(t *testing.T) {
	var gone chan string
	srv := startEmbedded(t, func(h *mqttspec.Handler) { gone = disconnects(h) },
		mqttspec.WithLimits(mqttspec.LimitConfig{MaxQueuedMessages: 4}))
	writer := dial(t, srv, "writer")
	net := &flaky{}
	reader := dial(t, srv, "reader", client.WithDialer(net.dial), client.WithMaxReconnectInterval(200*time.Millisecond),
		client.WithGapWait(100*time.Millisecond))
	v, err := reader.Subscribe(bg(t), "public", "users", active, &mqttspec.RequestOptions{Limit: ptr(1000)})
	require.NoError(t, err)

	net.cut(true)
	require.Equal(t, "reader", mqtttest.Recv(t, gone, "the reader's disconnect"))
	for i := 0; i < 12; i++ {
		seed(t, writer, "active")
	}
	require.Eventually(t, func() bool { return srv.h.Stats().DroppedNotifications > 0 }, wait, 10*time.Millisecond, "the broker dropped some: %+v", srv.h.Stats())
	net.up()
	// Back, the reader acknowledges the queued notifications; until then
	// the server may answer it "overloaded", which the client retries.
	require.NoError(t, reader.Ping(bg(t)))
	seed(t, writer, "active") // a notification after the gap, if the broker kept the first ones

	view := model{}
	var snapshot client.Change
	follow(t, v, view, func(ch client.Change) bool {
		if ch.Operation == client.OperationSnapshot {
			snapshot = ch
		}
		return snapshot.Operation != "" && len(view) == 13
	})
	require.NotEmpty(t, snapshot.Reason)
	require.Equal(t, fresh(t, reader), view)
}

// TestReaderBehindTakesFreshSnapshot: a reader that does not take its
// changes holds at most the view's buffer; when it reads again it gets a
// snapshot, then the changes after it. Control: TestLiveView's reader,
// which keeps up, gets every change.
func TestReaderBehindTakesFreshSnapshot(t *testing.T) {
	srv := startEmbedded(t, nil)
	writer := dial(t, srv, "writer")
	reader := dial(t, srv, "reader", client.WithViewBuffer(3))
	v, err := reader.Subscribe(bg(t), "public", "users", active, &mqttspec.RequestOptions{Limit: ptr(1000)})
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		seed(t, writer, "active")
	}
	require.NoError(t, reader.Ping(bg(t))) // the notifications were routed before this answer
	view := model{}
	var ops []string
	follow(t, v, view, func(ch client.Change) bool {
		ops = append(ops, string(ch.Operation))
		return len(view) == 10
	})
	require.Contains(t, ops, string(client.OperationSnapshot))
	require.LessOrEqual(t, len(ops), 4, "at most the buffer, then the snapshot")
	require.Equal(t, fresh(t, reader), view)
}

// TestSessionLostTakesFreshSnapshot: the external broker restarts and
// forgets every session: the reader's view subscribes again with a
// snapshot and follows the new subscription.
func TestSessionLostTakesFreshSnapshot(t *testing.T) {
	mq := testbroker.NewMosquitto(t, "")
	srv := startExternalOn(t, mq.URL, nil)
	writer := dial(t, srv, "writer", client.WithMaxReconnectInterval(200*time.Millisecond))
	reader := dial(t, srv, "reader", client.WithMaxReconnectInterval(200*time.Millisecond))
	seed(t, writer, "active")
	v, err := reader.Subscribe(bg(t), "public", "users", active, nil)
	require.NoError(t, err)
	first := v.ID()

	mq.Stop()
	mq.Start()
	view := model{}
	view.load(t, v.Records())
	follow(t, v, view, func(ch client.Change) bool { return ch.Operation == client.OperationSnapshot })
	require.NotEqual(t, first, v.ID(), "a new subscription")
	// The handler is back once it has reconnected and subscribed again (its
	// backoff): each ping gives up after a second, and the next one goes.
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return writer.Ping(ctx) == nil
	}, 2*wait, 50*time.Millisecond)
	seed(t, writer, "active")
	follow(t, v, view, func(ch client.Change) bool { return ch.Operation == mqttspec.OperationCreate })
	require.Equal(t, fresh(t, reader), view)
}

// TestStraySubscriptionEnded: a subscription left from an earlier run of
// the client (the broker kept the session, so its notifications still
// come) is unsubscribed once it shows up, while the client's own view goes
// on. Control: the view's own subscription stays.
func TestStraySubscriptionEnded(t *testing.T) {
	srv := startEmbedded(t, nil)
	writer := dial(t, srv, "writer")

	// The earlier run: subscribed, then gone without unsubscribing.
	earlier := mqtttest.Connect(t, srv.url, "device", mqtttest.Persistent)
	mqtttest.OK(t, earlier.Request(map[string]any{"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users"}))
	earlier.Disconnect(50)

	c := dial(t, srv, "device")
	v, err := c.Subscribe(bg(t), "public", "users", active, nil)
	require.NoError(t, err)
	require.Equal(t, 2, srv.h.Subscriptions().Count())

	seed(t, writer, "active")
	require.Equal(t, mqttspec.OperationCreate, next(t, v).Operation, "the view is notified")
	require.Eventually(t, func() bool { return srv.h.Subscriptions().Count() == 1 }, wait, 10*time.Millisecond,
		"the stray subscription was ended")
	_, ok := srv.h.Subscriptions().GetSubscription(v.ID())
	require.True(t, ok, "the view's own subscription stays")
}

// TestDialResumesASessionWithQueuedMessages: a device comes back under its
// client id while the broker holds queued notifications for it; Mochi
// resends them right after the CONNACK with packet ids that the client's
// SUBSCRIBE may reuse, which Mochi refuses (0x91). Dial subscribes again
// and succeeds, and the client works.
func TestDialResumesASessionWithQueuedMessages(t *testing.T) {
	var gone chan string
	srv := startEmbedded(t, func(h *mqttspec.Handler) { gone = disconnects(h) })
	writer := dial(t, srv, "writer")
	for round := 0; round < 5; round++ {
		id := fmt.Sprint("device-", round)
		earlier := mqtttest.Connect(t, srv.url, id, mqtttest.Persistent)
		mqtttest.OK(t, earlier.Request(map[string]any{"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users"}))
		earlier.Disconnect(50)
		require.Equal(t, id, mqtttest.Recv(t, gone, "the earlier run's disconnect"))
		seed(t, writer, "active", "active", "active", "active", "active", "active")

		c := dial(t, srv, id)
		require.NoError(t, c.Ping(bg(t)))
		require.NoError(t, c.Close())
		require.Equal(t, id, mqtttest.Recv(t, gone, "the client's disconnect"))
	}
}
