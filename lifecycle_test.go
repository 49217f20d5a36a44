package mqttspec_test

import (
	"fmt"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

func TestStartFailsWhenPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	h, err := mqttspec.NewHandlerWithGORM(openSQLite(t),
		mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: port}))
	require.NoError(t, err)
	err = h.Start()
	require.Error(t, err)
	require.Contains(t, err.Error(), strconv.Itoa(port))
	require.NoError(t, h.Shutdown())
}

func TestShutdownIsIdempotentAndReleasesPort(t *testing.T) {
	db := openSQLite(t)
	h, err := mqttspec.NewHandlerWithGORM(db, mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}))
	require.NoError(t, err)
	require.NoError(t, h.Registry().RegisterModel("public.users", &User{}))
	require.NoError(t, h.Start())
	addr := h.Addr()
	_, portStr, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	c := mqtttest.Connect(t, "tcp://"+addr, "lifecycle")
	mqtttest.OK(t, c.Request(mqtttest.Req("read", "users", nil)))
	require.NoError(t, h.Shutdown())
	require.NoError(t, h.Shutdown())
	require.ErrorIs(t, h.Start(), mqttspec.ErrShutdown)

	port, _ := strconv.Atoi(portStr)
	h2, err := mqttspec.NewHandlerWithGORM(db, mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: port}))
	require.NoError(t, err)
	require.NoError(t, h2.Start(), "the port must be free after Shutdown")
	require.NoError(t, h2.Shutdown())
}

// TestShutdownLeavesNoGoroutines starts a handler, serves a client with a
// subscription, shuts everything down and waits for the goroutine count to
// return to where it was.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	db := openSQLite(t)
	baseline := runtime.NumGoroutine()
	h, err := mqttspec.NewHandlerWithGORM(db, mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}))
	require.NoError(t, err)
	require.NoError(t, h.Registry().RegisterModel("public.users", &User{}))
	require.NoError(t, h.Start())
	c := mqtttest.Connect(t, "tcp://"+h.Addr(), "leak-check")
	mqtttest.OK(t, c.Request(map[string]any{"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users"}))
	c.Disconnect(50)
	require.NoError(t, h.Shutdown())

	t.Cleanup(func() {
		if t.Failed() {
			buf := make([]byte, 1<<20)
			t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		}
	})
	mqtttest.Eventually(t, func() bool { return runtime.NumGoroutine() <= baseline },
		"the goroutine count returns to where it was before Start")
}

// TestShutdownWhileClientsLeave shuts the handler down while hundreds of
// clients drop their connections at the same moment. Mochi's own way of
// disconnecting a listener's clients can deadlock against clients leaving
// (mochi-mqtt/server#488); Shutdown must finish without waiting out its
// timeout, every round.
func TestShutdownWhileClientsLeave(t *testing.T) {
	for round := 0; round < 5; round++ {
		h, err := mqttspec.NewHandlerWithGORM(openSQLite(t),
			mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}),
			mqttspec.WithTimeouts(mqttspec.TimeoutConfig{Disconnect: 3 * time.Second}))
		require.NoError(t, err)
		require.NoError(t, h.Start())
		conns := make([]*mqtttest.Raw, 1000)
		for i := range conns {
			r, err := mqtttest.TryDialRawTCP(h.Addr())
			require.NoError(t, err)
			code, err := r.Connect(mqtttest.ConnectPacket(fmt.Sprint("leaver-", i)))
			require.NoError(t, err)
			require.Zero(t, code)
			conns[i] = r
		}
		for _, r := range conns {
			r.Reset()
		}
		require.NoError(t, h.Shutdown(), "round %d", round)
	}
}
