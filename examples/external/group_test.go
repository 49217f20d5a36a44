package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/client"
	"github.com/mqttspec/mqttspec/internal/group"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
	"github.com/mqttspec/mqttspec/internal/testbroker"
	"github.com/mqttspec/mqttspec/internal/testdb"
)

// failoverRetry is how long a test client waits for an answer before it
// sends the same request (same id and payload) again.
const failoverRetry = time.Second

// failoverBound is the longest a client of a killed member may go without
// an answer: the broker publishes the will at once (the socket closes),
// so the bound is the client's retry interval plus slack for a loaded
// machine.
const failoverBound = failoverRetry + 4*time.Second

// instance is a running examples/external process.
type instance struct {
	id   string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  []string
	seen chan string // log lines, for waiting on one
}

// buildExample compiles this example once per test binary.
var buildExample = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mqttspec-external-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "external")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// launch starts an instance of group g and waits until it serves.
func launch(t *testing.T, id, brokerURL, dsn string) *instance {
	t.Helper()
	return launchWith(t, id, nil, "-broker", brokerURL, "-client-id", id, "-group", "g", "-db", dsn)
}

// launchWith starts the example with args (and env added to the
// environment) and waits until it serves.
func launchWith(t *testing.T, id string, env []string, args ...string) *instance {
	t.Helper()
	bin, err := buildExample()
	require.NoError(t, err)
	in := &instance{id: id, done: make(chan struct{}), seen: make(chan string, 1000)}
	in.cmd = exec.Command(bin, args...)
	in.cmd.Env = append(os.Environ(), env...)
	in.cmd.Dir = t.TempDir() // where a default SQLite file goes
	in.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := in.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, in.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			in.mu.Lock()
			in.log = append(in.log, sc.Text())
			in.mu.Unlock()
			select {
			case in.seen <- sc.Text():
			default:
			}
		}
	}()
	go func() { _ = in.cmd.Wait(); close(in.done) }()
	t.Cleanup(func() {
		_ = in.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-in.done:
		case <-time.After(15 * time.Second):
			_ = in.cmd.Process.Kill()
			<-in.done
		}
		if t.Failed() {
			in.mu.Lock()
			t.Logf("%s log:\n%s", id, strings.Join(in.log, "\n"))
			in.mu.Unlock()
		}
	})
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line := <-in.seen:
			if strings.Contains(line, "serving public.users") {
				return in
			}
		case <-in.done:
			t.Fatalf("%s exited before serving", id)
		case <-deadline:
			t.Fatalf("%s did not start serving", id)
		}
	}
}

// kill ends the instance with SIGKILL: no clean-up of any kind runs.
func (in *instance) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, in.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not die", in.id)
	}
}

// askUntilAnswered sends msg and sends it again (same id and payload)
// every failoverRetry until it is answered or the deadline passes.
func askUntilAnswered(t *testing.T, c *mqtttest.Client, msg map[string]any, deadline time.Time) map[string]any {
	t.Helper()
	raw, err := json.Marshal(msg)
	require.NoError(t, err)
	id := msg["id"].(string)
	for time.Now().Before(deadline) {
		select {
		case resp := <-c.Send(id, raw):
			return resp
		case <-time.After(failoverRetry):
		}
	}
	t.Fatalf("%s: request %s never answered", c.ID, id)
	return nil
}

