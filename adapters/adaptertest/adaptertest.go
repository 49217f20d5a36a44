// Package adaptertest is a conformance suite for implementations of
// adapters.Database. Run it with a function that opens a fresh, empty
// database in which the tables of Models exist:
//
//	func TestMyAdapter(t *testing.T) {
//		adaptertest.Run(t, func(t *testing.T, models ...any) adapters.Database {
//			return openMyDatabase(t, models...)
//		})
//	}
//
// Every subtest opens its own database, and the subtests run in parallel,
// so open must be safe for concurrent use. The expectations are the
// documented semantics of the query model (see adapters.WhereSQL): string
// comparison and sorting in byte order (C collation on PostgreSQL), like
// case sensitive and ilike not, NULL sorted as the smallest value.
package adaptertest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/adapters"
)

// Run runs the conformance suite against the databases open returns.
func Run(t *testing.T, open func(t *testing.T, models ...any) adapters.Database) {
	t.Helper()
	for _, c := range suite() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, NewEnv(t, open))
		})
	}
}

type testCase struct {
	name string
	run  func(t *testing.T, e *Env)
}

// Env is a database of the suite with its parsed models and helpers.
type Env struct {
	// DB is the database under test.
	DB adapters.Database
	// Items, Widgets, Owners and Pets describe the suite's models.
	Items, Widgets, Owners, Pets *adapters.Model
	// PublicItems is Item registered as "public.items" (schema-qualified).
	PublicItems *adapters.Model

	t   *testing.T
	ctx context.Context
}

// NewEnv opens a database with open and parses the suite's models.
func NewEnv(t *testing.T, open func(t *testing.T, models ...any) adapters.Database) *Env {
	t.Helper()
	e := &Env{DB: open(t, Models()...), t: t, ctx: context.Background()}
	e.Items = mustModel(t, "items", Item{})
	e.Widgets = mustModel(t, "widgets", Widget{})
	e.Owners = mustModel(t, "owners", Owner{})
	e.Pets = mustModel(t, "pets", Pet{})
	e.PublicItems = mustModel(t, "public.items", Item{})
	return e
}

func mustModel(t *testing.T, name string, v any) *adapters.Model {
	t.Helper()
	m, err := adapters.ParseModel(name, v)
	require.NoError(t, err)
	return m
}

// Col returns column name of m.
func (e *Env) Col(m *adapters.Model, name string) *adapters.Column {
	e.t.Helper()
	c, ok := m.Column(name)
	require.True(e.t, ok, "column %s of %s", name, m.Name)
	return c
}

// Cols returns the named columns of m.
func (e *Env) Cols(m *adapters.Model, names ...string) []*adapters.Column {
	e.t.Helper()
	out := make([]*adapters.Column, len(names))
	for i, n := range names {
		out[i] = e.Col(m, n)
	}
	return out
}

// Cond returns the condition column op value (value, or values for in,
// not_in and between) on the items model.
func (e *Env) Cond(name string, op adapters.Op, values ...any) adapters.Condition {
	e.t.Helper()
	return CondOf(e.Col(e.Items, name), op, values...)
}

// CondOf returns the condition c op values.
func CondOf(c *adapters.Column, op adapters.Op, values ...any) adapters.Condition {
	cond := adapters.Condition{Column: c, Op: op}
	switch op {
	case adapters.OpIn, adapters.OpNotIn, adapters.OpBetween:
		cond.Values = values
	case adapters.OpIsNull, adapters.OpIsNotNull:
	default:
		if len(values) > 0 {
			cond.Value = values[0]
		}
	}
	return cond
}

// And returns a where of single-condition groups (all must hold).
func And(conds ...adapters.Condition) []adapters.Group {
	where := make([]adapters.Group, len(conds))
	for i, c := range conds {
		where[i] = adapters.Group{c}
	}
	return where
}

// Str returns a pointer to s.
func Str(s string) *string { return &s }

