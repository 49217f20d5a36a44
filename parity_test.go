package mqttspec_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
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

// parityStep is one request of the script and the answer it must get:
//
//	record {json}   data is exactly this record
//	ids 1,2         data is a list of records with these ids, in this order
//	                ("total N": metadata.total is N)
//	keys a,b        data is a list of records with exactly these keys
//	books 1:B1,B2   the authors' preloaded book titles, by author id
//	meta a,b rel    the model's column names and relations
//	error code      the request fails with this code
type parityStep struct {
	req  map[string]any
	want string
}

// paritySteps is one script of requests; every database must give each
// step the expected answer, and the same JSON as every other database.
var paritySteps = []parityStep{
	{map[string]any{"operation": "create", "entity": "authors", "data": map[string]any{"name": "Ann", "email": "ann@x.org", "score": 10, "active": true}}, `record {"id":1,"name":"Ann","email":"ann@x.org","score":10,"active":true,"status":"new"}`},
	{map[string]any{"operation": "create", "entity": "authors", "data": map[string]any{"name": "bob", "score": 5}}, `record {"id":2,"name":"bob","email":null,"score":5,"active":false,"status":"new"}`},
	{map[string]any{"operation": "create", "entity": "authors", "data": map[string]any{"name": "Cy", "email": "CY@X.ORG", "score": 7, "status": ""}}, `record {"id":3,"name":"Cy","email":"CY@X.ORG","score":7,"active":false,"status":""}`},
	{map[string]any{"operation": "create", "entity": "authors", "data": map[string]any{"name": "dee_%", "email": "d@x.org", "score": -1, "active": true}}, `record {"id":4,"name":"dee_%","email":"d@x.org","score":-1,"active":true,"status":"new"}`},
	{map[string]any{"operation": "create", "entity": "books", "data": map[string]any{"author_id": 1, "title": "B1"}}, `record {"id":1,"author_id":1,"title":"B1"}`},
	{map[string]any{"operation": "create", "entity": "books", "data": map[string]any{"author_id": 1, "title": "B2"}}, `record {"id":2,"author_id":1,"title":"B2"}`},
	{map[string]any{"operation": "create", "entity": "books", "data": map[string]any{"author_id": 3, "title": "B3"}}, `record {"id":3,"author_id":3,"title":"B3"}`},
	{map[string]any{"operation": "read", "entity": "authors", "record_id": "2"}, `record {"id":2,"name":"bob","email":null,"score":5,"active":false,"status":"new"}`},
	// NULL sorts first, then byte order: "CY..." < "ann..." < "d...".
	{map[string]any{"operation": "read", "entity": "authors", "options": map[string]any{"sort": []any{map[string]any{"column": "email"}, map[string]any{"column": "id", "direction": "desc"}}}}, `ids 2,3,1,4`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("score", "gt", "5")}, `ids 1,3`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("score", "between", []any{0, 7})}, `ids 2,3`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("email", "is_null", nil)}, `ids 2`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("email", "is_not_null", nil)}, `ids 1,3,4`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("email", "neq", "ann@x.org")}, `ids 3,4`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("email", "like", "%x.org")}, `ids 1,4`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("email", "ilike", "%x.org")}, `ids 1,3,4`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("name", "like", `%\_\%`)}, `ids 4`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("name", "ilike", "B%")}, `ids 2`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("id", "not_in", []any{"1", 2})}, `ids 3,4`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("active", "eq", "true")}, `ids 1,4`},
	{map[string]any{"operation": "read", "entity": "authors", "options": map[string]any{"filters": []any{
		map[string]any{"column": "score", "operator": "lt", "value": 0},
		map[string]any{"column": "name", "operator": "eq", "value": "bob", "logic_operator": "OR"},
		map[string]any{"column": "id", "operator": "lte", "value": 4},
	}, "sort": []any{map[string]any{"column": "id"}}}}, `ids 2,4`},
	{map[string]any{"operation": "read", "entity": "authors", "options": map[string]any{"sort": []any{map[string]any{"column": "score", "direction": "desc"}}, "limit": 2, "offset": 1}}, `ids 3,2 total 4`},
	{map[string]any{"operation": "read", "entity": "authors", "options": map[string]any{"columns": []any{"name", "score"}, "sort": []any{map[string]any{"column": "id"}}}}, `keys id,name,score`},
	{map[string]any{"operation": "read", "entity": "authors", "options": map[string]any{"omit_columns": []any{"email", "status"}, "sort": []any{map[string]any{"column": "id"}}}}, `keys active,id,name,score`},
	{map[string]any{"operation": "read", "entity": "authors", "options": map[string]any{"preload": []any{map[string]any{"relation": "books"}}, "sort": []any{map[string]any{"column": "id"}}}}, `books 1:B1,B2 2: 3:B3 4:`},
	{map[string]any{"operation": "update", "entity": "authors", "record_id": "1", "data": map[string]any{"email": nil, "score": 0, "active": false}}, `record {"id":1,"name":"Ann","email":null,"score":0,"active":false,"status":"new"}`},
	{map[string]any{"operation": "update", "entity": "authors", "data": map[string]any{"id": 99, "name": "x"}}, `error not_found`},
	{map[string]any{"operation": "update", "entity": "authors", "record_id": "2", "data": map[string]any{"score": "high"}}, `error invalid_value`},
	// NUL is stored by SQLite and refused by PostgreSQL: refused before
	// the database on every one, in data and in filters alike.
	{map[string]any{"operation": "create", "entity": "authors", "data": map[string]any{"name": "nul\x00"}}, `error invalid_value`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("name", "eq", "a\x00b")}, `error invalid_value`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("nope", "eq", 1)}, `error unknown_column`},
	{map[string]any{"operation": "read", "entity": "authors", "options": filters("score", "regexp", 1)}, `error unknown_operator`},
	{map[string]any{"operation": "delete", "entity": "books", "record_id": "3"}, `record {"id":3,"author_id":3,"title":"B3"}`},
	{map[string]any{"operation": "delete", "entity": "books", "record_id": "3"}, `error not_found`},
	{map[string]any{"operation": "meta", "entity": "authors"}, `meta id,name,email,score,active,status books`},
	{map[string]any{"operation": "read", "entity": "books", "options": map[string]any{"sort": []any{map[string]any{"column": "title", "direction": "desc"}}}}, `ids 2,1`},
}

