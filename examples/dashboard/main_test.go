package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/internal/testenv"
)

// startDashboard starts the dashboard on free loopback ports.
func startDashboard(t *testing.T) *server {
	t.Helper()
	mqttJS := filepath.Join(testenv.NodeModule(t, "mqtt"), "dist", "mqtt.min.js")
	srv, err := start(config{
		host: "127.0.0.1", port: -1, wsPort: -1, httpAddr: "127.0.0.1:0",
		db:     filepath.Join(t.TempDir(), "dashboard.db"),
		mqttJS: mqttJS,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.close()) })
	return srv
}

// TestDashboardInChromium runs browser_test.js: two pages, changes made in
// one seen in the other within a second, a refused write's error shown.
// MQTTSPEC_SCREENSHOT=path also saves the README's screenshot.
func TestDashboardInChromium(t *testing.T) {
	node := testenv.Command(t, "apt-get install nodejs", "node")
	chromium := testenv.Command(t, "apt-get install chromium", "chromium", "/usr/bin/chromium")
	testenv.NodeModule(t, "playwright-core")
	srv := startDashboard(t)
	args := []string{"browser_test.js", "http://" + srv.httpAddr + "/"}
	if shot := os.Getenv("MQTTSPEC_SCREENSHOT"); shot != "" {
		args = append(args, shot)
	}
	cmd := exec.Command(node, args...)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium)
	timer := time.AfterFunc(90*time.Second, func() {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	t.Logf("browser test:\n%s", out)
	require.NoError(t, err)
	for _, want := range []string{"both pages connected", "create seen by the other page", "update seen by the other page",
		"refused write shows: invalid_value: a user needs a name", "delete seen by the other page", "ok"} {
		require.Contains(t, string(out), want)
	}
}

var httpClient = http.Client{Timeout: 10 * time.Second}

// TestDashboardServesThePage: the page, its script, MQTT.js and the
// settings that point the page at the WebSocket listener.
func TestDashboardServesThePage(t *testing.T) {
	srv := startDashboard(t)
	get := func(path string) string {
		t.Helper()
		resp, err := (&httpClient).Get("http://" + srv.httpAddr + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, path)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(body)
	}
	require.Contains(t, get("/"), `<script src="app.js">`)
	require.Contains(t, get("/app.js"), "snapshot: true")
	require.Contains(t, get("/mqtt.min.js"), "mqtt")
	_, wsPort, err := net.SplitHostPort(srv.wsAddr)
	require.NoError(t, err)
	require.Contains(t, get("/config.js"), "wsPort: "+wsPort)
	n, _ := strconv.Atoi(wsPort)
	require.NotZero(t, n)
	require.False(t, strings.HasSuffix(srv.handler.Addr(), ":"+wsPort), "WebSocket and TCP on different ports")
}