// seedItems is the data of Seed, by expected id.
func seedItems() []Item {
	return []Item{
		{Name: "Apple", Code: Str("A1"), Qty: 10, Price: 1.5, Active: true, Note: Str("red fruit")},
		{Name: "banana", Code: Str("B2"), Qty: 20, Price: 0.25, Active: false},
		{Name: "Cherry", Code: Str("C3"), Qty: 30, Price: 3, Active: true, Note: Str("100% juicy")},
		{Name: "apple pie", Code: Str("D4"), Qty: 0, Price: 4.75, Active: false, Note: Str("a_b")},
		{Name: "Date", Qty: 20, Price: 2, Active: true, Note: Str("axb")},
	}
}

// Seed inserts the five items of the suite (ids 1 to 5 in order; status
// left to its default) and returns them as stored.
func (e *Env) Seed(m *adapters.Model) []*Item {
	e.t.Helper()
	cols := e.Cols(m, "name", "code", "qty", "price", "active", "note")
	var out []*Item
	for i, it := range seedItems() {
		row := it
		require.NoError(e.t, e.DB.Insert(e.ctx, m, &row, cols), "seed %d", i)
		require.Equal(e.t, int64(i+1), row.ID, "generated id of seed %d", i)
		out = append(out, &row)
	}
	return out
}

// Find runs q and returns the items.
func (e *Env) Find(ex adapters.Executor, q *adapters.Query) []*Item {
	e.t.Helper()
	rows, err := ex.Find(e.ctx, q)
	require.NoError(e.t, err)
	out := make([]*Item, len(rows))
	for i, r := range rows {
		it, ok := r.(*Item)
		require.True(e.t, ok, "Find returned %T, want *Item", r)
		out[i] = it
	}
	return out
}

// IDs runs q and returns the ids of the items in result order.
func (e *Env) IDs(ex adapters.Executor, q *adapters.Query) []int64 {
	e.t.Helper()
	ids := []int64{}
	for _, it := range e.Find(ex, q) {
		ids = append(ids, it.ID)
	}
	return ids
}

// Get returns the item with id via m, or nil.
func (e *Env) Get(ex adapters.Executor, m *adapters.Model, id int64) *Item {
	e.t.Helper()
	items := e.Find(ex, &adapters.Query{Model: m, Where: And(CondOf(m.PrimaryKey, adapters.OpEq, id))})
	require.LessOrEqual(e.t, len(items), 1)
	if len(items) == 0 {
		return nil
	}
	return items[0]
}

// Count counts the items matching where.
func (e *Env) Count(ex adapters.Executor, m *adapters.Model, where []adapters.Group) int64 {
	e.t.Helper()
	n, err := ex.Count(e.ctx, &adapters.Query{Model: m, Where: where})
	require.NoError(e.t, err)
	return n
}

// byID sorts by id ascending.
func (e *Env) byID() []adapters.Sort {
	return []adapters.Sort{{Column: e.Items.PrimaryKey}}
}

func suite() []testCase {
	return []testCase{
		{"Dialect", testDialect},
		{"FindOperators", testFindOperators},
		{"FindLikeEscapes", testFindLikeEscapes},
		{"FindOrGroups", testFindOrGroups},
		{"FindSort", testFindSort},
		{"FindSortNulls", testFindSortNulls},
		{"FindLimitOffset", testFindLimitOffset},
		{"FindProjection", testFindProjection},
		{"FindPreload", testFindPreload},
		{"FindLock", testFindLock},
		{"Count", testCount},
		{"InsertGeneratedIDs", testInsertGeneratedIDs},
		{"InsertDefaults", testInsertDefaults},
		{"InsertStringKey", testInsertStringKey},
		{"UpdatePartialZeroValues", testUpdatePartial},
		{"UpdateNoMatch", testUpdateNoMatch},
		{"UpdateEmptyValues", testUpdateEmptyValues},
		{"Delete", testDelete},
		{"DeleteEmptyWhereRefused", testDeleteEmptyWhere},
		{"TxCommit", testTxCommit},
		{"TxRollback", testTxRollback},
		{"ConstraintUnique", testConstraintUnique},
		{"ConstraintNotNull", testConstraintNotNull},
		{"SchemaQualifiedModel", testSchemaQualified},
	}
}

