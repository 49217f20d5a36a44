package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

var secret = []byte("test-secret")

func token(tenant, user string, roles ...string) string {
	return SignToken(secret, Claims{TenantID: tenant, UserID: user, Roles: roles, Expires: time.Now().Add(time.Hour).Unix()})
}

// dial connects a protocol client with the token as its MQTT username.
func dial(t *testing.T, url, id, username string, opts ...mqtttest.Option) (*mqtttest.Client, error) {
	c, err := mqtttest.Dial(t, url, id, append(opts, mqtttest.Credentials(username, ""))...)
	if err != nil {
		return nil, err
	}
	c.Subscribe("spec/"+id+"/response", "spec/"+id+"/notify/+")
	return c, nil
}

// do sends op on shop.orders with fields and waits for the answer.
func do(c *mqtttest.Client, op string, fields map[string]any) map[string]any {
	msg := map[string]any{"type": "request", "operation": op, "schema": "shop", "entity": "orders"}
	if op == "subscribe" {
		msg["type"] = "subscription"
	}
	for k, v := range fields {
		msg[k] = v
	}
	return c.Request(msg)
}

func code(r map[string]any) string {
	if e, ok := r["error"].(map[string]any); ok {
		return e["code"].(string)
	}
	return ""
}

// start runs the example's server on a free port and returns its URL.
func start(t *testing.T) string {
	h, err := newServer(filepath.Join(t.TempDir(), "mt.db"), secret,
		mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Shutdown()) })
	return "tcp://" + h.Addr()
}

func TestTenantsCannotCross(t *testing.T) {
	url := start(t)

	// Wrong credentials are refused at CONNECT.
	_, err := dial(t, url, "mallory", "not-a-token")
	require.Error(t, err)
	_, err = dial(t, url, "forger", SignToken([]byte("other-secret"), Claims{TenantID: "acme", UserID: "x", Expires: time.Now().Add(time.Hour).Unix()}))
	require.Error(t, err)

	alice, err := dial(t, url, "acme.alice", token("acme", "alice", "admin"))
	require.NoError(t, err)
	bob, err := dial(t, url, "globex.bob", token("globex", "bob", "admin"))
	require.NoError(t, err)
	carol, err := dial(t, url, "acme.carol", token("acme", "carol")) // no admin role
	require.NoError(t, err)

	// Bob watches everything he may see.
	sub := do(bob, "subscribe", nil)
	require.Equal(t, true, sub["success"], "%v", sub)

	// Alice creates an order and claims it for globex: the tenant comes from her token.
	r := do(alice, "create", map[string]any{"data": map[string]any{"item": "anvil", "amount": 10, "tenant_id": "globex"}})
	require.Equal(t, true, r["success"], "%v", r)
	order := r["data"].(map[string]any)
	require.Equal(t, "acme", order["tenant_id"])
	id := fmt.Sprint(order["id"])

	// Bob cannot read, update or delete it, not even by id or with an OR filter.
	require.Equal(t, "not_found", code(do(bob, "read", map[string]any{"record_id": id})))
	list := do(bob, "read", map[string]any{"options": map[string]any{"filters": []any{
		map[string]any{"column": "id", "operator": "eq", "value": id},
		map[string]any{"column": "id", "operator": "gt", "value": 0, "logic_operator": "OR"},
	}}})
	require.Equal(t, []any{}, list["data"])
	require.Equal(t, "not_found", code(do(bob, "update", map[string]any{"record_id": id, "data": map[string]any{"status": "stolen"}})))
	require.Equal(t, "not_found", code(do(bob, "delete", map[string]any{"record_id": id})))

	// Alice cannot move her order to another tenant.
	require.Equal(t, "forbidden", code(do(alice, "update", map[string]any{"record_id": id, "data": map[string]any{"tenant_id": "globex"}})))

	// RBAC: carol (same tenant, no admin role) cannot delete; nothing changes.
	require.Equal(t, "forbidden", code(do(carol, "delete", map[string]any{"record_id": id})))
	r = do(alice, "read", map[string]any{"record_id": id})
	require.Equal(t, true, r["success"])
	require.Equal(t, "open", r["data"].(map[string]any)["status"])

	// Bob's own order notifies him; alice's changes never did.
	require.Equal(t, true, do(bob, "create", map[string]any{"data": map[string]any{"item": "rocket", "amount": 1}})["success"])
	n := bob.NextNote()
	require.Equal(t, "rocket", n["data"].(map[string]any)["item"])
	require.Equal(t, true, do(alice, "delete", map[string]any{"record_id": id})["success"])
	bob.NoNote(alice) // a round trip after alice's delete: any notification would be queued already
}

// TestClientIDsBelongToTokens: a token opens only its own client ids, so
// no token can take over another user's session, and a renewed token of
// the same user gets the user's session back.
func TestClientIDsBelongToTokens(t *testing.T) {
	url := start(t)
	alice := token("acme", "alice")
	for _, id := range []string{"globex.bob", "acme.bob", "acme.alicex", "acme.alice.", "alice", "acme"} {
		_, err := dial(t, url, id, alice)
		require.Error(t, err, "alice's token opens %q", id)
	}
	// Controls: her ids connect, one per device.
	phone, err := dial(t, url, "acme.alice.phone", alice)
	require.NoError(t, err)
	require.Equal(t, true, do(phone, "read", nil)["success"])

	// Her persistent session survives a token renewal.
	laptop, err := dial(t, url, "acme.alice", alice, mqtttest.Persistent)
	require.NoError(t, err)
	require.Equal(t, true, do(laptop, "subscribe", nil)["success"])
	laptop.Disconnect(10)
	carol, err := dial(t, url, "acme.carol", token("acme", "carol"))
	require.NoError(t, err)
	require.Equal(t, true, do(carol, "create", map[string]any{"data": map[string]any{"item": "queued"}})["success"])
	renewed := SignToken(secret, Claims{TenantID: "acme", UserID: "alice", Expires: time.Now().Add(2 * time.Hour).Unix()})
	require.NotEqual(t, alice, renewed)
	back, err := dial(t, url, "acme.alice", renewed, mqtttest.Persistent)
	require.NoError(t, err)
	n := back.NextNote()
	require.Equal(t, "queued", n["data"].(map[string]any)["item"], "the notification queued while she was away")
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
	_, err = VerifyToken(secret, SignToken(secret, Claims{TenantID: "a.b", UserID: "u", Expires: now.Add(time.Minute).Unix()}), now)
	require.ErrorContains(t, err, "contains")
}
