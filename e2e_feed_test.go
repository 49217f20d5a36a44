package mqttspec_test

// End-to-end tests of the change feed (WithChangeFeed) with one handler
// on the embedded broker and PostgreSQL.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
	"github.com/mqttspec/mqttspec/internal/testdb"
	"github.com/mqttspec/mqttspec/query"
)

// startFeedServer starts an embedded handler on a fresh PostgreSQL
// database with the change feed and returns it with a client subscribed
// (with a snapshot) to active users.
func startFeedServer(t *testing.T, feed mqttspec.ChangeFeedConfig) (*mqttspec.Handler, *gorm.DB, *mqtttest.Client, string) {
	t.Helper()
	db := openPostgres(t, testdb.PostgresDSN(t))
	require.NoError(t, db.AutoMigrate(&User{}, &Note{}))
	h, err := mqttspec.NewHandlerWithGORM(db,
		mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}),
		mqttspec.WithChangeFeed(feed),
		mqttspec.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	require.NoError(t, h.Registry().RegisterModel("public.users", &User{}))
	require.NoError(t, h.Start())
	t.Cleanup(func() { require.NoError(t, h.Shutdown()) })
	c := mqtttest.Connect(t, "tcp://"+h.Addr(), "watcher")
	return h, db, c, "tcp://" + h.Addr()
}

func subscribeActive(t *testing.T, c *mqtttest.Client) []any {
	t.Helper()
	data := mqtttest.OK(t, c.Request(map[string]any{
		"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users",
		"options": map[string]any{"snapshot": true, "filters": []any{map[string]any{"column": "status", "operator": "eq", "value": "active"}}},
	})).(map[string]any)
	return data["records"].([]any)
}

func TestChangeFeedNotifiesWritesMadeWithSQL(t *testing.T) {
	_, db, c, url := startFeedServer(t, mqttspec.ChangeFeedConfig{})
	require.Empty(t, subscribeActive(t, c))

	require.NoError(t, db.Exec("INSERT INTO users (name, status, age) VALUES ('from psql', 'active', 41)").Error)
	n := c.NextNote()
	require.Equal(t, "create", n["operation"])
	require.Equal(t, float64(1), n["seq"])
	rec := n["data"].(map[string]any)
	require.Equal(t, "from psql", rec["name"])
	require.Equal(t, float64(41), rec["age"], "columns come back with their types")

	// A write through the handler is notified once, by the feed.
	w := mqtttest.Connect(t, url, "writer")
	mqtttest.OK(t, w.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "over mqtt", "status": "active"}})))
	n = c.NextNote()
	require.Equal(t, "over mqtt", n["data"].(map[string]any)["name"])
	require.Equal(t, float64(2), n["seq"])

	// Leaving the filter, then a change that never matched.
	require.NoError(t, db.Exec("UPDATE users SET status = 'gone' WHERE name = 'from psql'").Error)
	n = c.NextNote()
	require.Equal(t, "update", n["operation"])
	require.Equal(t, false, n["matches"])
	require.Equal(t, float64(3), n["seq"])
	require.NoError(t, db.Exec("UPDATE users SET age = 1 WHERE name = 'from psql'").Error)
	mqtttest.OK(t, w.Request(mqtttest.Req("delete", "users", map[string]any{"record_id": fmt.Sprint(n["data"].(map[string]any)["id"])})))
	mqtttest.OK(t, w.Request(mqtttest.Req("update", "users", map[string]any{
		"record_id": "2", "data": map[string]any{"age": 7}})))
	n = c.NextNote()
	require.Equal(t, "update", n["operation"], "the changes of a record that left the filter are not sent: %v", n)
	require.Equal(t, float64(4), n["seq"])
	mqtttest.Nothing(t, c.Notes, "notification")
}

// TestChangeFeedWaitsForTransactionsStillOpen: a change whose number was
// taken before another's but which commits after it is still notified.
func TestChangeFeedWaitsForTransactionsStillOpen(t *testing.T) {
	_, db, c, _ := startFeedServer(t, mqttspec.ChangeFeedConfig{})
	subscribeActive(t, c)

	slow := db.Begin()
	require.NoError(t, slow.Exec("INSERT INTO users (name, status) VALUES ('slow', 'active')").Error)
	require.NoError(t, db.Exec("INSERT INTO users (name, status) VALUES ('fast', 'active')").Error)
	n := c.NextNote()
	require.Equal(t, "fast", n["data"].(map[string]any)["name"])
	require.NoError(t, slow.Commit().Error)
	n = c.NextNote()
	require.Equal(t, "slow", n["data"].(map[string]any)["name"], "the earlier number, committed later")
	require.Equal(t, float64(2), n["seq"])

	// A rolled-back change leaves a number unused for good: nothing is sent.
	undone := db.Begin()
	require.NoError(t, undone.Exec("INSERT INTO users (name, status) VALUES ('undone', 'active')").Error)
	require.NoError(t, undone.Rollback().Error)
	require.NoError(t, db.Exec("INSERT INTO users (name, status) VALUES ('after', 'active')").Error)
	n = c.NextNote()
	require.Equal(t, "after", n["data"].(map[string]any)["name"])
	require.Equal(t, float64(3), n["seq"])
}

