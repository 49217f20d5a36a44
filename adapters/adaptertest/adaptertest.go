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
