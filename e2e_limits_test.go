package mqttspec_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// TestRequestLimitsAnswered: every request limit refuses one more than it
// allows with a coded answer and no database change, and accepts exactly
// what it allows.
func TestRequestLimitsAnswered(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil, mqttspec.WithLimits(mqttspec.LimitConfig{
			MaxFilters: 3, MaxSortKeys: 2, MaxInValues: 4, MaxValueBytes: 32, MaxRecordBytes: 128,
			MaxResponseBytes: 2000,
		}))
		c := mqtttest.Connect(t, srv.url, "limited")
		filters := func(n int) map[string]any {
			fs := make([]any, n)
			for i := range fs {
				fs[i] = map[string]any{"column": "age", "operator": "gte", "value": 0}
			}
			return map[string]any{"options": map[string]any{"filters": fs}}
		}
		sorts := func(n int) map[string]any {
			ss := make([]any, n)
			for i := range ss {
				ss[i] = map[string]any{"column": "id"}
			}
			return map[string]any{"options": map[string]any{"sort": ss}}
		}
		in := func(n int) map[string]any {
			vals := make([]any, n)
			for i := range vals {
				vals[i] = i
			}
			return map[string]any{"options": map[string]any{"filters": []any{map[string]any{"column": "id", "operator": "in", "value": vals}}}}
		}
		data := func(fields map[string]any) map[string]any { return map[string]any{"data": fields} }
		ok := []map[string]any{
			mqtttest.Req("read", "users", filters(3)),
			mqtttest.Req("read", "users", sorts(2)),
			mqtttest.Req("read", "users", in(4)),
			mqtttest.Req("create", "users", data(map[string]any{"name": strings.Repeat("n", 32)})),
			mqtttest.Req("create", "users", data(map[string]any{"name": "héllo wörld"})),
		}
		for _, msg := range ok {
			mqtttest.OK(t, c.Request(msg))
		}
		before := countUsers(t, srv.db)
		refused := []struct {
			msg  map[string]any
			code string
		}{
			{mqtttest.Req("read", "users", filters(4)), "invalid_options"},
			{mqtttest.Req("read", "users", sorts(3)), "invalid_options"},
			{mqtttest.Req("read", "users", in(5)), "invalid_value"},
			{mqtttest.Req("create", "users", data(map[string]any{"name": strings.Repeat("n", 33)})), "invalid_value"},
			{mqtttest.Req("create", "users", data(map[string]any{"name": "x", "email": strings.Repeat("e", 30), "status": strings.Repeat("s", 30),
				"tenant_id": strings.Repeat("t", 30)})), "invalid_value"},
			{mqtttest.Req("create", "users", data(map[string]any{"name": "nul\x00inside"})), "invalid_value"},
			{mqtttest.Req("read", "users", map[string]any{"options": map[string]any{"filters": []any{
				map[string]any{"column": "name", "operator": "eq", "value": "a\x00b"}}}}), "invalid_value"},
		}
		for _, tc := range refused {
			mqtttest.Fails(t, c.Request(tc.msg), tc.code)
		}
		// Invalid UTF-8 cannot be written with encoding/json: send raw bytes.
		raw := []byte("{\"id\":\"bad-utf8\",\"type\":\"request\",\"operation\":\"create\",\"schema\":\"public\",\"entity\":\"users\",\"data\":{\"name\":\"\xff\xfe\"}}")
		mqtttest.Fails(t, c.Await(c.Send("bad-utf8", raw)), "invalid_value")
		require.Equal(t, before, countUsers(t, srv.db), "refused requests change nothing")

		// An answer larger than MaxResponseBytes is refused as such; a
		// snapshot that large is not subscribed.
		for i := 0; i < 40; i++ {
			mqtttest.OK(t, c.Request(mqtttest.Req("create", "users", data(map[string]any{"name": fmt.Sprint("filler-", i)}))))
		}
		mqtttest.Fails(t, c.Request(mqtttest.Req("read", "users", nil)), "response_too_large")
		mqtttest.OK(t, c.Request(mqtttest.Req("read", "users", map[string]any{"options": map[string]any{"limit": 3}})))
		mqtttest.Fails(t, c.Request(map[string]any{"type": "subscription", "operation": "subscribe", "schema": "public",
			"entity": "users", "options": map[string]any{"snapshot": true}}), "response_too_large")
		require.Zero(t, srv.h.Subscriptions().Count(), "a refused snapshot subscribes nothing")
	})
}

