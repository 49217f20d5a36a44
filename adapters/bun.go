package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"reflect"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/schema"

	"github.com/mqttspec/mqttspec/query"
)

// BunAdapter implements Database with Bun.
//
// Bun formats every value into the statement itself through its escaping
// appenders (it has no server-side bind parameters); values reach it only
// as arguments, never as text. Column values of Insert and Update are
// appended by the model field's own appender, so field options such as
// type:json apply as in Bun's own queries.
//
// Behaviour that follows Bun's conventions: models with a soft_delete field
// are soft-deleted, and soft-deleted rows are skipped by Find, Count,
// Update and Delete; a nullzero field writes NULL for its zero value.
// Constraint violations are returned wrapped in ErrConstraint.
type BunAdapter struct {
	bunExec
	bdb *bun.DB
}

// SetIdleConnections sets how many idle connections the handle's pool
// keeps (see PoolSizer).
func (a *BunAdapter) SetIdleConnections(n int) { a.bdb.SetMaxIdleConns(n) }

// BunTx is a transaction of a BunAdapter. It implements Tx.
type BunTx struct {
	bunExec
	tx bun.Tx
}

// bunExec runs the Executor methods on a bun.IDB: the adapter's *bun.DB or
// a bun.Tx.
type bunExec struct {
	db      bun.IDB
	dialect string
}

var (
	_ Database = (*BunAdapter)(nil)
	_ Tx       = (*BunTx)(nil)
)

// NewBunAdapter returns a Database backed by db. The dialect is taken from
// db's Bun dialect (sqlitedialect or pgdialect).
func NewBunAdapter(db *bun.DB) *BunAdapter {
	return &BunAdapter{bunExec: bunExec{db: db, dialect: bunDialect(db)}, bdb: db}
}

func bunDialect(db *bun.DB) string {
	switch n := db.Dialect().Name(); n {
	case dialect.SQLite:
		return query.DialectSQLite
	case dialect.PG:
		return query.DialectPostgres
	default:
		return n.String()
	}
}

// DB returns the underlying Bun handle.
func (a *BunAdapter) DB() *bun.DB { return a.bdb }

// Begin starts a transaction bound to ctx.
func (a *BunAdapter) Begin(ctx context.Context) (Tx, error) {
	tx, err := a.bdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, wrapBun("begin", nil, err)
	}
	return &BunTx{bunExec: bunExec{db: tx, dialect: a.dialect}, tx: tx}, nil
}

// Commit commits the transaction.
func (t *BunTx) Commit() error { return wrapBun("commit", nil, t.tx.Commit()) }

// Rollback abandons the transaction; after Commit it does nothing.
func (t *BunTx) Rollback() error {
	return wrapBun("rollback", nil, ignoreTxDone(t.tx.Rollback()))
}

// Native returns the bun.Tx.
func (t *BunTx) Native() any { return t.tx }

// bunTable describes how a model's table appears in statements.
type bunTable struct {
	*schema.Table
	name  bun.Ident // table, qualified with m.Schema on PostgreSQL
	alias bun.Ident // the alias Bun qualifies the model's columns with
}

// table returns Bun's table of m.
func (e bunExec) table(m *query.Model) bunTable {
	t := e.db.Dialect().Tables().Get(m.Type)
	return bunTable{
		Table: t,
		name:  bun.Ident(qualifiedTable(m, e.dialect, t.Name)),
		alias: bun.Ident(t.Alias),
	}
}

// ident returns the identifier function for WhereSQL and orderSQL: columns
// qualified with the model's alias, so that they stay unambiguous when Bun
// joins has-one/belongs-to relations.
func (t bunTable) ident(name string) any { return bun.Ident(t.Alias + "." + name) }

// field returns Bun's field of column c.
func (t bunTable) field(c *query.Column) (*schema.Field, error) {
	f, ok := t.FieldMap[c.Name]
	if !ok {
		return nil, fmt.Errorf("%w: bun knows no column %q in %s", query.ErrInvalidModel, c.Name, t.Name)
	}
	return f, nil
}

// fieldValue appends the value of one field of a struct with the field's
// own Bun appender; it is passed to Bun as a query argument.
type fieldValue struct {
	f     *schema.Field
	strct reflect.Value
}

// AppendQuery implements schema.QueryAppender.
func (v fieldValue) AppendQuery(gen schema.QueryGen, b []byte) ([]byte, error) {
	return v.f.AppendValue(gen, b, v.strct), nil
}

