package client_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/client"
	"github.com/mqttspec/mqttspec/internal/testbroker"
)

// TestResendRecoversALostRequest: a server that loses the first copy of
// every request (as an instance of a group that dies with it) answers the
// copy WithResend sends again; without resending the call runs out of
// time.
func TestResendRecoversALostRequest(t *testing.T) {
	url := testbroker.Mosquitto(t)
	lossy := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("lossy-server").SetProtocolVersion(4))
	tok := lossy.Connect()
	require.True(t, tok.WaitTimeout(wait) && tok.Error() == nil)
	t.Cleanup(func() { lossy.Disconnect(0) })
	var mu sync.Mutex
	seen := map[string]int{}
	tok = lossy.Subscribe("spec/+/request", 1, func(c paho.Client, m paho.Message) {
		var req struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(m.Payload(), &req)
		mu.Lock()
		seen[req.ID]++
		n := seen[req.ID]
		mu.Unlock()
		if n == 1 {
			return // lost
		}
		pong, _ := json.Marshal(map[string]any{"id": req.ID, "type": "pong", "success": true})
		topic := m.Topic()[:len(m.Topic())-len("request")] + "response"
		c.Publish(topic, 1, false, pong)
	})
	require.True(t, tok.WaitTimeout(wait) && tok.Error() == nil)
	srv := &server{url: url}

	resending := dial(t, srv, "resending", client.WithResend(100*time.Millisecond))
	require.NoError(t, resending.Ping(bg(t)), "the second copy is answered")

	once := dial(t, srv, "once")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	require.ErrorIs(t, once.Ping(ctx), context.DeadlineExceeded, "control: sent once, lost once")
}

// TestResentWriteRunsOnce: a write still running when its copy arrives is
// run once; the copy is answered from the first run's answer.
func TestResentWriteRunsOnce(t *testing.T) {
	release := make(chan struct{})
	var runs sync.WaitGroup
	runs.Add(1)
	srv := startExternalOn(t, testbroker.Mosquitto(t), func(h *mqttspec.Handler) {
		var once sync.Once
		h.Hooks().Register(mqttspec.BeforeCreate, func(*mqttspec.HookContext) error {
			once.Do(func() { runs.Done(); <-release })
			return nil
		})
	})
	// A spy on the broker counts the copies the client sends.
	spy := paho.NewClient(paho.NewClientOptions().AddBroker(srv.url).SetClientID("spy").SetProtocolVersion(4))
	tok := spy.Connect()
	require.True(t, tok.WaitTimeout(wait) && tok.Error() == nil)
	t.Cleanup(func() { spy.Disconnect(0) })
	copies := make(chan struct{}, 100)
	tok = spy.Subscribe("spec/patient/request", 1, func(paho.Client, paho.Message) { copies <- struct{}{} })
	require.True(t, tok.WaitTimeout(wait) && tok.Error() == nil)

	c := dial(t, srv, "patient", client.WithResend(50*time.Millisecond))
	done := make(chan error, 1)
	var got User
	go func() { done <- c.Create(bg(t), "public", "users", map[string]any{"name": "once"}, &got) }()
	runs.Wait()
	for range 3 { // the first and two copies, sent while the first run is held
		select {
		case <-copies:
		case <-time.After(wait):
			t.Fatal("the client sent no copies")
		}
	}
	close(release)
	require.NoError(t, <-done)
	require.Equal(t, "once", got.Name)
	var n int64
	require.NoError(t, srv.db.Model(&User{}).Where("name = ?", "once").Count(&n).Error)
	// A ping of the same client runs after every copy (one client's
	// requests run in order): then they have all been answered.
	require.NoError(t, c.Ping(bg(t)))
	require.NotZero(t, srv.h.Stats().Duplicates, "the copies were answered from the first run")
	require.NoError(t, srv.db.Model(&User{}).Where("name = ?", "once").Count(&n).Error)
	require.Equal(t, int64(1), n, "the copies were answered, not run")
}
