package mqttspec_test

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"sort"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// liveView is a subscriber's copy of a filtered set, built only from a
// snapshot and notifications, as a client application would build it.
type liveView struct {
	rows    map[string]map[string]any
	lastSeq float64
}

func newLiveView(records []any) *liveView {
	v := &liveView{rows: map[string]map[string]any{}}
	for _, r := range records {
		rec := r.(map[string]any)
		v.rows[fmt.Sprint(rec["id"])] = rec
	}
	return v
}

// apply follows the README's notification rules.
func (v *liveView) apply(t *testing.T, n map[string]any) {
	t.Helper()
	seq := n["seq"].(float64)
	require.Equal(t, v.lastSeq+1, seq, "notification sequence has a gap")
	v.lastSeq = seq
	rec := n["data"].(map[string]any)
	id := fmt.Sprint(rec["id"])
	switch n["operation"] {
	case "create", "update":
		if n["matches"] == true {
			v.rows[id] = rec
		} else {
			delete(v.rows, id)
		}
	case "delete":
		delete(v.rows, id)
	default:
		t.Fatalf("unexpected notification %v", n)
	}
}

func (v *liveView) sorted() []map[string]any {
	out := make([]map[string]any, 0, len(v.rows))
	for _, r := range v.rows {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["id"].(float64) < out[j]["id"].(float64) })
	return out
}

// TestLiveViewStaysEqualToFreshRead: writers create, update (moving records
// in and out of the filters) and delete concurrently while a subscriber takes
// a snapshot mid-way and applies notifications; at the end its copy must equal
// a fresh read, record for record and field for field.
func TestLiveViewStaysEqualToFreshRead(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil)
		const writers, opsPerWriter = 4, 60
		filterSets := map[string][]any{
			"indexed eq": {map[string]any{"column": "status", "operator": "eq", "value": "active"}},
			"or group": {
				map[string]any{"column": "age", "operator": "gt", "value": 60},
				map[string]any{"column": "name", "operator": "like", "value": "a%", "logic_operator": "OR"},
				map[string]any{"column": "active", "operator": "eq", "value": true},
			},
		}

		var idsMu sync.Mutex
		var ids []string
		randomWrite := func(c *mqtttest.Client, rng *rand.Rand) {
			statuses := []string{"active", "inactive", "banned"}
			data := map[string]any{
				"name":   string(rune('a'+rng.Intn(4))) + fmt.Sprint(rng.Intn(100)),
				"status": statuses[rng.Intn(3)], "age": rng.Intn(100), "active": rng.Intn(2) == 0,
			}
			idsMu.Lock()
			var target string
			if len(ids) > 0 {
				target = ids[rng.Intn(len(ids))]
			}
			idsMu.Unlock()
			switch op := rng.Intn(10); {
			case op < 4 || target == "":
				resp := c.Request(mqtttest.Req("create", "users", map[string]any{"data": data}))
				rec := mqtttest.OK(t, resp).(map[string]any)
				idsMu.Lock()
				ids = append(ids, fmt.Sprint(rec["id"]))
				idsMu.Unlock()
			case op < 8:
				delete(data, "name")
				if rng.Intn(2) == 0 {
					delete(data, "age")
				}
				resp := c.Request(mqtttest.Req("update", "users", map[string]any{"record_id": target, "data": data}))
				if resp["success"] != true {
					mqtttest.Fails(t, resp, "not_found") // deleted by another writer
				}
			default:
				resp := c.Request(mqtttest.Req("delete", "users", map[string]any{"record_id": target}))
				if resp["success"] != true {
					mqtttest.Fails(t, resp, "not_found")
				}
			}
		}

		viewer := mqtttest.Connect(t, srv.url, "viewer")
		writerClients := make([]*mqtttest.Client, writers)
		for i := range writerClients {
			writerClients[i] = mqtttest.Connect(t, srv.url, fmt.Sprintf("writer-%d", i))
		}
		// Some data before anyone watches.
		rng := rand.New(rand.NewSource(1))
		for i := 0; i < 30; i++ {
			randomWrite(writerClients[0], rng)
		}

		var wg sync.WaitGroup
		begin := make(chan struct{})
		for i, c := range writerClients {
			wg.Add(1)
			go func(i int, c *mqtttest.Client) {
				defer wg.Done()
				rng := rand.New(rand.NewSource(int64(100 + i)))
				<-begin
				for n := 0; n < opsPerWriter; n++ {
					randomWrite(c, rng)
				}
			}(i, c)
		}
		close(begin)

		// Subscribe with a snapshot while the writers run.
		views := map[string]*liveView{}
		subNames := map[string]string{}
		for name, filters := range filterSets {
			data := mqtttest.OK(t, viewer.Request(map[string]any{
				"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users",
				"options": map[string]any{"filters": filters, "snapshot": true, "limit": 1000},
			})).(map[string]any)
			subID := data["subscription_id"].(string)
			views[subID] = newLiveView(data["records"].([]any))
			subNames[subID] = name
		}
		wg.Wait()

		// Every write's notifications are published before its response, and the
		// viewer's own answers queue behind them: after this ping every
		// notification has arrived.
		viewer.Request(map[string]any{"type": "ping"})
		for drained := false; !drained; {
			select {
			case n := <-viewer.Notes:
				views[n["subscription_id"].(string)].apply(t, n)
			default:
				drained = true
			}
		}

		for subID, view := range views {
			name := subNames[subID]
			fresh := mqtttest.OK(t, viewer.Request(mqtttest.Req("read", "users", map[string]any{
				"options": map[string]any{"filters": filterSets[name], "sort": []any{map[string]any{"column": "id"}}, "limit": 1000},
			}))).([]any)
			want := make([]map[string]any, len(fresh))
			for i, r := range fresh {
				want[i] = r.(map[string]any)
			}
			got := view.sorted()
			wantJSON, _ := json.Marshal(want)
			gotJSON, _ := json.Marshal(got)
			require.JSONEq(t, string(wantJSON), string(gotJSON), "live view %q differs from a fresh read", name)
			require.Positive(t, view.lastSeq, "view %q received no notification", name)
			t.Logf("view %q: %d records, %d notifications", name, len(got), int(view.lastSeq))
		}
	})
}

