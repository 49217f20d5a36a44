package adaptertest

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/query"
)

func testTxCommit(t *testing.T, e *Env) {
	e.Seed(e.Items)
	tx, err := e.DB.Begin(e.ctx)
	require.NoError(t, err)
	require.NotNil(t, tx.Native())
	row := &Item{Name: "in tx", Qty: 7}
	require.NoError(t, tx.Insert(e.ctx, e.Items, row, e.Cols(e.Items, "name", "qty", "price", "active")))
	require.NotZero(t, row.ID)
	n, err := tx.Update(e.ctx, e.Items, And(e.Cond("id", query.OpEq, int64(1))), map[*query.Column]any{e.Col(e.Items, "qty"): int64(11)})
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	n, err = tx.Delete(e.ctx, e.Items, And(e.Cond("id", query.OpEq, int64(2))))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)

	require.NotNil(t, e.Get(tx, e.Items, row.ID), "the transaction sees its own insert")
	cnt, err := tx.Count(e.ctx, &query.Query{Model: e.Items})
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
	_, err = tx.Update(e.ctx, e.Items, And(e.Cond("id", query.OpEq, int64(1))), map[*query.Column]any{e.Col(e.Items, "qty"): int64(11)})
	require.NoError(t, err)
	_, err = tx.Delete(e.ctx, e.Items, And(e.Cond("id", query.OpEq, int64(2))))
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
