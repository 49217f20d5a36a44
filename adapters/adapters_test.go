package adapters_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"gorm.io/gorm"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/adapters/adaptertest"
	"github.com/mqttspec/mqttspec/internal/testdb"
	"github.com/mqttspec/mqttspec/query"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// opener returns the open function of adaptertest.Run for kind k.
func opener(k testdb.Kind) func(t *testing.T, models ...any) adapters.Database {
	return func(t *testing.T, models ...any) adapters.Database { return testdb.Open(t, k, models...) }
}

// TestConformance runs the adapter conformance suite on GORM and Bun, each
// on SQLite and PostgreSQL.
func TestConformance(t *testing.T) {
	for _, k := range testdb.All() {
		t.Run(k.String(), func(t *testing.T) {
			adaptertest.Run(t, opener(k))
		})
	}
}

// TestConformanceThroughGORM runs the conformance suite on GORM handles
// that read through GORM itself, not the direct path (a query callback of
// the application's turns it off): both paths must give the same results.
func TestConformanceThroughGORM(t *testing.T) {
	for _, dialect := range []string{query.DialectSQLite, query.DialectPostgres} {
		t.Run(dialect, func(t *testing.T) {
			adaptertest.Run(t, func(t *testing.T, models ...any) adapters.Database {
				db := testdb.OpenGORM(t, dialect, models...)
				require.NoError(t, db.Callback().Query().Before("gorm:query").Register("test:count", func(*gorm.DB) {}))
				a := adapters.NewGormAdapter(db)
				require.False(t, a.DirectReads(), "an application callback keeps reads on GORM")
				return a
			})
		})
	}
}

// TestParity runs the same operations on all four combinations and
// requires identical JSON results.
func TestParity(t *testing.T) {
	results := map[string][]string{}
	var kinds []string
	for _, k := range testdb.All() {
		t.Run(k.String(), func(t *testing.T) {
			results[k.String()] = paritySequence(t, adaptertest.NewEnv(t, opener(k)))
			kinds = append(kinds, k.String())
		})
	}
	if len(kinds) < 2 {
		t.Skip("fewer than two combinations ran")
	}
	base := results[kinds[0]]
	for _, k := range kinds[1:] {
		require.Equal(t, len(base), len(results[k]), "%s vs %s: number of steps", kinds[0], k)
		for i := range base {
			require.JSONEq(t, base[i], results[k][i], "step %d: %s vs %s", i, kinds[0], k)
		}
	}
}

func paritySequence(t *testing.T, e *adaptertest.Env) []string {
	ctx := context.Background()
	var out []string
	record := func(step string, v any) {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		out = append(out, fmt.Sprintf(`{"step":%q,"result":%s}`, step, b))
	}
	find := func(step string, q *query.Query) {
		rows, err := e.DB.Find(ctx, q)
		require.NoError(t, err, step)
		record(step, rows)
	}
	items := e.Items
	col := func(name string) *query.Column { return e.Col(items, name) }
	all := func() *query.Query {
		return &query.Query{Model: items, Sort: []query.Sort{{Column: items.PrimaryKey}}}
	}

	record("seed", e.Seed(items))
	find("all", all())
	q := all()
	q.Sort = []query.Sort{{Column: col("note"), Desc: true}, {Column: col("name")}}
	find("sort nullable desc", q)
	q = all()
	q.Where = []query.Group{
		{e.Cond("name", query.OpILike, "%a%"), e.Cond("note", query.OpIsNull)},
		{e.Cond("qty", query.OpNotIn, int64(0))},
	}
	q.Columns = e.Cols(items, "id", "name", "note")
	q.Limit, q.Offset = 3, 1
	find("filtered projection page", q)

	n, err := e.DB.Update(ctx, items, adaptertest.And(e.Cond("price", query.OpBetween, 1.0, 3.0)),
		map[*query.Column]any{col("status"): "", col("qty"): int64(0), col("note"): adaptertest.Str("x\\y'z\"%")})
	require.NoError(t, err)
	record("update", n)
	find("after update", all())

	row := &adaptertest.Item{Name: "ünïcode ✓", Price: 1e-3, Active: true}
	require.NoError(t, e.DB.Insert(ctx, items, row, e.Cols(items, "name", "price", "active", "qty")))
	record("insert", row.ID)
	q = all()
	q.Where = adaptertest.And(e.Cond("name", query.OpLike, "ü%"))
	find("unicode like", q)

	n, err = e.DB.Delete(ctx, items, adaptertest.And(e.Cond("status", query.OpEq, "")))
	require.NoError(t, err)
	record("delete", n)
	find("after delete", all())
	c, err := e.DB.Count(ctx, &query.Query{Model: items})
	require.NoError(t, err)
	record("count", c)
	return out
}