func testDialect(t *testing.T, e *Env) {
	d := e.DB.Dialect()
	require.NotEmpty(t, d)
	if d != adapters.DialectSQLite && d != adapters.DialectPostgres {
		t.Logf("dialect %q is neither sqlite nor postgres", d)
	}
}

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

func testInsertGeneratedIDs(t *testing.T, e *Env) {
	cols := e.Cols(e.Items, "name", "qty", "price", "active")
	a, b := &Item{Name: "a", Qty: 1}, &Item{Name: "b", Qty: 2}
	require.NoError(t, e.DB.Insert(e.ctx, e.Items, a, cols))
	require.NoError(t, e.DB.Insert(e.ctx, e.Items, b, cols))
	require.NotZero(t, a.ID)
	require.NotZero(t, b.ID)
	require.NotEqual(t, a.ID, b.ID)
	require.Equal(t, "a", e.Get(e.DB, e.Items, a.ID).Name)
	require.Equal(t, "b", e.Get(e.DB, e.Items, b.ID).Name)

	// A caller-chosen integer key is kept.
	c := &Item{ID: 100, Name: "c"}
	require.NoError(t, e.DB.Insert(e.ctx, e.Items, c, e.Cols(e.Items, "id", "name", "qty", "price", "active")))
	require.Equal(t, int64(100), c.ID)
	require.Equal(t, "c", e.Get(e.DB, e.Items, 100).Name)
}

func testInsertDefaults(t *testing.T, e *Env) {
	// status is not among the columns: the database default applies.
	a := &Item{Name: "a", Status: "ignored"}
	require.NoError(t, e.DB.Insert(e.ctx, e.Items, a, e.Cols(e.Items, "name", "qty", "price", "active")))
	got := e.Get(e.DB, e.Items, a.ID)
	require.Equal(t, "new", got.Status)
	require.Nil(t, got.Note)
	require.Nil(t, got.Code)

	// Zero values among the columns are real values, even with a default.
	b := &Item{Name: "", Status: "", Note: Str(""), Active: false}
	require.NoError(t, e.DB.Insert(e.ctx, e.Items, b, e.Cols(e.Items, "name", "qty", "price", "active", "status", "note")))
	got = e.Get(e.DB, e.Items, b.ID)
	require.Equal(t, "", got.Status)
	require.Equal(t, "", got.Name)
	require.NotNil(t, got.Note)
	require.Equal(t, "", *got.Note)

	c := &Item{Name: "c", Status: "old", Active: true, Qty: -3, Price: -0.5}
	require.NoError(t, e.DB.Insert(e.ctx, e.Items, c, e.Cols(e.Items, "name", "qty", "price", "active", "status")))
	got = e.Get(e.DB, e.Items, c.ID)
	require.Equal(t, Item{ID: c.ID, Name: "c", Status: "old", Active: true, Qty: -3, Price: -0.5}, *got)
}

