package adaptertest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/query"
)

func testFindOperators(t *testing.T, e *Env) {
	e.Seed(e.Items)
	cases := []struct {
		name string
		cond query.Condition
		want []int64
	}{
		{"eq string", e.Cond("name", query.OpEq, "Apple"), []int64{1}},
		{"eq string is case sensitive", e.Cond("name", query.OpEq, "apple"), []int64{}},
		{"eq int", e.Cond("qty", query.OpEq, int64(20)), []int64{2, 5}},
		{"eq bool true", e.Cond("active", query.OpEq, true), []int64{1, 3, 5}},
		{"eq bool false", e.Cond("active", query.OpEq, false), []int64{2, 4}},
		{"neq", e.Cond("qty", query.OpNeq, int64(20)), []int64{1, 3, 4}},
		{"neq skips NULL", e.Cond("note", query.OpNeq, "axb"), []int64{1, 3, 4}},
		{"gt", e.Cond("qty", query.OpGt, int64(10)), []int64{2, 3, 5}},
		{"gte", e.Cond("qty", query.OpGte, int64(20)), []int64{2, 3, 5}},
		{"lt", e.Cond("qty", query.OpLt, int64(20)), []int64{1, 4}},
		{"lte", e.Cond("qty", query.OpLte, int64(10)), []int64{1, 4}},
		{"gt float", e.Cond("price", query.OpGt, float64(2)), []int64{3, 4}},
		{"lte float", e.Cond("price", query.OpLte, 1.5), []int64{1, 2}},
		{"gt string byte order", e.Cond("name", query.OpGt, "Z"), []int64{2, 4}},
		{"like case sensitive", e.Cond("name", query.OpLike, "apple%"), []int64{4}},
		{"like prefix", e.Cond("name", query.OpLike, "Apple%"), []int64{1}},
		{"like infix", e.Cond("name", query.OpLike, "%an%"), []int64{2}},
		{"like single char", e.Cond("name", query.OpLike, "D_te"), []int64{5}},
		{"ilike", e.Cond("name", query.OpILike, "apple%"), []int64{1, 4}},
		{"ilike upper pattern", e.Cond("name", query.OpILike, "%CHERRY"), []int64{3}},
		{"in", e.Cond("name", query.OpIn, "Apple", "Date", "nope"), []int64{1, 5}},
		{"in ints", e.Cond("qty", query.OpIn, int64(0), int64(30)), []int64{3, 4}},
		{"not_in", e.Cond("qty", query.OpNotIn, int64(10), int64(20)), []int64{3, 4}},
		{"is_null", e.Cond("note", query.OpIsNull), []int64{2}},
		{"is_null code", e.Cond("code", query.OpIsNull), []int64{5}},
		{"is_not_null", e.Cond("code", query.OpIsNotNull), []int64{1, 2, 3, 4}},
		{"between inclusive", e.Cond("qty", query.OpBetween, int64(10), int64(20)), []int64{1, 2, 5}},
		{"between floats", e.Cond("price", query.OpBetween, 0.25, 2.0), []int64{1, 2, 5}},
		{"between strings", e.Cond("name", query.OpBetween, "B", "Date"), []int64{3, 5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := e.IDs(e.DB, &query.Query{Model: e.Items, Where: And(c.cond), Sort: e.byID()})
			require.Equal(t, c.want, got)
		})
	}
}

func testFindLikeEscapes(t *testing.T, e *Env) {
	e.Seed(e.Items)
	cases := []struct {
		name    string
		op      query.Op
		pattern string
		want    []int64
	}{
		{"underscore is a wildcard", query.OpLike, "a_b", []int64{4, 5}},
		{"escaped underscore", query.OpLike, `a\_b`, []int64{4}},
		{"percent is a wildcard", query.OpLike, "100%", []int64{3}},
		{"escaped percent", query.OpLike, `100\%%`, []int64{3}},
		{"escaped percent needs it", query.OpLike, `10\%%`, []int64{}},
		{"escaped ordinary char", query.OpLike, `\a\x\b`, []int64{5}},
		{"glob characters are literal", query.OpLike, "a*b", []int64{}},
		{"question mark is literal", query.OpLike, "a?b", []int64{}},
		{"bracket is literal", query.OpLike, "[a]%", []int64{}},
		{"ilike escaped underscore", query.OpILike, `A\_B`, []int64{4}},
		{"ilike escaped percent", query.OpILike, `100\% JUICY`, []int64{3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := &query.Query{Model: e.Items, Where: And(e.Cond("note", c.op, c.pattern)), Sort: e.byID()}
			require.Equal(t, c.want, e.IDs(e.DB, q))
		})
	}
}

