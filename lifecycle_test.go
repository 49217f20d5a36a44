package mqttspec_test

import (
	"net"
	"runtime"
	"strconv"
	"testing"

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
