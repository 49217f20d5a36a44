package mqttspec_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// TestSlowClientDoesNotBlockOthers holds one client's request inside a hook
// and checks that another client is served meanwhile.
func TestSlowClientDoesNotBlockOthers(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		release := make(chan struct{})
		entered := make(chan struct{}, 1)
		srv := start(t, func(h *mqttspec.Handler) {
			h.Hooks().Register(mqttspec.BeforeRead, func(ctx *mqttspec.HookContext) error {
				if ctx.Client.ID == "slow" {
					entered <- struct{}{}
					select {
					case <-release:
					case <-time.After(mqtttest.Wait):
					}
				}
				return nil
			})
		})
		slow := mqtttest.Connect(t, srv.url, "slow")
		fast := mqtttest.Connect(t, srv.url, "fast")
		pending := slow.Send("slow-1", []byte(`{"id":"slow-1","type":"request","operation":"read","schema":"public","entity":"users"}`))
		<-entered
		for i := 0; i < 5; i++ {
			mqtttest.OK(t, fast.Request(mqtttest.Req("read", "users", nil)))
		}
		select {
		case r := <-pending:
			t.Fatalf("slow request answered before release: %v", r)
		default:
		}
		close(release)
		mqtttest.OK(t, slow.Await(pending))
	})
}

// TestRequestsOfOneClientAnsweredInOrder pipelines requests and checks that
// responses come back in the order sent and that writes applied in order.
func TestRequestsOfOneClientAnsweredInOrder(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil)
		c := mqtttest.Connect(t, srv.url, "pipeliner")
		rec := mqtttest.OK(t, c.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "v0"}}))).(map[string]any)
		const n = 50
		var waits []chan map[string]any
		for i := 1; i <= n; i++ {
			id := fmt.Sprintf("u-%d", i)
			raw := fmt.Sprintf(`{"id":%q,"type":"request","operation":"update","schema":"public","entity":"users","record_id":"%v","data":{"age":%d}}`, id, rec["id"], i)
			waits = append(waits, c.Send(id, []byte(raw)))
		}
		for i, ch := range waits {
			resp := c.Await(ch)
			mqtttest.OK(t, resp)
			require.EqualValues(t, i+1, resp["data"].(map[string]any)["age"])
		}
		var u User
		require.NoError(t, srv.db.First(&u, rec["id"]).Error)
		require.Equal(t, n, u.Age)
	})
}

// TestPipelinedQoS1RequestsAllAnswered: clients publish many QoS 1
// requests without waiting; every one is answered, in order, and nothing
// deadlocks (on the external broker the handler's one connection carries
// all of it).
func TestPipelinedQoS1RequestsAllAnswered(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		const clients, perClient = 8, 100
		srv := start(t, nil)
		deadline := time.Now().Add(3 * mqtttest.Wait)

		raws := make([]*mqtttest.Client, clients)
		for i := range raws {
			raws[i] = mqtttest.MustDialRaw(t, srv.url, fmt.Sprintf("qos-%d", i))
			raws[i].Subscribe("spec/" + raws[i].ID + "/response")
		}

		began := time.Now()
		errs := make(chan error, clients)
		var wg sync.WaitGroup
		for _, rc := range raws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- pipeline(rc, perClient, deadline)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		t.Logf("%d QoS 1 requests over %d clients answered in %s", clients*perClient, clients, time.Since(began))
		require.EqualValues(t, clients*perClient/2, countUsers(t, srv.db))
	})
}

// pipeline publishes n QoS 1 requests of rc without waiting (creates and
// pings alternating), then collects the answers and checks that each one
// carries the id of the request in the same position.
func pipeline(rc *mqtttest.Client, n int, deadline time.Time) error {
	topic := "spec/" + rc.ID + "/request"
	toks := make([]paho.Token, 0, n)
	for i := 0; i < n; i++ {
		msg := map[string]any{"id": fmt.Sprintf("%s-%d", rc.ID, i), "type": "ping"}
		if i%2 == 0 {
			msg = map[string]any{"id": msg["id"], "type": "request", "operation": "create", "schema": "public",
				"entity": "users", "data": map[string]any{"name": msg["id"]}}
		}
		raw, err := json.Marshal(msg)
		if err != nil {
			return err
		}
		toks = append(toks, rc.Client.Publish(topic, 1, false, raw))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(time.Until(deadline)) {
			return fmt.Errorf("%s: request %d not acknowledged by the broker in time", rc.ID, i)
		}
		if err := tok.Error(); err != nil {
			return fmt.Errorf("%s: request %d: %w", rc.ID, i, err)
		}
	}
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
	for i := 0; i < n; i++ {
		var m mqtttest.Msg
		select {
		case m = <-rc.Msgs:
		case <-timeout.C:
			return fmt.Errorf("%s: only %d of %d answers before the deadline", rc.ID, i, n)
		}
		var resp map[string]any
		if err := json.Unmarshal([]byte(m.Payload), &resp); err != nil {
			return fmt.Errorf("%s: answer %d is not JSON: %q", rc.ID, i, m.Payload)
		}
		want := fmt.Sprintf("%s-%d", rc.ID, i)
		if resp["id"] != want || resp["success"] != true {
			return fmt.Errorf("%s: answer %d: want a successful answer to %s, got %v", rc.ID, i, want, resp)
		}
		if i%2 == 0 {
			if data, _ := resp["data"].(map[string]any); data == nil || data["name"] != want {
				return fmt.Errorf("%s: answer %d: created record %v, want name %s", rc.ID, i, resp["data"], want)
			}
		} else if resp["type"] != "pong" {
			return fmt.Errorf("%s: answer %d: want pong, got %v", rc.ID, i, resp)
		}
	}
	return nil
}

