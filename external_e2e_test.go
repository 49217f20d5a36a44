package mqttspec_test

// End-to-end tests of the external broker mode: the handler and real paho
// clients talk through a private mosquitto started by internal/testbroker.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/testbroker"
)

// extServerSeq makes the handlers' MQTT client ids unique.
var extServerSeq atomic.Int64

// extStartServer starts a handler connected to the external broker of
// cfg.BrokerURL (a unique ClientID is filled in when empty), with the test
// models registered, and stops it when the test ends. setup may add hooks.
func extStartServer(t testing.TB, cfg mqttspec.ExternalBrokerConfig, setup func(h *mqttspec.Handler), opts ...mqttspec.Option) *testServer {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID = fmt.Sprintf("mqttspec-server-%d-%d", os.Getpid(), extServerSeq.Add(1))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = waitTimeout
	}
	return startServer(t, setup, append([]mqttspec.Option{mqttspec.WithExternalBroker(cfg)}, opts...)...)
}

// extCredentials is a connectClient option that sets username and password.
func extCredentials(user, pass string) clientOpt {
	return func(o *mqtt.ClientOptions) { o.SetUsername(user).SetPassword(pass) }
}

// extMsg is one message received by an extRawClient.
type extMsg struct {
	topic   string
	payload []byte
}

// extRawClient is a bare paho client that records every message it
// receives, in arrival order.
type extRawClient struct {
	t    testing.TB
	id   string
	c    mqtt.Client
	msgs chan extMsg
}

// extConnectRaw connects a paho client (credentials optional) that records
// what it receives; it disconnects when the test ends.
func extConnectRaw(t testing.TB, url, id, user, pass string) *extRawClient {
	t.Helper()
	rc := &extRawClient{t: t, id: id, msgs: make(chan extMsg, 4096)}
	o := newClientOptions(url, id).SetOrderMatters(true).SetUsername(user).SetPassword(pass).
		SetDefaultPublishHandler(rc.record)
	rc.c = mqtt.NewClient(o)
	tok := rc.c.Connect()
	require.True(t, tok.WaitTimeout(waitTimeout), "%s: connect timed out", id)
	require.NoError(t, tok.Error(), "%s: connect", id)
	t.Cleanup(func() { rc.c.Disconnect(50) })
	return rc
}

func (rc *extRawClient) record(_ mqtt.Client, m mqtt.Message) {
	select {
	case rc.msgs <- extMsg{topic: m.Topic(), payload: append([]byte(nil), m.Payload()...)}:
	default:
		rc.t.Errorf("%s: message buffer full, dropped %s", rc.id, m.Topic())
	}
}

// subscribe subscribes to filters at QoS 1 and returns the SUBACK codes.
func (rc *extRawClient) subscribe(filters ...string) map[string]byte {
	rc.t.Helper()
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	tok := rc.c.SubscribeMultiple(m, rc.record)
	require.True(rc.t, tok.WaitTimeout(waitTimeout), "%s: subscribe timed out", rc.id)
	require.NoError(rc.t, tok.Error())
	return tok.(*mqtt.SubscribeToken).Result()
}

// publish publishes payload at QoS 1 and waits for the broker's PUBACK.
func (rc *extRawClient) publish(topic string, payload []byte) {
	rc.t.Helper()
	require.NoError(rc.t, rc.tryPublish(topic, payload))
}

// tryPublish publishes payload at QoS 1 and waits until the broker has
// acknowledged it or closed the connection (mosquitto does either with a
// publish its ACL denies; MQTT 3.1.1 allows both), returning the error.
func (rc *extRawClient) tryPublish(topic string, payload []byte) error {
	rc.t.Helper()
	tok := rc.c.Publish(topic, 1, false, payload)
	require.True(rc.t, tok.WaitTimeout(waitTimeout), "%s: publish timed out", rc.id)
	return tok.Error()
}