func filters(col, op string, v any) map[string]any {
	return map[string]any{"filters": []any{map[string]any{"column": col, "operator": op, "value": v}},
		"sort": []any{map[string]any{"column": "id"}}}
}

// TestParityAcrossDatabases runs the same requests through the handler on
// GORM and Bun, SQLite and PostgreSQL, checks each answer against what the
// protocol says it must be, and expects identical answers everywhere.
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
		c := mqtttest.Connect(t, "tcp://"+h.Addr(), "parity")
		for i, step := range paritySteps {
			msg := map[string]any{"id": fmt.Sprint("step-", i), "type": "request", "schema": "public"}
			for key, v := range step.req {
				msg[key] = v
			}
			resp := c.Request(msg)
			checkParityStep(t, fmt.Sprintf("%s step %d", k, i), step.want, resp)
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

// checkParityStep asserts that resp is the answer want describes (see
// parityStep).
func checkParityStep(t *testing.T, step, want string, resp map[string]any) {
	t.Helper()
	kind, arg, _ := strings.Cut(want, " ")
	if kind == "error" {
		require.Equal(t, false, resp["success"], "%s: %v", step, resp)
		require.Equal(t, arg, resp["error"].(map[string]any)["code"], step)
		return
	}
	require.Equal(t, true, resp["success"], "%s: %v", step, resp)
	data := resp["data"]
	rows, _ := data.([]any)
	field := func(i int, key string) any { return rows[i].(map[string]any)[key] }
	switch kind {
	case "record":
		got, err := json.Marshal(data)
		require.NoError(t, err)
		require.JSONEq(t, arg, string(got), step)
	case "ids":
		list, total, hasTotal := strings.Cut(arg, " total ")
		var ids []string
		for i := range rows {
			ids = append(ids, fmt.Sprint(field(i, "id")))
		}
		require.Equal(t, list, strings.Join(ids, ","), step)
		if hasTotal {
			require.Equal(t, total, fmt.Sprint(resp["metadata"].(map[string]any)["total"]), step)
		}
	case "keys":
		require.NotEmpty(t, rows, step)
		for i := range rows {
			keys := make([]string, 0)
			for k := range rows[i].(map[string]any) {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			require.Equal(t, arg, strings.Join(keys, ","), step)
		}
	case "books":
		var got []string
		for i := range rows {
			var titles []string
			books, _ := field(i, "books").([]any)
			for _, b := range books {
				titles = append(titles, b.(map[string]any)["title"].(string))
			}
			got = append(got, fmt.Sprintf("%v:%s", field(i, "id"), strings.Join(titles, ",")))
		}
		require.Equal(t, arg, strings.Join(got, " "), step)
	case "meta":
		cols, rels, _ := strings.Cut(arg, " ")
		meta := data.(map[string]any)
		var names []string
		for _, c := range meta["columns"].([]any) {
			names = append(names, c.(map[string]any)["name"].(string))
		}
		require.Equal(t, cols, strings.Join(names, ","), step)
		require.Equal(t, []any{rels}, meta["relations"], step)
	default:
		t.Fatalf("%s: unknown expectation %q", step, want)
	}
}
