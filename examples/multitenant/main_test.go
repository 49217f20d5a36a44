package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
)

var secret = []byte("test-secret")

type client struct {
	t         *testing.T
	id        string
	c         mqtt.Client
	responses chan map[string]any
	notes     chan map[string]any
	n         atomic.Int64
}

func token(tenant, user string, roles ...string) string {
	return SignToken(secret, Claims{TenantID: tenant, UserID: user, Roles: roles, Expires: time.Now().Add(time.Hour).Unix()})
}

func dial(t *testing.T, url, id, username string) (*client, error) {
	cl := &client{t: t, id: id, responses: make(chan map[string]any, 100), notes: make(chan map[string]any, 100)}
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(username).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
		var msg map[string]any
		if json.Unmarshal(m.Payload(), &msg) != nil {
			return
		}
		if msg["type"] == "notification" {
			cl.notes <- msg
		} else {
			cl.responses <- msg
		}
	})
	cl.c = mqtt.NewClient(o)
	tok := cl.c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, fmt.Errorf("connect timeout")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { cl.c.Disconnect(20) })
	sub := cl.c.SubscribeMultiple(map[string]byte{"spec/" + id + "/response": 1, "spec/" + id + "/notify/+": 1}, nil)
	require.True(t, sub.WaitTimeout(5*time.Second))
	require.NoError(t, sub.Error())
	return cl, nil
}

func (cl *client) do(op string, fields map[string]any) map[string]any {
	cl.t.Helper()
	msg := map[string]any{"id": fmt.Sprint(cl.id, "-", cl.n.Add(1)), "type": "request", "operation": op, "schema": "shop", "entity": "orders"}
	if op == "subscribe" {
		msg["type"] = "subscription"
	}
	for k, v := range fields {
		msg[k] = v
	}
	raw, _ := json.Marshal(msg)
	tok := cl.c.Publish("spec/"+cl.id+"/request", 1, false, raw)
	require.True(cl.t, tok.WaitTimeout(5*time.Second))
	select {
	case r := <-cl.responses:
		require.Equal(cl.t, msg["id"], r["id"])
		return r
	case <-time.After(5 * time.Second):
		cl.t.Fatalf("%s: no response to %v", cl.id, msg)
		return nil
	}
}

func code(r map[string]any) string {
	if e, ok := r["error"].(map[string]any); ok {
		return e["code"].(string)
	}
	return ""
}

func TestTenantsCannotCross(t *testing.T) {
	h, err := newServer(filepath.Join(t.TempDir(), "mt.db"), secret,
		mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Shutdown()) })
	url := "tcp://" + h.Addr()

	// Wrong credentials are refused at CONNECT.
	_, err = dial(t, url, "mallory", "not-a-token")
	require.Error(t, err)
	_, err = dial(t, url, "forger", SignToken([]byte("other-secret"), Claims{TenantID: "acme", UserID: "x", Expires: time.Now().Add(time.Hour).Unix()}))
	require.Error(t, err)

	alice, err := dial(t, url, "alice", token("acme", "alice", "admin"))
	require.NoError(t, err)
	bob, err := dial(t, url, "bob", token("globex", "bob", "admin"))
	require.NoError(t, err)
	carol, err := dial(t, url, "carol", token("acme", "carol")) // no admin role
	require.NoError(t, err)

	// Bob watches everything he may see.
	sub := bob.do("subscribe", nil)
	require.Equal(t, true, sub["success"], "%v", sub)

	// Alice creates an order and claims it for globex: the tenant comes from her token.
	r := alice.do("create", map[string]any{"data": map[string]any{"item": "anvil", "amount": 10, "tenant_id": "globex"}})
	require.Equal(t, true, r["success"], "%v", r)
	order := r["data"].(map[string]any)
	require.Equal(t, "acme", order["tenant_id"])
	id := fmt.Sprint(order["id"])

	// Bob cannot read, update or delete it, not even by id or with an OR filter.
	require.Equal(t, "not_found", code(bob.do("read", map[string]any{"record_id": id})))
	list := bob.do("read", map[string]any{"options": map[string]any{"filters": []any{
		map[string]any{"column": "id", "operator": "eq", "value": id},
		map[string]any{"column": "id", "operator": "gt", "value": 0, "logic_operator": "OR"},
	}}})
	require.Equal(t, []any{}, list["data"])
	require.Equal(t, "not_found", code(bob.do("update", map[string]any{"record_id": id, "data": map[string]any{"status": "stolen"}})))
	require.Equal(t, "not_found", code(bob.do("delete", map[string]any{"record_id": id})))

	// Alice cannot move her order to another tenant.
	require.Equal(t, "forbidden", code(alice.do("update", map[string]any{"record_id": id, "data": map[string]any{"tenant_id": "globex"}})))

	// RBAC: carol (same tenant, no admin role) cannot delete; nothing changes.
	require.Equal(t, "forbidden", code(carol.do("delete", map[string]any{"record_id": id})))
	r = alice.do("read", map[string]any{"record_id": id})
	require.Equal(t, true, r["success"])
	require.Equal(t, "open", r["data"].(map[string]any)["status"])

	// Bob's own order notifies him; alice's changes never did.
	require.Equal(t, true, bob.do("create", map[string]any{"data": map[string]any{"item": "rocket", "amount": 1}})["success"])
	n := <-bob.notes
	require.Equal(t, "rocket", n["data"].(map[string]any)["item"])
	require.Equal(t, true, alice.do("delete", map[string]any{"record_id": id})["success"])
	bob.do("read", nil) // a round trip after alice's delete: any notification would be queued already
	select {
	case n := <-bob.notes:
		t.Fatalf("bob was notified about another tenant's order: %v", n)
	default:
	}
}

func TestTokens(t *testing.T) {
	now := time.Now()
	good := SignToken(secret, Claims{TenantID: "t", UserID: "u", Expires: now.Add(time.Minute).Unix()})
	c, err := VerifyToken(secret, good, now)
	require.NoError(t, err)
	require.Equal(t, "t", c.TenantID)
	_, err = VerifyToken(secret, good, now.Add(2*time.Minute))
	require.ErrorContains(t, err, "expired")
	_, err = VerifyToken([]byte("x"), good, now)
	require.ErrorContains(t, err, "signature")
	_, err = VerifyToken(secret, "garbage", now)
	require.Error(t, err)
}
