package adapters

import (
	"context"
	"fmt"
	"reflect"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"

	"github.com/mqttspec/mqttspec/query"
)

// GormAdapter implements Database with GORM.
//
// Behaviour that follows GORM's own conventions:
//   - Models with a gorm.DeletedAt field are soft-deleted: Delete sets
//     deleted_at, and Find, Count, Update and Delete skip soft-deleted rows.
//   - Insert lets GORM fill autoCreateTime/autoUpdateTime fields (CreatedAt,
//     UpdatedAt) even when they are not among the columns, and runs the
//     model's Before/AfterCreate hooks. Update uses UpdateColumns: no hooks
//     and no automatic updated_at (set it among the values if wanted).
//   - Constraint violations are returned wrapped in ErrConstraint.
type GormAdapter struct {
	gormExec
}

// GormTx is a transaction of a GormAdapter. It implements Tx.
type GormTx struct {
	gormExec
}

// gormExec runs the Executor methods on a *gorm.DB, which is either the
// adapter's handle or a transaction.
type gormExec struct {
	db      *gorm.DB
	dialect string
	direct  *directReader // nil: every read goes through GORM
}

var (
	_ Database = (*GormAdapter)(nil)
	_ Tx       = (*GormTx)(nil)
)

// NewGormAdapter returns a Database backed by db. The dialect is taken from
// db's dialector ("sqlite" or "postgres").
func NewGormAdapter(db *gorm.DB) *GormAdapter {
	dialect := gormDialect(db)
	return &GormAdapter{gormExec{db: db, dialect: dialect, direct: newDirectReader(db, dialect)}}
}

func gormDialect(db *gorm.DB) string {
	if db == nil || db.Dialector == nil {
		return ""
	}
	switch n := db.Dialector.Name(); n {
	case "sqlite", "sqlite3":
		return query.DialectSQLite
	case "postgres", "postgresql", "pgx":
		return query.DialectPostgres
	default:
		return n
	}
}

// SetIdleConnections sets how many idle connections the handle's pool
// keeps (see PoolSizer).
func (a *GormAdapter) SetIdleConnections(n int) {
	if sqlDB, err := a.db.DB(); err == nil {
		sqlDB.SetMaxIdleConns(n)
	}
}

// DirectReads reports whether reads take the direct path (see
// gorm_direct.go) for models that allow it.
func (a *GormAdapter) DirectReads() bool { return a.direct != nil }

// DB returns the underlying GORM handle.
func (a *GormAdapter) DB() *gorm.DB { return a.db }

// Begin starts a transaction bound to ctx.
func (a *GormAdapter) Begin(ctx context.Context) (Tx, error) {
	tx := a.db.WithContext(ctx).Begin()
	if tx.Error != nil {
		return nil, wrapGorm("begin", nil, tx.Error)
	}
	return &GormTx{gormExec{db: tx, dialect: a.dialect, direct: a.direct}}, nil
}

// Commit commits the transaction.
func (t *GormTx) Commit() error {
	// A session, so that a failure does not stick to t.db.
	return wrapGorm("commit", nil, t.db.Session(&gorm.Session{}).Commit().Error)
}

// Rollback abandons the transaction; after Commit it does nothing.
func (t *GormTx) Rollback() error {
	return wrapGorm("rollback", nil, ignoreTxDone(t.db.Session(&gorm.Session{}).Rollback().Error))
}

// Native returns the transaction's *gorm.DB.
func (t *GormTx) Native() any { return t.db }

// table returns the model's table as GORM names it, qualified on PostgreSQL
// with m.Schema, and GORM's schema of the model.
func (e gormExec) table(m *query.Model) (clause.Table, *schema.Schema, error) {
	stmt := &gorm.Statement{DB: e.db}
	if err := stmt.Parse(m.New()); err != nil {
		return clause.Table{}, nil, err
	}
	return clause.Table{Name: qualifiedTable(m, e.dialect, stmt.Schema.Table)}, stmt.Schema, nil
}

// scope returns a session on the model's (quoted) table.
func (e gormExec) scope(ctx context.Context, m *query.Model) (*gorm.DB, error) {
	t, _, err := e.table(m)
	if err != nil {
		return nil, err
	}
	return e.db.WithContext(ctx).Table("?", t), nil
}

func gormIdent(name string) any { return clause.Column{Name: name} }

// where adds where (rendered by WhereSQL) to tx.
func (e gormExec) where(tx *gorm.DB, where []query.Group) *gorm.DB {
	cond, args := query.WhereSQL(e.dialect, where, gormIdent)
	if cond == "" {
		return tx
	}
	return tx.Clauses(clause.Where{Exprs: []clause.Expression{clause.Expr{SQL: "(" + cond + ")", Vars: args}}})
}