func testFindOrGroups(t *testing.T, e *Env) {
	e.Seed(e.Items)
	// name = Apple OR qty > 25
	q := &query.Query{Model: e.Items, Sort: e.byID(), Where: []query.Group{
		{e.Cond("name", query.OpEq, "Apple"), e.Cond("qty", query.OpGt, int64(25))},
	}}
	require.Equal(t, []int64{1, 3}, e.IDs(e.DB, q))

	// active AND (qty = 20 OR qty = 30)
	q.Where = []query.Group{
		{e.Cond("active", query.OpEq, true)},
		{e.Cond("qty", query.OpEq, int64(20)), e.Cond("qty", query.OpEq, int64(30))},
	}
	require.Equal(t, []int64{3, 5}, e.IDs(e.DB, q))

	// (note IS NULL OR note LIKE 'a%') AND (price < 1 OR price > 4)
	q.Where = []query.Group{
		{e.Cond("note", query.OpIsNull), e.Cond("note", query.OpLike, "a%")},
		{e.Cond("price", query.OpLt, 1.0), e.Cond("price", query.OpGt, 4.0)},
	}
	require.Equal(t, []int64{2, 4}, e.IDs(e.DB, q))

	// an empty group matches nothing
	q.Where = []query.Group{{}}
	require.Equal(t, []int64{}, e.IDs(e.DB, q))
}

func testFindSort(t *testing.T, e *Env) {
	e.Seed(e.Items)
	qty, name := e.Col(e.Items, "qty"), e.Col(e.Items, "name")
	q := &query.Query{Model: e.Items, Sort: []query.Sort{{Column: qty, Desc: true}, {Column: name}}}
	// qty 30, then the two 20s by name in byte order ("Date" < "banana"), 10, 0
	require.Equal(t, []int64{3, 5, 2, 1, 4}, e.IDs(e.DB, q))

	q.Sort = []query.Sort{{Column: name}}
	require.Equal(t, []int64{1, 3, 5, 4, 2}, e.IDs(e.DB, q))
	q.Sort = []query.Sort{{Column: name, Desc: true}}
	require.Equal(t, []int64{2, 4, 5, 3, 1}, e.IDs(e.DB, q))

	q.Sort = []query.Sort{{Column: e.Col(e.Items, "active"), Desc: true}, {Column: e.Col(e.Items, "price"), Desc: true}}
	require.Equal(t, []int64{3, 5, 1, 4, 2}, e.IDs(e.DB, q))
}

func testFindSortNulls(t *testing.T, e *Env) {
	e.Seed(e.Items)
	note := e.Col(e.Items, "note")
	q := &query.Query{Model: e.Items, Sort: []query.Sort{{Column: note}}}
	require.Equal(t, []int64{2, 3, 4, 5, 1}, e.IDs(e.DB, q), "NULL first in ascending order")
	q.Sort = []query.Sort{{Column: note, Desc: true}}
	require.Equal(t, []int64{1, 5, 4, 3, 2}, e.IDs(e.DB, q), "NULL last in descending order")
}

func testFindLimitOffset(t *testing.T, e *Env) {
	e.Seed(e.Items)
	q := &query.Query{Model: e.Items, Sort: e.byID(), Limit: 2}
	require.Equal(t, []int64{1, 2}, e.IDs(e.DB, q))
	q.Offset = 1
	require.Equal(t, []int64{2, 3}, e.IDs(e.DB, q))
	q.Offset = 4
	require.Equal(t, []int64{5}, e.IDs(e.DB, q))
	q.Offset = 10
	require.Equal(t, []int64{}, e.IDs(e.DB, q))
	q.Limit, q.Offset = 0, 3 // offset without limit
	require.Equal(t, []int64{4, 5}, e.IDs(e.DB, q))
	q.Limit, q.Offset = 0, 0
	require.Equal(t, []int64{1, 2, 3, 4, 5}, e.IDs(e.DB, q))
}

