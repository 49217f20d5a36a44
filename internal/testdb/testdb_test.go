package testdb

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/query"
)

func TestMain(m *testing.M) { Main(m) }

type probe struct {
	ID   int64  `gorm:"primaryKey;autoIncrement" bun:"id,pk,autoincrement"`
	Name string `gorm:"not null" bun:"name,notnull"`
}

func TestAll(t *testing.T) {
	kinds := All()
	require.Len(t, kinds, 4)
	seen := map[string]bool{}
	for _, k := range kinds {
		seen[k.String()] = true
	}
	require.Equal(t, map[string]bool{"gorm/sqlite": true, "bun/sqlite": true, "gorm/postgres": true, "bun/postgres": true}, seen)
}

// TestOpenIsolated opens two databases of every kind and checks that each
// is migrated, reports its dialect and does not see the other's rows.
func TestOpenIsolated(t *testing.T) {
	for _, k := range All() {
		t.Run(k.String(), func(t *testing.T) {
			a, b := Open(t, k, &probe{}), Open(t, k, &probe{})
			require.Equal(t, k.Dialect, a.(interface{ Dialect() string }).Dialect())
			m, err := a.Describe("probes", probe{})
			require.NoError(t, err)
			ctx := context.Background()
			name, _ := m.Column("name")
			require.NoError(t, a.Insert(ctx, m, &probe{Name: "x"}, []*query.Column{name}))
			na, err := a.Count(ctx, &query.Query{Model: m})
			require.NoError(t, err)
			nb, err := b.Count(ctx, &query.Query{Model: m})
			require.NoError(t, err)
			require.Equal(t, []int64{1, 0}, []int64{na, nb})
		})
	}
}

// TestSQLiteDSN checks the pragmas and BEGIN IMMEDIATE of the SQLite DSN.
func TestSQLiteDSN(t *testing.T) {
	db := OpenGORM(t, query.DialectSQLite)
	var mode string
	require.NoError(t, db.Raw("PRAGMA journal_mode").Scan(&mode).Error)
	require.Equal(t, "wal", mode)
	var fk int
	require.NoError(t, db.Raw("PRAGMA foreign_keys").Scan(&fk).Error)
	require.Equal(t, 1, fk)
	var timeout int
	require.NoError(t, db.Raw("PRAGMA busy_timeout").Scan(&timeout).Error)
	require.Equal(t, 10000, timeout)

	// BEGIN IMMEDIATE takes the write lock at once: a second writer's
	// BEGIN waits (here: fails after a short busy timeout) instead of
	// starting a transaction that would fail with SQLITE_BUSY later.
	sqldb, err := db.DB()
	require.NoError(t, err)
	ctx := context.Background()
	tx1, err := sqldb.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx1.Rollback() }()
	conn, err := sqldb.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "PRAGMA busy_timeout = 50")
	require.NoError(t, err)
	_, err = conn.BeginTx(ctx, nil)
	require.Error(t, err, "a second BEGIN IMMEDIATE must not get the write lock")
	require.Contains(t, strings.ToLower(err.Error()), "locked")
	ro, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err, "read-only transactions use a deferred BEGIN")
	require.NoError(t, ro.Rollback())
}

func TestPostgresDSN(t *testing.T) {
	a, b := PostgresDSN(t), PostgresDSN(t)
	require.NotEqual(t, a, b)
	for _, dsn := range []string{a, b} {
		db, err := sql.Open("pgx", dsn)
		require.NoError(t, err)
		var name, collation string
		require.NoError(t, db.QueryRow("SELECT current_database(), datcollate FROM pg_database WHERE datname = current_database()").
			Scan(&name, &collation))
		require.NoError(t, db.Close())
		require.Contains(t, dsn, name)
		require.Equal(t, "C", collation, "byte-order string comparison")
	}
}

func TestWithDatabase(t *testing.T) {
	got, err := withDatabase("postgres://u:p@h:5/postgres?sslmode=disable", "x_1")
	require.NoError(t, err)
	require.Equal(t, "postgres://u:p@h:5/x_1?sslmode=disable", got)
	got, err = withDatabase("host=h user=u dbname=postgres", "x_1")
	require.NoError(t, err)
	require.Equal(t, "host=h user=u dbname=postgres dbname=x_1", got)
}

func TestDataParent(t *testing.T) {
	p := dataParent()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.True(t, fi.IsDir())
}