// TestChangeFeedSnapshotHoldsWhatItSkips: a change already committed when
// a subscription takes its snapshot, but not yet read by the feed, is in
// the snapshot and is not notified; one committed after is.
func TestChangeFeedSnapshotHoldsWhatItSkips(t *testing.T) {
	// The feed reads only when a write through the handler signals it.
	h, db, c, url := startFeedServer(t, mqttspec.ChangeFeedConfig{PollInterval: time.Hour})
	require.NotNil(t, h)
	require.NoError(t, db.Exec("INSERT INTO users (name, status) VALUES ('early', 'active')").Error)
	records := subscribeActive(t, c)
	require.Len(t, records, 1)
	require.Equal(t, "early", records[0].(map[string]any)["name"])

	w := mqtttest.Connect(t, url, "writer")
	mqtttest.OK(t, w.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "late", "status": "active"}})))
	n := c.NextNote()
	require.Equal(t, "late", n["data"].(map[string]any)["name"], "the change in the snapshot is not sent again")
	require.Equal(t, float64(1), n["seq"])
	mqtttest.Nothing(t, c.Notes, "notification")
}

func TestChangeFeedNeedsPostgreSQL(t *testing.T) {
	h, err := mqttspec.NewHandlerWithGORM(openSQLite(t),
		mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}),
		mqttspec.WithChangeFeed(mqttspec.ChangeFeedConfig{}))
	require.NoError(t, err)
	require.NoError(t, h.Registry().RegisterModel("public.users", &User{}))
	err = h.Start()
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "PostgreSQL"), err.Error())
	require.Empty(t, h.Addr(), "nothing was started")
	require.NoError(t, h.Shutdown())
}

// TestChangeFeedWithBun runs the feed through the Bun adapter: its
// statements, the records PostgreSQL rebuilds from the recorded rows, and
// a number committed after a later one.
func TestChangeFeedWithBun(t *testing.T) {
	db := testdb.OpenBun(t, query.DialectPostgres, &Author{})
	h, err := mqttspec.NewHandlerWithBun(db,
		mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}),
		mqttspec.WithChangeFeed(mqttspec.ChangeFeedConfig{}),
		mqttspec.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	require.NoError(t, h.Registry().RegisterModel("public.authors", &Author{}))
	require.NoError(t, h.Start())
	t.Cleanup(func() { require.NoError(t, h.Shutdown()) })
	c := mqtttest.Connect(t, "tcp://"+h.Addr(), "watcher")
	mqtttest.OK(t, c.Request(map[string]any{
		"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "authors",
		"options": map[string]any{"snapshot": true, "filters": []any{map[string]any{"column": "status", "operator": "eq", "value": "active"}}},
	}))
	ctx := context.Background()
	_, err = db.ExecContext(ctx, "INSERT INTO authors (name, status, score, active) VALUES ('Le Guin', 'active', 9, true)")
	require.NoError(t, err)
	n := c.NextNote()
	require.Equal(t, "create", n["operation"])
	rec := n["data"].(map[string]any)
	require.Equal(t, "Le Guin", rec["name"])
	require.Equal(t, float64(9), rec["score"])
	require.Equal(t, true, rec["active"])

	slow, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = slow.ExecContext(ctx, "UPDATE authors SET score = 10 WHERE name = 'Le Guin'")
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO authors (name, status, score, active) VALUES ('Butler', 'active', 8, true)")
	require.NoError(t, err)
	n = c.NextNote()
	require.Equal(t, "Butler", n["data"].(map[string]any)["name"])
	require.NoError(t, slow.Commit())
	n = c.NextNote()
	require.Equal(t, "update", n["operation"], "the earlier number, committed later")
	require.Equal(t, float64(10), n["data"].(map[string]any)["score"])
	require.Equal(t, float64(9), n["previous"].(map[string]any)["score"])
	require.Equal(t, float64(3), n["seq"])
}
