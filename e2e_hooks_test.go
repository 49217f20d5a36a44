package mqttspec_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
	"github.com/mqttspec/mqttspec/internal/testbroker"
)

// hookLog records which hooks ran, in order.
type hookLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *hookLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func (l *hookLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.calls
	l.calls = nil
	return out
}

func TestHooksFireInOrderWithContext(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		log := &hookLog{}
		types := []mqttspec.HookType{
			mqttspec.BeforeHandle,
			mqttspec.BeforeRead, mqttspec.AfterRead, mqttspec.BeforeCreate, mqttspec.AfterCreate,
			mqttspec.BeforeUpdate, mqttspec.AfterUpdate, mqttspec.BeforeDelete, mqttspec.AfterDelete,
			mqttspec.BeforeSubscribe, mqttspec.AfterSubscribe, mqttspec.BeforeUnsubscribe, mqttspec.AfterUnsubscribe,
		}
		srv := start(t, func(h *mqttspec.Handler) {
			for _, ht := range types {
				for i := 1; i <= 2; i++ { // two hooks per type: registration order
					ht, i := ht, i
					h.Hooks().Register(ht, func(ctx *mqttspec.HookContext) error {
						client, ok := ctx.Metadata["mqtt_client"].(*mqttspec.Client)
						if !ok || client.ID != "hook-client" || ctx.Client != client {
							return fmt.Errorf("%s: mqtt_client missing", ht)
						}
						if ctx.Message == nil || ctx.Entity != "users" || ctx.Schema != "public" || ctx.Options == nil {
							return fmt.Errorf("%s: context not filled: %+v", ht, ctx)
						}
						log.add(fmt.Sprintf("%s#%d", ht, i))
						return nil
					})
				}
			}
		})
		c := mqtttest.Connect(t, srv.url, "hook-client")
		pair := func(a, b mqttspec.HookType) []string {
			return []string{"before_handle#1", "before_handle#2", string(a) + "#1", string(a) + "#2", string(b) + "#1", string(b) + "#2"}
		}

		created := mqtttest.OK(t, c.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "x"}}))).(map[string]any)
		require.Equal(t, pair(mqttspec.BeforeCreate, mqttspec.AfterCreate), log.take())
		id := fmt.Sprint(created["id"])
		mqtttest.OK(t, c.Request(mqtttest.Req("read", "users", map[string]any{"record_id": id})))
		require.Equal(t, pair(mqttspec.BeforeRead, mqttspec.AfterRead), log.take())
		mqtttest.OK(t, c.Request(mqtttest.Req("update", "users", map[string]any{"record_id": id, "data": map[string]any{"name": "y"}})))
		require.Equal(t, pair(mqttspec.BeforeUpdate, mqttspec.AfterUpdate), log.take())
		sub := mqtttest.OK(t, c.Request(map[string]any{"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users"})).(map[string]any)
		require.Equal(t, pair(mqttspec.BeforeSubscribe, mqttspec.AfterSubscribe), log.take())
		mqtttest.OK(t, c.Request(mqtttest.Req("delete", "users", map[string]any{"record_id": id})))
		require.Equal(t, pair(mqttspec.BeforeDelete, mqttspec.AfterDelete), log.take())
		mqtttest.OK(t, c.Request(map[string]any{"type": "subscription", "operation": "unsubscribe", "data": map[string]any{"subscription_id": sub["subscription_id"]}}))
		require.Equal(t, []string{"before_unsubscribe#1", "before_unsubscribe#2", "after_unsubscribe#1", "after_unsubscribe#2"}, log.take())
	})
}

func TestBeforeHookVetoChangesNothing(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		second := false
		srv := start(t, func(h *mqttspec.Handler) {
			for _, ht := range []mqttspec.HookType{mqttspec.BeforeCreate, mqttspec.BeforeUpdate, mqttspec.BeforeDelete} {
				h.Hooks().Register(ht, func(ctx *mqttspec.HookContext) error {
					if ctx.Client.ID == "vetoed" {
						return mqttspec.NewError(mqttspec.CodeForbidden, "not for you")
					}
					return nil
				})
			}
			h.Hooks().Register(mqttspec.BeforeCreate, func(ctx *mqttspec.HookContext) error {
				if ctx.Client.ID == "vetoed" {
					second = true // must not run after a veto
				}
				return nil
			})
		})
		owner := mqtttest.Connect(t, srv.url, "owner")
		rec := mqtttest.OK(t, owner.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "orig"}}))).(map[string]any)
		id := fmt.Sprint(rec["id"])

		v := mqtttest.Connect(t, srv.url, "vetoed")
		mqtttest.Fails(t, v.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "new"}})), "forbidden")
		mqtttest.Fails(t, v.Request(mqtttest.Req("update", "users", map[string]any{"record_id": id, "data": map[string]any{"name": "changed"}})), "forbidden")
		mqtttest.Fails(t, v.Request(mqtttest.Req("delete", "users", map[string]any{"record_id": id})), "forbidden")
		require.False(t, second, "hooks after a veto must not run")
		var users []User
		require.NoError(t, srv.db.Find(&users).Error)
		require.Len(t, users, 1)
		require.Equal(t, "orig", users[0].Name)
	})
}