// extJSON marshals v or fails the test.
func extJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestExternalBrokerCRUD(t *testing.T) {
	srv := extStartServer(t, mqttspec.ExternalBrokerConfig{BrokerURL: testbroker.Mosquitto(t)}, nil)
	c := connectClient(t, srv.url, "ext-crud")

	created := requireOK(t, c.request(req("create", "users", map[string]any{
		"data": map[string]any{"name": "Ada", "email": "ada@example.com", "age": 36, "active": true},
	}))).(map[string]any)
	require.NotZero(t, created["id"])
	require.Equal(t, "new", created["status"], "database default must be returned")
	id := fmt.Sprint(created["id"])

	got := requireOK(t, c.request(req("read", "users", map[string]any{"record_id": id}))).(map[string]any)
	require.Equal(t, created, got)

	updated := requireOK(t, c.request(req("update", "users", map[string]any{
		"record_id": id, "data": map[string]any{"status": "active", "age": 37},
	}))).(map[string]any)
	require.Equal(t, "active", updated["status"])
	require.EqualValues(t, 37, updated["age"])
	require.Equal(t, "Ada", updated["name"], "absent field must keep its value")

	for _, name := range []string{"Bob", "Cy"} {
		requireOK(t, c.request(req("create", "users", map[string]any{
			"data": map[string]any{"name": name, "status": "inactive", "age": 20},
		})))
	}
	list := c.request(req("read", "users", map[string]any{"options": map[string]any{
		"filters": []any{
			map[string]any{"column": "status", "operator": "eq", "value": "inactive"},
			map[string]any{"column": "age", "operator": "lt", "value": "30"},
		},
		"sort": []any{map[string]any{"column": "name", "direction": "desc"}},
	}}))
	var names []string
	for _, r := range requireOK(t, list).([]any) {
		names = append(names, r.(map[string]any)["name"].(string))
	}
	require.Equal(t, []string{"Cy", "Bob"}, names)
	require.EqualValues(t, 2, list["metadata"].(map[string]any)["total"])

	note := requireOK(t, c.request(req("create", "notes", map[string]any{"data": map[string]any{"text": "hi"}}))).(map[string]any)
	require.Len(t, note["id"], 36, "string primary key must be filled with a UUID")

	deleted := requireOK(t, c.request(req("delete", "users", map[string]any{"record_id": id}))).(map[string]any)
	require.Equal(t, "Ada", deleted["name"])
	requireError(t, c.request(req("read", "users", map[string]any{"record_id": id})), "not_found")
	require.EqualValues(t, 2, countUsers(t, srv.db))

	// Errors are coded answers, not silence.
	requireError(t, c.request(req("read", "ghosts", nil)), "unknown_entity")
	requireError(t, c.request(req("read", "users", map[string]any{"options": map[string]any{
		"filters": []any{map[string]any{"column": "pasword", "operator": "eq", "value": "x"}},
	}})), "unknown_column")
	requireError(t, c.request(req("create", "users", map[string]any{"data": map[string]any{"name": "x", "pasword": "y"}})), "unknown_column")
	requireError(t, c.request(req("read", "users", map[string]any{"options": map[string]any{
		"filters": []any{map[string]any{"column": "age", "operator": "eq", "value": "old"}},
	}})), "invalid_value")
	requireError(t, c.request(req("read", "users", map[string]any{"options": map[string]any{
		"filters": []any{map[string]any{"column": "age", "operator": "regex", "value": "1"}},
	}})), "unknown_operator")
	require.EqualValues(t, 2, countUsers(t, srv.db), "failed requests must not write")

	// A malformed payload gets an answer too (without id: an orphan).
	c.send("", []byte("not json"))
	select {
	case r := <-c.orphans:
		requireError(t, r, "invalid_json")
	case <-time.After(waitTimeout):
		t.Fatal("no answer to a malformed request")
	}
}