// TestSubscriptionLimitsAcrossClients: MaxSubscriptions caps all clients
// together.
func TestSubscriptionLimitsAcrossClients(t *testing.T) {
	srv := startServer(t, nil, mqttspec.WithLimits(mqttspec.LimitConfig{MaxSubscriptions: 2}))
	a := mqtttest.Connect(t, srv.url, "sub-a")
	b := mqtttest.Connect(t, srv.url, "sub-b")
	subscribe(t, a)
	subscribe(t, b)
	mqtttest.Fails(t, a.Request(map[string]any{"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users"}), "subscription_limit")
}

// TestRequestDeadline: a request past TimeoutConfig.Request is answered
// "timeout", and its database work is cancelled (the write does not
// happen); other requests are served meanwhile.
func TestRequestDeadline(t *testing.T) {
	cfg := mqttspec.DefaultConfig()
	cfg.Timeouts.Request = 300 * time.Millisecond
	var srv *testServer
	srv = startServer(t, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeRead, func(ctx *mqttspec.HookContext) error {
			switch ctx.Client.ID {
			case "slow":
				<-ctx.Context.Done() // a hook that respects its context
				return ctx.Context.Err()
			case "scanner": // a query that would run for minutes
				var n int64
				return srv.db.WithContext(ctx.Context).Raw(
					"WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r LIMIT 1000000000) SELECT count(*) FROM r").Scan(&n).Error
			}
			return nil
		})
		h.Hooks().Register(mqttspec.BeforeCreate, func(ctx *mqttspec.HookContext) error {
			if d, _ := ctx.Data.(map[string]any); d["name"] != "never" {
				return nil
			}
			// A statement that would run for minutes, in the write's transaction.
			return ctx.Tx.Native().(*gorm.DB).WithContext(ctx.Context).Exec(
				"WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r LIMIT 1000000000) " +
					"INSERT INTO users (name) SELECT 'filler' FROM r").Error
		})
	}, mqttspec.WithTimeouts(cfg.Timeouts))
	slow := mqtttest.Connect(t, srv.url, "slow")
	fast := mqtttest.Connect(t, srv.url, "fast")
	pending := slow.Send("slow-read", []byte(`{"id":"slow-read","type":"request","operation":"read","schema":"public","entity":"users"}`))
	mqtttest.OK(t, fast.Request(mqtttest.Req("read", "users", nil)))
	mqtttest.Fails(t, slow.Await(pending), "timeout")
	mqtttest.Fails(t, slow.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "never"}})), "timeout")
	require.Zero(t, countUsers(t, srv.db), "the cancelled write did not happen")
	// The answer waits for the query to return: it arrives (within the
	// client's wait) only because the query was interrupted.
	scanner := mqtttest.Connect(t, srv.url, "scanner")
	mqtttest.Fails(t, scanner.Request(mqtttest.Req("read", "users", nil)), "timeout")
	require.EqualValues(t, 3, srv.h.Stats().Timeouts)
	mqtttest.OK(t, slow.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "quick"}})))
}

// TestPacketSizeLimit: a packet larger than MaxPacketSize ends the
// connection before the server reads it; one within the limit is served.
func TestPacketSizeLimit(t *testing.T) {
	srv := startServer(t, nil, mqttspec.WithLimits(mqttspec.LimitConfig{MaxPacketSize: 4096}))
	addr := strings.TrimPrefix(srv.url, "tcp://")
	c := mqtttest.DialRawTCP(t, addr)
	c.MustConnect(mqtttest.ConnectPacket("sizer"))
	require.Equal(t, byte(1), c.Subscribe("spec/sizer/response", 1))
	small := fmt.Sprintf(`{"id":"s","type":"request","operation":"create","schema":"public","entity":"users","data":{"name":%q}}`, strings.Repeat("x", 3000))
	require.NoError(t, c.Write(mqtttest.PublishPacket("spec/sizer/request", 1, 1, false, []byte(small))))
	answer, _ := c.Expect(packets.Publish)
	require.Contains(t, string(answer.Payload), `"success":true`)

	// A header announcing 200 MB: the server closes at once, reading nothing.
	huge := mqtttest.DialRawTCP(t, addr)
	huge.MustConnect(mqtttest.ConnectPacket("huge"))
	_, err := huge.Conn().Write([]byte{0x30, 0x80, 0x80, 0xe8, 0x5f}) // PUBLISH, remaining length 200,000,000
	require.NoError(t, err)
	_, err = huge.Read()
	require.Error(t, err, "the connection is closed")
	require.EqualValues(t, 1, countUsers(t, srv.db))
}

