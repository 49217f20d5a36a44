package adapters

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/libtnb/sqlite"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec/query"
)

func openDirectTestDB(t *testing.T) *gorm.DB {
	db, err := gorm.Open(sqlite.Open("file:"+filepath.Join(t.TempDir(), "d.db")), &gorm.Config{Logger: logger.Discard})
	require.NoError(t, err)
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return db
}

// TestDirectReadNeedsGormsOwnCallbacks pins what the direct path reads of
// GORM's unexported callback chain: GORM's own query callbacks allow it;
// one more, one replaced or one removed does not.
func TestDirectReadNeedsGormsOwnCallbacks(t *testing.T) {
	require.NotNil(t, newDirectReader(openDirectTestDB(t), query.DialectSQLite), "GORM's own callbacks")
	cases := map[string]func(db *gorm.DB) error{
		"one more":     func(db *gorm.DB) error { return db.Callback().Query().Register("app:audit", func(*gorm.DB) {}) },
		"one replaced": func(db *gorm.DB) error { return db.Callback().Query().Replace("gorm:query", func(*gorm.DB) {}) },
		"one removed":  func(db *gorm.DB) error { return db.Callback().Query().Remove("gorm:preload") },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			db := openDirectTestDB(t)
			require.NoError(t, change(db))
			require.Nil(t, newDirectReader(db, query.DialectSQLite))
		})
	}
}

// directSoft and directHooked are models the direct path must handle
// (soft delete) or leave to GORM (AfterFind).
type directSoft struct {
	ID        uint `gorm:"primaryKey"`
	Name      string
	DeletedAt gorm.DeletedAt
}

type directHooked struct {
	ID   uint `gorm:"primaryKey"`
	Name string
}

func (*directHooked) AfterFind(*gorm.DB) error { return nil }

type directSerialized struct {
	ID   uint     `gorm:"primaryKey"`
	Tags []string `gorm:"serializer:json"`
}

// TestDirectReadPlans: which models take the direct path.
func TestDirectReadPlans(t *testing.T) {
	db := openDirectTestDB(t)
	a := NewGormAdapter(db)
	require.True(t, a.DirectReads())
	for _, tc := range []struct {
		model  any
		direct bool
	}{{&directSoft{}, true}, {&directHooked{}, false}, {&directSerialized{}, false}} {
		m, err := a.Describe("public.m", tc.model)
		require.NoError(t, err)
		p := a.direct.plan(a.gormExec, m)
		require.Equal(t, tc.direct, p != nil, "%T", tc.model)
		if _, soft := tc.model.(*directSoft); soft {
			require.NotEmpty(t, p.softDelete, "soft delete becomes deleted_at IS NULL")
		}
	}
}

// TestDirectReadStatementCache: more query shapes than the cache holds,
// from several goroutines at once, each read right while statements are
// evicted and closed.
func TestDirectReadStatementCache(t *testing.T) {
	db := openDirectTestDB(t)
	require.NoError(t, db.AutoMigrate(&directSoft{}))
	for i := 1; i <= 400; i++ {
		require.NoError(t, db.Create(&directSoft{Name: "n"}).Error)
	}
	a := NewGormAdapter(db)
	m, err := a.Describe("public.soft", &directSoft{})
	require.NoError(t, err)
	id, _ := m.Column("id")
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		go func() {
			for n := 1; n <= maxStatements+50; n++ {
				ids := make([]any, n)
				for i := range ids {
					ids[i] = uint(i + 1)
				}
				rows, err := a.Find(t.Context(), &query.Query{Model: m, Where: []query.Group{{{Column: id, Op: query.OpIn, Values: ids}}}})
				if err == nil && len(rows) != n {
					err = fmt.Errorf("%d ids read %d rows", n, len(rows))
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < 4; w++ {
		require.NoError(t, <-errs)
	}
	require.LessOrEqual(t, len(a.direct.stmts.stmts), maxStatements)
}

// TestByPrimaryKey: only a read of at most one row by an equality on the
// key runs with a context that cannot end (see rows).
func TestByPrimaryKey(t *testing.T) {
	m, err := NewGormAdapter(openDirectTestDB(t)).Describe("public.m", &directSoft{})
	require.NoError(t, err)
	var other *query.Column
	for _, c := range m.Columns {
		if !c.PrimaryKey {
			other = c
			break
		}
	}
	require.NotNil(t, other)
	eqKey := query.Condition{Column: m.PrimaryKey, Op: query.OpEq, Value: 1}
	for _, tc := range []struct {
		name string
		q    *query.Query
		want bool
	}{
		{"by key", query.ByKey(m, 1, nil), true},
		{"by key with a hook's filter", query.ByKey(m, 1, []query.Group{{{Column: other, Op: query.OpLike, Value: "%x%"}}}), true},
		{"a list", &query.Query{Model: m, Limit: 10, Where: []query.Group{{eqKey}}}, false},
		{"one row, not by key", &query.Query{Model: m, Limit: 1, Where: []query.Group{{{Column: other, Op: query.OpEq, Value: 1}}}}, false},
		{"key in an OR", &query.Query{Model: m, Limit: 1, Where: []query.Group{{eqKey, {Column: other, Op: query.OpEq, Value: 1}}}}, false},
		{"key range", &query.Query{Model: m, Limit: 1, Where: []query.Group{{{Column: m.PrimaryKey, Op: query.OpGt, Value: 1}}}}, false},
	} {
		require.Equal(t, tc.want, byPrimaryKey(tc.q), tc.name)
	}
}
