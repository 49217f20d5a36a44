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
// documented semantics of the query model (see query.WhereSQL): string
// comparison and sorting in byte order (C collation on PostgreSQL), like
// case sensitive and ilike not, NULL sorted as the smallest value.
package adaptertest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/query"
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
	Items, Widgets, Owners, Pets *query.Model
	// PublicItems is Item registered as "public.items" (schema-qualified).
	PublicItems *query.Model

	t   *testing.T
	ctx context.Context
}

// NewEnv opens a database with open and parses the suite's models.
func NewEnv(t *testing.T, open func(t *testing.T, models ...any) adapters.Database) *Env {
	t.Helper()
	e := &Env{DB: open(t, Models()...), t: t, ctx: context.Background()}
	e.Items = e.Model("items", Item{})
	e.Widgets = e.Model("widgets", Widget{})
	e.Owners = e.Model("owners", Owner{})
	e.Pets = e.Model("pets", Pet{})
	e.PublicItems = e.Model("public.items", Item{})
	return e
}

// Model describes v, registered as name, through the database under test.
func (e *Env) Model(name string, v any) *query.Model {
	e.t.Helper()
	m, err := e.DB.Describe(name, v)
	require.NoError(e.t, err)
	return m
}

// Col returns column name of m.
func (e *Env) Col(m *query.Model, name string) *query.Column {
	e.t.Helper()
	c, ok := m.Column(name)
	require.True(e.t, ok, "column %s of %s", name, m.Name)
	return c
}

// Cols returns the named columns of m.
func (e *Env) Cols(m *query.Model, names ...string) []*query.Column {
	e.t.Helper()
	out := make([]*query.Column, len(names))
	for i, n := range names {
		out[i] = e.Col(m, n)
	}
	return out
}

// Cond returns the condition column op value (value, or values for in,
// not_in and between) on the items model.
func (e *Env) Cond(name string, op query.Op, values ...any) query.Condition {
	e.t.Helper()
	return CondOf(e.Col(e.Items, name), op, values...)
}

// CondOf returns the condition c op values.
func CondOf(c *query.Column, op query.Op, values ...any) query.Condition {
	cond := query.Condition{Column: c, Op: op}
	switch op {
	case query.OpIn, query.OpNotIn, query.OpBetween:
		cond.Values = values
	case query.OpIsNull, query.OpIsNotNull:
	default:
		if len(values) > 0 {
			cond.Value = values[0]
		}
	}
	return cond
}

// And returns a where of single-condition groups (all must hold).
func And(conds ...query.Condition) []query.Group {
	where := make([]query.Group, len(conds))
	for i, c := range conds {
		where[i] = query.Group{c}
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
func (e *Env) Seed(m *query.Model) []*Item {
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
func (e *Env) Find(ex adapters.Executor, q *query.Query) []*Item {
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
func (e *Env) IDs(ex adapters.Executor, q *query.Query) []int64 {
	e.t.Helper()
	ids := []int64{}
	for _, it := range e.Find(ex, q) {
		ids = append(ids, it.ID)
	}
	return ids
}

// Get returns the item with id via m, or nil.
func (e *Env) Get(ex adapters.Executor, m *query.Model, id int64) *Item {
	e.t.Helper()
	items := e.Find(ex, &query.Query{Model: m, Where: And(CondOf(m.PrimaryKey, query.OpEq, id))})
	require.LessOrEqual(e.t, len(items), 1)
	if len(items) == 0 {
		return nil
	}
	return items[0]
}

// Count counts the items matching where.
func (e *Env) Count(ex adapters.Executor, m *query.Model, where []query.Group) int64 {
	e.t.Helper()
	n, err := ex.Count(e.ctx, &query.Query{Model: m, Where: where})
	require.NoError(e.t, err)
	return n
}

// byID sorts by id ascending.
func (e *Env) byID() []query.Sort {
	return []query.Sort{{Column: e.Items.PrimaryKey}}
}

func suite() []testCase {
	return []testCase{
		{"Describe", testDescribe},
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

// testDescribe checks the models the suite uses as the adapter describes
// them: struct order, column names, the primary key and relations.
func testDescribe(t *testing.T, e *Env) {
	var cols []string
	for _, c := range e.Items.Columns {
		cols = append(cols, c.Name)
	}
	require.Equal(t, []string{"id", "name", "code", "qty", "price", "active", "note", "status"}, cols)
	require.Equal(t, "id", e.Items.PrimaryKey.Name)
	require.Equal(t, "public", e.PublicItems.Schema)
	require.Equal(t, "items", e.PublicItems.Entity)
	pets, ok := e.Owners.Relation("pets")
	require.True(t, ok, "owners.pets is a relation")
	require.True(t, pets.Many)
	_, err := e.DB.Describe("broken", 42)
	require.ErrorIs(t, err, query.ErrInvalidModel)
}