// Find returns the rows q selects as pointers to new values of the model.
func (e gormExec) Find(ctx context.Context, q *query.Query) ([]any, error) {
	if err := checkQuery(q); err != nil {
		return nil, err
	}
	m := q.Model
	if e.direct != nil {
		if rows, ok, err := e.direct.find(ctx, e, q); ok {
			return rows, wrapGorm("find", m, err)
		}
	}
	tx, err := e.scope(ctx, m)
	if err != nil {
		return nil, wrapGorm("find", m, err)
	}
	tx = e.where(tx, q.Where)
	if len(q.Columns) > 0 {
		cols := make([]clause.Column, len(q.Columns))
		for i, c := range q.Columns {
			cols[i] = clause.Column{Name: c.Name}
		}
		tx = tx.Clauses(clause.Select{Columns: cols})
	}
	if order, args := query.OrderSQL(q.Sort, gormIdent); order != "" {
		tx = tx.Order(clause.OrderBy{Expression: clause.Expr{SQL: order, Vars: args}})
	}
	if q.Limit > 0 {
		tx = tx.Limit(q.Limit)
	}
	if q.Offset > 0 {
		tx = tx.Offset(q.Offset)
	}
	if q.Lock && e.dialect == query.DialectPostgres {
		tx = tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	for _, r := range q.Preload {
		tx = tx.Preload(r.Name)
	}
	slice := newSlice(m)
	if err := tx.Find(slice.Interface()).Error; err != nil {
		return nil, wrapGorm("find", m, err)
	}
	return slicePointers(slice), nil
}

// Count returns how many rows match q.Where.
func (e gormExec) Count(ctx context.Context, q *query.Query) (int64, error) {
	if err := checkQuery(q); err != nil {
		return 0, err
	}
	m := q.Model
	if e.direct != nil {
		if n, ok, err := e.direct.count(ctx, e, q); ok {
			return n, wrapGorm("count", m, err)
		}
	}
	tx, err := e.scope(ctx, m)
	if err != nil {
		return 0, wrapGorm("count", m, err)
	}
	var n int64
	if err := e.where(tx.Model(m.New()), q.Where).Count(&n).Error; err != nil {
		return 0, wrapGorm("count", m, err)
	}
	return n, nil
}

// Insert stores row writing only columns (the others take their database
// defaults) and reads the stored row back into row (RETURNING *), which
// sets the generated primary key and the defaults.
//
// GORM writes a field's default instead of its zero value (or nil) even
// when the field is selected. A zero value among columns is a real value
// here, as with Bun, so for such fields the insert is followed by an
// update that stores the given values, both in one (nested) transaction.
func (e gormExec) Insert(ctx context.Context, m *query.Model, row any, columns []*query.Column) error {
	if err := checkRow(m, row); err != nil {
		return err
	}
	table, sch, err := e.table(m)
	if err != nil {
		return wrapGorm("insert", m, err)
	}
	base := e.db.WithContext(ctx)
	if len(columns) == 0 {
		err := base.Raw("INSERT INTO ? DEFAULT VALUES RETURNING *", table).Scan(row).Error
		return wrapGorm("insert", m, err)
	}
	strct := reflect.ValueOf(row).Elem()
	var zeroDefaults []*query.Column
	given := map[*query.Column]any{}
	for _, c := range columns {
		f := sch.LookUpField(c.Name)
		if c.PrimaryKey || f == nil || !f.HasDefaultValue {
			continue
		}
		if _, zero := f.ValueOf(ctx, strct); zero {
			zeroDefaults = append(zeroDefaults, c)
			given[c] = c.Value(row)
		}
	}
	insert := func(db *gorm.DB) error {
		err := db.Table("?", table).Select(columnNames(columns)).Clauses(clause.Returning{}).Create(row).Error
		if err != nil || len(zeroDefaults) == 0 {
			return err
		}
		set := make(map[string]any, len(zeroDefaults))
		for _, c := range zeroDefaults {
			set[c.Name] = given[c]
		}
		byKey := []query.Group{{{Column: m.PrimaryKey, Op: query.OpEq, Value: m.PrimaryKey.Value(row)}}}
		if err := e.where(db.Table("?", table).Model(m.New()), byKey).UpdateColumns(set).Error; err != nil {
			return err
		}
		for _, c := range zeroDefaults {
			if err := setColumn(row, c, given[c]); err != nil {
				return err
			}
		}
		return nil
	}
	if len(zeroDefaults) == 0 {
		err = insert(base)
	} else {
		err = base.Transaction(insert)
	}
	return wrapGorm("insert", m, err)
}

// Update sets values on the rows matching where, zero values included,
// and returns the number of rows matched.
func (e gormExec) Update(ctx context.Context, m *query.Model, where []query.Group, values map[*query.Column]any) (int64, error) {
	if len(values) == 0 {
		return 0, nil
	}
	if len(where) == 0 {
		return 0, fmt.Errorf("adapters: gorm update %s: %w", m.Name, errEmptyWhere)
	}
	tx, err := e.scope(ctx, m)
	if err != nil {
		return 0, wrapGorm("update", m, err)
	}
	set := make(map[string]any, len(values))
	for c, v := range values {
		set[c.Name] = v
	}
	res := e.where(tx.Model(m.New()), where).UpdateColumns(set)
	if res.Error != nil {
		return 0, wrapGorm("update", m, res.Error)
	}
	return res.RowsAffected, nil
}

// Delete removes the rows matching where (soft delete for models with a
// gorm.DeletedAt field) and returns how many it removed.
func (e gormExec) Delete(ctx context.Context, m *query.Model, where []query.Group) (int64, error) {
	if len(where) == 0 {
		return 0, fmt.Errorf("adapters: gorm delete %s: %w", m.Name, errEmptyWhere)
	}
	tx, err := e.scope(ctx, m)
	if err != nil {
		return 0, wrapGorm("delete", m, err)
	}
	res := e.where(tx, where).Delete(m.New())
	if res.Error != nil {
		return 0, wrapGorm("delete", m, res.Error)
	}
	return res.RowsAffected, nil
}
