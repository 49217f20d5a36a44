package mqttspec_test

// End-to-end tests of a group of handler instances (ExternalBrokerConfig.
// Group) on one prefix: on mosquitto, and on a three-node NATS cluster
// (MQTT without shared subscriptions), with PostgreSQL as the shared
// database.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/client"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
	"github.com/mqttspec/mqttspec/internal/testbroker"
	"github.com/mqttspec/mqttspec/internal/testdb"
)

// groupEngine is where a group's members and its clients connect.
type groupEngine struct {
	name    string
	members []string // broker URL of member i (cycled)
	clients string   // broker URL of the clients
	group   string   // the group's name

	username, password string // the members' login, if the broker wants one
}

// TestGroup runs each scenario with three members on mosquitto and on a
// three-node NATS cluster whose clients connect to node 1 and members to
// nodes 2 and 3 (one broker per engine for all scenarios: a NATS cluster
// takes seconds to be ready).
func TestGroup(t *testing.T) {
	scenarios := []struct {
		name string
		run  func(t *testing.T, e groupEngine)
	}{
		{"EachRequestOnceInOrder", groupServesEachRequestOnceInOrder},
		{"ChangesFromEveryMemberAndFromSQL", groupNotifiesChangesFromEveryMemberAndFromSQL},
		{"VanishedClientLosesItsSubscriptions", groupForgetsVanishedClient},
		{"WriteRepeatedAfterItsMemberLeft", groupReplaysWriteAfterMemberLeft},
	}
	for _, engine := range []string{"mosquitto", "nats"} {
		t.Run(engine, func(t *testing.T) {
			var e groupEngine
			if engine == "mosquitto" {
				url := testbroker.Mosquitto(t)
				e = groupEngine{name: "mosquitto", members: []string{url}, clients: url}
			} else {
				urls := testbroker.NATSCluster(t, 3)
				e = groupEngine{name: "nats", members: urls[1:], clients: urls[0]}
			}
			for i, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					e := e
					e.group = fmt.Sprintf("g%d", i)
					e.name = fmt.Sprintf("%s-%d", engine, i)
					sc.run(t, e)
				})
			}
		})
	}
}

// openPostgres opens a fresh PostgreSQL database with the test models.
func openPostgres(t testing.TB, dsn string) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sqlDB.Close() })
	return db
}

// startGroup starts n members of group "g" on e, sharing the database of
// dsn, and waits until each sees all of them.
func startGroup(t *testing.T, e groupEngine, dsn string, n int) []*mqttspec.Handler {
	t.Helper()
	migrate := openPostgres(t, dsn)
	require.NoError(t, migrate.AutoMigrate(&User{}, &Note{}))
	members := make([]*mqttspec.Handler, n)
	for i := range n {
		members[i], _ = startMember(t, e, dsn, i)
	}
	mqtttest.Eventually(t, func() bool {
		for _, h := range members {
			if len(h.GroupMembers()) != n {
				return false
			}
		}
		return true
	}, "every member sees the whole group")
	return members
}

// startMember starts member i of e's group on a connection pool of its own
// to the database of dsn, and returns it with the function that shuts it
// down and closes its pool (run when the test ends at the latest).
func startMember(t *testing.T, e groupEngine, dsn string, i int) (*mqttspec.Handler, func()) {
	t.Helper()
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	h, err := mqttspec.NewHandlerWithGORM(db,
		mqttspec.WithExternalBroker(mqttspec.ExternalBrokerConfig{
			BrokerURL: e.members[i%len(e.members)], ClientID: fmt.Sprintf("%s-member-%d", e.name, i+1),
			Group: e.group, GroupSettle: 300 * time.Millisecond, ConnectTimeout: mqtttest.Wait,
			Username: e.username, Password: e.password,
		}),
		mqttspec.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err == nil {
		err = h.Registry().RegisterModel("public.users", &User{})
	}
	if err == nil {
		err = h.Registry().RegisterModel("public.notes", &Note{})
	}
	if err == nil {
		err = h.Start()
	}
	require.NoError(t, err, "start member %d", i+1)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			require.NoError(t, h.Shutdown(), "shut member %d down", i+1)
			_ = sqlDB.Close()
		})
	}
	t.Cleanup(stop)
	return h, stop
}

