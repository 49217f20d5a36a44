package mqttspec_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
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
	c := connectClient(t, "tcp://"+addr, "lifecycle")
	requireOK(t, c.request(req("read", "users", nil)))
	require.NoError(t, h.Shutdown())
	require.NoError(t, h.Shutdown())
	require.ErrorIs(t, h.Start(), mqttspec.ErrShutdown)

	port, _ := strconv.Atoi(portStr)
	h2, err := mqttspec.NewHandlerWithGORM(db, mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: port}))
	require.NoError(t, err)
	require.NoError(t, h2.Start(), "the port must be free after Shutdown")
	require.NoError(t, h2.Shutdown())
}
