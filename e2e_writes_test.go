package mqttspec_test

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libtnb/sqlite"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
	"github.com/mqttspec/mqttspec/internal/testdb"
)

// overlapProbe is a BeforeCreate hook that measures how many creates are
// inside their transaction at once; each stays a moment so that writes
// that may overlap do.
type overlapProbe struct{ now, most atomic.Int32 }

func (p *overlapProbe) hook(*mqttspec.HookContext) error {
	n := p.now.Add(1)
	defer p.now.Add(-1)
	for {
		m := p.most.Load()
		if n <= m || p.most.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(2 * time.Millisecond) // widens the window; nothing waits on it
	return nil
}

// createConcurrently sends n creates at once, each from a client of its
// own, and checks that every one succeeds.
func createConcurrently(t *testing.T, url string, n int) {
	t.Helper()
	clients := make([]*mqtttest.Client, n)
	for i := range clients {
		clients[i] = mqtttest.Connect(t, url, fmt.Sprint("writer-", i))
	}
	var wg sync.WaitGroup
	answers := make([]map[string]any, n)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = c.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": fmt.Sprint("w", i), "status": "active"}}))
		}()
	}
	wg.Wait()
	for _, a := range answers {
		mqtttest.OK(t, a)
	}
}

// TestSQLiteWritesTakeTurns: on SQLite the handler's writes hold the
// database one at a time, from BEGIN to COMMIT, instead of meeting in
// SQLite. The database here has a busy timeout of 0, so two write transactions
// that met in SQLite would fail at once with "database is locked": 20
// creates sent at once all succeed. Control: on PostgreSQL, which writes
// concurrently, creates are inside their transactions at the same time.
func TestSQLiteWritesTakeTurns(t *testing.T) {
	const writers = 20
	t.Run("sqlite without busy timeout", func(t *testing.T) {
		dsn := "file:" + filepath.Join(t.TempDir(), "nowait.db") + "?_pragma=busy_timeout(0)&_pragma=journal_mode(WAL)&_txlock=immediate"
		db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
		require.NoError(t, err)
		require.NoError(t, db.AutoMigrate(&User{}))
		probe := new(overlapProbe)
		url := startOn(t, db, func(h *mqttspec.Handler) { h.Hooks().Register(mqttspec.BeforeCreate, probe.hook) })
		createConcurrently(t, url, writers)
		var n int64
		require.NoError(t, db.Model(&User{}).Count(&n).Error)
		require.Equal(t, int64(writers), n)
		require.Equal(t, int32(1), probe.most.Load(), "creates inside a transaction at once")
	})
	t.Run("postgres", func(t *testing.T) {
		probe := new(overlapProbe)
		db := openPostgres(t, testdb.PostgresDSN(t))
		require.NoError(t, db.AutoMigrate(&User{}))
		url := startOn(t, db, func(h *mqttspec.Handler) { h.Hooks().Register(mqttspec.BeforeCreate, probe.hook) })
		createConcurrently(t, url, writers)
		require.Greater(t, probe.most.Load(), int32(1), "creates inside a transaction at once")
	})
}

// TestSQLiteWriteQueuedPastItsDeadline: a create held inside its
// transaction by a hook past the request deadline keeps the database; a
// create queued behind it is answered timeout and writes nothing, the held
// one fails with a timeout too, and both give the database back: the next
// create is stored (control).
func TestSQLiteWriteQueuedPastItsDeadline(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	srv := startServer(t, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeCreate, func(*mqttspec.HookContext) error {
			if first.CompareAndSwap(false, true) {
				close(entered)
				<-release
			}
			return nil
		})
	}, mqttspec.WithTimeouts(mqttspec.TimeoutConfig{Request: 300 * time.Millisecond}))
	holder := mqtttest.Connect(t, srv.url, "holder")
	waiter := mqtttest.Connect(t, srv.url, "waiter")
	create := func(c *mqtttest.Client, name string) chan map[string]any {
		return c.Send(name, fmt.Appendf(nil, `{"id":%q,"type":"request","operation":"create","schema":"public","entity":"users","data":{"name":%q,"status":"active"}}`, name, name))
	}
	held := create(holder, "held")
	<-entered
	queued := create(waiter, "queued")
	time.Sleep(time.Second) // both deadlines (300 ms) pass while the hook holds the database
	close(release)
	mqtttest.Fails(t, waiter.Await(queued), mqttspec.CodeTimeout)
	mqtttest.Fails(t, holder.Await(held), mqttspec.CodeTimeout)

	mqtttest.OK(t, waiter.Await(create(waiter, "after")))
	var names []string
	require.NoError(t, srv.db.Model(&User{}).Pluck("name", &names).Error)
	require.Equal(t, []string{"after"}, names)
}

// startOn starts an embedded handler on db with the test models and
// returns its broker URL.
func startOn(t *testing.T, db *gorm.DB, setup func(h *mqttspec.Handler)) string {
	t.Helper()
	h, err := mqttspec.NewHandlerWithGORM(db,
		mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}),
		mqttspec.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	require.NoError(t, h.Registry().RegisterModel("public.users", &User{}))
	setup(h)
	require.NoError(t, h.Start())
	t.Cleanup(func() { require.NoError(t, h.Shutdown()) })
	return "tcp://" + h.Addr()
}
