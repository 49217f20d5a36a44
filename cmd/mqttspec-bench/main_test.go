package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestShortRun runs the load command as make loadtest does, briefly, and
// checks what it reports: every load answered without failures against
// each ceiling and the library, the library's share of its ceiling, the
// fan-out's notifications, the bare inserts beside creates, and the idle
// connections' memory for both embedded servers.
func TestShortRun(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "mqttspec-bench")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	out := filepath.Join(dir, "out.json")
	cmd := exec.Command(bin, "-scenarios", "read,create,fanout", "-external", "read", "-qos", "1",
		"-duration", "300ms", "-warmup", "200ms", "-rows", "1000", "-idle", "300", "-json", out)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Run())
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	var rs []result
	require.NoError(t, json.Unmarshal(b, &rs))

	got := map[[2]string]result{}
	for _, r := range rs {
		got[[2]string{r.Scenario, r.Target}] = r
	}
	for _, k := range [][2]string{
		{"read", "mochi-echo"}, {"read", "embedded"}, {"create", "mochi-echo"}, {"create", "embedded"},
		{"create", "gorm-insert"}, {"fanout", "mochi-echo"}, {"fanout", "embedded"},
		{"read", "paho-echo"}, {"read", "external"},
	} {
		r, ok := got[k]
		require.True(t, ok, "no result for %v in %s", k, b)
		require.Positive(t, r.Rate, "%v", k)
		require.Zero(t, r.Failures, "%v", k)
		require.Positive(t, r.CPU["server"], "%v: server CPU", k)
	}
	for _, k := range [][2]string{{"read", "embedded"}, {"read", "external"}, {"fanout", "embedded"}} {
		r := got[k]
		require.Greater(t, r.Ratio, 0.05, "%v: share of its ceiling", k)
		require.Less(t, r.Ratio, 3.0, "%v: share of its ceiling", k)
	}
	require.Equal(t, "gorm-insert", got[[2]string{"create", "embedded"}].Ceiling)
	for _, target := range []string{"mochi-echo", "embedded"} {
		require.Positive(t, got[[2]string{"fanout", target}].Notes, "%s: notifications", target)
		r, ok := got[[2]string{"idle", target}]
		require.True(t, ok, "no idle result for %s", target)
		require.Equal(t, 300, r.IdleConns)
		// Mochi runs a read and a write loop for each connection.
		require.InDelta(t, 2, r.GoroutinesPerConn, 0.5, "%s: goroutines per idle connection", target)
		require.Positive(t, r.HeapPerConn, target)
		require.Less(t, r.HeapPerConn, float64(1<<20), target)
		require.Positive(t, r.StacksPerConn, target)
	}
}
