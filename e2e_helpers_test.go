package mqttspec_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/glebarez/sqlite"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec"
)

// waitTimeout bounds every wait of the end-to-end tests.
const waitTimeout = 10 * time.Second

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

type testServer struct {
	h   *mqttspec.Handler
	db  *gorm.DB
	url string
}

// startServer starts a handler with the embedded broker on a free port
// (unless opts choose an external broker), models registered, and stops it
// when the test ends. Hooks may be added through setup before Start.
func startServer(t testing.TB, setup func(h *mqttspec.Handler), opts ...mqttspec.Option) *testServer {
	t.Helper()
	db := openSQLite(t)
	opts = append([]mqttspec.Option{
		mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}),
		mqttspec.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}, opts...)
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

// testClient is a paho client that sends requests and collects answers.
type testClient struct {
	t      testing.TB
	id     string
	prefix string
	c      mqtt.Client

	mu      sync.Mutex
	waiters map[string]chan map[string]any
	orphans chan map[string]any // responses without an id
	notes   chan map[string]any
	seq     int
}

type clientOpt func(*mqtt.ClientOptions)

// connectClient connects a paho client with id and subscribes to its
// response and notify topics.
func connectClient(t testing.TB, url, id string, opts ...clientOpt) *testClient {
	t.Helper()
	tc := &testClient{
		t: t, id: id, prefix: "spec",
		waiters: map[string]chan map[string]any{},
		orphans: make(chan map[string]any, 100),
		notes:   make(chan map[string]any, 10000),
	}
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).
		SetAutoReconnect(false).SetConnectTimeout(waitTimeout).SetOrderMatters(true)
	for _, opt := range opts {
		opt(o)
	}
	o.SetDefaultPublishHandler(tc.route)
	tc.c = mqtt.NewClient(o)
	tok := tc.c.Connect()
	require.True(t, tok.WaitTimeout(waitTimeout), "connect timed out")
	require.NoError(t, tok.Error())
	t.Cleanup(func() { tc.c.Disconnect(50) })
	tc.subscribe(tc.prefix+"/"+id+"/response", tc.prefix+"/"+id+"/notify/+")
	return tc
}

func (tc *testClient) subscribe(filters ...string) {
	tc.t.Helper()
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	tok := tc.c.SubscribeMultiple(m, tc.route)
	require.True(tc.t, tok.WaitTimeout(waitTimeout))
	require.NoError(tc.t, tok.Error())
}

func (tc *testClient) route(_ mqtt.Client, m mqtt.Message) {
	var msg map[string]any
	if err := json.Unmarshal(m.Payload(), &msg); err != nil {
		tc.t.Errorf("client %s got non-JSON on %s: %q", tc.id, m.Topic(), m.Payload())
		return
	}
	msg["_topic"] = m.Topic()
	if msg["type"] == "notification" {
		tc.notes <- msg
		return
	}
	id, _ := msg["id"].(string)
	tc.mu.Lock()
	ch := tc.waiters[id]
	tc.mu.Unlock()
	if ch == nil {
		tc.orphans <- msg
		return
	}
	ch <- msg
}

// send publishes raw on the client's request topic and returns a channel
// that receives the response carrying id.
func (tc *testClient) send(id string, raw []byte) chan map[string]any {
	ch := make(chan map[string]any, 1)
	if id != "" {
		tc.mu.Lock()
		tc.waiters[id] = ch
		tc.mu.Unlock()
	}
	tok := tc.c.Publish(tc.prefix+"/"+tc.id+"/request", 1, false, raw)
	require.True(tc.t, tok.WaitTimeout(waitTimeout))
	require.NoError(tc.t, tok.Error())
	return ch
}

// request sends msg (an "id" is added when missing) and waits for its response.
func (tc *testClient) request(msg map[string]any) map[string]any {
	tc.t.Helper()
	if _, ok := msg["id"]; !ok {
		tc.mu.Lock()
		tc.seq++
		msg["id"] = fmt.Sprintf("%s-%d", tc.id, tc.seq)
		tc.mu.Unlock()
	}
	raw, err := json.Marshal(msg)
	require.NoError(tc.t, err)
	return tc.await(tc.send(msg["id"].(string), raw))
}

func (tc *testClient) await(ch chan map[string]any) map[string]any {
	tc.t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitTimeout):
		tc.t.Fatalf("client %s: no response within %s", tc.id, waitTimeout)
		return nil
	}
}

// nextNote waits for the next notification.
func (tc *testClient) nextNote() map[string]any {
	tc.t.Helper()
	select {
	case n := <-tc.notes:
		return n
	case <-time.After(waitTimeout):
		tc.t.Fatalf("client %s: no notification within %s", tc.id, waitTimeout)
		return nil
	}
}

// noNote asserts that no notification is pending after a marker round trip:
// the server answers requests of one client in order and publishes a write's
// notifications before its response, so a ping answered after the write
// proves any notification it caused has been delivered already.
func (tc *testClient) noNote(marker *testClient) {
	tc.t.Helper()
	marker.request(map[string]any{"type": "ping"})
	tc.request(map[string]any{"type": "ping"})
	select {
	case n := <-tc.notes:
		tc.t.Fatalf("client %s: unexpected notification %v", tc.id, n)
	default:
	}
}

func req(op, entity string, fields map[string]any) map[string]any {
	m := map[string]any{"type": "request", "operation": op, "schema": "public", "entity": entity}
	for k, v := range fields {
		m[k] = v
	}
	return m
}

// requireOK asserts a successful response and returns its data.
func requireOK(t testing.TB, resp map[string]any) any {
	t.Helper()
	require.Equal(t, true, resp["success"], "response: %v", resp)
	return resp["data"]
}

// requireError asserts a failed response with code.
func requireError(t testing.TB, resp map[string]any, code string) {
	t.Helper()
	require.Equal(t, false, resp["success"], "response: %v", resp)
	e, ok := resp["error"].(map[string]any)
	require.True(t, ok, "no error object in %v", resp)
	require.Equal(t, code, e["code"], "response: %v", resp)
	require.NotEmpty(t, e["message"])
}

func countUsers(t testing.TB, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.Model(&User{}).Count(&n).Error)
	return n
}

type mqttClientOptions = mqtt.ClientOptions

func newClientOptions(url, id string) *mqtt.ClientOptions {
	return mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetAutoReconnect(false).SetConnectTimeout(waitTimeout)
}

func newMQTTClient(o *mqtt.ClientOptions) mqtt.Client { return mqtt.NewClient(o) }
