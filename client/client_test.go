package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libtnb/sqlite"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/client"
	"github.com/mqttspec/mqttspec/internal/testbroker"
)

// wait bounds every wait of these tests.
const wait = 10 * time.Second

// User is the model the tests serve as public.users.
type User struct {
	ID     uint   `json:"id" gorm:"primaryKey"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Status string `json:"status"`
}

// server is a started handler, its database and the URL clients use.
type server struct {
	h   *mqttspec.Handler
	db  *gorm.DB
	url string
}

// starter starts a server on one transport.
type starter func(t *testing.T, setup func(*mqttspec.Handler), opts ...mqttspec.Option) *server

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startEmbedded starts a handler with the embedded broker on a free port.
func startEmbedded(t *testing.T, setup func(*mqttspec.Handler), opts ...mqttspec.Option) *server {
	t.Helper()
	return startOn(t, mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}), setup, opts...)
}

// externalSeq makes the handlers' client ids unique.
var externalSeq atomic.Int64

// startExternalOn starts a handler on the external broker at url.
func startExternalOn(t *testing.T, url string, setup func(*mqttspec.Handler), opts ...mqttspec.Option) *server {
	t.Helper()
	cfg := mqttspec.ExternalBrokerConfig{BrokerURL: url, ConnectTimeout: wait, ReconnectDelay: 200 * time.Millisecond,
		ClientID: "mqttspec-client-test-" + string(rune('a'+externalSeq.Add(1)%26))}
	return startOn(t, mqttspec.WithExternalBroker(cfg), setup, opts...)
}

func startOn(t *testing.T, broker mqttspec.Option, setup func(*mqttspec.Handler), opts ...mqttspec.Option) *server {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "client.db") +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	require.NoError(t, db.AutoMigrate(&User{}))
	h, err := mqttspec.NewHandlerWithGORM(db, append([]mqttspec.Option{broker, mqttspec.WithLogger(quiet)}, opts...)...)
	require.NoError(t, err)
	require.NoError(t, h.Registry().RegisterModel("public.users", &User{}))
	if setup != nil {
		setup(h)
	}
	require.NoError(t, h.Start())
	t.Cleanup(func() { require.NoError(t, h.Shutdown()) })
	url := h.Addr()
	if !strings.Contains(url, "://") {
		url = "tcp://" + url
	}
	return &server{h: h, db: db, url: url}
}

// eachTransport runs test on the embedded broker and on a private
// mosquitto (external broker mode).
func eachTransport(t *testing.T, test func(t *testing.T, start starter)) {
	t.Run("embedded", func(t *testing.T) { test(t, startEmbedded) })
	t.Run("external", func(t *testing.T) {
		test(t, func(t *testing.T, setup func(*mqttspec.Handler), opts ...mqttspec.Option) *server {
			return startExternalOn(t, testbroker.Mosquitto(t), setup, opts...)
		})
	})
}

// dial connects a client to srv and closes it when the test ends.
func dial(t *testing.T, srv *server, id string, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := client.Dial(ctx, srv.url, append([]client.Option{client.WithClientID(id), client.WithLogger(quiet)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// bg returns a context bounded by wait.
func bg(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// wireCode returns the protocol error code of err, or "".
func wireCode(err error) string {
	var e *mqttspec.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestCalls(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil)
		c := dial(t, srv, "calls")
		ctx := bg(t)

		require.NoError(t, c.Ping(ctx))
		var ada User
		require.NoError(t, c.Create(ctx, "public", "users", map[string]any{"name": "Ada", "email": "ada@example.com", "status": "active"}, &ada))
		require.NotZero(t, ada.ID)
		require.Equal(t, "Ada", ada.Name)
		require.NoError(t, c.Create(ctx, "public", "users", User{Name: "Bob", Status: "inactive"}, nil))

		var got User
		require.NoError(t, c.ReadOne(ctx, "public", "users", ada.ID, &got))
		require.Equal(t, ada, got)

		var active []User
		page, err := c.Read(ctx, "public", "users", &mqttspec.RequestOptions{
			Filters: []mqttspec.FilterOption{{Column: "status", Operator: "eq", Value: "active"}}}, &active)
		require.NoError(t, err)
		require.Equal(t, []User{ada}, active)
		require.Equal(t, client.Page{Total: 1, Count: 1, Limit: 100}, *page)

		var updated User
		require.NoError(t, c.Update(ctx, "public", "users", ada.ID, map[string]any{"status": "away"}, &updated))
		require.Equal(t, "away", updated.Status)
		require.Equal(t, "ada@example.com", updated.Email, "an update changes only the keys it sends")

		meta, err := c.Meta(ctx, "public", "users")
		require.NoError(t, err)
		require.Equal(t, "id", meta.PrimaryKey)
		require.Len(t, meta.Columns, 4)

		var deleted User
		require.NoError(t, c.Delete(ctx, "public", "users", ada.ID, &deleted))
		require.Equal(t, ada.ID, deleted.ID)

		// Failures carry the protocol's code.
		for _, tc := range []struct {
			name string
			err  error
			code string
		}{
			{"deleted record", c.ReadOne(ctx, "public", "users", ada.ID, &got), mqttspec.CodeNotFound},
			{"unknown entity", c.Create(ctx, "public", "nope", map[string]any{"name": "x"}, nil), mqttspec.CodeUnknownEntity},
			{"unknown column", c.Create(ctx, "public", "users", map[string]any{"nmae": "x"}, nil), mqttspec.CodeUnknownColumn},
			{"wrong type", c.Update(ctx, "public", "users", 2, map[string]any{"name": 5}, nil), mqttspec.CodeInvalidValue},
		} {
			require.Error(t, tc.err, tc.name)
			require.Equal(t, tc.code, wireCode(tc.err), "%s: %v", tc.name, tc.err)
		}
		var n int64
		require.NoError(t, srv.db.Model(&User{}).Count(&n).Error)
		require.EqualValues(t, 1, n, "the refused writes wrote nothing")
	})
}

func TestCallDeadline(t *testing.T) {
	release, hold := make(chan struct{}), make(chan struct{})
	defer close(hold)
	srv := startEmbedded(t, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeCreate, func(ctx *mqttspec.HookContext) error {
			switch d, _ := ctx.Data.(map[string]any); d["name"] {
			case "slow":
				<-release
			case "held":
				<-hold
			}
			return nil
		})
	})
	c := dial(t, srv, "deadline")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := c.Create(ctx, "public", "users", map[string]any{"name": "slow"}, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Zero(t, client.Waiting(c), "the call that gave up is forgotten")
	close(release) // its answer arrives now and is dropped

	// Control: the client goes on working, and a call without a deadline
	// gets the client's request timeout.
	require.NoError(t, c.Ping(bg(t)))
	quick := dial(t, srv, "quick-timeout", client.WithRequestTimeout(100*time.Millisecond))
	require.ErrorIs(t, quick.Create(context.Background(), "public", "users", map[string]any{"name": "held"}, nil), context.DeadlineExceeded)
}

func TestConcurrentCalls(t *testing.T) {
	srv := startEmbedded(t, nil)
	c := dial(t, srv, "busy")
	ctx := bg(t)
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = map[uint]bool{}
	)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				var u User
				if err := c.Create(ctx, "public", "users", map[string]any{"name": "n", "status": "active"}, &u); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids[u.ID] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, ids, 200, "every call got its own answer")
}

// model is what a reader of a view keeps: records by id.
type model map[uint]User

// apply applies ch to m as the README's rules say.
func (m model) apply(t *testing.T, ch client.Change) {
	t.Helper()
	if ch.Operation == client.OperationSnapshot {
		clear(m)
		m.load(t, ch.Records)
		return
	}
	var u User
	require.NoError(t, ch.Decode(&u))
	if ch.Operation == mqttspec.OperationDelete || !ch.Matches {
		delete(m, u.ID)
		return
	}
	m[u.ID] = u
}

// load adds the records of a snapshot to m.
func (m model) load(t *testing.T, records []json.RawMessage) {
	t.Helper()
	for _, r := range records {
		var u User
		require.NoError(t, json.Unmarshal(r, &u))
		m[u.ID] = u
	}
}

// next returns the view's next change.
func next(t *testing.T, v *client.View) client.Change {
	t.Helper()
	select {
	case ch, ok := <-v.Changes():
		require.True(t, ok, "the view ended: %v", v.Err())
		return ch
	case <-time.After(wait):
		t.Fatal("no change")
		return client.Change{}
	}
}

// fresh reads the active users as a fresh read returns them.
func fresh(t *testing.T, c *client.Client) model {
	t.Helper()
	var users []User
	_, err := c.Read(bg(t), "public", "users", &mqttspec.RequestOptions{Filters: active, Limit: ptr(1000)}, &users)
	require.NoError(t, err)
	m := model{}
	for _, u := range users {
		m[u.ID] = u
	}
	return m
}

var active = []mqttspec.FilterOption{{Column: "status", Operator: "eq", Value: "active"}}

func ids(m model) []uint {
	out := make([]uint, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func ptr(n int) *int { return &n }

// TestOverloadedIsRetried: a request the server answers "overloaded" (it
// did not run it: the client's queue is full) is sent again after a pause
// until it is served; a call whose context ends first returns the refusal.
func TestOverloadedIsRetried(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	srv := startExternalOn(t, testbroker.Mosquitto(t), func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeCreate, func(ctx *mqttspec.HookContext) error {
			if d, _ := ctx.Data.(map[string]any); d["name"] == "slow" {
				entered <- struct{}{}
				<-release
			}
			return nil
		})
	}, mqttspec.WithLimits(mqttspec.LimitConfig{MaxPendingPerClient: 1}))
	c := dial(t, srv, "busy")
	slow := make(chan error, 1)
	go func() { slow <- c.Create(bg(t), "public", "users", map[string]any{"name": "slow"}, nil) }()
	<-entered

	// One ping waits in the client's queue, the other is refused until
	// there is room; a third with a short deadline gives up with the
	// refusal.
	pings := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { pings <- c.Ping(bg(t)) }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := c.Ping(ctx)
	require.Error(t, err)
	require.Contains(t, []string{mqttspec.CodeOverloaded, ""}, wireCode(err), "overloaded, or the deadline while waiting: %v", err)
	require.NotZero(t, srv.h.Stats().Overloaded)

	close(release)
	require.NoError(t, <-slow)
	require.NoError(t, <-pings)
	require.NoError(t, <-pings, "the refused ping was sent again and served")
}

// TestRestartedClientWritesAgain: a device restarted under the same client
// id sends the same create again (a new write, not a resend); it is
// written again, not answered from the server's duplicate window with the
// first run's answer. Control: within one run, ids never repeat either.
func TestRestartedClientWritesAgain(t *testing.T) {
	srv := startEmbedded(t, nil)
	var first, second User
	c := dial(t, srv, "device-9")
	require.NoError(t, c.Create(bg(t), "public", "users", map[string]any{"name": "same"}, &first))
	require.NoError(t, c.Close())

	c = dial(t, srv, "device-9")
	require.NoError(t, c.Create(bg(t), "public", "users", map[string]any{"name": "same"}, &second))
	require.NotEqual(t, first.ID, second.ID, "a second row")
	var n int64
	require.NoError(t, srv.db.Model(&User{}).Count(&n).Error)
	require.EqualValues(t, 2, n)
	require.Zero(t, srv.h.Stats().Duplicates)
}
