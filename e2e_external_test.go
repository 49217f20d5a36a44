package mqttspec_test

// End-to-end tests of the external broker mode: the handler and real paho
// clients talk through a private mosquitto started by internal/testbroker.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
	"github.com/mqttspec/mqttspec/internal/testbroker"
)

// extJSON marshals v or fails the test.
func extJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestExternalBrokerHooksSeeClient(t *testing.T) {
	var mu sync.Mutex
	connects := map[string]int{}   // BeforeConnect runs per client id
	afterConn := map[string]int{}  // AfterConnect runs per client id
	seen := map[string][]any{}     // tenant metadata seen by BeforeRead
	usernames := map[string]bool{} // usernames seen at BeforeConnect
	srv := startExternal(t, mqttspec.ExternalBrokerConfig{BrokerURL: testbroker.Mosquitto(t)}, func(h *mqttspec.Handler) {
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
	alice := mqtttest.Connect(t, srv.url, "ext-alice")
	bob := mqtttest.Connect(t, srv.url, "ext-bob")
	for i := 0; i < 3; i++ {
		mqtttest.OK(t, alice.Request(mqtttest.Req("read", "users", nil)))
		mqtttest.OK(t, bob.Request(mqtttest.Req("read", "users", nil)))
	}
	banned := mqtttest.Connect(t, srv.url, "ext-banned")
	mqtttest.Fails(t, banned.Request(mqtttest.Req("read", "users", nil)), "forbidden")
	mqtttest.Fails(t, banned.Request(map[string]any{"type": "ping"}), "forbidden")

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
	_, err := mqtttest.DialRaw(t, url, "ext-anon")
	require.Error(t, err, "anonymous connection must be refused")

	srv := startExternal(t, mqttspec.ExternalBrokerConfig{
		BrokerURL: url, Username: "mqttspec", Password: handlerPass,
	}, nil)

	// A legitimate client works end to end, notifications included.
	victim := mqtttest.Connect(t, url, "victim", mqtttest.Credentials("alice", alicePass))
	data := mqtttest.OK(t, victim.Request(map[string]any{
		"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users",
	})).(map[string]any)
	subID := data["subscription_id"].(string)

	// A spy may subscribe to anything (mosquitto grants the SUBACK) but the
	// ACL filters what it receives down to its own topics.
	spy := mqtttest.MustDialRaw(t, url, "spy", mqtttest.Credentials("mallory", malloryPass))
	codes := spy.Subscribe("spec/victim/response", "spec/victim/#", "spec/+/request", "spec/#", "#")
	t.Logf("SUBACK codes granted to the spy: %v", codes)

	rec := mqtttest.OK(t, victim.Request(mqtttest.Req("create", "users", map[string]any{
		"data": map[string]any{"name": "secret", "email": "victim@example.com"},
	}))).(map[string]any)
	n := victim.NextNote()
	require.Equal(t, subID, n["subscription_id"])
	require.Equal(t, rec, n["data"])
	got := mqtttest.OK(t, victim.Request(mqtttest.Req("read", "users", map[string]any{"record_id": fmt.Sprint(rec["id"])}))).(map[string]any)
	require.Equal(t, rec, got)

	// The victim has its answers. The handler publishes the spy's pong after
	// them on the same connection, so once the spy has its pong anything of
	// the victim's it could receive would already be in its buffer.
	require.NoError(t, spy.Publish("spec/spy/request", 1, extJSON(t, map[string]any{"id": "spy-ping", "type": "ping"})))
	var spyGot []mqtttest.Msg
	for pong := false; !pong; {
		m := mqtttest.Recv(t, spy.Msgs, "the spy's pong")
		spyGot = append(spyGot, m)
		pong = m.Topic == "spec/spy/response" && strings.Contains(m.Payload, `"spy-ping"`)
	}
	for _, m := range spyGot {
		require.True(t, strings.HasPrefix(m.Topic, "spec/spy/"), "spy received %s: %s", m.Topic, m.Payload)
	}

	// A forger publishing on the victim's request topic achieves nothing:
	// mosquitto drops the message (2.0.11 acknowledges it, then closes the
	// forger's connection). Each forged message is sent on a new connection.
	forge := func(id, topic string, msg map[string]any) {
		t.Helper()
		f := mqtttest.MustDialRaw(t, url, id, mqtttest.Credentials("mallory", malloryPass))
		t.Logf("%s publishing on %s: %v", id, topic, f.Publish(topic, 1, extJSON(t, msg)))
	}
	forge("forger-1", "spec/victim/request", mqtttest.Req("create", "users", map[string]any{
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
	pong := victim.Request(map[string]any{"type": "ping"})
	require.Equal(t, "pong", pong["type"])
	mqtttest.Nothing(t, victim.Orphans, "answer the victim did not ask for")
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
	srv := startExternal(t, mqttspec.ExternalBrokerConfig{BrokerURL: testbroker.Mosquitto(t)}, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeConnect, func(ctx *mqttspec.HookContext) error {
			if ctx.Client.ID == "ext-passer" {
				passerConnects.Add(1)
			}
			return nil
		})
	}, mqttspec.WithLimits(mqttspec.LimitConfig{ExternalClientIdle: 50 * time.Millisecond}))
	passer := mqtttest.Connect(t, srv.url, "ext-passer")
	stayer := mqtttest.Connect(t, srv.url, "ext-stayer")
	subscribe(t, stayer)
	mqtttest.OK(t, passer.Request(mqtttest.Req("read", "users", nil)))
	mqtttest.Eventually(t, func() bool {
		_, known := srv.h.Clients().GetClient("ext-passer")
		return !known
	}, "the idle client is forgotten")
	_, kept := srv.h.Clients().GetClient("ext-stayer")
	require.True(t, kept, "a client with a subscription must be kept")
	mqtttest.OK(t, passer.Request(mqtttest.Req("read", "users", nil)))
	require.Equal(t, int32(2), passerConnects.Load(), "a forgotten client is registered again (BeforeConnect) by its next request")
}

// TestStartProvesTheACLLetsTheHandlerServe: under the documented ACL a
// handler that connects as an ordinary user (it may not read other
// clients' requests) fails to start, saying what the ACL must allow,
// instead of starting and answering nothing. Control: the handler's user
// starts on the same broker and serves.
func TestStartProvesTheACLLetsTheHandlerServe(t *testing.T) {
	const handlerPass, alicePass = "handler-secret", "alice-secret"
	passwd := extPasswordFile(t, "mqttspec", handlerPass, "alice", alicePass)
	broker := testbroker.NewMosquitto(t, extExampleConfig(t, passwd))

	h, err := mqttspec.NewHandlerWithGORM(openSQLite(t), mqttspec.WithLogger(slog.New(slog.DiscardHandler)),
		mqttspec.WithExternalBroker(mqttspec.ExternalBrokerConfig{
			BrokerURL: broker.URL, ClientID: "handler-as-alice", Username: "alice", Password: alicePass,
			ConnectTimeout: time.Second,
		}))
	require.NoError(t, err)
	start := time.Now()
	err = h.Start()
	require.ErrorContains(t, err, "self-check")
	require.ErrorContains(t, err, "read spec/+/request")
	require.Less(t, time.Since(start), 5*time.Second, "bounded by ConnectTimeout")
	require.NoError(t, h.Shutdown())

	srv := startExternal(t, mqttspec.ExternalBrokerConfig{BrokerURL: broker.URL, Username: "mqttspec", Password: handlerPass}, nil)
	alice := mqtttest.Connect(t, srv.url, "alice-1", mqtttest.Credentials("alice", alicePass))
	mqtttest.OK(t, alice.Request(map[string]any{"type": "ping"}))
}

// TestWillEndsAnExternalClient: with an external broker the handler hears
// of a client that vanished through the client's will, a
// {"type":"disconnect"} on its own request topic: the disconnect hooks run
// and its subscriptions end. Controls: a client without a will keeps its
// subscription (the handler cannot know); one that says disconnect before
// leaving ends it the same way; a disconnect from a client the handler
// does not know admits nobody.
func TestWillEndsAnExternalClient(t *testing.T) {
	gone := make(chan string, 10)
	var admitted sync.Map
	srv := startExternal(t, mqttspec.ExternalBrokerConfig{BrokerURL: testbroker.Mosquitto(t)}, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeConnect, func(ctx *mqttspec.HookContext) error {
			admitted.Store(ctx.Client.ID, true)
			return nil
		})
		h.Hooks().Register(mqttspec.AfterDisconnect, func(ctx *mqttspec.HookContext) error {
			gone <- ctx.Client.ID
			return nil
		})
	})
	addr := strings.TrimPrefix(srv.url, "tcp://")
	subscribeRaw := func(id string, will bool) *mqtttest.Raw {
		t.Helper()
		return mqtttest.Subscriber(t, addr, id, will)
	}

	withWill := subscribeRaw("dev-will", true)
	withoutWill := subscribeRaw("dev-plain", false)
	require.Equal(t, 2, srv.h.Subscriptions().Count())

	withWill.Reset() // the connection drops: mosquitto publishes the will
	require.Equal(t, "dev-will", mqtttest.Recv(t, gone, "the will's disconnect"))
	require.Equal(t, 1, srv.h.Subscriptions().Count(), "the vanished client's subscription ended")

	withoutWill.Reset()
	mqtttest.Nothing(t, gone, "a disconnect nobody told the handler of")
	require.Equal(t, 1, srv.h.Subscriptions().Count(), "without a will the handler cannot know")

	// Saying it before leaving works the same way.
	polite := mqtttest.Connect(t, srv.url, "dev-polite")
	mqtttest.OK(t, polite.Request(map[string]any{"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users"}))
	mqtttest.OK(t, polite.Request(map[string]any{"type": "disconnect"}))
	require.Equal(t, "dev-polite", mqtttest.Recv(t, gone, "the polite disconnect"))
	require.Equal(t, 1, srv.h.Subscriptions().Count())

	// A disconnect from a stranger is answered and admits nobody.
	stranger := mqtttest.Connect(t, srv.url, "stranger")
	mqtttest.OK(t, stranger.Request(map[string]any{"type": "disconnect"}))
	_, seen := admitted.Load("stranger")
	require.False(t, seen, "BeforeConnect did not run for a disconnect")
	mqtttest.Nothing(t, gone, "a disconnect hook for the stranger")
}

// TestDisconnectMessageOnTheEmbeddedBroker: the embedded broker reports
// disconnects itself, so a disconnect message (a will that fires after the
// connection is gone, or a client saying it) changes nothing.
func TestDisconnectMessageOnTheEmbeddedBroker(t *testing.T) {
	srv := startServer(t, nil)
	c := mqtttest.Connect(t, srv.url, "dev")
	mqtttest.OK(t, c.Request(map[string]any{"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users"}))
	mqtttest.OK(t, c.Request(map[string]any{"type": "disconnect"}))
	require.Equal(t, 1, srv.h.Subscriptions().Count(), "the connection is still there: so is its subscription")
}

// TestClientIDIsUsername: with mosquitto's use_username_as_clientid the
// client id is the login, and ClientIDIsUsername gives hooks that identity
// as Client.Username. Control: without the option the handler does not
// know its own id at that broker, and Start says so instead of serving
// nothing.
func TestClientIDIsUsername(t *testing.T) {
	const handlerPass, alicePass = "handler-secret", "alice-secret"
	passwd := extPasswordFile(t, "mqttspec", handlerPass, "alice", alicePass)
	broker := testbroker.NewMosquitto(t, extExampleConfig(t, passwd)+"\nuse_username_as_clientid true")
	cfg := mqttspec.ExternalBrokerConfig{BrokerURL: broker.URL, ClientID: "handler-1", Username: "mqttspec", Password: handlerPass,
		ConnectTimeout: time.Second}

	h, err := mqttspec.NewHandlerWithGORM(openSQLite(t), mqttspec.WithLogger(slog.New(slog.DiscardHandler)), mqttspec.WithExternalBroker(cfg))
	require.NoError(t, err)
	require.ErrorContains(t, h.Start(), "ClientIDIsUsername")
	require.NoError(t, h.Shutdown())

	usernames := make(chan string, 4)
	cfg.ClientIDIsUsername = true
	srv := startExternal(t, cfg, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeConnect, func(ctx *mqttspec.HookContext) error {
			usernames <- ctx.Client.Username
			return nil
		})
	})
	// The broker names the connection after its user: "alice".
	alice := mqtttest.Connect(t, srv.url, "alice", mqtttest.Credentials("alice", alicePass))
	mqtttest.OK(t, alice.Request(map[string]any{"type": "ping"}))
	require.Equal(t, "alice", mqtttest.Recv(t, usernames, "BeforeConnect"))
}
