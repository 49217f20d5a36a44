package adaptertest

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/query"
)

func testConstraintUnique(t *testing.T, e *Env) {
	e.Seed(e.Items)
	err := e.DB.Insert(e.ctx, e.Items, &Item{Name: "dup", Code: Str("B2")}, e.Cols(e.Items, "name", "code", "qty", "price", "active"))
	require.Error(t, err)
	require.True(t, errors.Is(err, adapters.ErrConstraint), "insert duplicate: %v", err)

	_, err = e.DB.Update(e.ctx, e.Items, And(e.Cond("id", query.OpEq, int64(1))),
		map[*query.Column]any{e.Col(e.Items, "code"): Str("C3")})
	require.Error(t, err)
	require.True(t, errors.Is(err, adapters.ErrConstraint), "update to duplicate: %v", err)

	// NULL codes never conflict.
	cols := e.Cols(e.Items, "name", "qty", "price", "active")
	require.NoError(t, e.DB.Insert(e.ctx, e.Items, &Item{Name: "n1"}, cols))
	require.NoError(t, e.DB.Insert(e.ctx, e.Items, &Item{Name: "n2"}, cols))
	require.Equal(t, int64(3), e.Count(e.DB, e.Items, And(e.Cond("code", query.OpIsNull))))
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
	require.Equal(t, []int64{1, 4}, e.IDs(e.DB, &query.Query{Model: m, Where: And(e.Cond("name", query.OpILike, "apple%")),
		Sort: []query.Sort{{Column: m.PrimaryKey}}}))
	qty, ok := m.Column("qty")
	require.True(t, ok)
	n, err := e.DB.Update(e.ctx, m, And(CondOf(m.PrimaryKey, query.OpEq, int64(1))), map[*query.Column]any{qty: int64(0)})
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	require.Equal(t, int64(0), e.Get(e.DB, e.Items, 1).Qty, "same table as the unqualified model")
	n, err = e.DB.Delete(e.ctx, m, And(CondOf(m.PrimaryKey, query.OpEq, int64(2))))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)

	tx, err := e.DB.Begin(e.ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{1}, e.IDs(tx, &query.Query{Model: m, Where: And(CondOf(m.PrimaryKey, query.OpEq, int64(1))), Lock: true}))
	require.NoError(t, tx.Commit())
	require.Equal(t, int64(4), e.Count(e.DB, e.Items, nil))
}
