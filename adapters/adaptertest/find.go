package adaptertest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/adapters"
)

func testFindOperators(t *testing.T, e *Env) {
	e.Seed(e.Items)
	cases := []struct {
		name string
		cond adapters.Condition
		want []int64
	}{
		{"eq string", e.Cond("name", adapters.OpEq, "Apple"), []int64{1}},
		{"eq string is case sensitive", e.Cond("name", adapters.OpEq, "apple"), []int64{}},
		{"eq int", e.Cond("qty", adapters.OpEq, int64(20)), []int64{2, 5}},
		{"eq bool true", e.Cond("active", adapters.OpEq, true), []int64{1, 3, 5}},
		{"eq bool false", e.Cond("active", adapters.OpEq, false), []int64{2, 4}},
		{"neq", e.Cond("qty", adapters.OpNeq, int64(20)), []int64{1, 3, 4}},
		{"neq skips NULL", e.Cond("note", adapters.OpNeq, "axb"), []int64{1, 3, 4}},
		{"gt", e.Cond("qty", adapters.OpGt, int64(10)), []int64{2, 3, 5}},
		{"gte", e.Cond("qty", adapters.OpGte, int64(20)), []int64{2, 3, 5}},
		{"lt", e.Cond("qty", adapters.OpLt, int64(20)), []int64{1, 4}},
		{"lte", e.Cond("qty", adapters.OpLte, int64(10)), []int64{1, 4}},
		{"gt float", e.Cond("price", adapters.OpGt, float64(2)), []int64{3, 4}},
		{"lte float", e.Cond("price", adapters.OpLte, 1.5), []int64{1, 2}},
		{"gt string byte order", e.Cond("name", adapters.OpGt, "Z"), []int64{2, 4}},
		{"like case sensitive", e.Cond("name", adapters.OpLike, "apple%"), []int64{4}},
		{"like prefix", e.Cond("name", adapters.OpLike, "Apple%"), []int64{1}},
		{"like infix", e.Cond("name", adapters.OpLike, "%an%"), []int64{2}},
		{"like single char", e.Cond("name", adapters.OpLike, "D_te"), []int64{5}},
		{"ilike", e.Cond("name", adapters.OpILike, "apple%"), []int64{1, 4}},
		{"ilike upper pattern", e.Cond("name", adapters.OpILike, "%CHERRY"), []int64{3}},
		{"in", e.Cond("name", adapters.OpIn, "Apple", "Date", "nope"), []int64{1, 5}},
		{"in ints", e.Cond("qty", adapters.OpIn, int64(0), int64(30)), []int64{3, 4}},
		{"not_in", e.Cond("qty", adapters.OpNotIn, int64(10), int64(20)), []int64{3, 4}},
		{"is_null", e.Cond("note", adapters.OpIsNull), []int64{2}},
		{"is_null code", e.Cond("code", adapters.OpIsNull), []int64{5}},
		{"is_not_null", e.Cond("code", adapters.OpIsNotNull), []int64{1, 2, 3, 4}},
		{"between inclusive", e.Cond("qty", adapters.OpBetween, int64(10), int64(20)), []int64{1, 2, 5}},
		{"between floats", e.Cond("price", adapters.OpBetween, 0.25, 2.0), []int64{1, 2, 5}},
		{"between strings", e.Cond("name", adapters.OpBetween, "B", "Date"), []int64{3, 5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := e.IDs(e.DB, &adapters.Query{Model: e.Items, Where: And(c.cond), Sort: e.byID()})
			require.Equal(t, c.want, got)
		})
	}
}

func testFindLikeEscapes(t *testing.T, e *Env) {
	e.Seed(e.Items)
	cases := []struct {
		name    string
		op      adapters.Op
		pattern string
		want    []int64
	}{
		{"underscore is a wildcard", adapters.OpLike, "a_b", []int64{4, 5}},
		{"escaped underscore", adapters.OpLike, `a\_b`, []int64{4}},
		{"percent is a wildcard", adapters.OpLike, "100%", []int64{3}},
		{"escaped percent", adapters.OpLike, `100\%%`, []int64{3}},
		{"escaped percent needs it", adapters.OpLike, `10\%%`, []int64{}},
		{"escaped ordinary char", adapters.OpLike, `\a\x\b`, []int64{5}},
		{"glob characters are literal", adapters.OpLike, "a*b", []int64{}},
		{"question mark is literal", adapters.OpLike, "a?b", []int64{}},
		{"bracket is literal", adapters.OpLike, "[a]%", []int64{}},
		{"ilike escaped underscore", adapters.OpILike, `A\_B`, []int64{4}},
		{"ilike escaped percent", adapters.OpILike, `100\% JUICY`, []int64{3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := &adapters.Query{Model: e.Items, Where: And(e.Cond("note", c.op, c.pattern)), Sort: e.byID()}
			require.Equal(t, c.want, e.IDs(e.DB, q))
		})
	}
}