// servedBy returns the index of the member that serves clientID, waiting
// until exactly one does (a member serves once it has settled).
func servedBy(t *testing.T, members []*mqttspec.Handler, clientID string) int {
	t.Helper()
	owner := -1
	mqtttest.Eventually(t, func() bool {
		owner, n := -1, 0
		for i, h := range members {
			if mqttspec.ServesClient(h, clientID) {
				owner, n = i, n+1
			}
		}
		return n == 1 && owner >= 0
	}, "one member serves "+clientID)
	for i, h := range members {
		if mqttspec.ServesClient(h, clientID) {
			owner = i
		}
	}
	return owner
}

// clientServedBy returns a client id served by member want.
func clientServedBy(t *testing.T, members []*mqttspec.Handler, prefix string, want int) string {
	t.Helper()
	for i := range 1000 {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if servedBy(t, members, id) == want {
			return id
		}
	}
	t.Fatalf("no client id served by member %d", want+1)
	return ""
}

func groupServesEachRequestOnceInOrder(t *testing.T, e groupEngine) {
	{
		dsn := testdb.PostgresDSN(t)
		members := startGroup(t, e, dsn, 3)
		const clients, perClient, window = 10, 30, 6
		owners := map[int]int{}
		var wg sync.WaitGroup
		results := make([][]map[string]any, clients)
		conns := make([]*mqtttest.Client, clients)
		for c := range clients {
			id := fmt.Sprintf("%s-device-%d", e.name, c)
			owners[servedBy(t, members, id)]++
			conns[c] = mqtttest.Connect(t, e.clients, id)
		}
		require.Len(t, owners, 3, "the clients are spread over the members: %v", owners)
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl := conns[c]
				pending := make([]chan map[string]any, 0, perClient)
				for k := range perClient {
					msg := mqtttest.Req("create", "users", map[string]any{
						"id": fmt.Sprintf("%s-%d", cl.ID, k), "data": map[string]any{"name": fmt.Sprintf("%s/%d", cl.ID, k), "age": k},
					})
					raw, _ := json.Marshal(msg)
					pending = append(pending, cl.Send(msg["id"].(string), raw))
					if len(pending) >= window {
						results[c] = append(results[c], cl.Await(pending[0]))
						pending = pending[1:]
					}
				}
				for _, p := range pending {
					results[c] = append(results[c], cl.Await(p))
				}
			}()
		}
		wg.Wait()
		db := openPostgres(t, dsn)
		for c := range clients {
			cl := conns[c]
			var lastID float64
			for k, resp := range results[c] {
				require.Equal(t, fmt.Sprintf("%s-%d", cl.ID, k), resp["id"])
				rec := mqtttest.OK(t, resp).(map[string]any)
				id := rec["id"].(float64)
				require.Greater(t, id, lastID, "%s: request %d ran before an earlier one", cl.ID, k)
				lastID = id
			}
			// A ping answered after every create: no answer came twice, none
			// without a request.
			mqtttest.OK(t, map[string]any{"success": cl.Request(map[string]any{"type": "ping"})["type"] == "pong"})
			mqtttest.Nothing(t, cl.Orphans, "stray answer for "+cl.ID)
			var n int64
			require.NoError(t, db.Model(&User{}).Where("name LIKE ?", cl.ID+"/%").Count(&n).Error)
			require.Equal(t, int64(perClient), n, "%s: every create ran once", cl.ID)
		}
	}
}