func testInsertStringKey(t *testing.T, e *Env) {
	cols := e.Cols(e.Widgets, "id", "label", "size")
	id := "0b6f3a5e-8f5c-4b7e-9d3a-2c1e4f5a6b7c"
	w := &Widget{ID: id, Label: "gear", Size: 3}
	require.NoError(t, e.DB.Insert(e.ctx, e.Widgets, w, cols))
	require.Equal(t, id, w.ID)
	require.NoError(t, e.DB.Insert(e.ctx, e.Widgets, &Widget{ID: "z-2", Label: "cog"}, cols))

	rows, err := e.DB.Find(e.ctx, &adapters.Query{Model: e.Widgets, Where: And(CondOf(e.Widgets.PrimaryKey, adapters.OpEq, id))})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, Widget{ID: id, Label: "gear", Size: 3}, *rows[0].(*Widget))

	err = e.DB.Insert(e.ctx, e.Widgets, &Widget{ID: id, Label: "dup"}, cols)
	require.Error(t, err)
	require.True(t, errors.Is(err, adapters.ErrConstraint), "duplicate key: %v", err)

	n, err := e.DB.Update(e.ctx, e.Widgets, And(CondOf(e.Widgets.PrimaryKey, adapters.OpEq, "z-2")),
		map[*adapters.Column]any{e.Col(e.Widgets, "size"): int64(0), e.Col(e.Widgets, "label"): "cog2"})
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	n, err = e.DB.Delete(e.ctx, e.Widgets, And(CondOf(e.Widgets.PrimaryKey, adapters.OpEq, id)))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	rows, err = e.DB.Find(e.ctx, &adapters.Query{Model: e.Widgets})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, Widget{ID: "z-2", Label: "cog2"}, *rows[0].(*Widget))
}

func testUpdatePartial(t *testing.T, e *Env) {
	e.Seed(e.Items)
	values := map[*adapters.Column]any{
		e.Col(e.Items, "name"):   "",
		e.Col(e.Items, "qty"):    int64(0),
		e.Col(e.Items, "active"): false,
		e.Col(e.Items, "note"):   nil,
		e.Col(e.Items, "price"):  float64(0),
	}
	n, err := e.DB.Update(e.ctx, e.Items, And(e.Cond("id", adapters.OpEq, int64(1))), values)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	got := e.Get(e.DB, e.Items, 1)
	require.Equal(t, Item{ID: 1, Code: Str("A1"), Status: "new"}, *got, "zero values written, other columns kept")

	// A pointer value and a status change on several rows.
	n, err = e.DB.Update(e.ctx, e.Items, And(e.Cond("qty", adapters.OpEq, int64(20))),
		map[*adapters.Column]any{e.Col(e.Items, "note"): Str("twenty"), e.Col(e.Items, "status"): "old"})
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	for _, id := range []int64{2, 5} {
		got := e.Get(e.DB, e.Items, id)
		require.Equal(t, "twenty", *got.Note)
		require.Equal(t, "old", got.Status)
	}
	require.Equal(t, "new", e.Get(e.DB, e.Items, 3).Status)
	require.Equal(t, "100% juicy", *e.Get(e.DB, e.Items, 3).Note)

	// OR groups bind updates too.
	n, err = e.DB.Update(e.ctx, e.Items, []adapters.Group{{e.Cond("id", adapters.OpEq, int64(3)), e.Cond("id", adapters.OpEq, int64(4))}},
		map[*adapters.Column]any{e.Col(e.Items, "price"): 9.5})
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, int64(2), e.Count(e.DB, e.Items, And(e.Cond("price", adapters.OpEq, 9.5))))
}

func testUpdateNoMatch(t *testing.T, e *Env) {
	e.Seed(e.Items)
	n, err := e.DB.Update(e.ctx, e.Items, And(e.Cond("id", adapters.OpEq, int64(99))),
		map[*adapters.Column]any{e.Col(e.Items, "qty"): int64(1)})
	require.NoError(t, err)
	require.Equal(t, int64(0), n)
	n, err = e.DB.Delete(e.ctx, e.Items, And(e.Cond("name", adapters.OpEq, "nope")))
	require.NoError(t, err)
	require.Equal(t, int64(0), n)
	require.Equal(t, int64(5), e.Count(e.DB, e.Items, nil))
}

func testUpdateEmptyValues(t *testing.T, e *Env) {
	e.Seed(e.Items)
	n, err := e.DB.Update(e.ctx, e.Items, And(e.Cond("id", adapters.OpEq, int64(1))), nil)
	require.NoError(t, err)
	require.Equal(t, int64(0), n)
	n, err = e.DB.Update(e.ctx, e.Items, And(e.Cond("id", adapters.OpEq, int64(1))), map[*adapters.Column]any{})
	require.NoError(t, err)
	require.Equal(t, int64(0), n)
	require.Equal(t, *e.Get(e.DB, e.Items, 1), Item{ID: 1, Name: "Apple", Code: Str("A1"), Qty: 10, Price: 1.5,
		Active: true, Note: Str("red fruit"), Status: "new"})
}

