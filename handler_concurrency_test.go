package mqttspec_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
)

// TestSlowClientDoesNotBlockOthers holds one client's request inside a hook
// and checks that another client is served meanwhile.
func TestSlowClientDoesNotBlockOthers(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	srv := startServer(t, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeRead, func(ctx *mqttspec.HookContext) error {
			if ctx.Client.ID == "slow" {
				entered <- struct{}{}
				select {
				case <-release:
				case <-time.After(waitTimeout):
				}
			}
			return nil
		})
	})
	slow := connectClient(t, srv.url, "slow")
	fast := connectClient(t, srv.url, "fast")
	pending := slow.send("slow-1", []byte(`{"id":"slow-1","type":"request","operation":"read","schema":"public","entity":"users"}`))
	<-entered
	for i := 0; i < 5; i++ {
		requireOK(t, fast.request(req("read", "users", nil)))
	}
	select {
	case r := <-pending:
		t.Fatalf("slow request answered before release: %v", r)
	default:
	}
	close(release)
	requireOK(t, slow.await(pending))
}

// TestRequestsOfOneClientAnsweredInOrder pipelines requests and checks that
// responses come back in the order sent and that writes applied in order.
func TestRequestsOfOneClientAnsweredInOrder(t *testing.T) {
	srv := startServer(t, nil)
	c := connectClient(t, srv.url, "pipeliner")
	rec := requireOK(t, c.request(req("create", "users", map[string]any{"data": map[string]any{"name": "v0"}}))).(map[string]any)
	const n = 50
	var waits []chan map[string]any
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("u-%d", i)
		raw := fmt.Sprintf(`{"id":%q,"type":"request","operation":"update","schema":"public","entity":"users","record_id":"%v","data":{"age":%d}}`, id, rec["id"], i)
		waits = append(waits, c.send(id, []byte(raw)))
	}
	for i, ch := range waits {
		resp := c.await(ch)
		requireOK(t, resp)
		require.EqualValues(t, i+1, resp["data"].(map[string]any)["age"])
	}
	var u User
	require.NoError(t, srv.db.First(&u, rec["id"]).Error)
	require.Equal(t, n, u.Age)
}
