package paho

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/internal/broker"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
	"github.com/mqttspec/mqttspec/internal/testbroker"
)

// brokerTestExternal starts a Client for url and stops it when the test
// ends; mutate adjusts the config.
func brokerTestExternal(t testing.TB, url string, mutate func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		BrokerURL:      url,
		CleanSession:   true,
		KeepAlive:      30 * time.Second,
		ConnectTimeout: mqtttest.Wait,
		ReconnectDelay: 100 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	b := New(cfg, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Wait)
	defer cancel()
	require.NoError(t, b.Start(ctx))
	t.Cleanup(func() { require.NoError(t, b.Stop(context.Background())) })
	return b
}

// brokerTestCallback subscribes a channel-backed handler to filter.
func brokerTestCallback(t testing.TB, b *Client, filter string) chan mqtttest.Msg {
	t.Helper()
	ch := make(chan mqtttest.Msg, 1000)
	require.NoError(t, b.Subscribe(filter, 1, func(m broker.Message) bool {
		ch <- mqtttest.Msg{Topic: m.Topic, Payload: string(m.Payload)}
		return true
	}))
	return ch
}

func TestExternalBrokerRoundTrip(t *testing.T) {
	url := testbroker.Mosquitto(t)
	b := brokerTestExternal(t, url, nil)
	require.True(t, b.IsConnected())
	require.Equal(t, url, b.Addr())
	require.True(t, strings.HasPrefix(b.ClientID(), "mqttspec-"), b.ClientID())
	requests := brokerTestCallback(t, b, "spec/+/request")

	a := mqtttest.MustDialRaw(t, url, "A")
	require.Equal(t, byte(1), a.SubscribeCode("spec/A/response", 1))
	require.NoError(t, a.Publish("spec/A/request", 1, "hello"))
	require.Equal(t, mqtttest.Msg{Topic: "spec/A/request", Payload: "hello"}, mqtttest.Recv(t, requests, "request"))

	require.NoError(t, b.Publish("spec/A/response", 1, []byte("world")))
	require.Equal(t, mqtttest.Msg{Topic: "spec/A/response", Payload: "world"}, mqtttest.Recv(t, a.Msgs, "response"))

	require.NoError(t, b.Unsubscribe("spec/+/request"))
	require.NoError(t, a.Publish("spec/A/request", 1, "after unsubscribe"))
	require.NoError(t, b.Publish("spec/A/response", 1, []byte("marker")))
	require.Equal(t, mqtttest.Msg{Topic: "spec/A/response", Payload: "marker"}, mqtttest.Recv(t, a.Msgs, "marker"))
	mqtttest.Nothing(t, requests, "request after Unsubscribe")
}

func TestExternalBrokerResubscribesAfterRestart(t *testing.T) {
	mosq := testbroker.NewMosquitto(t, "")
	b := brokerTestExternal(t, mosq.URL, nil)
	requests := brokerTestCallback(t, b, "spec/+/request")

	mosq.Stop()
	mqtttest.Eventually(t, func() bool { return !b.IsConnected() }, "connection loss")
	require.ErrorIs(t, b.Publish("spec/A/response", 1, []byte("x")), ErrNotConnected)
	mosq.Start()
	mqtttest.Eventually(t, b.IsConnected, "reconnect")

	// The subscription is restored in paho's OnConnect, just after the
	// connection is up: publish until a request gets through.
	a := mqtttest.MustDialRaw(t, mosq.URL, "A")
	n := 0
	mqtttest.Eventually(t, func() bool {
		n++
		require.NoError(t, a.Publish("spec/A/request", 1, fmt.Sprint(n)))
		select {
		case got := <-requests:
			return got.Topic == "spec/A/request"
		case <-time.After(50 * time.Millisecond):
			return false
		}
	}, "the subscription is restored after the broker restarted")
}

func TestExternalBrokerStartFailsOnClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "tcp://" + l.Addr().String()
	require.NoError(t, l.Close())

	b := New(Config{BrokerURL: url, ConnectTimeout: 2 * time.Second}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), mqtttest.Wait)
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

	b := New(Config{BrokerURL: url, ConnectTimeout: time.Minute}, slog.New(slog.DiscardHandler))
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
	b := New(Config{BrokerURL: url, ClientID: "handler-1"}, slog.New(slog.DiscardHandler))
	require.NoError(t, b.Stop(context.Background()), "Stop before Start")

	b = New(Config{BrokerURL: url, ClientID: "handler-1"}, slog.New(slog.DiscardHandler))
	require.NoError(t, b.Start(context.Background()))
	require.Equal(t, "handler-1", b.ClientID())
	require.NoError(t, b.Stop(context.Background()))
	require.NoError(t, b.Stop(context.Background()))
	require.False(t, b.IsConnected())
	require.ErrorIs(t, b.Publish("spec/A/response", 1, []byte("x")), ErrNotConnected)
	require.Error(t, b.Subscribe("spec/+/request", 1, func(broker.Message) bool { return true }))
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
	require.NoError(t, b.Subscribe("spec/+/request", 1, func(m broker.Message) bool {
		id := strings.Split(m.Topic, "/")[1]
		mu.Lock()
		seen[id] = append(seen[id], string(m.Payload))
		mu.Unlock()
		if err := b.Publish("spec/"+id+"/response", 1, m.Payload); err != nil {
			t.Errorf("publish response: %v", err)
		}
		return true
	}))

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		id := fmt.Sprintf("C%d", c)
		tc := mqtttest.MustDialRaw(t, url, id)
		require.Equal(t, byte(1), tc.SubscribeCode("spec/"+id+"/response", 1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks := make([]mqtt.Token, 0, perClient)
			for i := 0; i < perClient; i++ {
				toks = append(toks, tc.Client.Publish("spec/"+id+"/request", 1, false, fmt.Sprint(i)))
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(mqtttest.Wait) || tok.Error() != nil {
					errs <- fmt.Errorf("client %s: request not acknowledged: %v", id, tok.Error())
					return
				}
			}
			for i := 0; i < perClient; i++ {
				select {
				case m := <-tc.Msgs:
					if m.Payload != fmt.Sprint(i) {
						errs <- fmt.Errorf("client %s: response %d is %q", id, i, m.Payload)
						return
					}
				case <-time.After(mqtttest.Wait):
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
	persistent := func(c *Config) { c.ClientID, c.CleanSession = "handler-p", false }

	// Create the persistent session with its subscription, then go away.
	first := brokerTestExternal(t, url, persistent)
	brokerTestCallback(t, first, "spec/+/request")
	require.NoError(t, first.Stop(context.Background()))

	a := mqtttest.MustDialRaw(t, url, "A")
	for i := 0; i < 3; i++ {
		require.NoError(t, a.Publish("spec/A/request", 1, fmt.Sprint(i)))
	}

	// The broker sends the backlog right after CONNACK, before Subscribe.
	second := brokerTestExternal(t, url, persistent)
	requests := brokerTestCallback(t, second, "spec/+/request")
	for i := 0; i < 3; i++ {
		require.Equal(t, mqtttest.Msg{Topic: "spec/A/request", Payload: fmt.Sprint(i)}, mqtttest.Recv(t, requests, "queued request"))
	}
}

func TestExternalBrokerGivesUpAfterMaxReconnect(t *testing.T) {
	mosq := testbroker.NewMosquitto(t, "")
	b := brokerTestExternal(t, mosq.URL, func(c *Config) {
		c.MaxReconnect = 2
		c.ReconnectDelay = 20 * time.Millisecond
	})
	mosq.Stop()
	mqtttest.Eventually(t, b.gaveUp.Load, "giving up")
	// paho's IsConnected stays true while it is reconnecting; false means
	// the reconnect loop has ended.
	mqtttest.Eventually(t, func() bool { return !b.client.IsConnected() }, "reconnect loop to end")
	require.GreaterOrEqual(t, b.reconnects.Load(), int64(3), "two attempts, then the third is refused")
	require.False(t, b.IsConnected())
	require.True(t, errors.Is(b.Publish("spec/A/response", 1, nil), ErrNotConnected))
}