func groupNotifiesChangesFromEveryMemberAndFromSQL(t *testing.T, e groupEngine) {
	{
		dsn := testdb.PostgresDSN(t)
		members := startGroup(t, e, dsn, 3)
		subID := clientServedBy(t, members, e.name+"-watcher", 0)
		writerID := clientServedBy(t, members, e.name+"-writer", 1)
		watcher := mqtttest.Connect(t, e.clients, subID)
		writer := mqtttest.Connect(t, e.clients, writerID)
		db := openPostgres(t, dsn)
		require.NoError(t, db.Create(&User{Name: "before", Status: "active"}).Error)

		data := mqtttest.OK(t, watcher.Request(map[string]any{
			"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users",
			"options": map[string]any{"snapshot": true, "filters": []any{map[string]any{"column": "status", "operator": "eq", "value": "active"}}},
		})).(map[string]any)
		require.Len(t, data["records"], 1)

		// A write through another member.
		sent := time.Now()
		created := mqtttest.OK(t, writer.Request(mqtttest.Req("create", "users", map[string]any{
			"data": map[string]any{"name": "Ada", "status": "active"}}))).(map[string]any)
		n := watcher.NextNote()
		t.Logf("%s: a write through member 2 reached the subscriber of member 1 %s after it was sent", e.name, time.Since(sent))
		require.Equal(t, "create", n["operation"])
		require.Equal(t, float64(1), n["seq"])
		require.Equal(t, "Ada", n["data"].(map[string]any)["name"])

		// Writes made with plain SQL, outside mqttspec.
		id := uint(created["id"].(float64))
		sent = time.Now()
		require.NoError(t, db.Exec("UPDATE users SET name = 'Ada L.' WHERE id = ?", id).Error)
		n = watcher.NextNote()
		t.Logf("%s: an UPDATE made with SQL reached the subscriber %s after it was sent", e.name, time.Since(sent))
		require.Equal(t, "update", n["operation"])
		require.Equal(t, float64(2), n["seq"])
		require.Equal(t, "Ada L.", n["data"].(map[string]any)["name"])
		require.Equal(t, "Ada", n["previous"].(map[string]any)["name"])
		require.NoError(t, db.Exec("INSERT INTO users (name, status) VALUES ('elsewhere', 'inactive')").Error)
		require.NoError(t, db.Exec("DELETE FROM users WHERE id = ?", id).Error)
		n = watcher.NextNote()
		require.Equal(t, "delete", n["operation"], "the inactive insert matches nothing: %v", n)
		require.Equal(t, float64(3), n["seq"])
		mqtttest.Nothing(t, watcher.Notes, "notification")
	}
}

// TestGroupUnderTheDocumentedACL runs a group on mosquitto with the
// README's configuration and ACL: the members find each other and serve a
// client; a client that publishes a fake presence message (which would
// take clients away from the real members) is refused by the broker.
func TestGroupUnderTheDocumentedACL(t *testing.T) {
	const handlerPass, alicePass, malloryPass = "handler-secret", "alice-secret", "mallory-secret"
	passwd := extPasswordFile(t, "mqttspec", handlerPass, "alice", alicePass, "mallory", malloryPass)
	broker := testbroker.NewMosquitto(t, extExampleConfig(t, passwd))
	e := groupEngine{name: "acl", members: []string{broker.URL}, clients: broker.URL, group: "gacl",
		username: "mqttspec", password: handlerPass}
	members := startGroup(t, e, testdb.PostgresDSN(t), 2)

	mallory := mqtttest.MustDialRaw(t, broker.URL, "evil", mqtttest.Credentials("mallory", malloryPass))
	tok := mallory.Client.Publish("spec/$group/gacl/members/evil", 1, true, `{"member":"evil"}`)
	tok.WaitTimeout(mqtttest.Wait) // mosquitto acknowledges, drops it and may close the connection

	// The retained presence messages are the members' and nobody else's.
	inspector := mqtttest.MustDialRaw(t, broker.URL, "acl-member-inspect", mqtttest.Credentials("mqttspec", handlerPass))
	inspector.Subscribe("spec/$group/gacl/members/+", "spec/$group/gacl/marker")
	require.NoError(t, inspector.Publish("spec/$group/gacl/marker", 1, "end"))
	var present []string
	for {
		m := mqtttest.Recv(t, inspector.Msgs, "retained presence")
		if m.Topic == "spec/$group/gacl/marker" {
			break
		}
		if m.Payload != "" {
			present = append(present, m.Topic[strings.LastIndexByte(m.Topic, '/')+1:])
		}
	}
	slices.Sort(present)
	require.Equal(t, []string{"acl-member-1", "acl-member-2"}, present)
	for _, h := range members {
		require.Equal(t, []string{"acl-member-1", "acl-member-2"}, h.GroupMembers())
	}

	// A client works through the group.
	alice := mqtttest.Connect(t, broker.URL, "alice-phone", mqtttest.Credentials("alice", alicePass))
	servedBy(t, members, "alice-phone")
	mqtttest.OK(t, alice.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "Alice"}})))
}