func testDelete(t *testing.T, e *Env) {
	e.Seed(e.Items)
	n, err := e.DB.Delete(e.ctx, e.Items, And(e.Cond("active", adapters.OpEq, false)))
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, []int64{1, 3, 5}, e.IDs(e.DB, &adapters.Query{Model: e.Items, Sort: e.byID()}))
	n, err = e.DB.Delete(e.ctx, e.Items, []adapters.Group{{e.Cond("qty", adapters.OpGt, int64(25)), e.Cond("note", adapters.OpLike, "red%")}})
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, []int64{5}, e.IDs(e.DB, &adapters.Query{Model: e.Items, Sort: e.byID()}))
}

func testDeleteEmptyWhere(t *testing.T, e *Env) {
	e.Seed(e.Items)
	n, err := e.DB.Delete(e.ctx, e.Items, nil)
	require.Error(t, err, "Delete with an empty where must be refused")
	require.Equal(t, int64(0), n)
	_, err = e.DB.Delete(e.ctx, e.Items, []adapters.Group{})
	require.Error(t, err)
	require.Equal(t, int64(5), e.Count(e.DB, e.Items, nil))
}

func testTxCommit(t *testing.T, e *Env) {
	e.Seed(e.Items)
	tx, err := e.DB.Begin(e.ctx)
	require.NoError(t, err)
	require.NotNil(t, tx.Native())
	row := &Item{Name: "in tx", Qty: 7}
	require.NoError(t, tx.Insert(e.ctx, e.Items, row, e.Cols(e.Items, "name", "qty", "price", "active")))
	require.NotZero(t, row.ID)
	n, err := tx.Update(e.ctx, e.Items, And(e.Cond("id", adapters.OpEq, int64(1))), map[*adapters.Column]any{e.Col(e.Items, "qty"): int64(11)})
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	n, err = tx.Delete(e.ctx, e.Items, And(e.Cond("id", adapters.OpEq, int64(2))))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)

	require.NotNil(t, e.Get(tx, e.Items, row.ID), "the transaction sees its own insert")
	cnt, err := tx.Count(e.ctx, &adapters.Query{Model: e.Items})
	require.NoError(t, err)
	require.Equal(t, int64(5), cnt)
	require.Nil(t, e.Get(e.DB, e.Items, row.ID), "others do not see uncommitted rows")
	require.Equal(t, int64(10), e.Get(e.DB, e.Items, 1).Qty)

	require.NoError(t, tx.Commit())
	require.NoError(t, tx.Rollback(), "Rollback after Commit is a no-op")
	require.Equal(t, "in tx", e.Get(e.DB, e.Items, row.ID).Name)
	require.Equal(t, int64(11), e.Get(e.DB, e.Items, 1).Qty)
	require.Nil(t, e.Get(e.DB, e.Items, 2))
}