func TestGroupFailover(t *testing.T) {
	for _, engine := range []string{"mosquitto", "nats"} {
		t.Run(engine, func(t *testing.T) {
			var memberURLs []string
			var clientURL string
			if engine == "mosquitto" {
				url := testbroker.Mosquitto(t)
				memberURLs, clientURL = []string{url, url, url}, url
			} else {
				urls := testbroker.NATSCluster(t, 3)
				memberURLs, clientURL = []string{urls[1], urls[2], urls[1]}, urls[0]
			}
			dsn := testdb.PostgresDSN(t)
			ids := []string{"member-1", "member-2", "member-3"}
			instances := map[string]*instance{}
			var wg sync.WaitGroup
			var mu sync.Mutex
			for i, id := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					in := launch(t, id, memberURLs[i], dsn)
					mu.Lock()
					instances[id] = in
					mu.Unlock()
				}()
			}
			wg.Wait()
			require.Len(t, instances, 3)

			// The victim serves the watcher and some of the workers.
			const workers, perWorker = 10, 24
			victim := group.Owner(ids, "watcher")
			var clients []*mqtttest.Client
			victimClients := map[string]bool{}
			for w := range workers {
				id := fmt.Sprintf("%s-worker-%d", engine, w)
				clients = append(clients, mqtttest.Connect(t, clientURL, id))
				victimClients[id] = group.Owner(ids, id) == victim
			}
			victims := 0
			for _, v := range victimClients {
				if v {
					victims++
				}
			}
			require.Positive(t, victims, "the killed member serves some of the workers")
			watcher := mqtttest.Connect(t, clientURL, "watcher")
			until := time.Now().Add(2 * time.Minute)
			// Every member serves once the group has settled.
			for _, c := range append([]*mqtttest.Client{watcher}, clients...) {
				resp := askUntilAnswered(t, c, map[string]any{"id": "hello-" + c.ID, "type": "ping"}, until)
				require.Equal(t, "pong", resp["type"])
			}
			sub := askUntilAnswered(t, watcher, map[string]any{"id": "sub-1", "type": "subscription", "operation": "subscribe",
				"schema": "public", "entity": "users", "options": map[string]any{"filters": []any{
					map[string]any{"column": "status", "operator": "eq", "value": "watched"}}}}, until)
			subID := mqtttest.OK(t, sub).(map[string]any)["subscription_id"].(string)

			// A live view of the Go client package, served by the victim too.
			viewerID := ""
			for i := 0; viewerID == ""; i++ {
				if id := fmt.Sprintf("%s-viewer-%d", engine, i); group.Owner(ids, id) == victim {
					viewerID = id
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			viewer, err := client.Dial(ctx, clientURL, client.WithClientID(viewerID), client.WithResend(failoverRetry))
			require.NoError(t, err)
			defer viewer.Close()
			view, err := viewer.Subscribe(ctx, "public", "users",
				[]mqttspec.FilterOption{{Column: "status", Operator: "eq", Value: "watched"}}, nil)
			require.NoError(t, err)
			require.Empty(t, view.Records())

			var killedAt time.Time
			var killOnce sync.Once
			answered := make(chan struct{}, workers*perWorker)
			gaps := make([]time.Duration, workers) // longest wait for an answer after the kill, per victim client
			var run sync.WaitGroup
			for w, c := range clients {
				run.Add(1)
				go func() {
					defer run.Done()
					for k := range perWorker {
						msg := map[string]any{"id": fmt.Sprintf("%s-%d", c.ID, k), "type": "request", "operation": "create",
							"schema": "public", "entity": "users", "data": map[string]any{"name": fmt.Sprintf("%s/%d", c.ID, k), "status": "new"}}
						start := time.Now()
						resp := askUntilAnswered(t, c, msg, until)
						mqtttest.OK(t, resp)
						mu.Lock()
						if !killedAt.IsZero() && victimClients[c.ID] {
							from := start
							if killedAt.After(from) {
								from = killedAt
							}
							gaps[w] = max(gaps[w], time.Since(from))
						}
						mu.Unlock()
						answered <- struct{}{}
					}
				}()
			}
			// Kill the victim once a third of the work is acknowledged.
			for range workers * perWorker / 3 {
				mqtttest.Recv(t, answered, "an answer before the kill")
			}
			killOnce.Do(func() {
				mu.Lock()
				killedAt = time.Now()
				mu.Unlock()
				instances[victim].kill(t)
			})
			run.Wait()
			var worst time.Duration
			for w, g := range gaps {
				if victimClients[clients[w].ID] {
					worst = max(worst, g)
				}
			}
			t.Logf("%s: longest wait of a client of the killed member for an answer: %s", engine, worst)
			require.Less(t, worst, failoverBound, "clients of the killed member were served again in time")

			db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
			require.NoError(t, err)
			sqlDB, _ := db.DB()
			defer sqlDB.Close()
			for _, c := range clients {
				for k := range perWorker {
					var n int64
					require.NoError(t, db.Model(&User{}).Where("name = ?", fmt.Sprintf("%s/%d", c.ID, k)).Count(&n).Error)
					require.Equal(t, int64(1), n, "%s/%d: every acknowledged create is stored exactly once", c.ID, k)
				}
			}

			// The watcher's subscription, made through the killed member,
			// is served by the member that took the watcher over.
			writer := clients[0]
			if victimClients[writer.ID] {
				writer = clients[len(clients)-1]
			}
			mqtttest.OK(t, askUntilAnswered(t, writer, map[string]any{"id": "watched-1", "type": "request", "operation": "create",
				"schema": "public", "entity": "users", "data": map[string]any{"name": "seen", "status": "watched"}}, until))
			n := watcher.NextNote()
			require.Equal(t, subID, n["subscription_id"])
			require.Equal(t, "seen", n["data"].(map[string]any)["name"])
			require.Greater(t, n["seq"].(float64), float64(1), "a taken-over subscription's numbers jump, so the client takes a fresh snapshot")

			// The Go client sees the jump and takes a fresh snapshot, which
			// holds the record.
			select {
			case ch := <-view.Changes():
				require.Equal(t, client.OperationSnapshot, ch.Operation, "%+v", ch)
				require.Len(t, ch.Records, 1)
				require.Contains(t, string(ch.Records[0]), `"name":"seen"`)
			case <-time.After(mqtttest.Wait):
				t.Fatal("the live view saw nothing after the failover")
			}
		})
	}
}