// TestTenantFilterInjection is the README's multi-tenancy example: hooks
// add a tenant filter to reads and set the tenant on creates.
func TestTenantFilterInjection(t *testing.T) {
	srv := startServer(t, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeConnect, func(ctx *mqttspec.HookContext) error {
			client := ctx.Metadata["mqtt_client"].(*mqttspec.Client)
			client.SetMetadata("tenant_id", client.Username)
			return nil
		})
		h.Hooks().Register(mqttspec.BeforeRead, func(ctx *mqttspec.HookContext) error {
			client := ctx.Metadata["mqtt_client"].(*mqttspec.Client)
			tenantID, _ := client.GetMetadata("tenant_id")
			ctx.Options.Filters = append(ctx.Options.Filters, mqttspec.FilterOption{Column: "tenant_id", Operator: "eq", Value: tenantID})
			return nil
		})
		h.Hooks().Register(mqttspec.BeforeCreate, func(ctx *mqttspec.HookContext) error {
			client := ctx.Metadata["mqtt_client"].(*mqttspec.Client)
			tenantID, _ := client.GetMetadata("tenant_id")
			if dataMap, ok := ctx.Data.(map[string]any); ok {
				dataMap["tenant_id"] = tenantID
			}
			return nil
		})
	})
	a := mqtttest.Connect(t, srv.url, "alice", mqtttest.Credentials("acme", ""))
	b := mqtttest.Connect(t, srv.url, "bob", mqtttest.Credentials("globex", ""))
	mqtttest.OK(t, a.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "a1", "tenant_id": "globex"}})))
	mqtttest.OK(t, b.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "b1"}})))

	// An OR filter from the client cannot widen the tenant filter.
	opts := map[string]any{"options": map[string]any{"filters": []any{
		map[string]any{"column": "name", "operator": "eq", "value": "b1"},
		map[string]any{"column": "name", "operator": "eq", "value": "a1", "logic_operator": "OR"},
	}}}
	rows := mqtttest.OK(t, a.Request(mqtttest.Req("read", "users", opts))).([]any)
	require.Len(t, rows, 1)
	require.Equal(t, "a1", rows[0].(map[string]any)["name"])
	require.Equal(t, "acme", rows[0].(map[string]any)["tenant_id"], "BeforeCreate must have overridden the tenant")
	rows = mqtttest.OK(t, b.Request(mqtttest.Req("read", "users", nil))).([]any)
	require.Len(t, rows, 1)
	require.Equal(t, "b1", rows[0].(map[string]any)["name"])
}

func TestConnectionHooks(t *testing.T) {
	log := &hookLog{}
	disconnected := make(chan struct{}, 1)
	srv := startServer(t, func(h *mqttspec.Handler) {
		for _, ht := range []mqttspec.HookType{mqttspec.BeforeConnect, mqttspec.AfterConnect, mqttspec.BeforeDisconnect, mqttspec.AfterDisconnect} {
			ht := ht
			h.Hooks().Register(ht, func(ctx *mqttspec.HookContext) error {
				c := ctx.Metadata["mqtt_client"].(*mqttspec.Client)
				if c.ID != "conn-client" {
					return nil
				}
				if ht == mqttspec.BeforeConnect {
					c.SetMetadata("user_id", 42)
				}
				uid, _ := c.GetMetadata("user_id")
				log.add(fmt.Sprintf("%s:%v", ht, uid))
				if ht == mqttspec.AfterDisconnect {
					disconnected <- struct{}{}
				}
				return nil
			})
		}
		h.Hooks().Register(mqttspec.BeforeRead, func(ctx *mqttspec.HookContext) error {
			if uid, _ := ctx.Client.GetMetadata("user_id"); uid != 42 && ctx.Client.ID == "conn-client" {
				return fmt.Errorf("metadata from BeforeConnect missing")
			}
			return nil
		})
	})
	c := mqtttest.Connect(t, srv.url, "conn-client")
	mqtttest.OK(t, c.Request(mqtttest.Req("read", "users", nil)))
	c.Disconnect(50)
	mqtttest.Recv(t, disconnected, "AfterDisconnect")
	require.Equal(t, []string{"before_connect:42", "after_connect:42", "before_disconnect:42", "after_disconnect:42"}, log.take())
}

