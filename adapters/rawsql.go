package adapters

import (
	"context"
)

// RawSQL is implemented by the GORM and Bun adapters and their
// transactions: statements the handler writes itself, for the tables it
// keeps for a group of instances and for the change feed (PostgreSQL).
// Placeholders are "?" in both ORMs; dest is what the ORM's own raw scan
// accepts (a pointer to a struct, a slice of structs, or a scalar).
type RawSQL interface {
	// Exec runs a statement and returns how many rows it changed.
	Exec(ctx context.Context, sql string, args ...any) (int64, error)
	// Scan runs a query and scans its rows into dest through the ORM.
	Scan(ctx context.Context, dest any, sql string, args ...any) error
	// Dialect returns query.DialectSQLite, query.DialectPostgres or the
	// ORM's own dialect name.
	Dialect() string
}

var (
	_ RawSQL = (*GormAdapter)(nil)
	_ RawSQL = (*GormTx)(nil)
	_ RawSQL = (*BunAdapter)(nil)
	_ RawSQL = (*BunTx)(nil)
)

// Exec runs a statement through GORM.
func (e gormExec) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	res := e.db.WithContext(ctx).Exec(sql, args...)
	return res.RowsAffected, wrapGorm("exec", nil, res.Error)
}

// Scan runs a query through GORM's Raw and scans it into dest.
func (e gormExec) Scan(ctx context.Context, dest any, sql string, args ...any) error {
	return wrapGorm("scan", nil, e.db.WithContext(ctx).Raw(sql, args...).Scan(dest).Error)
}

// Dialect returns query.DialectSQLite, query.DialectPostgres or the ORM's
// own name of the dialect.
func (e gormExec) Dialect() string { return e.dialect }

// Exec runs a statement through Bun.
func (e bunExec) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	res, err := e.db.NewRaw(sql, args...).Exec(ctx)
	if err != nil {
		return 0, wrapBun("exec", nil, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Scan runs a query through Bun's NewRaw and scans it into dest.
func (e bunExec) Scan(ctx context.Context, dest any, sql string, args ...any) error {
	return wrapBun("scan", nil, e.db.NewRaw(sql, args...).Scan(ctx, dest))
}

// Dialect returns query.DialectSQLite, query.DialectPostgres or the ORM's
// own name of the dialect.
func (e bunExec) Dialect() string { return e.dialect }
