package mqttspec_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// TestEveryFailureAnswers sends bad input of every kind and checks that each
// gets a coded error on the response topic, the database is untouched and
// the server keeps serving.
func TestEveryFailureAnswers(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, func(h *mqttspec.Handler) {
			h.Hooks().Register(mqttspec.BeforeCreate, func(ctx *mqttspec.HookContext) error {
				if d, ok := ctx.Data.(map[string]any); ok && d["name"] == "forbidden" {
					return errors.New("names like that are not allowed")
				}
				return nil
			})
		})
		c := mqtttest.Connect(t, srv.url, "bad-client")
		mqtttest.OK(t, c.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "keep"}})))
		before := countUsers(t, srv.db)

		raw := []struct {
			name, id, payload, code string
		}{
			{"malformed JSON with readable id", "r1", `{"id":"r1","type":"request",`, "invalid_json"},
			{"malformed JSON", "", `{{{`, "invalid_json"},
			{"not an object", "", `[1,2,3]`, "invalid_json"},
			{"missing type", "r2", `{"id":"r2","operation":"read","entity":"users"}`, "invalid_message"},
			{"unknown type", "r3", `{"id":"r3","type":"shout","operation":"read","entity":"users"}`, "invalid_message"},
			{"missing entity", "r4", `{"id":"r4","type":"request","operation":"read"}`, "invalid_message"},
		}
		// Clients belong to the parent test, so the cases run in a loop, not as subtests.
		for _, tc := range raw {
			var resp map[string]any
			if tc.id == "" {
				c.Send("", []byte(tc.payload))
				resp = c.Await(c.Orphans)
			} else {
				resp = c.Await(c.Send(tc.id, []byte(tc.payload)))
			}
			require.Equal(t, tc.id, resp["id"], tc.name)
			mqtttest.Fails(t, resp, tc.code)
		}

		filter := func(col, op string, v any) map[string]any {
			return map[string]any{"options": map[string]any{"filters": []any{map[string]any{"column": col, "operator": op, "value": v}}}}
		}
		cases := []struct {
			name string
			msg  map[string]any
			code string
		}{
			{"unknown operation", mqtttest.Req("explode", "users", nil), "unknown_operation"},
			{"ping as an operation", mqtttest.Req("ping", "users", nil), "unknown_operation"},
			{"disconnect as an operation", mqtttest.Req("disconnect", "users", nil), "unknown_operation"},
			{"unknown entity", mqtttest.Req("read", "accounts", nil), "unknown_entity"},
			{"unknown schema", map[string]any{"type": "request", "operation": "read", "schema": "secret", "entity": "users"}, "unknown_entity"},
			{"unknown filter column", mqtttest.Req("read", "users", filter("password", "eq", "x")), "unknown_column"},
			{"filter column injection", mqtttest.Req("read", "users", filter("name = name OR 1=1 --", "eq", "x")), "unknown_column"},
			{"unknown operator", mqtttest.Req("read", "users", filter("name", "regex", ".*")), "unknown_operator"},
			{"sort column injection", mqtttest.Req("read", "users", map[string]any{"options": map[string]any{"sort": []any{map[string]any{"column": "id; DROP TABLE users"}}}}), "unknown_column"},
			{"wrongly typed filter value", mqtttest.Req("read", "users", filter("age", "eq", "old")), "invalid_value"},
			{"read missing record", mqtttest.Req("read", "users", map[string]any{"record_id": "9999"}), "not_found"},
			{"update missing record", mqtttest.Req("update", "users", map[string]any{"record_id": "9999", "data": map[string]any{"name": "x"}}), "not_found"},
			{"delete missing record", mqtttest.Req("delete", "users", map[string]any{"record_id": "9999"}), "not_found"},
			{"create unknown column", mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"nickname": "x"}}), "unknown_column"},
			{"create wrong type", mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "x", "age": "forty"}}), "invalid_value"},
			{"create without data", mqtttest.Req("create", "users", nil), "invalid_message"},
			{"update wrong type", mqtttest.Req("update", "users", map[string]any{"record_id": "1", "data": map[string]any{"active": "yes"}}), "invalid_value"},
			{"update primary key", mqtttest.Req("update", "users", map[string]any{"record_id": "1", "data": map[string]any{"id": 77}}), "invalid_value"},
			{"record id of wrong type", mqtttest.Req("read", "users", map[string]any{"record_id": "abc"}), "invalid_value"},
			{"hook refuses", mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "forbidden"}}), "hook_rejected"},
			{"unsubscribe unknown", map[string]any{"type": "subscription", "operation": "unsubscribe", "subscription_id": "sub-nope"}, "not_found"},
		}
		for _, tc := range cases {
			resp := c.Request(tc.msg)
			require.Equal(t, tc.msg["id"], resp["id"], tc.name)
			mqtttest.Fails(t, resp, tc.code)
		}
		require.Equal(t, before, countUsers(t, srv.db), "failed requests must not change the database")
		require.True(t, srv.db.Migrator().HasTable(&User{}))
		// Still serving.
		mqtttest.OK(t, c.Request(mqtttest.Req("read", "users", map[string]any{"record_id": "1"})))
	})
}

// TestHookPanicStaysInTheLog: a panicking hook answers internal_error; its
// text and stack go to the server log only, and the server keeps serving.
func TestHookPanicStaysInTheLog(t *testing.T) {
	var logs syncBuffer
	srv := startServer(t, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.BeforeRead, func(ctx *mqttspec.HookContext) error {
			if ctx.Client.ID == "trigger" {
				panic("secret-panic-text")
			}
			return nil
		})
	}, mqttspec.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	c := mqtttest.Connect(t, srv.url, "trigger")
	resp := c.Request(mqtttest.Req("read", "users", nil))
	mqtttest.Fails(t, resp, "internal_error")
	require.NotContains(t, fmt.Sprint(resp), "secret-panic-text")
	require.Contains(t, logs.String(), "secret-panic-text")
	require.Contains(t, logs.String(), "e2e_errors_test.go", "the stack is logged")
	mqtttest.OK(t, mqtttest.Connect(t, srv.url, "bystander").Request(mqtttest.Req("read", "users", nil)))
}

// slogTo returns a logger writing text to w.
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// syncBuffer is a bytes.Buffer safe for concurrent writers (a log sink).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
