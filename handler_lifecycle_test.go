package mqttspec_test

import (
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
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
	o := newClientOptions("tcp://"+h.Addr(), "leak-check")
	cl := newMQTTClient(o)
	tok := cl.Connect()
	require.True(t, tok.WaitTimeout(waitTimeout))
	require.NoError(t, tok.Error())
	answered := make(chan struct{}, 1)
	tok = cl.Subscribe("spec/leak-check/response", 1, func(mqtt.Client, mqtt.Message) { answered <- struct{}{} })
	require.True(t, tok.WaitTimeout(waitTimeout))
	cl.Publish("spec/leak-check/request", 1, false, `{"id":"1","type":"subscription","operation":"subscribe","schema":"public","entity":"users"}`)
	select {
	case <-answered:
	case <-time.After(waitTimeout):
		t.Fatal("no answer")
	}
	cl.Disconnect(50)
	require.NoError(t, h.Shutdown())

	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after shutdown, %d before:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}