func TestExternalBrokerQoS1NoDeadlock(t *testing.T) {
	const clients, perClient = 8, 100
	srv := extStartServer(t, mqttspec.ExternalBrokerConfig{BrokerURL: testbroker.Mosquitto(t)}, nil)
	deadline := time.Now().Add(3 * waitTimeout)

	raws := make([]*extRawClient, clients)
	for i := range raws {
		raws[i] = extConnectRaw(t, srv.url, fmt.Sprintf("ext-qos-%d", i), "", "")
		raws[i].subscribe("spec/" + raws[i].id + "/response")
	}

	start := time.Now()
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for _, rc := range raws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- extPipeline(rc, perClient, deadline)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	t.Logf("%d QoS 1 requests over %d clients answered in %s", clients*perClient, clients, time.Since(start))
	require.EqualValues(t, clients*perClient/2, countUsers(t, srv.db))
}

// extPipeline publishes n QoS 1 requests of rc without waiting (creates and
// pings alternating), then collects the answers and checks that each one
// carries the id of the request in the same position.
func extPipeline(rc *extRawClient, n int, deadline time.Time) error {
	topic := "spec/" + rc.id + "/request"
	toks := make([]mqtt.Token, 0, n)
	for i := 0; i < n; i++ {
		msg := map[string]any{"id": fmt.Sprintf("%s-%d", rc.id, i), "type": "ping"}
		if i%2 == 0 {
			msg = map[string]any{"id": msg["id"], "type": "request", "operation": "create", "schema": "public",
				"entity": "users", "data": map[string]any{"name": msg["id"]}}
		}
		raw, err := json.Marshal(msg)
		if err != nil {
			return err
		}
		toks = append(toks, rc.c.Publish(topic, 1, false, raw))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(time.Until(deadline)) {
			return fmt.Errorf("%s: request %d not acknowledged by the broker in time", rc.id, i)
		}
		if err := tok.Error(); err != nil {
			return fmt.Errorf("%s: request %d: %w", rc.id, i, err)
		}
	}
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
	for i := 0; i < n; i++ {
		var m extMsg
		select {
		case m = <-rc.msgs:
		case <-timeout.C:
			return fmt.Errorf("%s: only %d of %d answers before the deadline", rc.id, i, n)
		}
		var resp map[string]any
		if err := json.Unmarshal(m.payload, &resp); err != nil {
			return fmt.Errorf("%s: answer %d is not JSON: %q", rc.id, i, m.payload)
		}
		want := fmt.Sprintf("%s-%d", rc.id, i)
		if resp["id"] != want || resp["success"] != true {
			return fmt.Errorf("%s: answer %d: want a successful answer to %s, got %v", rc.id, i, want, resp)
		}
		if i%2 == 0 {
			if data, _ := resp["data"].(map[string]any); data == nil || data["name"] != want {
				return fmt.Errorf("%s: answer %d: created record %v, want name %s", rc.id, i, resp["data"], want)
			}
		} else if resp["type"] != "pong" {
			return fmt.Errorf("%s: answer %d: want pong, got %v", rc.id, i, resp)
		}
	}
	return nil
}

func TestExternalBrokerSubscriptions(t *testing.T) {
	srv := extStartServer(t, mqttspec.ExternalBrokerConfig{BrokerURL: testbroker.Mosquitto(t)}, nil)
	watcher := connectClient(t, srv.url, "ext-watcher")
	writer := connectClient(t, srv.url, "ext-writer")

	data := requireOK(t, watcher.request(map[string]any{
		"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users",
		"options": map[string]any{"filters": []any{map[string]any{"column": "status", "operator": "eq", "value": "active"}}},
	})).(map[string]any)
	subID := data["subscription_id"].(string)
	require.Equal(t, "spec/ext-watcher/notify/"+subID, data["notify_topic"])

	rec := requireOK(t, writer.request(req("create", "users", map[string]any{"data": map[string]any{"name": "m", "status": "active"}}))).(map[string]any)
	n := watcher.nextNote()
	require.Equal(t, "create", n["operation"])
	require.Equal(t, subID, n["subscription_id"])
	require.Equal(t, "spec/ext-watcher/notify/"+subID, n["_topic"])
	require.Equal(t, rec, n["data"])
	require.EqualValues(t, 1, n["seq"])

	requireOK(t, writer.request(req("create", "users", map[string]any{"data": map[string]any{"name": "x", "status": "inactive"}})))
	watcher.noNote(writer)

	requireOK(t, writer.request(req("update", "users", map[string]any{"record_id": fmt.Sprint(rec["id"]), "data": map[string]any{"status": "gone"}})))
	n = watcher.nextNote()
	require.Equal(t, "update", n["operation"])
	require.Equal(t, false, n["matches"])
	require.EqualValues(t, 2, n["seq"])

	// Only the owner can unsubscribe.
	requireError(t, writer.request(map[string]any{"type": "subscription", "operation": "unsubscribe", "subscription_id": subID}), "not_found")
	requireOK(t, watcher.request(map[string]any{"type": "subscription", "operation": "unsubscribe", "subscription_id": subID}))
	requireOK(t, writer.request(req("create", "users", map[string]any{"data": map[string]any{"name": "late", "status": "active"}})))
	watcher.noNote(writer)
	require.Zero(t, srv.h.Subscriptions().Count())
}