// stall is a text column whose JSON encoding of the value "hold" waits,
// once per armed gate, until the gate opens: it stands for a change whose
// answer and notifications are costly to prepare.
type stall string

// stallGate is where an encoding of "hold" waits.
type stallGate struct {
	held  chan struct{} // closed when an encoding waits
	open  chan struct{} // close to let it go on
	armed atomic.Bool
}

var currentGate atomic.Pointer[stallGate]

// armStall makes the next encoding of "hold" wait at a new gate.
func armStall(t *testing.T) *stallGate {
	g := &stallGate{held: make(chan struct{}), open: make(chan struct{})}
	g.armed.Store(true)
	currentGate.Store(g)
	t.Cleanup(func() {
		currentGate.CompareAndSwap(g, nil)
		select {
		case <-g.open:
		default:
			close(g.open)
		}
	})
	return g
}

func (s stall) MarshalJSON() ([]byte, error) {
	if g := currentGate.Load(); s == "hold" && g != nil && g.armed.CompareAndSwap(true, false) {
		close(g.held)
		<-g.open
	}
	return json.Marshal(string(s))
}

// startWithGadgets starts a server with the gadgets model as well.
func startWithGadgets(t *testing.T, setup func(h *mqttspec.Handler)) *testServer {
	srv := startServer(t, func(h *mqttspec.Handler) {
		require.NoError(t, h.Registry().RegisterModel("public.gadgets", &Gadget{}))
		if setup != nil {
			setup(h)
		}
	})
	require.NoError(t, srv.db.AutoMigrate(&Gadget{}))
	return srv
}

// holdGadget sends a create of a gadget marked "hold" from c and returns
// once its encoding waits at an armed gate, with the channel of its answer.
func holdGadget(t *testing.T, c *mqtttest.Client) (*stallGate, chan map[string]any) {
	g := armStall(t)
	req := mqtttest.Req("create", "gadgets", map[string]any{"data": map[string]any{"mark": "hold"}})
	req["id"] = "held"
	raw, err := json.Marshal(req)
	require.NoError(t, err)
	answer := c.Send("held", raw)
	mqtttest.Recv(t, g.held, "the held write's encoding")
	return g, answer
}

// Gadget is a model with a stall column.
type Gadget struct {
	ID   uint  `json:"id" gorm:"primaryKey"`
	Mark stall `json:"mark"`
}

// TestCostlyChangeHoldsUpNoOtherWrite: while the notification of one write
// is still being prepared, other clients' writes of the same entity commit
// and are answered; the notifications still reach a subscriber in commit
// order, the held one first.
func TestCostlyChangeHoldsUpNoOtherWrite(t *testing.T) {
	srv := startWithGadgets(t, nil)
	watcher := mqtttest.Connect(t, srv.url, "watcher")
	mqtttest.OK(t, watcher.Request(map[string]any{"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "gadgets"}))

	costly := mqtttest.Connect(t, srv.url, "costly")
	gate, held := holdGadget(t, costly)

	others := mqtttest.Connect(t, srv.url, "others")
	for i := 0; i < 5; i++ {
		mqtttest.OK(t, others.Request(mqtttest.Req("create", "gadgets", map[string]any{"data": map[string]any{"mark": fmt.Sprint("m", i)}})))
	}
	watcher.NoNote(others) // nothing may overtake the held change

	close(gate.open)
	mqtttest.OK(t, costly.Await(held))
	want := []string{"hold", "m0", "m1", "m2", "m3", "m4"}
	for i, mark := range want {
		n := watcher.NextNote()
		require.Equal(t, mark, n["data"].(map[string]any)["mark"])
		require.EqualValues(t, i+1, n["seq"])
	}
}