func testFindProjection(t *testing.T, e *Env) {
	e.Seed(e.Items)
	q := &query.Query{Model: e.Items, Sort: e.byID(), Columns: e.Cols(e.Items, "id", "name")}
	items := e.Find(e.DB, q)
	require.Len(t, items, 5)
	require.Equal(t, Item{ID: 1, Name: "Apple"}, *items[0])
	require.Equal(t, Item{ID: 3, Name: "Cherry"}, *items[2])

	q.Columns = e.Cols(e.Items, "note")
	q.Where = And(e.Cond("code", query.OpEq, "C3"))
	items = e.Find(e.DB, q)
	require.Len(t, items, 1)
	require.Equal(t, Item{Note: Str("100% juicy")}, *items[0])
}

func testFindPreload(t *testing.T, e *Env) {
	name := e.Cols(e.Owners, "name")
	ann, bob := &Owner{Name: "ann"}, &Owner{Name: "bob"}
	require.NoError(t, e.DB.Insert(e.ctx, e.Owners, ann, name))
	require.NoError(t, e.DB.Insert(e.ctx, e.Owners, bob, name))
	petCols := e.Cols(e.Pets, "owner_id", "name")
	for _, p := range []*Pet{{OwnerID: ann.ID, Name: "rex"}, {OwnerID: ann.ID, Name: "tom"}, {OwnerID: bob.ID, Name: "kit"}} {
		require.NoError(t, e.DB.Insert(e.ctx, e.Pets, p, petCols))
	}
	pets, ok := e.Owners.Relation("Pets")
	require.True(t, ok)
	q := &query.Query{Model: e.Owners, Sort: []query.Sort{{Column: e.Owners.PrimaryKey}}}
	rows, err := e.DB.Find(e.ctx, q)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Empty(t, rows[0].(*Owner).Pets, "no preload asked")

	q.Preload = []*query.Relation{pets}
	rows, err = e.DB.Find(e.ctx, q)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	var got [][]string
	for _, r := range rows {
		var names []string
		for _, p := range r.(*Owner).Pets {
			names = append(names, p.Name)
		}
		if len(names) == 2 && names[0] > names[1] {
			names[0], names[1] = names[1], names[0]
		}
		got = append(got, names)
	}
	require.Equal(t, [][]string{{"rex", "tom"}, {"kit"}}, got)
}

func testFindLock(t *testing.T, e *Env) {
	e.Seed(e.Items)
	tx, err := e.DB.Begin(e.ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	q := &query.Query{Model: e.Items, Where: And(e.Cond("id", query.OpEq, int64(2))), Lock: true, Limit: 1}
	require.Equal(t, []int64{2}, e.IDs(tx, q))
	n, err := tx.Update(e.ctx, e.Items, q.Where, map[*query.Column]any{e.Col(e.Items, "qty"): int64(21)})
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.NoError(t, tx.Commit())
	require.Equal(t, int64(21), e.Get(e.DB, e.Items, 2).Qty)
}

func testCount(t *testing.T, e *Env) {
	require.Equal(t, int64(0), e.Count(e.DB, e.Items, nil))
	e.Seed(e.Items)
	require.Equal(t, int64(5), e.Count(e.DB, e.Items, nil))
	require.Equal(t, int64(3), e.Count(e.DB, e.Items, And(e.Cond("active", query.OpEq, true))))
	require.Equal(t, int64(2), e.Count(e.DB, e.Items, And(e.Cond("name", query.OpILike, "APPLE%"))))
	require.Equal(t, int64(1), e.Count(e.DB, e.Items, And(
		e.Cond("active", query.OpEq, true), e.Cond("qty", query.OpGte, int64(20)), e.Cond("note", query.OpLike, "%x%"))))
	n, err := e.DB.Count(e.ctx, &query.Query{Model: e.Items, Sort: e.byID(), Limit: 1, Offset: 1})
	require.NoError(t, err)
	require.Equal(t, int64(5), n, "Count ignores sort, limit and offset")
}
