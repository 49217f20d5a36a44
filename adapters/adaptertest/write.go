package adaptertest

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/query"
)

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

	rows, err := e.DB.Find(e.ctx, &query.Query{Model: e.Widgets, Where: And(CondOf(e.Widgets.PrimaryKey, query.OpEq, id))})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, Widget{ID: id, Label: "gear", Size: 3}, *rows[0].(*Widget))

	err = e.DB.Insert(e.ctx, e.Widgets, &Widget{ID: id, Label: "dup"}, cols)
	require.Error(t, err)
	require.True(t, errors.Is(err, adapters.ErrConstraint), "duplicate key: %v", err)

	n, err := e.DB.Update(e.ctx, e.Widgets, And(CondOf(e.Widgets.PrimaryKey, query.OpEq, "z-2")),
		map[*query.Column]any{e.Col(e.Widgets, "size"): int64(0), e.Col(e.Widgets, "label"): "cog2"})
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	n, err = e.DB.Delete(e.ctx, e.Widgets, And(CondOf(e.Widgets.PrimaryKey, query.OpEq, id)))
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	rows, err = e.DB.Find(e.ctx, &query.Query{Model: e.Widgets})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, Widget{ID: "z-2", Label: "cog2"}, *rows[0].(*Widget))
}

func testUpdatePartial(t *testing.T, e *Env) {
	e.Seed(e.Items)
	values := map[*query.Column]any{
		e.Col(e.Items, "name"):   "",
		e.Col(e.Items, "qty"):    int64(0),
		e.Col(e.Items, "active"): false,
		e.Col(e.Items, "note"):   nil,
		e.Col(e.Items, "price"):  float64(0),
	}
	n, err := e.DB.Update(e.ctx, e.Items, And(e.Cond("id", query.OpEq, int64(1))), values)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	got := e.Get(e.DB, e.Items, 1)
	require.Equal(t, Item{ID: 1, Code: Str("A1"), Status: "new"}, *got, "zero values written, other columns kept")

	// A pointer value and a status change on several rows.
	n, err = e.DB.Update(e.ctx, e.Items, And(e.Cond("qty", query.OpEq, int64(20))),
		map[*query.Column]any{e.Col(e.Items, "note"): Str("twenty"), e.Col(e.Items, "status"): "old"})
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
	n, err = e.DB.Update(e.ctx, e.Items, []query.Group{{e.Cond("id", query.OpEq, int64(3)), e.Cond("id", query.OpEq, int64(4))}},
		map[*query.Column]any{e.Col(e.Items, "price"): 9.5})
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, int64(2), e.Count(e.DB, e.Items, And(e.Cond("price", query.OpEq, 9.5))))
}

func testUpdateNoMatch(t *testing.T, e *Env) {
	e.Seed(e.Items)
	n, err := e.DB.Update(e.ctx, e.Items, And(e.Cond("id", query.OpEq, int64(99))),
		map[*query.Column]any{e.Col(e.Items, "qty"): int64(1)})
	require.NoError(t, err)
	require.Equal(t, int64(0), n)
	n, err = e.DB.Delete(e.ctx, e.Items, And(e.Cond("name", query.OpEq, "nope")))
	require.NoError(t, err)
	require.Equal(t, int64(0), n)
	require.Equal(t, int64(5), e.Count(e.DB, e.Items, nil))
}

func testUpdateEmptyValues(t *testing.T, e *Env) {
	e.Seed(e.Items)
	n, err := e.DB.Update(e.ctx, e.Items, And(e.Cond("id", query.OpEq, int64(1))), nil)
	require.NoError(t, err)
	require.Equal(t, int64(0), n)
	n, err = e.DB.Update(e.ctx, e.Items, And(e.Cond("id", query.OpEq, int64(1))), map[*query.Column]any{})
	require.NoError(t, err)
	require.Equal(t, int64(0), n)
	require.Equal(t, *e.Get(e.DB, e.Items, 1), Item{ID: 1, Name: "Apple", Code: Str("A1"), Qty: 10, Price: 1.5,
		Active: true, Note: Str("red fruit"), Status: "new"})
}

func testDelete(t *testing.T, e *Env) {
	e.Seed(e.Items)
	n, err := e.DB.Delete(e.ctx, e.Items, And(e.Cond("active", query.OpEq, false)))
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, []int64{1, 3, 5}, e.IDs(e.DB, &query.Query{Model: e.Items, Sort: e.byID()}))
	n, err = e.DB.Delete(e.ctx, e.Items, []query.Group{{e.Cond("qty", query.OpGt, int64(25)), e.Cond("note", query.OpLike, "red%")}})
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, []int64{5}, e.IDs(e.DB, &query.Query{Model: e.Items, Sort: e.byID()}))
}

func testDeleteEmptyWhere(t *testing.T, e *Env) {
	e.Seed(e.Items)
	n, err := e.DB.Delete(e.ctx, e.Items, nil)
	require.Error(t, err, "Delete with an empty where must be refused")
	require.Equal(t, int64(0), n)
	_, err = e.DB.Delete(e.ctx, e.Items, []query.Group{})
	require.Error(t, err)
	require.Equal(t, int64(5), e.Count(e.DB, e.Items, nil))
}
