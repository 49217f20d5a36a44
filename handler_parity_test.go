package mqttspec_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// Author and Book carry GORM and Bun tags so both ORMs see one schema.
type Author struct {
	bun.BaseModel `bun:"table:authors"`
	ID            int64   `json:"id" gorm:"primaryKey" bun:"id,pk,autoincrement"`
	Name          string  `json:"name" bun:"name"`
	Email         *string `json:"email" bun:"email"`
	Score         int     `json:"score" bun:"score"`
	Active        bool    `json:"active" bun:"active"`
	Status        string  `json:"status" gorm:"default:'new'" bun:"status,default:'new'"`
	Books         []Book  `json:"books,omitempty" gorm:"foreignKey:AuthorID" bun:"rel:has-many,join:id=author_id"`
}

type Book struct {
	bun.BaseModel `bun:"table:books"`
	ID            int64  `json:"id" gorm:"primaryKey" bun:"id,pk,autoincrement"`
	AuthorID      int64  `json:"author_id" bun:"author_id"`
	Title         string `json:"title" bun:"title"`
}

// paritySteps is one script of requests; every database must answer each
// step with the same JSON.
var paritySteps = []map[string]any{
	{"operation": "create", "entity": "authors", "data": map[string]any{"name": "Ann", "email": "ann@x.org", "score": 10, "active": true}},
	{"operation": "create", "entity": "authors", "data": map[string]any{"name": "bob", "score": 5}},
	{"operation": "create", "entity": "authors", "data": map[string]any{"name": "Cy", "email": "CY@X.ORG", "score": 7, "status": ""}},
	{"operation": "create", "entity": "authors", "data": map[string]any{"name": "dee_%", "email": "d@x.org", "score": -1, "active": true}},
	{"operation": "create", "entity": "books", "data": map[string]any{"author_id": 1, "title": "B1"}},
	{"operation": "create", "entity": "books", "data": map[string]any{"author_id": 1, "title": "B2"}},
	{"operation": "create", "entity": "books", "data": map[string]any{"author_id": 3, "title": "B3"}},
	{"operation": "read", "entity": "authors", "record_id": "2"},
	{"operation": "read", "entity": "authors", "options": map[string]any{"sort": []any{map[string]any{"column": "email"}, map[string]any{"column": "id", "direction": "desc"}}}},
	{"operation": "read", "entity": "authors", "options": filters("score", "gt", "5")},
	{"operation": "read", "entity": "authors", "options": filters("score", "between", []any{0, 7})},
	{"operation": "read", "entity": "authors", "options": filters("email", "is_null", nil)},
	{"operation": "read", "entity": "authors", "options": filters("email", "is_not_null", nil)},
	{"operation": "read", "entity": "authors", "options": filters("email", "neq", "ann@x.org")},
	{"operation": "read", "entity": "authors", "options": filters("email", "like", "%x.org")},
	{"operation": "read", "entity": "authors", "options": filters("email", "ilike", "%x.org")},
	{"operation": "read", "entity": "authors", "options": filters("name", "like", `%\_\%`)},
	{"operation": "read", "entity": "authors", "options": filters("name", "ilike", "B%")},
	{"operation": "read", "entity": "authors", "options": filters("id", "not_in", []any{"1", 2})},
	{"operation": "read", "entity": "authors", "options": filters("active", "eq", "true")},
	{"operation": "read", "entity": "authors", "options": map[string]any{"filters": []any{
		map[string]any{"column": "score", "operator": "lt", "value": 0},
		map[string]any{"column": "name", "operator": "eq", "value": "bob", "logic_operator": "OR"},
		map[string]any{"column": "id", "operator": "lte", "value": 4},
	}, "sort": []any{map[string]any{"column": "id"}}}},
	{"operation": "read", "entity": "authors", "options": map[string]any{"sort": []any{map[string]any{"column": "score", "direction": "desc"}}, "limit": 2, "offset": 1}},
	{"operation": "read", "entity": "authors", "options": map[string]any{"columns": []any{"name", "score"}, "sort": []any{map[string]any{"column": "id"}}}},
	{"operation": "read", "entity": "authors", "options": map[string]any{"omit_columns": []any{"email", "status"}, "sort": []any{map[string]any{"column": "id"}}}},
	{"operation": "read", "entity": "authors", "options": map[string]any{"preload": []any{map[string]any{"relation": "books"}}, "sort": []any{map[string]any{"column": "id"}}}},
	{"operation": "update", "entity": "authors", "record_id": "1", "data": map[string]any{"email": nil, "score": 0, "active": false}},
	{"operation": "update", "entity": "authors", "data": map[string]any{"id": 99, "name": "x"}},
	{"operation": "update", "entity": "authors", "record_id": "2", "data": map[string]any{"score": "high"}},
	{"operation": "read", "entity": "authors", "options": filters("nope", "eq", 1)},
	{"operation": "read", "entity": "authors", "options": filters("score", "regexp", 1)},
	{"operation": "delete", "entity": "books", "record_id": "3"},
	{"operation": "delete", "entity": "books", "record_id": "3"},
	{"operation": "meta", "entity": "authors"},
	{"operation": "read", "entity": "books", "options": map[string]any{"sort": []any{map[string]any{"column": "title", "direction": "desc"}}}},
}

func filters(col, op string, v any) map[string]any {
	return map[string]any{"filters": []any{map[string]any{"column": col, "operator": op, "value": v}},
		"sort": []any{map[string]any{"column": "id"}}}
}

// TestParityAcrossDatabases runs the same requests through the handler on
// GORM and Bun, SQLite and PostgreSQL, and expects identical answers.
func TestParityAcrossDatabases(t *testing.T) {
	answers := map[string][]string{}
	var kinds []string
	for _, k := range testdb.All() {
		db := testdb.Open(t, k, &Author{}, &Book{})
		h, err := mqttspec.NewHandlerWithDatabase(db, nil,
			mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}),
			mqttspec.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
		require.NoError(t, err)
		require.NoError(t, h.Registry().RegisterModel("public.authors", &Author{}))
		require.NoError(t, h.Registry().RegisterModel("public.books", &Book{}))
		require.NoError(t, h.Start())
		c := connectClient(t, "tcp://"+h.Addr(), "parity")
		for i, step := range paritySteps {
			msg := map[string]any{"id": "s", "type": "request", "schema": "public"}
			for key, v := range step {
				msg[key] = v
			}
			resp := c.request(msg)
			delete(resp, "timestamp")
			delete(resp, "_topic")
			raw, err := json.Marshal(resp)
			require.NoError(t, err)
			answers[k.String()] = append(answers[k.String()], string(raw))
			if k == testdb.All()[0] {
				t.Logf("step %d: %s", i, raw)
			}
		}
		require.NoError(t, h.Shutdown())
		kinds = append(kinds, k.String())
	}
	ref := answers[kinds[0]]
	for _, k := range kinds[1:] {
		for i := range paritySteps {
			require.JSONEq(t, ref[i], answers[k][i], "step %d differs between %s and %s", i, kinds[0], k)
		}
	}
}