func testTxRollback(t *testing.T, e *Env) {
	e.Seed(e.Items)
	tx, err := e.DB.Begin(e.ctx)
	require.NoError(t, err)
	require.NotNil(t, tx.Native())
	row := &Item{Name: "in tx"}
	require.NoError(t, tx.Insert(e.ctx, e.Items, row, e.Cols(e.Items, "name", "qty", "price", "active")))
	_, err = tx.Update(e.ctx, e.Items, And(e.Cond("id", adapters.OpEq, int64(1))), map[*adapters.Column]any{e.Col(e.Items, "qty"): int64(11)})
	require.NoError(t, err)
	_, err = tx.Delete(e.ctx, e.Items, And(e.Cond("id", adapters.OpEq, int64(2))))
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())

	require.Nil(t, e.Get(e.DB, e.Items, row.ID))
	require.Equal(t, int64(10), e.Get(e.DB, e.Items, 1).Qty)
	require.NotNil(t, e.Get(e.DB, e.Items, 2))
	require.Equal(t, int64(5), e.Count(e.DB, e.Items, nil))

	// A failed statement inside a transaction, then rollback.
	tx, err = e.DB.Begin(e.ctx)
	require.NoError(t, err)
	err = tx.Insert(e.ctx, e.Items, &Item{Name: "dup", Code: Str("A1")}, e.Cols(e.Items, "name", "code", "qty", "price", "active"))
	require.True(t, errors.Is(err, adapters.ErrConstraint), "%v", err)
	require.NoError(t, tx.Rollback())
	require.Equal(t, int64(5), e.Count(e.DB, e.Items, nil))
}

func testConstraintUnique(t *testing.T, e *Env) {
	e.Seed(e.Items)
	err := e.DB.Insert(e.ctx, e.Items, &Item{Name: "dup", Code: Str("B2")}, e.Cols(e.Items, "name", "code", "qty", "price", "active"))
	require.Error(t, err)
	require.True(t, errors.Is(err, adapters.ErrConstraint), "insert duplicate: %v", err)

	_, err = e.DB.Update(e.ctx, e.Items, And(e.Cond("id", adapters.OpEq, int64(1))),
		map[*adapters.Column]any{e.Col(e.Items, "code"): Str("C3")})
	require.Error(t, err)
	require.True(t, errors.Is(err, adapters.ErrConstraint), "update to duplicate: %v", err)

	// NULL codes never conflict.
	cols := e.Cols(e.Items, "name", "qty", "price", "active")
	require.NoError(t, e.DB.Insert(e.ctx, e.Items, &Item{Name: "n1"}, cols))
	require.NoError(t, e.DB.Insert(e.ctx, e.Items, &Item{Name: "n2"}, cols))
	require.Equal(t, int64(3), e.Count(e.DB, e.Items, And(e.Cond("code", adapters.OpIsNull))))
}

func testConstraintNotNull(t *testing.T, e *Env) {
	// name is NOT NULL without default; leaving it out must fail.
	err := e.DB.Insert(e.ctx, e.Items, &Item{Qty: 1}, e.Cols(e.Items, "qty", "price", "active"))
	require.Error(t, err)
	require.True(t, errors.Is(err, adapters.ErrConstraint), "missing NOT NULL column: %v", err)
	require.Equal(t, int64(0), e.Count(e.DB, e.Items, nil))
}

func testSchemaQualified(t *testing.T, e *Env) {
	m := e.PublicItems
	require.Equal(t, "public", m.Schema)
	e.Seed(m)
	require.Equal(t, int64(5), e.Count(e.DB, m, nil))
	require.Equal(t, []int64{1, 4}, e.IDs(e.DB, &adapters.Query{Model: m, Where: And(e.Cond("name", adapters.OpILike, "apple%")),
		Sort: []adapters.Sort{{Column: m.PrimaryKey}}}))
	qty, ok := m.Column("qty")
	require.True(t, ok)
	n, err := e.DB.Update(e.ctx, m, And(CondOf(m.PrimaryKey, adapters.OpEq, int64(1))), map[*adapters.Column]any{qty: int64(0)})
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.Equal(t, int64(0), e.Get(e.DB, e.Items, 1).Qty, "same table as the unqualified model")
	n, err = e.DB.Delete(e.ctx, m, And(CondOf(m.PrimaryKey, adapters.OpEq, int64(2))))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)

	tx, err := e.DB.Begin(e.ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{1}, e.IDs(tx, &adapters.Query{Model: m, Where: And(CondOf(m.PrimaryKey, adapters.OpEq, int64(1))), Lock: true}))
	require.NoError(t, tx.Commit())
	require.Equal(t, int64(4), e.Count(e.DB, e.Items, nil))
}
