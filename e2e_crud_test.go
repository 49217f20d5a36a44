package mqttspec_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

func TestCRUDEndToEnd(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil)
		c := mqtttest.Connect(t, srv.url, "crud-client")

		// create returns the stored record with its id and database defaults.
		created := mqtttest.OK(t, c.Request(mqtttest.Req("create", "users", map[string]any{
			"data": map[string]any{"name": "Ada", "email": "ada@example.com", "age": 36, "active": true},
		}))).(map[string]any)
		require.NotZero(t, created["id"])
		require.Equal(t, "new", created["status"], "database default must be returned")
		require.Equal(t, "Ada", created["name"])
		id := created["id"]

		// read by record_id and by data.id (the README's form).
		byRecordID := mqtttest.OK(t, c.Request(mqtttest.Req("read", "users", map[string]any{"record_id": "1"}))).(map[string]any)
		require.Equal(t, created, byRecordID)
		byDataID := mqtttest.OK(t, c.Request(mqtttest.Req("read", "users", map[string]any{"data": map[string]any{"id": id}}))).(map[string]any)
		require.Equal(t, created, byDataID)

		// update changes only the fields present; "", 0 and false are real values.
		updated := mqtttest.OK(t, c.Request(mqtttest.Req("update", "users", map[string]any{
			"data": map[string]any{"id": id, "email": "", "age": 0, "active": false},
		}))).(map[string]any)
		require.Equal(t, "Ada", updated["name"], "absent field must keep its value")
		require.Equal(t, "new", updated["status"])
		require.Equal(t, "", updated["email"])
		require.EqualValues(t, 0, updated["age"])
		require.Equal(t, false, updated["active"])
		var stored User
		require.NoError(t, srv.db.First(&stored, id).Error)
		require.Equal(t, User{ID: stored.ID, Name: "Ada", Status: "new"}, stored)

		// update by record_id with the status only.
		updated = mqtttest.OK(t, c.Request(mqtttest.Req("update", "users", map[string]any{
			"record_id": "1", "data": map[string]any{"status": "inactive"},
		}))).(map[string]any)
		require.Equal(t, "inactive", updated["status"])

		// delete removes it and answers with the deleted record.
		deleted := mqtttest.OK(t, c.Request(mqtttest.Req("delete", "users", map[string]any{"data": map[string]any{"id": id}}))).(map[string]any)
		require.Equal(t, "Ada", deleted["name"])
		require.Zero(t, countUsers(t, srv.db))
		mqtttest.Fails(t, c.Request(mqtttest.Req("read", "users", map[string]any{"record_id": "1"})), "not_found")
	})
}

func TestReadListFiltersSortPaging(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil)
		c := mqtttest.Connect(t, srv.url, "list-client")
		for i, name := range []string{"ann", "bob", "cid", "dan", "eve", "fay"} {
			status := "active"
			if i%2 == 1 {
				status = "inactive"
			}
			mqtttest.OK(t, c.Request(mqtttest.Req("create", "users", map[string]any{
				"data": map[string]any{"name": name, "status": status, "age": 20 + i, "email": name + "@x.org"},
			})))
		}
		names := func(resp map[string]any) []string {
			var out []string
			for _, r := range mqtttest.OK(t, resp).([]any) {
				out = append(out, r.(map[string]any)["name"].(string))
			}
			return out
		}
		cases := []struct {
			name    string
			options map[string]any
			want    []string
			total   float64
		}{
			{"eq", map[string]any{"filters": []any{map[string]any{"column": "status", "operator": "eq", "value": "active"}}, "sort": []any{map[string]any{"column": "name"}}}, []string{"ann", "cid", "eve"}, 3},
			{"neq desc", map[string]any{"filters": []any{map[string]any{"column": "status", "operator": "neq", "value": "active"}}, "sort": []any{map[string]any{"column": "name", "direction": "desc"}}}, []string{"fay", "dan", "bob"}, 3},
			{"gt", map[string]any{"filters": []any{map[string]any{"column": "age", "operator": "gt", "value": 23}}, "sort": []any{map[string]any{"column": "age"}}}, []string{"eve", "fay"}, 2},
			{"gte string value", map[string]any{"filters": []any{map[string]any{"column": "age", "operator": "gte", "value": "24"}}, "sort": []any{map[string]any{"column": "age"}}}, []string{"eve", "fay"}, 2},
			{"lt", map[string]any{"filters": []any{map[string]any{"column": "age", "operator": "lt", "value": 21}}}, []string{"ann"}, 1},
			{"lte", map[string]any{"filters": []any{map[string]any{"column": "age", "operator": "lte", "value": 21}}, "sort": []any{map[string]any{"column": "age"}}}, []string{"ann", "bob"}, 2},
			{"like", map[string]any{"filters": []any{map[string]any{"column": "email", "operator": "like", "value": "%a%@x.org"}}, "sort": []any{map[string]any{"column": "name"}}}, []string{"ann", "dan", "fay"}, 3},
			{"ilike", map[string]any{"filters": []any{map[string]any{"column": "name", "operator": "ilike", "value": "B%"}}}, []string{"bob"}, 1},
			{"in", map[string]any{"filters": []any{map[string]any{"column": "name", "operator": "in", "value": []any{"bob", "eve", "zed"}}}, "sort": []any{map[string]any{"column": "name"}}}, []string{"bob", "eve"}, 2},
			{"limit offset total", map[string]any{"sort": []any{map[string]any{"column": "name"}}, "limit": 2, "offset": 1}, []string{"bob", "cid"}, 6},
			{"sort by two columns", map[string]any{"sort": []any{map[string]any{"column": "status"}, map[string]any{"column": "age", "direction": "desc"}}, "limit": 4}, []string{"eve", "cid", "ann", "fay"}, 6},
		}
		for _, tc := range cases { // clients belong to the parent test: a loop, not subtests
			resp := c.Request(mqtttest.Req("read", "users", map[string]any{"options": tc.options}))
			require.Equal(t, tc.want, names(resp), tc.name)
			meta := resp["metadata"].(map[string]any)
			require.Equal(t, tc.total, meta["total"], tc.name)
			require.EqualValues(t, len(tc.want), meta["count"], tc.name)
		}
	})
}

func TestMetaAndPing(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil)
		c := mqtttest.Connect(t, srv.url, "meta-client")

		pong := c.Request(map[string]any{"id": "p-1", "type": "ping"})
		require.Equal(t, "pong", pong["type"])
		require.Equal(t, "p-1", pong["id"])

		meta := mqtttest.OK(t, c.Request(mqtttest.Req("meta", "users", nil))).(map[string]any)
		require.Equal(t, "users", meta["entity"])
		require.Equal(t, "id", meta["primary_key"])
		var cols []string
		for _, col := range meta["columns"].([]any) {
			cols = append(cols, col.(map[string]any)["name"].(string))
		}
		require.Equal(t, []string{"id", "name", "email", "status", "age", "active", "tenant_id"}, cols)
	})
}

func TestStringPrimaryKeyGetsUUID(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil)
		c := mqtttest.Connect(t, srv.url, "note-client")
		note := mqtttest.OK(t, c.Request(mqtttest.Req("create", "notes", map[string]any{"data": map[string]any{"text": "hi"}}))).(map[string]any)
		id, _ := note["id"].(string)
		require.Len(t, id, 36)
		got := mqtttest.OK(t, c.Request(mqtttest.Req("read", "notes", map[string]any{"record_id": id}))).(map[string]any)
		require.Equal(t, "hi", got["text"])
	})
}