func testFindOrGroups(t *testing.T, e *Env) {
	e.Seed(e.Items)
	// name = Apple OR qty > 25
	q := &adapters.Query{Model: e.Items, Sort: e.byID(), Where: []adapters.Group{
		{e.Cond("name", adapters.OpEq, "Apple"), e.Cond("qty", adapters.OpGt, int64(25))},
	}}
	require.Equal(t, []int64{1, 3}, e.IDs(e.DB, q))

	// active AND (qty = 20 OR qty = 30)
	q.Where = []adapters.Group{
		{e.Cond("active", adapters.OpEq, true)},
		{e.Cond("qty", adapters.OpEq, int64(20)), e.Cond("qty", adapters.OpEq, int64(30))},
	}
	require.Equal(t, []int64{3, 5}, e.IDs(e.DB, q))

	// (note IS NULL OR note LIKE 'a%') AND (price < 1 OR price > 4)
	q.Where = []adapters.Group{
		{e.Cond("note", adapters.OpIsNull), e.Cond("note", adapters.OpLike, "a%")},
		{e.Cond("price", adapters.OpLt, 1.0), e.Cond("price", adapters.OpGt, 4.0)},
	}
	require.Equal(t, []int64{2, 4}, e.IDs(e.DB, q))

	// an empty group matches nothing
	q.Where = []adapters.Group{{}}
	require.Equal(t, []int64{}, e.IDs(e.DB, q))
}

func testFindSort(t *testing.T, e *Env) {
	e.Seed(e.Items)
	qty, name := e.Col(e.Items, "qty"), e.Col(e.Items, "name")
	q := &adapters.Query{Model: e.Items, Sort: []adapters.Sort{{Column: qty, Desc: true}, {Column: name}}}
	// qty 30, then the two 20s by name in byte order ("Date" < "banana"), 10, 0
	require.Equal(t, []int64{3, 5, 2, 1, 4}, e.IDs(e.DB, q))

	q.Sort = []adapters.Sort{{Column: name}}
	require.Equal(t, []int64{1, 3, 5, 4, 2}, e.IDs(e.DB, q))
	q.Sort = []adapters.Sort{{Column: name, Desc: true}}
	require.Equal(t, []int64{2, 4, 5, 3, 1}, e.IDs(e.DB, q))

	q.Sort = []adapters.Sort{{Column: e.Col(e.Items, "active"), Desc: true}, {Column: e.Col(e.Items, "price"), Desc: true}}
	require.Equal(t, []int64{3, 5, 1, 4, 2}, e.IDs(e.DB, q))
}

func testFindSortNulls(t *testing.T, e *Env) {
	e.Seed(e.Items)
	note := e.Col(e.Items, "note")
	q := &adapters.Query{Model: e.Items, Sort: []adapters.Sort{{Column: note}}}
	require.Equal(t, []int64{2, 3, 4, 5, 1}, e.IDs(e.DB, q), "NULL first in ascending order")
	q.Sort = []adapters.Sort{{Column: note, Desc: true}}
	require.Equal(t, []int64{1, 5, 4, 3, 2}, e.IDs(e.DB, q), "NULL last in descending order")
}

func testFindLimitOffset(t *testing.T, e *Env) {
	e.Seed(e.Items)
	q := &adapters.Query{Model: e.Items, Sort: e.byID(), Limit: 2}
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
	q := &adapters.Query{Model: e.Items, Sort: e.byID(), Columns: e.Cols(e.Items, "id", "name")}
	items := e.Find(e.DB, q)
	require.Len(t, items, 5)
	require.Equal(t, Item{ID: 1, Name: "Apple"}, *items[0])
	require.Equal(t, Item{ID: 3, Name: "Cherry"}, *items[2])

	q.Columns = e.Cols(e.Items, "note")
	q.Where = And(e.Cond("code", adapters.OpEq, "C3"))
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
	q := &adapters.Query{Model: e.Owners, Sort: []adapters.Sort{{Column: e.Owners.PrimaryKey}}}
	rows, err := e.DB.Find(e.ctx, q)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Empty(t, rows[0].(*Owner).Pets, "no preload asked")

	q.Preload = []*adapters.Relation{pets}
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
	q := &adapters.Query{Model: e.Items, Where: And(e.Cond("id", adapters.OpEq, int64(2))), Lock: true, Limit: 1}
	require.Equal(t, []int64{2}, e.IDs(tx, q))
	n, err := tx.Update(e.ctx, e.Items, q.Where, map[*adapters.Column]any{e.Col(e.Items, "qty"): int64(21)})
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.NoError(t, tx.Commit())
	require.Equal(t, int64(21), e.Get(e.DB, e.Items, 2).Qty)
}

func testCount(t *testing.T, e *Env) {
	require.Equal(t, int64(0), e.Count(e.DB, e.Items, nil))
	e.Seed(e.Items)
	require.Equal(t, int64(5), e.Count(e.DB, e.Items, nil))
	require.Equal(t, int64(3), e.Count(e.DB, e.Items, And(e.Cond("active", adapters.OpEq, true))))
	require.Equal(t, int64(2), e.Count(e.DB, e.Items, And(e.Cond("name", adapters.OpILike, "APPLE%"))))
	require.Equal(t, int64(1), e.Count(e.DB, e.Items, And(
		e.Cond("active", adapters.OpEq, true), e.Cond("qty", adapters.OpGte, int64(20)), e.Cond("note", adapters.OpLike, "%x%"))))
	n, err := e.DB.Count(e.ctx, &adapters.Query{Model: e.Items, Sort: e.byID(), Limit: 1, Offset: 1})
	require.NoError(t, err)
	require.Equal(t, int64(5), n, "Count ignores sort, limit and offset")
}
