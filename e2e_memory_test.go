package mqttspec_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// idleServerEnv makes the test binary serve for TestIdleConnectionMemory.
const idleServerEnv = "MQTTSPEC_IDLE_SERVER"

// TestIdleConnectionMemory measures what an idle protocol client costs the
// server: a server process of its own (this test binary, re-run) takes
// idleClients connections that each subscribe to their response and
// notify topics, and reports its live heap and resident memory after a
// collection, before and after.
func TestIdleConnectionMemory(t *testing.T) {
	if os.Getenv(idleServerEnv) != "" {
		serveIdle(t)
		return
	}
	const idleClients = 1000
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleConnectionMemory$", "-test.count=1")
	cmd.Env = append(os.Environ(), idleServerEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	outPipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = in.Close()
		require.NoError(t, cmd.Wait(), "the server process's own checks")
	})
	out := bufio.NewScanner(outPipe)
	// line returns the helper's next line that starts with prefix.
	line := func(prefix string) string {
		for out.Scan() {
			if v, ok := strings.CutPrefix(out.Text(), prefix); ok {
				return v
			}
		}
		t.Fatalf("the server process ended before printing %q", prefix)
		return ""
	}
	measure := func() (heap, stack, rss int64) {
		t.Helper()
		_, err := fmt.Fprintln(in, "measure")
		require.NoError(t, err)
		_, err = fmt.Sscanf(line("MEM "), "%d %d %d", &heap, &stack, &rss)
		require.NoError(t, err)
		return heap, stack, rss
	}
	addr := line("ADDR ")

	warm := mqtttest.Connect(t, "tcp://"+addr, "warm-up")
	mqtttest.OK(t, warm.Request(mqtttest.Req("read", "users", nil)))
	heap0, stack0, rss0 := measure()

	for i := 0; i < idleClients; i++ {
		r, err := mqtttest.TryDialRawTCP(addr)
		require.NoError(t, err)
		defer r.Reset()
		id := fmt.Sprint("idle-", i)
		code, err := r.Connect(mqtttest.ConnectPacket(id))
		require.NoError(t, err)
		require.Zero(t, code)
		require.NoError(t, r.Write(mqtttest.SubscribePacket(1, "spec/"+id+"/response", "spec/"+id+"/notify/+")))
		ack, err := r.Read()
		require.NoError(t, err)
		require.Equal(t, []byte{1, 1}, ack.ReasonCodes, "SUBACK")
	}
	heap1, stack1, rss1 := measure()
	perHeap, perStack, perRSS := (heap1-heap0)/idleClients, (stack1-stack0)/idleClients, (rss1-rss0)/idleClients
	t.Logf("%d idle connections: live heap %d -> %d KiB (%d B each), goroutine stacks %d -> %d KiB (%d B each), resident %d -> %d KiB (%d B each)",
		idleClients, heap0>>10, heap1>>10, perHeap, stack0>>10, stack1>>10, perStack, rss0>>10, rss1>>10, perRSS)
	// The README gives these figures; the bound leaves room for the race
	// detector's overhead.
	require.Less(t, perHeap, int64(64<<10), "live heap per idle connection")
}

// serveIdle is the server process of TestIdleConnectionMemory: it prints
// its address, answers each "measure" line on stdin with its memory, and
// stops when stdin closes, which is when the idle clients go away all at
// once: the shutdown must not wait on them.
func serveIdle(t *testing.T) {
	srv := startServer(t, nil)
	fmt.Println("ADDR " + strings.TrimPrefix(srv.url, "tcp://"))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("MEM %d %d %d\n", ms.HeapAlloc, ms.StackInuse, residentBytes(t))
	}
	require.NoError(t, srv.h.Shutdown(), "shutdown while the idle clients leave")
}

// residentBytes is this process's resident set size.
func residentBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