// waitLog waits until the instance logs a line containing every one of
// parts.
func (in *instance) waitLog(t *testing.T, parts ...string) {
	t.Helper()
	deadline := time.After(mqtttest.Wait)
	for {
		in.mu.Lock()
		for _, line := range in.log {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				in.mu.Unlock()
				return
			}
		}
		in.mu.Unlock()
		select {
		case <-in.seen:
		case <-deadline:
			t.Fatalf("%s never logged %q", in.id, parts)
		}
	}
}

// TestReadmeGroupCommands runs the README's two commands of "Running
// several instances" (their flags and password variable as written; the
// broker, database and password values pointed at the test's) against
// mosquitto with the README's configuration and ACL: the instances find
// each other and serve a client.
func TestReadmeGroupCommands(t *testing.T) {
	runs := readmeCommands(t, "`examples/external` runs one instance of a group")
	require.Len(t, runs, 2)

	const handlerPass, alicePass = "handler-secret", "alice-secret"
	broker := testbroker.NewMosquitto(t, documentedConfig(t, "mqttspec", handlerPass, "alice", alicePass))
	dsn := testdb.PostgresDSN(t)
	var instances []*instance
	var ids []string
	for _, f := range runs {
		args, id := readmeArgs(t, f, broker.URL, dsn)
		require.Contains(t, args, "-group")
		require.Contains(t, args, "-username")
		ids = append(ids, id)
		instances = append(instances, launchWith(t, id, []string{"MQTTSPEC_BROKER_PASSWORD=" + handlerPass}, args...))
	}
	for _, in := range instances {
		in.waitLog(t, "group membership changed", ids[0], ids[1])
	}
	c := mqtttest.Connect(t, broker.URL, "readme-device", mqtttest.Credentials("alice", alicePass))
	deadline := time.Now().Add(mqtttest.Wait)
	mqtttest.OK(t, askUntilAnswered(t, c, map[string]any{"id": "r-1", "type": "request", "operation": "create",
		"schema": "public", "entity": "users", "data": map[string]any{"name": "Ada"}}, deadline))
}

