package mqttspec

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/internal/testbroker"
)

// brokerTestExternal starts an ExternalBrokerClient for url and stops it
// when the test ends; mutate adjusts the config.
func brokerTestExternal(t testing.TB, url string, mutate func(*ExternalBrokerConfig)) *ExternalBrokerClient {
	t.Helper()
	cfg := ExternalBrokerConfig{
		BrokerURL:      url,
		CleanSession:   true,
		KeepAlive:      30 * time.Second,
		ConnectTimeout: brokerTestWait,
		ReconnectDelay: 100 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	b := NewExternalBrokerClient(cfg, NewClientManager(context.Background()))
	ctx, cancel := context.WithTimeout(context.Background(), brokerTestWait)
	defer cancel()
	require.NoError(t, b.Start(ctx))
	t.Cleanup(func() { require.NoError(t, b.Stop(context.Background())) })
	return b
}

// brokerTestEventually polls cond until it holds or brokerTestWait passes.
func brokerTestEventually(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(2 * brokerTestWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

func TestExternalBrokerRoundTrip(t *testing.T) {
	url := testbroker.Mosquitto(t)
	b := brokerTestExternal(t, url, nil)
	require.True(t, b.IsConnected())
	require.Equal(t, url, b.Addr())
	require.True(t, strings.HasPrefix(b.ClientID(), "mqttspec-"), b.ClientID())
	requests := brokerTestCallback(t, b, "spec/+/request")

	a := brokerTestMustConnect(t, url, "A")
	require.Equal(t, byte(1), brokerTestSubscribe(t, a, "spec/A/response", 1))
	require.NoError(t, brokerTestDone(t, a.Publish("spec/A/request", 1, false, "hello")))
	require.Equal(t, brokerTestMessage{"spec/A/request", "hello"}, brokerTestRecv(t, requests, "request"))

	require.NoError(t, b.Publish("spec/A/response", 1, []byte("world")))
	require.Equal(t, brokerTestMessage{"spec/A/response", "world"}, brokerTestRecv(t, a.msgs, "response"))

	require.NoError(t, b.Unsubscribe("spec/+/request"))
	require.NoError(t, brokerTestDone(t, a.Publish("spec/A/request", 1, false, "after unsubscribe")))
	require.NoError(t, b.Publish("spec/A/response", 1, []byte("marker")))
	require.Equal(t, brokerTestMessage{"spec/A/response", "marker"}, brokerTestRecv(t, a.msgs, "marker"))
	brokerTestNothing(t, requests, "request after Unsubscribe")
}

func TestExternalBrokerResubscribesAfterRestart(t *testing.T) {
	mosq := testbroker.NewMosquitto(t, "")
	b := brokerTestExternal(t, mosq.URL, nil)
	requests := brokerTestCallback(t, b, "spec/+/request")

	mosq.Stop()
	brokerTestEventually(t, func() bool { return !b.IsConnected() }, "connection loss")
	require.ErrorIs(t, b.Publish("spec/A/response", 1, []byte("x")), ErrNotConnected)
	mosq.Start()
	brokerTestEventually(t, b.IsConnected, "reconnect")

	// The subscription is restored in paho's OnConnect, just after the
	// connection is up: publish until a request gets through.
	a := brokerTestMustConnect(t, mosq.URL, "A")
	deadline := time.Now().Add(2 * brokerTestWait)
	for n := 0; ; n++ {
		require.NoError(t, brokerTestDone(t, a.Publish("spec/A/request", 1, false, fmt.Sprint(n))))
		select {
		case got := <-requests:
			require.Equal(t, "spec/A/request", got.topic)
			return
		case <-time.After(50 * time.Millisecond):
		}
		require.False(t, time.Now().After(deadline), "subscription not restored after the broker restarted")
	}
}

func TestExternalBrokerStartFailsOnClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "tcp://" + l.Addr().String()
	require.NoError(t, l.Close())

	b := NewExternalBrokerClient(ExternalBrokerConfig{BrokerURL: url, ConnectTimeout: 2 * time.Second},
		NewClientManager(context.Background()))
	ctx, cancel := context.WithTimeout(context.Background(), brokerTestWait)
	defer cancel()
	start := time.Now()
	err = b.Start(ctx)
	require.Error(t, err)
	require.Less(t, time.Since(start), 3*time.Second)
	require.Contains(t, err.Error(), "mqttspec: external broker "+url+": connect:")
	require.False(t, b.IsConnected())
	require.NoError(t, b.Stop(context.Background()))
}

func TestExternalBrokerStartHonoursContext(t *testing.T) {
	// A listener that never answers CONNECT: only the context ends Start.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	url := "tcp://" + silent.Addr().String()

	b := NewExternalBrokerClient(ExternalBrokerConfig{BrokerURL: url, ConnectTimeout: time.Minute},
		NewClientManager(context.Background()))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = b.Start(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), url)
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestExternalBrokerStopIsIdempotent(t *testing.T) {
	url := testbroker.Mosquitto(t)
	b := NewExternalBrokerClient(ExternalBrokerConfig{BrokerURL: url, ClientID: "handler-1"},
		NewClientManager(context.Background()))
	require.NoError(t, b.Stop(context.Background()), "Stop before Start")

	b = NewExternalBrokerClient(ExternalBrokerConfig{BrokerURL: url, ClientID: "handler-1"},
		NewClientManager(context.Background()))
	require.NoError(t, b.Start(context.Background()))
	require.Equal(t, "handler-1", b.ClientID())
	require.NoError(t, b.Stop(context.Background()))
	require.NoError(t, b.Stop(context.Background()))
	require.False(t, b.IsConnected())
	require.ErrorIs(t, b.Publish("spec/A/response", 1, []byte("x")), ErrNotConnected)
	require.Error(t, b.Subscribe("spec/+/request", 1, func(string, []byte) {}))
	require.NoError(t, b.Unsubscribe("spec/+/request"))
	require.Error(t, b.Start(context.Background()), "a stopped client does not start again")
}

func TestExternalBrokerManyQoS1Requests(t *testing.T) {
	const clients, perClient = 4, 50
	url := testbroker.Mosquitto(t)
	b := brokerTestExternal(t, url, nil)

	// The callback answers from paho's router goroutine, as the handler's
	// "overloaded" path does: Publish must not wait for the broker there.
	var mu sync.Mutex
	seen := map[string][]string{}
	require.NoError(t, b.Subscribe("spec/+/request", 1, func(topic string, payload []byte) {
		id := strings.Split(topic, "/")[1]
		mu.Lock()
		seen[id] = append(seen[id], string(payload))
		mu.Unlock()
		if err := b.Publish("spec/"+id+"/response", 1, payload); err != nil {
			t.Errorf("publish response: %v", err)
		}
	}))

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		id := fmt.Sprintf("C%d", c)
		tc := brokerTestMustConnect(t, url, id)
		require.Equal(t, byte(1), brokerTestSubscribe(t, tc, "spec/"+id+"/response", 1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks := make([]paho.Token, 0, perClient)
			for i := 0; i < perClient; i++ {
				toks = append(toks, tc.Publish("spec/"+id+"/request", 1, false, fmt.Sprint(i)))
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(brokerTestWait) || tok.Error() != nil {
					errs <- fmt.Errorf("client %s: request not acknowledged: %v", id, tok.Error())
					return
				}
			}
			for i := 0; i < perClient; i++ {
				select {
				case m := <-tc.msgs:
					if m.payload != fmt.Sprint(i) {
						errs <- fmt.Errorf("client %s: response %d is %q", id, i, m.payload)
						return
					}
				case <-time.After(brokerTestWait):
					errs <- fmt.Errorf("client %s: only %d of %d responses", id, i, perClient)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, clients)
	for id, payloads := range seen {
		want := make([]string, perClient)
		for i := range want {
			want[i] = fmt.Sprint(i)
		}
		require.Equal(t, want, payloads, "requests of %s in order", id)
	}
}

func TestExternalBrokerDeliversMessagesQueuedBeforeSubscribe(t *testing.T) {
	url := testbroker.Mosquitto(t)
	persistent := func(c *ExternalBrokerConfig) { c.ClientID, c.CleanSession = "handler-p", false }

	// Create the persistent session with its subscription, then go away.
	first := brokerTestExternal(t, url, persistent)
	brokerTestCallback(t, first, "spec/+/request")
	require.NoError(t, first.Stop(context.Background()))

	a := brokerTestMustConnect(t, url, "A")
	for i := 0; i < 3; i++ {
		require.NoError(t, brokerTestDone(t, a.Publish("spec/A/request", 1, false, fmt.Sprint(i))))
	}

	// The broker sends the backlog right after CONNACK, before Subscribe.
	second := brokerTestExternal(t, url, persistent)
	requests := brokerTestCallback(t, second, "spec/+/request")
	for i := 0; i < 3; i++ {
		require.Equal(t, brokerTestMessage{"spec/A/request", fmt.Sprint(i)}, brokerTestRecv(t, requests, "queued request"))
	}
}

func TestExternalBrokerGivesUpAfterMaxReconnect(t *testing.T) {
	mosq := testbroker.NewMosquitto(t, "")
	b := brokerTestExternal(t, mosq.URL, func(c *ExternalBrokerConfig) {
		c.MaxReconnect = 2
		c.ReconnectDelay = 20 * time.Millisecond
	})
	mosq.Stop()
	brokerTestEventually(t, b.gaveUp.Load, "giving up")
	// paho's IsConnected stays true while it is reconnecting; false means
	// the reconnect loop has ended.
	brokerTestEventually(t, func() bool { return !b.client.IsConnected() }, "reconnect loop to end")
	require.GreaterOrEqual(t, b.reconnects.Load(), int64(3), "two attempts, then the third is refused")
	require.False(t, b.IsConnected())
	require.True(t, errors.Is(b.Publish("spec/A/response", 1, nil), ErrNotConnected))
}