// TestEmptyPasswordAccepted: a CONNECT with the password flag set and an
// empty password (MQTT.js password: ”, Python username_pw_set(u, ”))
// connects; the credential check sees an empty password; bad credentials
// are still refused.
func TestEmptyPasswordAccepted(t *testing.T) {
	var logs syncBuffer
	srv := startServer(t, nil, mqttspec.WithAuth(mqttspec.AuthConfig{
		ValidateCredentials: func(u, p string) bool { return u == "jwt-token" && p == "" },
	}), mqttspec.WithLogger(slogTo(&logs)))
	addr := strings.TrimPrefix(srv.url, "tcp://")
	connect := func(user string) byte {
		pk := mqtttest.ConnectPacket("js-client")
		pk.Connect.UsernameFlag, pk.Connect.Username = true, []byte(user)
		pk.Connect.PasswordFlag, pk.Connect.Password = true, []byte{}
		code, err := mqtttest.DialRawTCP(t, addr).Connect(pk)
		require.NoError(t, err)
		return code
	}
	require.Zero(t, connect("jwt-token"), "an empty password is a password")
	require.NotZero(t, connect("wrong-token"))
	require.Contains(t, logs.String(), "connection refused")
	require.Contains(t, logs.String(), "bad credentials")
}

// TestAbortedConnectionsLeaveNothing: CONNECT followed by a TCP reset, many
// times, leaves no client behind, in the handler or in the broker.
func TestAbortedConnectionsLeaveNothing(t *testing.T) {
	srv := startServer(t, nil)
	addr := strings.TrimPrefix(srv.url, "tcp://")
	broker := srv.h.Broker().(*mqttspec.EmbeddedBroker).Server()
	for i := 0; i < 300; i++ {
		c := mqtttest.DialRawTCP(t, addr)
		pk := mqtttest.ConnectPacket(fmt.Sprint("aborter-", i))
		pk.Connect.Clean = i%2 == 0 // persistent sessions expire on their own; clean ones must go now
		require.NoError(t, c.Write(pk))
		c.Reset()
	}
	cleanLeft := func() string {
		for _, cl := range broker.Clients.GetAll() {
			if !cl.Net.Inline && cl.Properties.Clean {
				return cl.ID
			}
		}
		return ""
	}
	mqtttest.Eventually(t, func() bool {
		return cleanLeft() == "" && broker.Clients.Len() <= 1+150 && srv.h.Clients().Count() <= 150
	}, "aborted clean connections are forgotten")
	// The server still serves.
	mqtttest.OK(t, mqtttest.Connect(t, srv.url, "after").Request(mqtttest.Req("read", "users", nil)))
}

// TestConnectionsPerAddress: MaxConnectionsPerAddress refuses the
// connection beyond it, and admits one again once another has closed.
func TestConnectionsPerAddress(t *testing.T) {
	srv := startServer(t, nil, mqttspec.WithLimits(mqttspec.LimitConfig{MaxConnectionsPerAddress: 2}))
	first := mqtttest.MustDialRaw(t, srv.url, "one")
	mqtttest.MustDialRaw(t, srv.url, "two")
	_, err := mqtttest.DialRaw(t, srv.url, "three")
	require.Error(t, err)
	first.Disconnect(50)
	mqtttest.Eventually(t, func() bool {
		_, err := mqtttest.DialRaw(t, srv.url, "three")
		return err == nil
	}, "a slot frees once a connection closed")
}