// Find returns the rows q selects as pointers to new values of the model.
func (e bunExec) Find(ctx context.Context, q *query.Query) ([]any, error) {
	if err := checkQuery(q); err != nil {
		return nil, err
	}
	m := q.Model
	t := e.table(m)
	slice := newSlice(m)
	sq := e.db.NewSelect().Model(slice.Interface()).ModelTableExpr("? AS ?", t.name, t.alias)
	if len(q.Columns) > 0 {
		sq = sq.Column(columnNames(q.Columns)...)
	}
	if cond, args := query.WhereSQL(e.dialect, q.Where, t.ident); cond != "" {
		sq = sq.Where("("+cond+")", args...)
	}
	if order, args := query.OrderSQL(q.Sort, t.ident); order != "" {
		sq = sq.OrderExpr(order, args...)
	}
	switch {
	case q.Limit > 0:
		sq = sq.Limit(int64(q.Limit))
	case q.Offset > 0 && e.dialect == query.DialectSQLite:
		// SQLite has no OFFSET without LIMIT, and Bun writes no LIMIT < 1.
		sq = sq.Limit(math.MaxInt64)
	}
	if q.Offset > 0 {
		sq = sq.Offset(int64(q.Offset))
	}
	if q.Lock && e.dialect == query.DialectPostgres {
		sq = sq.For("UPDATE OF ?", t.alias)
	}
	for _, r := range q.Preload {
		sq = sq.Relation(r.Name)
	}
	if err := sq.Scan(ctx); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, wrapBun("find", m, err)
	}
	return slicePointers(slice), nil
}

// Count returns how many rows match q.Where.
func (e bunExec) Count(ctx context.Context, q *query.Query) (int64, error) {
	if err := checkQuery(q); err != nil {
		return 0, err
	}
	m := q.Model
	t := e.table(m)
	sq := e.db.NewSelect().Model(m.New()).ModelTableExpr("? AS ?", t.name, t.alias)
	if cond, args := query.WhereSQL(e.dialect, q.Where, t.ident); cond != "" {
		sq = sq.Where("("+cond+")", args...)
	}
	n, err := sq.Count(ctx)
	if err != nil {
		return 0, wrapBun("count", m, err)
	}
	return int64(n), nil
}

// Insert stores row writing only columns (the others take their database
// defaults) and reads the stored row back into row (RETURNING *), which
// sets the generated primary key and the defaults.
func (e bunExec) Insert(ctx context.Context, m *query.Model, row any, columns []*query.Column) error {
	if err := checkRow(m, row); err != nil {
		return err
	}
	t := e.table(m)
	if len(columns) == 0 {
		err := e.db.NewRaw("INSERT INTO ? DEFAULT VALUES RETURNING *", t.name).Scan(ctx, row)
		return wrapBun("insert", m, err)
	}
	strct := reflect.ValueOf(row).Elem()
	iq := e.db.NewInsert().Model(row).ModelTableExpr("?", t.name).Column(columnNames(columns)...)
	for _, c := range columns {
		f, err := t.field(c)
		if err != nil {
			return wrapBun("insert", m, err)
		}
		// An explicit value, so that Bun writes it even when it is the zero
		// value of a field with a default (Bun would write DEFAULT).
		iq = iq.Value(c.Name, "?", fieldValue{f: f, strct: strct})
	}
	_, err := iq.Returning("*").Exec(ctx)
	return wrapBun("insert", m, err)
}

// Update sets values on the rows matching where, zero values included,
// and returns the number of rows matched.
func (e bunExec) Update(ctx context.Context, m *query.Model, where []query.Group, values map[*query.Column]any) (int64, error) {
	if len(values) == 0 {
		return 0, nil
	}
	if len(where) == 0 {
		return 0, fmt.Errorf("adapters: bun update %s: %w", m.Name, errEmptyWhere)
	}
	t := e.table(m)
	row := m.New()
	strct := reflect.ValueOf(row).Elem()
	uq := e.db.NewUpdate().Model(row).ModelTableExpr("? AS ?", t.name, t.alias)
	for _, c := range sortedColumns(values) {
		f, err := t.field(c)
		if err != nil {
			return 0, wrapBun("update", m, err)
		}
		if err := setColumn(row, c, values[c]); err != nil {
			return 0, wrapBun("update", m, err)
		}
		uq = uq.Set("? = ?", bun.Ident(c.Name), fieldValue{f: f, strct: strct})
	}
	cond, args := query.WhereSQL(e.dialect, where, t.ident)
	res, err := uq.Where("("+cond+")", args...).Exec(ctx)
	if err != nil {
		return 0, wrapBun("update", m, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrapBun("update", m, err)
	}
	return n, nil
}

// Delete removes the rows matching where (soft delete for models with a
// Bun soft_delete field) and returns how many it removed.
func (e bunExec) Delete(ctx context.Context, m *query.Model, where []query.Group) (int64, error) {
	if len(where) == 0 {
		return 0, fmt.Errorf("adapters: bun delete %s: %w", m.Name, errEmptyWhere)
	}
	t := e.table(m)
	cond, args := query.WhereSQL(e.dialect, where, t.ident)
	res, err := e.db.NewDelete().Model(m.New()).ModelTableExpr("? AS ?", t.name, t.alias).
		Where("("+cond+")", args...).Exec(ctx)
	if err != nil {
		return 0, wrapBun("delete", m, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrapBun("delete", m, err)
	}
	return n, nil
}
