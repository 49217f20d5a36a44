package mqttspec

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/query"
)

// TestWhereKeyTellsFiltersApart: filters that differ in column, operator,
// value, value type or grouping have different keys; equal ones the same.
func TestWhereKeyTellsFiltersApart(t *testing.T) {
	a := &query.Column{Name: "a"}
	b := &query.Column{Name: "b"}
	cond := func(c *query.Column, op query.Op, v any) query.Condition {
		return query.Condition{Column: c, Op: op, Value: v}
	}
	wheres := [][]query.Group{
		nil,
		{{cond(a, query.OpEq, "1")}},
		{{cond(a, query.OpEq, int64(1))}},
		{{cond(b, query.OpEq, "1")}},
		{{cond(a, query.OpNeq, "1")}},
		{{cond(a, query.OpEq, "1"), cond(b, query.OpEq, "1")}},
		{{cond(a, query.OpEq, "1")}, {cond(b, query.OpEq, "1")}},
		{{cond(a, query.OpEq, `1" "b`)}},
	}
	seen := map[string]int{}
	for i, w := range wheres {
		k := whereKey(w)
		if j, dup := seen[k]; dup {
			t.Fatalf("filters %d and %d share the key %q", j, i, k)
		}
		seen[k] = i
		require.Equal(t, k, whereKey(w))
	}
}