// groupForgetsVanishedClient: a client whose connection drops (its will
// says "disconnect") loses its subscriptions, in the database too; one
// without a will keeps them (nobody can tell it has gone).
func groupForgetsVanishedClient(t *testing.T, e groupEngine) {
	dsn := testdb.PostgresDSN(t)
	members := startGroup(t, e, dsn, 3)
	db := openPostgres(t, dsn)
	stored := func(clientID string) int64 {
		var n int64
		require.NoError(t, db.Table("mqttspec_subscriptions").Where("client_id = ?", clientID).Count(&n).Error)
		return n
	}
	subscribeRaw := func(id string, will bool) *mqtttest.Raw {
		t.Helper()
		servedBy(t, members, id)
		return mqtttest.Subscriber(t, strings.TrimPrefix(e.clients, "tcp://"), id, will)
	}
	withWill := subscribeRaw(e.name+"-dev-will", true)
	withoutWill := subscribeRaw(e.name+"-dev-plain", false)
	require.Equal(t, int64(1), stored(e.name+"-dev-will"))
	require.Equal(t, int64(1), stored(e.name+"-dev-plain"))

	withWill.Reset() // the connection drops: the broker publishes the will
	withoutWill.Reset()
	start := time.Now()
	mqtttest.Eventually(t, func() bool { return stored(e.name+"-dev-will") == 0 }, "the vanished client's subscription is removed")
	t.Logf("%s: subscription of a vanished client removed after %s", e.name, time.Since(start))
	total := 0
	for _, h := range members {
		total += h.Subscriptions().Count()
	}
	require.Equal(t, 1, total, "only the client without a will still has its subscription")
	require.Equal(t, int64(1), stored(e.name+"-dev-plain"), "without a will nobody can know")
}

// groupReplaysWriteAfterMemberLeft: a write whose answer was lost is sent
// again after its member left the group; the member that takes the client
// over answers it from the database instead of running it again.
func groupReplaysWriteAfterMemberLeft(t *testing.T, e groupEngine) {
	dsn := testdb.PostgresDSN(t)
	members := startGroup(t, e, dsn, 3)
	id := clientServedBy(t, members, e.name+"-retrier", 0)
	c := mqtttest.Connect(t, e.clients, id)
	msg := mqtttest.Req("create", "users", map[string]any{"id": "w-1", "data": map[string]any{"name": "once"}})
	first := mqtttest.OK(t, c.Request(msg)).(map[string]any)

	require.NoError(t, members[0].Shutdown())
	mqtttest.Eventually(t, func() bool {
		return len(members[1].GroupMembers()) == 2 && len(members[2].GroupMembers()) == 2
	}, "the others see the member leave")
	again := servedBy(t, members[1:], id)

	// Same id, same payload: the answer of the first run.
	second := mqtttest.OK(t, c.Request(msg)).(map[string]any)
	require.Equal(t, first, second)
	require.Equal(t, uint64(1), members[1+again].Stats().Duplicates)
	db := openPostgres(t, dsn)
	var n int64
	require.NoError(t, db.Model(&User{}).Where("name = ?", "once").Count(&n).Error)
	require.Equal(t, int64(1), n, "the write ran once")

	// Control: a new id is a new write.
	mqtttest.OK(t, c.Request(mqtttest.Req("create", "users", map[string]any{"id": "w-2", "data": map[string]any{"name": "once"}})))
	require.NoError(t, db.Model(&User{}).Where("name = ?", "once").Count(&n).Error)
	require.Equal(t, int64(2), n)
}

