// Package testdb opens fresh, migrated and isolated test databases for
// every ORM/dialect combination mqttspec supports: GORM or Bun on SQLite (a
// file in the test's temporary directory) or PostgreSQL (a new database on
// one server per test binary, started on first use from the Debian
// binaries, or the server named by MQTTSPEC_PG_DSN).
//
// Packages that may use PostgreSQL call Main from their TestMain so that
// the server is stopped when the tests end:
//
//	func TestMain(m *testing.M) { testdb.Main(m) }
package testdb

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for Bun on PostgreSQL
	"github.com/libtnb/sqlite"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/query"
)

// ORM names of a Kind.
const (
	GORM = "gorm"
	Bun  = "bun"
)

// Kind names a database/ORM combination.
type Kind struct {
	// ORM is "gorm" or "bun".
	ORM string
	// Dialect is query.DialectSQLite or query.DialectPostgres.
	Dialect string
}

// String returns "orm/dialect", used as the subtest name.
func (k Kind) String() string { return k.ORM + "/" + k.Dialect }

// All returns the four combinations, SQLite first.
func All() []Kind {
	return []Kind{
		{ORM: GORM, Dialect: query.DialectSQLite},
		{ORM: Bun, Dialect: query.DialectSQLite},
		{ORM: GORM, Dialect: query.DialectPostgres},
		{ORM: Bun, Dialect: query.DialectPostgres},
	}
}

// Open returns a Database of kind k on a fresh database in which the tables
// of models exist. Everything is closed and removed by t.Cleanup.
func Open(t testing.TB, k Kind, models ...any) adapters.Database {
	t.Helper()
	switch k.ORM {
	case GORM:
		return adapters.NewGormAdapter(OpenGORM(t, k.Dialect, models...))
	case Bun:
		return adapters.NewBunAdapter(OpenBun(t, k.Dialect, models...))
	}
	t.Fatalf("testdb: unknown ORM %q", k.ORM)
	return nil
}

// SQLiteDSN returns the DSN of a new SQLite database file in t's temporary
// directory, set up for concurrent writers: WAL journal, a 10 s busy
// timeout and BEGIN IMMEDIATE for every read-write transaction (so a
// transaction that reads before it writes never fails with SQLITE_BUSY when
// upgrading its lock), and foreign keys enforced.
func SQLiteDSN(t testing.TB) string {
	t.Helper()
	path := filepath.ToSlash(filepath.Join(t.TempDir(), "test.db"))
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
}

// OpenGORM returns a GORM handle on a fresh database of dialect with models
// migrated by GORM's AutoMigrate.
func OpenGORM(t testing.TB, dialect string, models ...any) *gorm.DB {
	t.Helper()
	db := openGORMDSN(t, dialect, dsnFor(t, dialect))
	migrate(t, db, models)
	return db
}

// OpenBun returns a Bun handle on a fresh database of dialect. The tables
// of models are created by GORM's migrator (through a short-lived GORM
// handle on the same database), so that both ORMs run against identical
// schemas; the models therefore need consistent gorm and bun tags.
func OpenBun(t testing.TB, dialect string, models ...any) *bun.DB {
	t.Helper()
	dsn := dsnFor(t, dialect)
	if len(models) > 0 {
		gdb := openGORMDSN(t, dialect, dsn)
		migrate(t, gdb, models)
		closeGORM(t, gdb)
	}
	var (
		sqldb *sql.DB
		err   error
		db    *bun.DB
	)
	switch dialect {
	case query.DialectSQLite:
		// The "sqlite" driver is modernc.org/sqlite, linked in by the GORM
		// dialector (github.com/libtnb/sqlite): both ORMs share it.
		sqldb, err = sql.Open("sqlite", dsn)
		if err == nil {
			db = bun.NewDB(sqldb, sqlitedialect.New())
		}
	case query.DialectPostgres:
		sqldb, err = sql.Open("pgx", dsn)
		if err == nil {
			db = bun.NewDB(sqldb, pgdialect.New())
		}
	default:
		t.Fatalf("testdb: unknown dialect %q", dialect)
	}
	if err != nil {
		t.Fatalf("testdb: open bun %s: %v", dialect, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("testdb: ping bun %s: %v", dialect, err)
	}
	return db
}

func dsnFor(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case query.DialectSQLite:
		return SQLiteDSN(t)
	case query.DialectPostgres:
		return PostgresDSN(t)
	}
	t.Fatalf("testdb: unknown dialect %q", dialect)
	return ""
}

func openGORMDSN(t testing.TB, dialect, dsn string) *gorm.DB {
	t.Helper()
	var d gorm.Dialector
	switch dialect {
	case query.DialectSQLite:
		d = sqlite.Open(dsn)
	case query.DialectPostgres:
		d = postgres.Open(dsn)
	default:
		t.Fatalf("testdb: unknown dialect %q", dialect)
	}
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("testdb: open gorm %s: %v", dialect, err)
	}
	t.Cleanup(func() { closeGORM(t, db) })
	return db
}

func closeGORM(t testing.TB, db *gorm.DB) {
	if sqldb, err := db.DB(); err == nil {
		_ = sqldb.Close()
	}
}

func migrate(t testing.TB, db *gorm.DB, models []any) {
	t.Helper()
	if len(models) == 0 {
		return
	}
	if err := db.AutoMigrate(models...); err != nil {
		t.Fatalf("testdb: migrate: %v", err)
	}
}
