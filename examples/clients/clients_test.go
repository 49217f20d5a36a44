package clients_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/internal/testenv"
)

// runFor bounds each example run.
const runFor = 60 * time.Second

// root returns the repository's root directory.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "go.mod"))
	require.NoError(t, err)
	return dir
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// build builds the quickstart and the Go paho example once.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "mqttspec-clients")
		for _, pkg := range []string{"./examples/quickstart", "./examples/clients/gopaho", "./examples/clients/goclient"} {
			if buildErr != nil {
				return
			}
			cmd := exec.Command("go", "build", "-o", binDir, pkg)
			cmd.Dir = root(t)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
			}
		}
	})
	require.NoError(t, buildErr)
	return binDir
}

// TestMain removes the built binaries.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// quickstart runs the quickstart on a free port with a fresh database and
// returns its port once it logs that it listens.
func quickstart(t *testing.T) int {
	t.Helper()
	bin := build(t)
	port := freePort(t)
	cmd := exec.Command(filepath.Join(bin, "quickstart"), "-host", "127.0.0.1", "-port", fmt.Sprint(port),
		"-db", filepath.Join(t.TempDir(), "quickstart.db"))
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			require.NoError(t, err, "the quickstart shuts down cleanly")
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the quickstart did not stop on SIGINT")
		}
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "quickstart listening") {
				close(ready)
				signalled = true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the quickstart did not start listening")
	}
	return port
}

// run runs an example to its end and returns its standard output.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runFor)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "%s %v: %s\nstdout:\n%s", name, args, stderr.String(), out)
	return string(out)
}

// TestMQTTJS runs the README's MQTT.js example: subscribe, create, and the
// notification of the create before its answer. It connects with a
// username and an empty password, as the reference README's example does.
func TestMQTTJS(t *testing.T) {
	node := testenv.Command(t, "apt-get install nodejs", "node")
	testenv.NodeModule(t, "mqtt")
	port := quickstart(t)
	out := run(t, []string{fmt.Sprintf("MQTT_URL=mqtt://127.0.0.1:%d", port)}, node, "examples/clients/js/client.js")
	require.Equal(t, "response sub-1 true \nnotification create Grace seq 1\nresponse create-1 true \n", out)
}

// python returns a Python 3 that has paho-mqtt (Debian's python3-paho-mqtt
// installs it for /usr/bin/python3).
func python(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(p, "-c", "import paho.mqtt.client").Run() == nil {
			return p
		}
	}
	testenv.Need(t, false, "a python3 with paho-mqtt (apt-get install python3-paho-mqtt)")
	return ""
}

// TestPython runs the README's Python example (username with an empty
// password): a create, then a read that finds it.
func TestPython(t *testing.T) {
	port := quickstart(t)
	out := run(t, []string{"MQTT_HOST=127.0.0.1", fmt.Sprintf("MQTT_PORT=%d", port)}, python(t), "examples/clients/python/client.py")
	require.Equal(t, "response create-1 True Python User\nresponse read-1 True ['Python User']\n", out)
}

// TestGoPaho runs the README's Go paho example after two creates, one of
// them active.
func TestGoPaho(t *testing.T) {
	port := quickstart(t)
	for i, status := range []string{"active", "inactive"} {
		rr(t, port, fmt.Sprintf(`{"id":"c%d","type":"request","operation":"create","schema":"public","entity":"users","data":{"name":"u%d","status":%q}}`, i, i, status))
	}
	out := run(t, []string{fmt.Sprintf("MQTT_URL=tcp://127.0.0.1:%d", port)}, filepath.Join(build(t), "gopaho"))
	require.Equal(t, "response read-1 true total 1\n", out)
}

// TestGoClient runs the README's Go client package example: create, read,
// an update seen by a live view as leaving it, delete, then not_found.
func TestGoClient(t *testing.T) {
	port := quickstart(t)
	out := run(t, []string{fmt.Sprintf("MQTT_URL=tcp://127.0.0.1:%d", port)}, filepath.Join(build(t), "goclient"))
	require.Equal(t, "active users: 1\nchange: update Ada still matches: false\nread after delete: not_found\n", out)
}

// rr sends one request with mosquitto_rr and returns the answer.
func rr(t *testing.T, port int, request string) string {
	t.Helper()
	return run(t, nil, testenv.Command(t, "apt-get install mosquitto-clients", "mosquitto_rr"), "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-W", "10",
		"-i", "demo", "-q", "1", "-t", "spec/demo/request", "-e", "spec/demo/response", "-m", request)
}

// readme returns the README.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "README.md"))
	require.NoError(t, err)
	return string(b)
}

// TestMosquittoRR runs the mosquitto_rr lines of the README's "Try it" as
// they are written there (on the quickstart's port): a create, then a read
// that returns it.
func TestMosquittoRR(t *testing.T) {
	testenv.Command(t, "apt-get install mosquitto-clients", "mosquitto_rr")
	port := quickstart(t)
	text := readme(t)
	start := strings.Index(text, "### Try it")
	require.GreaterOrEqual(t, start, 0)
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(text[start:])
	require.NotNil(t, block, "the sh block of Try it")
	script := fmt.Sprintf("mosquitto_rr() { command mosquitto_rr -h 127.0.0.1 -p %d -W 10 \"$@\"; }\nset -e\n%s", port, block[1])
	out := run(t, nil, "bash", "-c", script)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	require.Contains(t, lines[0], `"id":"1"`)
	require.Contains(t, lines[0], `"success":true`)
	require.Contains(t, lines[1], `"id":"2"`)
	require.Contains(t, lines[1], `"name":"Ada"`)
}

// TestReadmeShowsTheExamples: the README's code blocks are the files the
// tests above run (and the quick start, which go vet compiles), character
// for character.
func TestReadmeShowsTheExamples(t *testing.T) {
	text := readme(t)
	for _, f := range []string{"examples/clients/js/client.js", "examples/clients/python/client.py", "examples/clients/gopaho/main.go",
		"examples/clients/goclient/main.go", "examples/minimal/main.go"} {
		b, err := os.ReadFile(filepath.Join(root(t), f))
		require.NoError(t, err)
		require.Contains(t, text, "<!-- "+f+" -->\n```", "the README names %s above its block", f)
		i := strings.Index(text, "<!-- "+f+" -->\n")
		block := text[i:]
		block = block[strings.Index(block, "\n")+1:]
		block = block[strings.Index(block, "\n")+1:] // past the fence line
		block = block[:strings.Index(block, "```")]
		require.Equal(t, string(b), block, "the README's copy of %s", f)
	}
}