func TestExternalBrokerHooksSeeClient(t *testing.T) {
	var mu sync.Mutex
	connects := map[string]int{}   // BeforeConnect runs per client id
	afterConn := map[string]int{}  // AfterConnect runs per client id
	seen := map[string][]any{}     // tenant metadata seen by BeforeRead
	usernames := map[string]bool{} // usernames seen at BeforeConnect
	srv := extStartServer(t, mqttspec.ExternalBrokerConfig{BrokerURL: testbroker.Mosquitto(t)}, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeConnect, func(ctx *mqttspec.HookContext) error {
			mu.Lock()
			connects[ctx.Client.ID]++
			usernames[ctx.Client.Username] = true
			mu.Unlock()
			if ctx.Client.ID == "ext-banned" {
				return mqttspec.ErrForbidden
			}
			ctx.Client.SetMetadata("tenant", "t-"+ctx.Client.ID)
			return nil
		})
		h.Hooks().Register(mqttspec.AfterConnect, func(ctx *mqttspec.HookContext) error {
			mu.Lock()
			afterConn[ctx.Client.ID]++
			mu.Unlock()
			return nil
		})
		h.Hooks().Register(mqttspec.BeforeRead, func(ctx *mqttspec.HookContext) error {
			client := ctx.Metadata["mqtt_client"].(*mqttspec.Client)
			tenant, _ := client.GetMetadata("tenant")
			mu.Lock()
			seen[client.ID] = append(seen[client.ID], tenant)
			mu.Unlock()
			return nil
		})
	})
	alice := connectClient(t, srv.url, "ext-alice")
	bob := connectClient(t, srv.url, "ext-bob")
	for i := 0; i < 3; i++ {
		requireOK(t, alice.request(req("read", "users", nil)))
		requireOK(t, bob.request(req("read", "users", nil)))
	}
	banned := connectClient(t, srv.url, "ext-banned")
	requireError(t, banned.request(req("read", "users", nil)), "forbidden")
	requireError(t, banned.request(map[string]any{"type": "ping"}), "forbidden")

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string]int{"ext-alice": 1, "ext-bob": 1, "ext-banned": 2}, connects,
		"BeforeConnect runs once per accepted client id; a refused id is asked again")
	require.Equal(t, map[string]int{"ext-alice": 1, "ext-bob": 1}, afterConn)
	require.Equal(t, map[string]bool{"": true}, usernames, "the external mode knows no username")
	require.Equal(t, map[string][]any{
		"ext-alice": {"t-ext-alice", "t-ext-alice", "t-ext-alice"},
		"ext-bob":   {"t-ext-bob", "t-ext-bob", "t-ext-bob"},
	}, seen)
}

// extExampleDir holds the documented mosquitto configuration and ACL.
const extExampleDir = "testdata/mosquitto"