// TestGroupStartFailsWithoutGroupRights: a member whose ACL lacks the
// group's topics would serve every client alone, beside the others; Start
// says so instead. The control is TestGroupUnderTheDocumentedACL.
func TestGroupStartFailsWithoutGroupRights(t *testing.T) {
	const handlerPass = "handler-secret"
	passwd := extPasswordFile(t, "mqttspec", handlerPass)
	acl, err := os.ReadFile(filepath.Join(extExampleDir, "mqttspec.acl"))
	require.NoError(t, err)
	require.Contains(t, string(acl), "topic readwrite spec/$group/#\n")
	narrow := filepath.Join(t.TempDir(), "narrow.acl")
	require.NoError(t, os.WriteFile(narrow, []byte(strings.Replace(string(acl), "topic readwrite spec/$group/#\n", "", 1)), 0o644))
	conf := strings.Replace(extExampleConfig(t, passwd), "acl_file ", "acl_file "+narrow+"\n#", 1)
	broker := testbroker.NewMosquitto(t, conf)

	db := openPostgres(t, testdb.PostgresDSN(t))
	require.NoError(t, db.AutoMigrate(&User{}))
	h, err := mqttspec.NewHandlerWithGORM(db, mqttspec.WithExternalBroker(mqttspec.ExternalBrokerConfig{
		BrokerURL: broker.URL, ClientID: "narrow-1", Group: "g", Username: "mqttspec", Password: handlerPass,
		ConnectTimeout: 3 * time.Second,
	}), mqttspec.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	require.NoError(t, h.Registry().RegisterModel("public.users", &User{}))
	err = h.Start()
	require.Error(t, err)
	require.Contains(t, err.Error(), "spec/$group/g/#")
	require.NoError(t, h.Shutdown())
}

// TestGroupRejoinsAfterBrokerRestart: the broker crashes and comes back
// having forgotten everything (no persistence, so no retained presence
// either) while one member stops (its leaving cannot reach the broker, and
// its will died with the broker). The others reconnect, announce themselves again, forget the
// member nobody announces any more, and serve all clients between them.
func TestGroupRejoinsAfterBrokerRestart(t *testing.T) {
	broker := testbroker.NewMosquitto(t, "")
	e := groupEngine{name: "restart", members: []string{broker.URL}, clients: broker.URL, group: "grestart"}
	members := startGroup(t, e, testdb.PostgresDSN(t), 3)
	broker.Kill()
	_ = members[2].Shutdown() // cannot say goodbye: the broker is down
	broker.Start()
	mqtttest.Eventually(t, func() bool {
		for _, h := range members[:2] {
			if len(h.GroupMembers()) != 2 || !h.Broker().IsConnected() {
				return false
			}
		}
		return true
	}, "both remaining members back and seeing only each other")
	for i := range 2 {
		id := clientServedBy(t, members[:2], "restart-client", i)
		c := mqtttest.Connect(t, broker.URL, id)
		mqtttest.OK(t, c.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": id}})))
	}
	// The client ids the stopped member served are served too.
	for k := range 20 {
		id := fmt.Sprintf("restart-any-%d", k)
		servedBy(t, members[:2], id)
	}
}

// TestGroupChurn: members stop and start again (with the same client id)
// one after another while clients of the Go client package write with
// WithResend. Every call succeeds, and every record is stored exactly
// once: writes repeated into a member that was joining, leaving or had
// just taken a client over are answered, not run, twice.
func TestGroupChurn(t *testing.T) {
	url := testbroker.Mosquitto(t)
	e := groupEngine{name: "churn", members: []string{url}, clients: url, group: "gchurn"}
	dsn := testdb.PostgresDSN(t)
	members := startGroup(t, e, dsn, 3)
	stops := make([]func(), len(members))
	for i, h := range members {
		stops[i] = func() { require.NoError(t, h.Shutdown()) }
	}
	duration := 8 * time.Second
	if d, err := time.ParseDuration(os.Getenv("MQTTSPEC_SOAK")); err == nil && d > duration {
		duration = d
	}

	const writers = 6
	stop := make(chan struct{})
	var wg sync.WaitGroup
	counts := make([]int, writers)
	var acked atomic.Int64
	errs := make(chan error, writers)
	for w := range writers {
		c, err := client.Dial(context.Background(), url, client.WithClientID(fmt.Sprintf("churn-writer-%d", w)),
			client.WithResend(300*time.Millisecond), client.WithRequestTimeout(30*time.Second),
			client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := c.Create(context.Background(), "public", "users", map[string]any{"name": fmt.Sprintf("churn-%d-%d", w, k)}, nil); err != nil {
					errs <- fmt.Errorf("writer %d, create %d: %w", w, k, err)
					return
				}
				counts[w] = k + 1
				acked.Add(1)
			}
		}()
	}

	// Stop one member and start it again, in turn, until the time is up.
	deadline := time.Now().Add(duration)
	restarts := 0
	for i := 0; time.Now().Before(deadline); i++ {
		victim := i % len(members)
		stops[victim]()
		members[victim], stops[victim] = startMember(t, e, dsn, victim)
		restarts++
		// The next restart comes once the writers have made progress
		// with this member back.
		mark := acked.Load()
		mqtttest.Eventually(t, func() bool {
			for _, h := range members {
				if len(h.GroupMembers()) != len(members) {
					return false
				}
			}
			return acked.Load() >= mark+2*writers
		}, "the group is whole again and the writers move on")
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	db := openPostgres(t, dsn)
	total := 0
	for w, n := range counts {
		total += n
		var rows []struct {
			Name  string
			Count int64
		}
		require.NoError(t, db.Model(&User{}).Select("name, count(*) AS count").Where("name LIKE ?", fmt.Sprintf("churn-%d-%%", w)).
			Group("name").Having("count(*) > 1").Scan(&rows).Error)
		require.Empty(t, rows, "writer %d: records stored twice", w)
		var stored int64
		require.NoError(t, db.Model(&User{}).Where("name LIKE ?", fmt.Sprintf("churn-%d-%%", w)).Count(&stored).Error)
		require.GreaterOrEqual(t, stored, int64(n), "writer %d: every acknowledged create is stored", w)
		require.LessOrEqual(t, stored, int64(n+1), "writer %d: at most the create in flight at the end besides", w)
	}
	t.Logf("%d member restarts, %d creates acknowledged, none twice", restarts, total)
	require.Positive(t, restarts)
	require.Greater(t, total, writers*restarts, "the writers kept working through the restarts")
}

// TestGroupMemberThatCannotReadRequestsFailsStart: a member whose login may
// use the group's topics and write answers but not read requests fails its
// start-up check, although the other members (which do not know it yet,
// and one of which owns its client id) could answer its ping. Control: the
// members with the full rights started.
func TestGroupMemberThatCannotReadRequestsFailsStart(t *testing.T) {
	const handlerPass, narrowPass = "handler-secret", "narrow-secret"
	passwd := extPasswordFile(t, "mqttspec", handlerPass, "narrow", narrowPass)
	acl, err := os.ReadFile(filepath.Join(extExampleDir, "mqttspec.acl"))
	require.NoError(t, err)
	narrowACL := filepath.Join(t.TempDir(), "narrow.acl")
	require.NoError(t, os.WriteFile(narrowACL, append(acl, []byte(
		"\nuser narrow\ntopic readwrite spec/$group/#\ntopic write spec/+/response\ntopic write spec/+/notify/#\n")...), 0o644))
	conf := strings.Replace(extExampleConfig(t, passwd), "acl_file ", "acl_file "+narrowACL+"\n#", 1)
	broker := testbroker.NewMosquitto(t, conf)
	e := groupEngine{name: "narrow", members: []string{broker.URL}, clients: broker.URL, group: "gnarrow",
		username: "mqttspec", password: handlerPass}
	dsn := testdb.PostgresDSN(t)
	members := startGroup(t, e, dsn, 2)
	require.Len(t, members[0].GroupMembers(), 2, "control: the members with every right started")
	servedBy(t, members, "narrow-3") // one of them serves that client id now

	h, err := mqttspec.NewHandlerWithGORM(openPostgres(t, dsn), mqttspec.WithExternalBroker(mqttspec.ExternalBrokerConfig{
		BrokerURL: broker.URL, ClientID: "narrow-3", Group: e.group, Username: "narrow", Password: narrowPass,
		ConnectTimeout: 3 * time.Second,
	}), mqttspec.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	require.NoError(t, h.Registry().RegisterModel("public.users", &User{}))
	err = h.Start()
	require.Error(t, err, "the other members must not answer its self-check")
	require.Contains(t, err.Error(), "self-check")
	require.NoError(t, h.Shutdown())
}