// documentedConfig returns the README's mosquitto.conf (testdata) for the
// test broker, with a password file of users (name, password pairs) and
// the README's ACL file.
func documentedConfig(t *testing.T, users ...string) string {
	t.Helper()
	passwd := filepath.Join(t.TempDir(), "passwd")
	for i := 0; i < len(users); i += 2 {
		args := []string{"-b", passwd, users[i], users[i+1]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput()
		require.NoError(t, err, "mosquitto_passwd: %s", out)
	}
	acl, err := filepath.Abs("../../testdata/mosquitto/mqttspec.acl")
	require.NoError(t, err)
	conf, err := os.ReadFile("../../testdata/mosquitto/mosquitto.conf")
	require.NoError(t, err)
	var out []string
	for _, line := range strings.Split(string(conf), "\n") {
		switch key, _, _ := strings.Cut(strings.TrimSpace(line), " "); key {
		case "listener":
			continue // testbroker adds one on a free port
		case "password_file":
			line = "password_file " + passwd
		case "acl_file":
			line = "acl_file " + acl
		}
		out = append(out, line)
	}
	if os.Geteuid() == 0 {
		out = append(out, "user root") // mosquitto would drop to a user that cannot read the test's files
	}
	return strings.Join(out, "\n")
}

// TestReadmeExternalCommand runs the README's single-instance command of
// "External broker" against the README's mosquitto configuration.
func TestReadmeExternalCommand(t *testing.T) {
	runs := readmeCommands(t, "Against the configuration below:")
	require.Len(t, runs, 1)
	const handlerPass, alicePass = "handler-secret", "alice-secret"
	broker := testbroker.NewMosquitto(t, documentedConfig(t, "mqttspec", handlerPass, "alice", alicePass))
	args, _ := readmeArgs(t, runs[0], broker.URL, "")
	launchWith(t, "readme-single", []string{"MQTTSPEC_BROKER_PASSWORD=" + handlerPass}, args...)
	c := mqtttest.Connect(t, broker.URL, "readme-single-device", mqtttest.Credentials("alice", alicePass))
	mqtttest.OK(t, c.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "Ada"}})))
}

// readmeCommands returns the commands (as fields, continuation lines
// joined) of the first code block after marker in the README.
func readmeCommands(t *testing.T, marker string) [][]string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	text := string(readme)
	start := strings.Index(text, marker)
	require.Positive(t, start, "README has %q", marker)
	block := text[start:]
	block = block[strings.Index(block, "```\n")+4:]
	block = block[:strings.Index(block, "```")]
	var runs [][]string
	for _, c := range strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n") {
		if f := strings.Fields(c); len(f) > 0 {
			runs = append(runs, f)
		}
	}
	return runs
}

// readmeArgs checks that a README command runs the example with the
// password from the environment and returns its flags with the broker and
// (when dsn is set) the database pointed at the test's, and its client id.
func readmeArgs(t *testing.T, f []string, brokerURL, dsn string) ([]string, string) {
	t.Helper()
	require.True(t, strings.HasPrefix(f[0], "MQTTSPEC_BROKER_PASSWORD="), "the password comes from the environment: %v", f)
	require.Equal(t, []string{"go", "run", "./examples/external"}, f[1:4])
	args := slices.Clone(f[4:])
	id := ""
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "-broker":
			args[i+1] = brokerURL
		case "-db":
			require.True(t, strings.HasPrefix(args[i+1], "postgres://"))
			args[i+1] = dsn
		case "-client-id":
			id = args[i+1]
		}
	}
	if dsn != "" {
		require.NotEmpty(t, id)
	}
	return args, id
}