// extExampleConfig returns the lines of the documented mosquitto.conf for
// the test broker: without its listener (testbroker adds one on a free
// port) and with the password and ACL files pointed at passwd and the
// documented ACL file.
func extExampleConfig(t testing.TB, passwd string) string {
	t.Helper()
	acl, err := filepath.Abs(filepath.Join(extExampleDir, "mqttspec.acl"))
	require.NoError(t, err)
	f, err := os.Open(filepath.Join(extExampleDir, "mosquitto.conf"))
	require.NoError(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch key, _, _ := strings.Cut(strings.TrimSpace(line), " "); key {
		case "listener":
			continue
		case "password_file":
			line = "password_file " + passwd
		case "acl_file":
			line = "acl_file " + acl
		}
		out = append(out, line)
	}
	require.NoError(t, sc.Err())
	if os.Geteuid() == 0 {
		// Started as root, mosquitto drops to the user "mosquitto", which
		// cannot read the test's private temporary directory.
		out = append(out, "user root")
	}
	return strings.Join(out, "\n")
}

// extPasswordFile writes a mosquitto password file with users (name,
// password pairs) using mosquitto_passwd.
func extPasswordFile(t testing.TB, users ...string) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mosquitto_passwd not installed (apt-get install -y mosquitto)")
		}
		t.Skip("mosquitto_passwd not installed (apt-get install -y mosquitto)")
	}
	path := filepath.Join(t.TempDir(), "passwd")
	for i := 0; i < len(users); i += 2 {
		args := []string{"-b", path, users[i], users[i+1]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		out, err := exec.Command(bin, args...).CombinedOutput()
		require.NoError(t, err, "mosquitto_passwd: %s", out)
	}
	return path
}

func TestMosquittoACLExample(t *testing.T) {
	const handlerPass, alicePass, malloryPass = "handler-secret", "alice-secret", "mallory-secret"
	passwd := extPasswordFile(t, "mqttspec", handlerPass, "alice", alicePass, "mallory", malloryPass)
	broker := testbroker.NewMosquitto(t, extExampleConfig(t, passwd)+"\nlog_type all")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", broker.Output())
		}
	})
	url := broker.URL

	// The config refuses connections without credentials.
	anon := mqtt.NewClient(newClientOptions(url, "ext-anon"))
	tok := anon.Connect()
	require.True(t, tok.WaitTimeout(waitTimeout))
	require.Error(t, tok.Error(), "anonymous connection must be refused")

	srv := extStartServer(t, mqttspec.ExternalBrokerConfig{
		BrokerURL: url, Username: "mqttspec", Password: handlerPass,
	}, nil)

	// A legitimate client works end to end, notifications included.
	victim := connectClient(t, url, "victim", extCredentials("alice", alicePass))
	data := requireOK(t, victim.request(map[string]any{
		"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users",
	})).(map[string]any)
	subID := data["subscription_id"].(string)

	// A spy may subscribe to anything (mosquitto grants the SUBACK) but the
	// ACL filters what it receives down to its own topics.
	spy := extConnectRaw(t, url, "spy", "mallory", malloryPass)
	codes := spy.subscribe("spec/victim/response", "spec/victim/#", "spec/+/request", "spec/#", "#")
	t.Logf("SUBACK codes granted to the spy: %v", codes)

	rec := requireOK(t, victim.request(req("create", "users", map[string]any{
		"data": map[string]any{"name": "secret", "email": "victim@example.com"},
	}))).(map[string]any)
	n := victim.nextNote()
	require.Equal(t, subID, n["subscription_id"])
	require.Equal(t, rec, n["data"])
	got := requireOK(t, victim.request(req("read", "users", map[string]any{"record_id": fmt.Sprint(rec["id"])}))).(map[string]any)
	require.Equal(t, rec, got)

	// The victim has its answers. The handler publishes the spy's pong after
	// them on the same connection, so once the spy has its pong anything of
	// the victim's it could receive would already be in its buffer.
	spy.publish("spec/spy/request", extJSON(t, map[string]any{"id": "spy-ping", "type": "ping"}))
	var spyGot []extMsg
	for pong := false; !pong; {
		select {
		case m := <-spy.msgs:
			spyGot = append(spyGot, m)
			pong = m.topic == "spec/spy/response" && strings.Contains(string(m.payload), `"spy-ping"`)
		case <-time.After(waitTimeout):
			t.Fatalf("spy got no pong; received %d messages", len(spyGot))
		}
	}
	for _, m := range spyGot {
		require.True(t, strings.HasPrefix(m.topic, "spec/spy/"), "spy received %s: %s", m.topic, m.payload)
	}

	// A forger publishing on the victim's request topic achieves nothing:
	// mosquitto drops the message (2.0.11 acknowledges it, then closes the
	// forger's connection). Each forged message is sent on a new connection.
	forge := func(id, topic string, msg map[string]any) {
		t.Helper()
		f := extConnectRaw(t, url, id, "mallory", malloryPass)
		t.Logf("%s publishing on %s: %v", id, topic, f.tryPublish(topic, extJSON(t, msg)))
	}
	forge("forger-1", "spec/victim/request", req("create", "users", map[string]any{
		"id": "forged-1", "data": map[string]any{"name": "forged"},
	}))
	forge("forger-2", "spec/victim/request", map[string]any{
		"id": "forged-2", "type": "subscription", "operation": "unsubscribe", "subscription_id": subID,
	})
	// Nor can mallory answer in the handler's place.
	forge("forger-3", "spec/victim/response", map[string]any{"id": "forged-3", "type": "response", "success": true})
	// mosquitto handled the forged messages before the victim's ping, so had
	// they been routed the victim would have their answers (or the forged
	// response) before its pong: the handler answers one topic's requests in
	// order, on one connection.
	pong := victim.request(map[string]any{"type": "ping"})
	require.Equal(t, "pong", pong["type"])
	select {
	case r := <-victim.orphans:
		t.Fatalf("victim received an answer it did not ask for: %v", r)
	default:
	}
	require.EqualValues(t, 1, countUsers(t, srv.db), "forged create must not be stored")
	_, ok := srv.h.Subscriptions().GetSubscription(subID)
	require.True(t, ok, "forged unsubscribe must not remove the victim's subscription")
}

