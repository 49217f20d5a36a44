package adapters_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/internal/testdb"
)

// rawItem has the tags of both ORMs.
type rawItem struct {
	ID   int64  `gorm:"primaryKey" bun:"id,pk,autoincrement"`
	Name string `bun:"name"`
}

// TestRawSQL runs statements of the handler's own through each adapter and
// its transactions: "?" placeholders, scans into scalars, structs and
// slices, constraint errors, and a rolled-back transaction leaving nothing.
func TestRawSQL(t *testing.T) {
	ctx := context.Background()
	for _, k := range testdb.All() {
		t.Run(k.String(), func(t *testing.T) {
			db := testdb.Open(t, k, &rawItem{})
			raw, ok := db.(adapters.RawSQL)
			require.True(t, ok)
			require.Equal(t, k.Dialect, raw.Dialect())

			n, err := raw.Exec(ctx, "INSERT INTO raw_items (id, name) VALUES (?, ?), (?, ?)", 1, "a", 2, "b")
			require.NoError(t, err)
			require.Equal(t, int64(2), n)
			_, err = raw.Exec(ctx, "INSERT INTO raw_items (id, name) VALUES (?, ?)", 1, "again")
			require.True(t, errors.Is(err, adapters.ErrConstraint), "a duplicate key is a constraint error: %v", err)

			var count []int64
			require.NoError(t, raw.Scan(ctx, &count, "SELECT count(*) FROM raw_items WHERE name <> ?", "x"))
			require.Equal(t, []int64{2}, count)
			var rows []rawItem
			require.NoError(t, raw.Scan(ctx, &rows, "SELECT id, name FROM raw_items ORDER BY id"))
			require.Equal(t, []rawItem{{1, "a"}, {2, "b"}}, rows)
			var one rawItem
			require.NoError(t, raw.Scan(ctx, &one, "SELECT id, name FROM raw_items WHERE id = ?", 2))
			require.Equal(t, rawItem{2, "b"}, one)

			tx, err := db.Begin(ctx)
			require.NoError(t, err)
			rtx, ok := tx.(adapters.RawSQL)
			require.True(t, ok)
			_, err = rtx.Exec(ctx, "INSERT INTO raw_items (id, name) VALUES (?, ?)", 3, "c")
			require.NoError(t, err)
			require.NoError(t, rtx.Scan(ctx, &count, "SELECT count(*) FROM raw_items"))
			require.Equal(t, []int64{3}, count, "the transaction sees its own row")
			require.NoError(t, tx.Rollback())
			require.NoError(t, raw.Scan(ctx, &count, "SELECT count(*) FROM raw_items"))
			require.Equal(t, []int64{2}, count, "rolled back")
		})
	}
}
