// Package testbroker runs a private mosquitto broker for tests of the
// external broker mode and for the load command (cmd/mqttspec-bench).
//
// Each broker listens on a free 127.0.0.1 port with a configuration that
// suits tests: no authentication, TCP_NODELAY (without it every QoS 1 round
// trip waits ~40 ms for Nagle and delayed ACKs), unlimited per-client queues
// (mosquitto otherwise drops QoS 1 messages to a busy subscriber) and no
// persistence. It is stopped by PID when the test ends.
package testbroker

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ReadyTimeout bounds the wait for mosquitto to accept connections.
const ReadyTimeout = 10 * time.Second

// stopTimeout bounds the wait for mosquitto to exit after SIGTERM before it
// is killed.
const stopTimeout = 5 * time.Second

const notInstalled = "mosquitto not installed (apt-get install -y mosquitto)"

// Mosquitto starts a private mosquitto and returns its URL,
// "tcp://127.0.0.1:PORT". It is stopped when the test ends.
func Mosquitto(t testing.TB) string {
	t.Helper()
	return NewMosquitto(t, "").URL
}

// MosquittoWithConfig is Mosquitto with extra configuration lines appended
// to the generated mosquitto.conf.
func MosquittoWithConfig(t testing.TB, extra string) string {
	t.Helper()
	return NewMosquitto(t, extra).URL
}

// Broker is a running private mosquitto that can be stopped and started
// again on the same port (to test reconnects).
type Broker struct {
	// URL is "tcp://127.0.0.1:PORT".
	URL string
	// Addr is "127.0.0.1:PORT".
	Addr string

	t    testing.TB // nil outside a test (Launch)
	bin  string
	conf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *lockedBuffer
	exit chan struct{} // closed when the current process has been waited for
}

// NewMosquitto starts a private mosquitto with extra configuration lines
// and returns a handle to it. It is stopped when the test ends. When the
// mosquitto binary is missing the test is skipped, or fails if the CI
// environment variable is set.
func NewMosquitto(t testing.TB, extra string) *Broker {
	t.Helper()
	if findMosquitto() == "" {
		if os.Getenv("CI") != "" {
			t.Fatal(notInstalled)
		}
		t.Skip(notInstalled)
	}
	b, err := Launch(t.TempDir(), extra)
	if err != nil {
		t.Fatalf("testbroker: %v", err)
	}
	b.t = t
	t.Cleanup(b.Stop)
	return b
}

// Launch starts a private mosquitto whose configuration (with extra lines
// appended) goes to dir, outside a test; the caller stops it.
func Launch(dir, extra string) (*Broker, error) {
	bin := findMosquitto()
	if bin == "" {
		return nil, errors.New(notInstalled)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken before mosquitto binds it
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		b := &Broker{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), bin: bin}
		b.URL = "tcp://" + b.Addr
		b.conf = filepath.Join(dir, "mosquitto.conf")
		cfg := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"+
			"max_queued_messages 0\nmax_inflight_messages 0\npersistence false\n%s\n", port, extra)
		if err := os.WriteFile(b.conf, []byte(cfg), 0o644); err != nil {
			return nil, fmt.Errorf("write config: %w", err)
		}
		if lastErr = b.start(); lastErr == nil {
			return b, nil
		}
	}
	return nil, lastErr
}

// Start starts mosquitto again on the same port after Stop. It fails the
// test if mosquitto does not accept connections within ReadyTimeout.
func (b *Broker) Start() {
	b.t.Helper()
	if err := b.start(); err != nil {
		b.t.Fatalf("testbroker: restart: %v", err)
	}
}

func (b *Broker) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return fmt.Errorf("mosquitto on %s is already running", b.Addr)
	}
	out := &lockedBuffer{}
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", b.bin, err)
	}
	exit := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exit)
	}()
	deadline := time.Now().Add(ReadyTimeout)
	for {
		select {
		case <-exit:
			return fmt.Errorf("mosquitto on %s exited at start-up: %s", b.Addr, out.String())
		default:
		}
		if conn, err := net.DialTimeout("tcp", b.Addr, 200*time.Millisecond); err == nil {
			_ = conn.Close()
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exit
			return fmt.Errorf("mosquitto on %s not ready after %s: %s", b.Addr, ReadyTimeout, out.String())
		}
		time.Sleep(10 * time.Millisecond) // polling interval; there is no readiness signal
	}
	b.cmd, b.out, b.exit = cmd, out, exit
	return nil
}

// Stop stops mosquitto (SIGTERM, then SIGKILL after 5s) by its PID and
// waits for it to exit, so the port is free. Stopping a stopped broker
// does nothing.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exit:
	case <-time.After(stopTimeout):
		_ = b.cmd.Process.Kill()
		<-b.exit
	}
	b.cmd = nil
}

// Kill ends mosquitto with SIGKILL (a crash: no will is published, nothing
// is saved) and waits for it to exit.
func (b *Broker) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.exit
	b.cmd = nil
}

// PID returns the process id of the running mosquitto, or 0.
func (b *Broker) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Output returns what the current (or last) mosquitto process logged.
func (b *Broker) Output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.out == nil {
		return ""
	}
	return b.out.String()
}

// findMosquitto returns the path of the mosquitto binary, or "".
func findMosquitto() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	return ""
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer is a bytes.Buffer safe for the writer goroutines of exec.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