// TestMosquittoExampleIsDocumented keeps the README's "External broker"
// section showing exactly the files TestMosquittoACLExample runs.
func TestMosquittoExampleIsDocumented(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	for _, name := range []string{"mosquitto.conf", "mqttspec.acl"} {
		file, err := os.ReadFile(filepath.Join(extExampleDir, name))
		require.NoError(t, err)
		require.Contains(t, string(readme), "```\n"+string(file)+"```\n",
			"README must show %s/%s verbatim", extExampleDir, name)
	}
}

// TestExternalBrokerForgetsIdleClients: an external broker reports no
// disconnects, so clients without subscriptions are forgotten after
// LimitConfig.ExternalClientIdle; subscribers are kept.
func TestExternalBrokerForgetsIdleClients(t *testing.T) {
	var passerConnects atomic.Int32
	srv := extStartServer(t, mqttspec.ExternalBrokerConfig{BrokerURL: testbroker.Mosquitto(t)}, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeConnect, func(ctx *mqttspec.HookContext) error {
			if ctx.Client.ID == "ext-passer" {
				passerConnects.Add(1)
			}
			return nil
		})
	}, mqttspec.WithLimits(mqttspec.LimitConfig{ExternalClientIdle: 50 * time.Millisecond}))
	passer := connectClient(t, srv.url, "ext-passer")
	stayer := connectClient(t, srv.url, "ext-stayer")
	subscribe(t, stayer)
	requireOK(t, passer.request(req("read", "users", nil)))
	deadline := time.Now().Add(waitTimeout)
	for {
		if _, known := srv.h.Clients().GetClient("ext-passer"); !known {
			break
		}
		require.True(t, time.Now().Before(deadline), "idle client not forgotten")
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	_, kept := srv.h.Clients().GetClient("ext-stayer")
	require.True(t, kept, "a client with a subscription must be kept")
	requireOK(t, passer.request(req("read", "users", nil)))
	require.Equal(t, int32(2), passerConnects.Load(), "a forgotten client is registered again (BeforeConnect) by its next request")
}
