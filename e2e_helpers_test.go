package mqttspec_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/libtnb/sqlite"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
	"github.com/mqttspec/mqttspec/internal/testbroker"
)

// User is the README's model plus a few typed columns.
type User struct {
	ID     uint   `json:"id" gorm:"primaryKey"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Status string `json:"status" gorm:"default:'new'"`
	Age    int    `json:"age"`
	Active bool   `json:"active"`
	Tenant string `json:"tenant_id" gorm:"column:tenant_id"`
}

// Note has a string primary key the handler fills with a UUID.
type Note struct {
	ID   string `json:"id" gorm:"primaryKey"`
	Text string `json:"text"`
}

// openSQLite opens a fresh GORM SQLite file database with the test models.
func openSQLite(t testing.TB) *gorm.DB {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "test.db") +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	require.NoError(t, db.AutoMigrate(&User{}, &Note{}))
	sqlDB, err := db.DB()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sqlDB.Close() })
	return db
}

// testServer is a started handler with its database and the URL clients
// connect to.
type testServer struct {
	h   *mqttspec.Handler
	db  *gorm.DB
	url string
}

// startServer starts a handler with the embedded broker on a free port,
// the test models registered, and stops it when the test ends. Hooks may be
// added through setup before Start.
func startServer(t testing.TB, setup func(h *mqttspec.Handler), opts ...mqttspec.Option) *testServer {
	t.Helper()
	return startWith(t, mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}), setup, opts...)
}

// startWith starts a handler on the broker of brokerOpt (see startServer).
func startWith(t testing.TB, brokerOpt mqttspec.Option, setup func(h *mqttspec.Handler), opts ...mqttspec.Option) *testServer {
	t.Helper()
	db := openSQLite(t)
	opts = append([]mqttspec.Option{brokerOpt, mqttspec.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...)
	h, err := mqttspec.NewHandlerWithGORM(db, opts...)
	require.NoError(t, err)
	require.NoError(t, h.Registry().RegisterModel("public.users", &User{}))
	require.NoError(t, h.Registry().RegisterModel("public.notes", &Note{}))
	if setup != nil {
		setup(h)
	}
	require.NoError(t, h.Start())
	t.Cleanup(func() { require.NoError(t, h.Shutdown()) })
	url := h.Addr() // host:port of the embedded broker, or the external broker's URL
	if !strings.Contains(url, "://") {
		url = "tcp://" + url
	}
	return &testServer{h: h, db: db, url: url}
}

// serverSeq makes the handlers' MQTT client ids unique on a shared broker.
var serverSeq atomic.Int64

// startExternal starts a handler connected to the external broker of
// cfg.BrokerURL (a unique ClientID is filled in when empty).
func startExternal(t testing.TB, cfg mqttspec.ExternalBrokerConfig, setup func(h *mqttspec.Handler), opts ...mqttspec.Option) *testServer {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID = fmt.Sprintf("mqttspec-server-%d-%d", os.Getpid(), serverSeq.Add(1))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = mqtttest.Wait
	}
	return startWith(t, mqttspec.WithExternalBroker(cfg), setup, opts...)
}

// starter starts a test server on one transport.
type starter func(t testing.TB, setup func(h *mqttspec.Handler), opts ...mqttspec.Option) *testServer

// eachTransport runs test once with the embedded broker and once through a
// private mosquitto (external broker mode): the protocol must behave the
// same on both.
func eachTransport(t *testing.T, test func(t *testing.T, start starter)) {
	t.Run("embedded", func(t *testing.T) { test(t, startServer) })
	t.Run("external", func(t *testing.T) {
		test(t, func(t testing.TB, setup func(h *mqttspec.Handler), opts ...mqttspec.Option) *testServer {
			t.Helper()
			return startExternal(t, mqttspec.ExternalBrokerConfig{BrokerURL: testbroker.Mosquitto(t)}, setup, opts...)
		})
	})
}

// subscribe subscribes c to users with filters and returns the
// subscription id.
func subscribe(t *testing.T, c *mqtttest.Client, filters ...map[string]any) string {
	t.Helper()
	fs := make([]any, len(filters))
	for i, f := range filters {
		fs[i] = f
	}
	data := mqtttest.OK(t, c.Request(map[string]any{
		"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users",
		"options": map[string]any{"filters": fs},
	})).(map[string]any)
	subID := data["subscription_id"].(string)
	require.Equal(t, "spec/"+c.ID+"/notify/"+subID, data["notify_topic"])
	return subID
}

// rawClient connects a raw MQTT 3.1.1 client with id to srv and subscribes
// it to its response topic.
func rawClient(t testing.TB, srv *testServer, id string) *mqtttest.Raw {
	t.Helper()
	c := mqtttest.DialRawTCP(t, strings.TrimPrefix(srv.url, "tcp://"))
	c.MustConnect(mqtttest.ConnectPacket(id))
	require.Equal(t, byte(1), c.Subscribe("spec/"+id+"/response", 1))
	return c
}

func countUsers(t testing.TB, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.Model(&User{}).Count(&n).Error)
	return n
}