// TestConcurrentWriters runs 8 goroutines × 50 transactions that each read
// a counter (locked on PostgreSQL) and write it back incremented. On
// SQLite this needs BEGIN IMMEDIATE (testdb's _txlock=immediate): with a
// deferred BEGIN the read-then-write lock upgrade fails with SQLITE_BUSY.
func TestConcurrentWriters(t *testing.T) {
	const workers, perWorker = 8, 50
	for _, k := range testdb.All() {
		t.Run(k.String(), func(t *testing.T) {
			e := adaptertest.NewEnv(t, opener(k))
			ctx := context.Background()
			counter := &adaptertest.Item{Name: "counter"}
			require.NoError(t, e.DB.Insert(ctx, e.Items, counter, e.Cols(e.Items, "name", "qty", "price", "active")))
			byID := adaptertest.And(adaptertest.CondOf(e.Items.PrimaryKey, query.OpEq, counter.ID))
			qty := e.Col(e.Items, "qty")

			increment := func() error {
				tx, err := e.DB.Begin(ctx)
				if err != nil {
					return err
				}
				defer func() { _ = tx.Rollback() }()
				rows, err := tx.Find(ctx, &query.Query{Model: e.Items, Where: byID, Lock: true, Limit: 1})
				if err != nil {
					return err
				}
				if len(rows) != 1 {
					return fmt.Errorf("counter not found")
				}
				cur := rows[0].(*adaptertest.Item).Qty
				if _, err := tx.Update(ctx, e.Items, byID, map[*query.Column]any{qty: cur + 1}); err != nil {
					return err
				}
				return tx.Commit()
			}
			var wg sync.WaitGroup
			errs := make(chan error, workers*perWorker)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < perWorker; i++ {
						if err := increment(); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.Equal(t, int64(workers*perWorker), e.Get(e.DB, e.Items, counter.ID).Qty)
		})
	}
}

// TestForeignKeyConstraint checks that a foreign-key violation maps to
// ErrConstraint (testdb enables foreign keys on SQLite).
func TestForeignKeyConstraint(t *testing.T) {
	for _, k := range testdb.All() {
		t.Run(k.String(), func(t *testing.T) {
			e := adaptertest.NewEnv(t, opener(k))
			err := e.DB.Insert(context.Background(), e.Pets, &adaptertest.Pet{OwnerID: 42, Name: "stray"},
				e.Cols(e.Pets, "owner_id", "name"))
			require.Error(t, err)
			require.True(t, errors.Is(err, adapters.ErrConstraint), "%v", err)
			require.Contains(t, err.Error(), "pets", "context names the model")
		})
	}
}

// TestSchemaQualification checks that a model registered as
// "schema.entity" reaches that schema's table on PostgreSQL, and that the
// schema is ignored on SQLite.
func TestSchemaQualification(t *testing.T) {
	for _, k := range testdb.All() {
		t.Run(k.String(), func(t *testing.T) {
			e := adaptertest.NewEnv(t, opener(k))
			ctx := context.Background()
			other := e.Model("other.items", adaptertest.Item{})
			if k.Dialect == query.DialectPostgres {
				execSQL(t, e.DB, `CREATE SCHEMA "other"`)
				execSQL(t, e.DB, `CREATE TABLE "other"."items" (LIKE "public"."items" INCLUDING ALL)`)
			}
			row := &adaptertest.Item{Name: "elsewhere"}
			require.NoError(t, e.DB.Insert(ctx, other, row, e.Cols(other, "name", "qty", "price", "active")))
			inOther := e.Count(e.DB, other, nil)
			inPublic := e.Count(e.DB, e.Items, nil)
			if k.Dialect == query.DialectPostgres {
				require.Equal(t, []int64{1, 0}, []int64{inOther, inPublic})
			} else {
				require.Equal(t, []int64{1, 1}, []int64{inOther, inPublic})
			}
			n, err := e.DB.Delete(ctx, other, adaptertest.And(adaptertest.CondOf(other.PrimaryKey, query.OpEq, row.ID)))
			require.NoError(t, err)
			require.Equal(t, int64(1), n)
		})
	}
}

// TestAdapterAccessors checks DB() and Native() of both adapters.
func TestAdapterAccessors(t *testing.T) {
	for _, k := range testdb.All() {
		t.Run(k.String(), func(t *testing.T) {
			db := testdb.Open(t, k)
			tx, err := db.Begin(context.Background())
			require.NoError(t, err)
			switch a := db.(type) {
			case *adapters.GormAdapter:
				require.NotNil(t, a.DB())
				_, ok := tx.Native().(*gorm.DB)
				require.True(t, ok, "Native() is %T", tx.Native())
			case *adapters.BunAdapter:
				require.NotNil(t, a.DB())
				_, ok := tx.Native().(bun.Tx)
				require.True(t, ok, "Native() is %T", tx.Native())
			default:
				t.Fatalf("unexpected adapter %T", db)
			}
			require.NoError(t, tx.Rollback())
			require.NoError(t, tx.Rollback(), "second Rollback is a no-op")
		})
	}
}

// TestUpdateRefusesEmptyWhere: like Delete, Update never touches a whole table.
func TestUpdateRefusesEmptyWhere(t *testing.T) {
	for _, k := range testdb.All() {
		t.Run(k.String(), func(t *testing.T) {
			e := adaptertest.NewEnv(t, opener(k))
			e.Seed(e.Items)
			_, err := e.DB.Update(context.Background(), e.Items, nil, map[*query.Column]any{e.Col(e.Items, "qty"): int64(1)})
			require.Error(t, err)
			require.Equal(t, int64(0), e.Count(e.DB, e.Items, adaptertest.And(e.Cond("qty", query.OpEq, int64(1)))))
		})
	}
}

// execSQL runs a constant statement through the adapter's ORM.
func execSQL(t *testing.T, db adapters.Database, stmt string) {
	t.Helper()
	var err error
	switch a := db.(type) {
	case *adapters.GormAdapter:
		err = a.DB().Exec(stmt).Error
	case *adapters.BunAdapter:
		_, err = a.DB().ExecContext(context.Background(), stmt)
	default:
		t.Fatalf("unexpected adapter %T", db)
	}
	require.NoError(t, err, stmt)
}

// memo is a GORM soft-delete model (gorm.DeletedAt); to Bun deleted_at is
// an ordinary column.
type memo struct {
	ID        int64          `gorm:"primaryKey;autoIncrement" bun:"id,pk,autoincrement" json:"id"`
	Text      string         `gorm:"not null" bun:"text,notnull" json:"text"`
	DeletedAt gorm.DeletedAt `gorm:"index" bun:"deleted_at" json:"-"`
}

// TestSoftDeleteModel: GORM soft-deletes a model with gorm.DeletedAt and
// Bun deletes it; either way the row is gone for Find, Count, Update and
// Delete.
func TestSoftDeleteModel(t *testing.T) {
	for _, k := range testdb.All() {
		t.Run(k.String(), func(t *testing.T) {
			db := testdb.Open(t, k, &memo{})
			m, err := db.Describe("memos", memo{})
			require.NoError(t, err)
			ctx := context.Background()
			text, _ := m.Column("text")
			a, b := &memo{Text: "a"}, &memo{Text: "b"}
			require.NoError(t, db.Insert(ctx, m, a, []*query.Column{text}))
			require.NoError(t, db.Insert(ctx, m, b, []*query.Column{text}))
			byA := adaptertest.And(adaptertest.CondOf(m.PrimaryKey, query.OpEq, a.ID))
			n, err := db.Delete(ctx, m, byA)
			require.NoError(t, err)
			require.Equal(t, int64(1), n)

			rows, err := db.Find(ctx, &query.Query{Model: m})
			require.NoError(t, err)
			require.Len(t, rows, 1)
			require.Equal(t, "b", rows[0].(*memo).Text)
			c, err := db.Count(ctx, &query.Query{Model: m})
			require.NoError(t, err)
			require.Equal(t, int64(1), c)
			n, err = db.Update(ctx, m, byA, map[*query.Column]any{text: "x"})
			require.NoError(t, err)
			require.Equal(t, int64(0), n)
			n, err = db.Delete(ctx, m, byA)
			require.NoError(t, err)
			require.Equal(t, int64(0), n)
		})
	}
}

// stamp has nothing but defaults.
type stamp struct {
	ID    int64  `gorm:"primaryKey;autoIncrement" bun:"id,pk,autoincrement" json:"id"`
	Label string `gorm:"not null;default:'x'" bun:"label,notnull,default:'x'" json:"label"`
}

// TestInsertNoColumns: an insert without columns stores a row of defaults.
func TestInsertNoColumns(t *testing.T) {
	for _, k := range testdb.All() {
		t.Run(k.String(), func(t *testing.T) {
			db := testdb.Open(t, k, &stamp{})
			m, err := db.Describe("stamps", stamp{})
			require.NoError(t, err)
			for want := int64(1); want <= 2; want++ {
				row := &stamp{}
				require.NoError(t, db.Insert(context.Background(), m, row, nil))
				require.Equal(t, stamp{ID: want, Label: "x"}, *row)
			}
		})
	}
}