func TestPersistentSessionReceivesMissedNotifications(t *testing.T) {
	gone := make(chan struct{}, 1)
	srv := startServer(t, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.AfterDisconnect, func(ctx *mqttspec.HookContext) error {
			if ctx.Client.ID == "phone" {
				gone <- struct{}{}
			}
			return nil
		})
	})
	persistent := func(o *mqtt.ClientOptions) { o.SetCleanSession(false) }
	sub := mqtttest.Connect(t, srv.url, "phone", persistent)
	subscribe(t, sub, map[string]any{"column": "status", "operator": "eq", "value": "active"})
	sub.Disconnect(50)
	select {
	case <-gone:
	case <-time.After(mqtttest.Wait):
		t.Fatal("disconnect not seen")
	}
	require.Equal(t, 1, srv.h.Subscriptions().Count(), "a kept session keeps its subscriptions")

	w := mqtttest.Connect(t, srv.url, "server-side-writer")
	for i := 0; i < 3; i++ {
		mqtttest.OK(t, w.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": fmt.Sprint("away-", i), "status": "active"}})))
	}

	back := mqtttest.Connect(t, srv.url, "phone", persistent)
	// Mochi redelivers a session's queued messages sorted by their creation
	// second only, so their order may change; seq restores it.
	missed := make([]map[string]any, 3)
	for range missed {
		n := back.NextNote()
		seq := int(n["seq"].(float64))
		require.True(t, seq >= 1 && seq <= 3 && missed[seq-1] == nil, "bad or repeated seq %d", seq)
		missed[seq-1] = n
	}
	for i, n := range missed {
		require.Equal(t, fmt.Sprint("away-", i), n["data"].(map[string]any)["name"])
	}
	mqtttest.OK(t, w.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "after", "status": "active"}})))
	require.Equal(t, "after", back.NextNote()["data"].(map[string]any)["name"])
}

func TestSubscriptionLimit(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil, mqttspec.WithLimits(mqttspec.LimitConfig{MaxSubscriptionsPerClient: 2}))
		c := mqtttest.Connect(t, srv.url, "greedy")
		subscribe(t, c)
		subscribe(t, c)
		mqtttest.Fails(t, c.Request(map[string]any{"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users"}), "subscription_limit")
	})
}

func TestNotifyChangeFromServiceCode(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil)
		sub := mqtttest.Connect(t, srv.url, "watcher")
		subscribe(t, sub, map[string]any{"column": "status", "operator": "eq", "value": "active"})

		u := User{Name: "svc", Status: "active"}
		require.NoError(t, srv.db.Create(&u).Error)
		require.NoError(t, srv.h.NotifyChange("public", "users", mqttspec.OperationCreate, &u, nil))
		n := sub.NextNote()
		require.Equal(t, "create", n["operation"])
		require.Equal(t, "svc", n["data"].(map[string]any)["name"])

		other := User{Name: "quiet", Status: "inactive"}
		require.NoError(t, srv.db.Create(&other).Error)
		require.NoError(t, srv.h.NotifyChange("public", "users", mqttspec.OperationCreate, other, nil))
		sub.NoNote(sub)

		require.Error(t, srv.h.NotifyChange("public", "users", mqttspec.OperationRead, &u, nil))
		require.Error(t, srv.h.NotifyChange("public", "users", mqttspec.OperationCreate, &Note{}, nil))
		require.Error(t, srv.h.NotifyChange("public", "nothing", mqttspec.OperationCreate, &u, nil))
	})
}

// TestCommitLockPattern follows the README: write in a transaction, then
// commit and notify inside the handler's commit lock.
func TestCommitLockPattern(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil)
		sub := mqtttest.Connect(t, srv.url, "watcher")
		subscribe(t, sub)

		user := User{Name: "locked", Status: "active"}
		tx := srv.db.Begin()
		require.NoError(t, tx.Create(&user).Error)
		err := srv.h.WithCommitLock("public", "users", func() error {
			if err := tx.Commit().Error; err != nil {
				return err
			}
			return srv.h.NotifyChangeLocked("public", "users", mqttspec.OperationCreate, &user, nil)
		})
		require.NoError(t, err)
		n := sub.NextNote()
		require.Equal(t, "locked", n["data"].(map[string]any)["name"])
		require.EqualValues(t, 1, n["seq"])
		require.Error(t, srv.h.WithCommitLock("public", "missing", func() error { return nil }))
	})
}