func TestBeforeConnectRefusal(t *testing.T) {
	srv := startServer(t, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeConnect, func(ctx *mqttspec.HookContext) error {
			if ctx.Client.Username != "letmein" {
				return fmt.Errorf("invalid token")
			}
			return nil
		})
	})
	_, err := mqtttest.DialRaw(t, srv.url, "intruder", mqtttest.Credentials("guess", ""))
	require.Error(t, err, "a refused client must not connect")
	require.Equal(t, 0, srv.h.Clients().Count())
}

// TestAfterHookRefusalUndoesTheOperation: an After* hook that returns an
// error turns the answer into that error and undoes what the operation did
// (the README's hook table), for every operation.
func TestAfterHookRefusalUndoesTheOperation(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		refuse := map[mqttspec.HookType]bool{}
		var mu sync.Mutex
		srv := start(t, func(h *mqttspec.Handler) {
			for _, ht := range []mqttspec.HookType{mqttspec.AfterRead, mqttspec.AfterCreate, mqttspec.AfterSubscribe, mqttspec.AfterUnsubscribe} {
				h.Hooks().Register(ht, func(*mqttspec.HookContext) error {
					mu.Lock()
					defer mu.Unlock()
					if refuse[ht] {
						return mqttspec.NewError(mqttspec.CodeForbidden, "%s says no", ht)
					}
					return nil
				})
			}
		})
		set := func(ht mqttspec.HookType, on bool) {
			mu.Lock()
			refuse[ht] = on
			mu.Unlock()
		}
		c := mqtttest.Connect(t, srv.url, "after-client")
		w := mqtttest.Connect(t, srv.url, "after-writer")

		set(mqttspec.AfterSubscribe, true)
		mqtttest.Fails(t, c.Request(map[string]any{"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users"}), "forbidden")
		require.Zero(t, srv.h.Subscriptions().Count(), "a refused subscription is withdrawn")
		set(mqttspec.AfterSubscribe, false)

		subID := subscribe(t, c)
		set(mqttspec.AfterUnsubscribe, true)
		mqtttest.Fails(t, c.Request(map[string]any{"type": "subscription", "operation": "unsubscribe", "subscription_id": subID}), "forbidden")
		require.Equal(t, 1, srv.h.Subscriptions().Count(), "a refused unsubscribe keeps the subscription")
		mqtttest.OK(t, w.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "still watched"}})))
		n := c.NextNote()
		require.Equal(t, subID, n["subscription_id"])
		require.EqualValues(t, 1, n["seq"], "no notification was lost or skipped")
		set(mqttspec.AfterUnsubscribe, false)
		mqtttest.OK(t, c.Request(map[string]any{"type": "subscription", "operation": "unsubscribe", "subscription_id": subID}))

		set(mqttspec.AfterRead, true)
		mqtttest.Fails(t, c.Request(mqtttest.Req("read", "users", nil)), "forbidden")
		set(mqttspec.AfterRead, false)

		set(mqttspec.AfterCreate, true)
		mqtttest.Fails(t, c.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "refused"}})), "forbidden")
		require.EqualValues(t, 1, countUsers(t, srv.db), "a refused create is rolled back")
	})
}

// TestAfterConnectRefusal: an AfterConnect error undoes the connect: the
// embedded broker closes the connection; with an external broker the
// request is refused and the client is asked again at its next request.
func TestAfterConnectRefusal(t *testing.T) {
	var asked atomic.Int32
	setup := func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.AfterConnect, func(ctx *mqttspec.HookContext) error {
			if ctx.Client.ID == "latecomer" {
				asked.Add(1)
				return errors.New("not today")
			}
			return nil
		})
	}
	t.Run("embedded", func(t *testing.T) {
		srv := startServer(t, setup)
		c, err := mqtttest.DialRaw(t, srv.url, "latecomer")
		if err == nil { // CONNACK can arrive before the hook closes the connection
			mqtttest.Recv(t, c.Lost, "the refused connection closing")
		}
		mqtttest.Eventually(t, func() bool { return srv.h.Clients().Count() == 0 }, "the refused client is forgotten")
		mqtttest.OK(t, mqtttest.Connect(t, srv.url, "welcome").Request(mqtttest.Req("read", "users", nil)))
	})
	t.Run("external", func(t *testing.T) {
		asked.Store(0)
		srv := startExternal(t, mqttspec.ExternalBrokerConfig{BrokerURL: testbroker.Mosquitto(t)}, setup)
		c := mqtttest.Connect(t, srv.url, "latecomer")
		mqtttest.Fails(t, c.Request(mqtttest.Req("read", "users", nil)), "forbidden")
		mqtttest.Fails(t, c.Request(mqtttest.Req("read", "users", nil)), "forbidden")
		require.EqualValues(t, 2, asked.Load(), "a refused client is asked again")
		_, known := srv.h.Clients().GetClient("latecomer")
		require.False(t, known)
	})
}