// TestPersistentSessionExpires: a disconnected persistent session lasts
// SessionExpiry; then its subscriptions end.
func TestPersistentSessionExpires(t *testing.T) {
	srv := startServer(t, nil, mqttspec.WithLimits(mqttspec.LimitConfig{SessionExpiry: time.Second}))
	c := mqtttest.Connect(t, srv.url, "phone", mqtttest.Persistent)
	subscribe(t, c)
	c.Disconnect(50)
	require.Equal(t, 1, srv.h.Subscriptions().Count(), "kept while the session lasts")
	mqtttest.Eventually(t, func() bool { return srv.h.Subscriptions().Count() == 0 }, "the expired session's subscription ends")
}

// TestContextOfHooksEnds: hooks see the request's context with its
// deadline.
func TestContextOfHooksEnds(t *testing.T) {
	deadlines := make(chan time.Duration, 1)
	srv := startServer(t, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeRead, func(ctx *mqttspec.HookContext) error {
			d, ok := ctx.Context.Deadline()
			if !ok {
				return errors.New("no deadline")
			}
			deadlines <- time.Until(d)
			return nil
		})
	})
	mqtttest.OK(t, mqtttest.Connect(t, srv.url, "ctx").Request(mqtttest.Req("read", "users", nil)))
	left := mqtttest.Recv(t, deadlines, "the hook's deadline")
	require.True(t, left > 0 && left <= mqttspec.DefaultRequestTimeout, "deadline in %s", left)
}

// TestCostlyFiltersStallNobody: a client that makes matching as costly as
// the limits allow (its subscriptions full of adversarial like patterns,
// records with values at the size limit) is served, and so is everyone
// else writing to the same table; what the limits refuse is refused.
func TestCostlyFiltersStallNobody(t *testing.T) {
	srv := startServer(t, nil)
	hostile := mqtttest.Connect(t, srv.url, "hostile")
	almost := "%" + strings.Repeat("a", 1997) + "b%" // scans the whole value, never matches it
	like := func(p string, or bool) map[string]any {
		f := map[string]any{"column": "name", "operator": "like", "value": p}
		if or {
			f["logic_operator"] = "OR"
		}
		return f
	}
	// Refused: five such patterns in one subscription, and a value past the size limit.
	mqtttest.Fails(t, hostile.Request(map[string]any{
		"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users",
		"options": map[string]any{"filters": []any{like(almost, false), like(almost, true), like(almost, true), like(almost, true), like(almost, true)}},
	}), "invalid_value")
	require.Zero(t, srv.h.Subscriptions().Count())
	mqtttest.Fails(t, hostile.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": strings.Repeat("a", 300000)}})), "invalid_value")
	require.Zero(t, countUsers(t, srv.db))

	// Allowed: as many subscriptions as a client may hold, each as costly as allowed.
	for i := 0; i < mqttspec.DefaultMaxSubsPerClient; i++ {
		subscribe(t, hostile, like(almost, false))
	}
	watcher := mqtttest.Connect(t, srv.url, "watcher")
	subscribe(t, watcher, like("%b", false))

	big := strings.Repeat("a", mqttspec.DefaultMaxValueBytes)
	start := time.Now()
	var wg sync.WaitGroup
	hostileDone := make(chan map[string]any, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		answer := hostile.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": big}}))
		t.Logf("the costly create was answered after %v", time.Since(start))
		hostileDone <- answer
	}()
	const writers, each = 9, 5
	answers := make(chan map[string]any, writers*each+1)
	for w := 0; w < writers; w++ {
		c := mqtttest.Connect(t, srv.url, fmt.Sprint("writer-", w))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				answers <- c.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": fmt.Sprintf("%s-%d-b", c.ID, i)}}))
			}
			t.Logf("%s's %d creates were answered after %v", c.ID, each, time.Since(start))
		}()
	}
	bystander := mqtttest.Connect(t, srv.url, "bystander")
	answers <- bystander.Request(map[string]any{"type": "ping"})
	wg.Wait()
	close(answers)
	for a := range answers {
		mqtttest.OK(t, a)
	}
	mqtttest.OK(t, <-hostileDone)
	require.EqualValues(t, writers*each+1, countUsers(t, srv.db))
	// The control: matching still works; the watcher saw every writer's record.
	for i := 0; i < writers*each; i++ {
		n := watcher.NextNote()
		require.True(t, strings.HasSuffix(n["data"].(map[string]any)["name"].(string), "-b"))
	}
}
