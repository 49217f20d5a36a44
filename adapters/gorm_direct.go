package adapters

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"
	"gorm.io/gorm/schema"

	"github.com/mqttspec/mqttspec/query"
)

// The direct read path: Find and Count of models whose reads need nothing
// of GORM go straight to database/sql, with prepared statements, and the
// rows are stored with GORM's own field setters. It gives the same rows as
// GORM (the adaptertest suite runs on both paths) at a fraction of the
// cost: GORM builds each statement anew, and SQLite parses each one anew,
// which together were more than half of the CPU of a read by id.
//
// A model takes the direct path when GORM would add nothing at read time:
// no AfterFind method, no field with a serializer, no query clause but
// plain soft delete (deleted_at IS NULL), and the handle's query callbacks
// are GORM's own, unchanged (a plugin or a callback of the application
// keeps every read on GORM). Preloads keep the query on GORM too.

// maxStatements bounds the prepared statements the direct path keeps (one
// per query shape: filters and sort keys, not their values). The oldest
// goes when the cache is full.
const maxStatements = 256

// directReader runs the direct read path of one GORM handle.
type directReader struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect string
	plans   sync.Map // *query.Model -> *readPlan (nil: the model reads through GORM)
	stmts   stmtCache
}

// readPlan is what the direct path knows of a model.
type readPlan struct {
	table      string                          // quoted, qualified
	fields     map[*query.Column]*schema.Field // every column's GORM field
	quoted     map[*query.Column]string        // every column, quoted
	softDelete string                          // quoted deleted_at column, or ""
	byKeyOnce  sync.Once
	byKeySQL   string // the read of one record by its key
}

// newDirectReader returns the direct path of db, or nil when db's reads
// must go through GORM (its query callbacks are not GORM's own, or it has
// no *sql.DB).
func newDirectReader(db *gorm.DB, dialect string) *directReader {
	if dialect != query.DialectSQLite && dialect != query.DialectPostgres {
		return nil
	}
	sqlDB, err := db.DB()
	if err != nil || !defaultQueryCallbacks(db) {
		return nil
	}
	return &directReader{db: db, sqlDB: sqlDB, dialect: dialect}
}

// defaultQueryCallbacks reports whether db's query callbacks are exactly
// those GORM registers itself. The chain is GORM's unexported state, read
// by reflection; TestDirectReadNeedsGormsOwnCallbacks pins the layout.
func defaultQueryCallbacks(db *gorm.DB) bool {
	p := reflect.ValueOf(db.Callback().Query())
	if p.Kind() != reflect.Pointer || p.IsNil() {
		return false
	}
	list := p.Elem().FieldByName("callbacks")
	if !list.IsValid() || list.Kind() != reflect.Slice {
		return false
	}
	want := map[string]uintptr{
		"gorm:query":       reflect.ValueOf(callbacks.Query).Pointer(),
		"gorm:preload":     reflect.ValueOf(callbacks.Preload).Pointer(),
		"gorm:after_query": reflect.ValueOf(callbacks.AfterQuery).Pointer(),
	}
	if list.Len() != len(want) {
		return false
	}
	for i := 0; i < list.Len(); i++ {
		cb := list.Index(i)
		if cb.Kind() != reflect.Pointer || cb.IsNil() {
			return false
		}
		cb = cb.Elem()
		name, handler, remove := cb.FieldByName("name"), cb.FieldByName("handler"), cb.FieldByName("remove")
		if !name.IsValid() || !handler.IsValid() || !remove.IsValid() || remove.Bool() ||
			handler.IsNil() || want[name.String()] != handler.Pointer() {
			return false
		}
	}
	return true
}

// plan returns the model's read plan, or nil when it reads through GORM.
func (r *directReader) plan(e gormExec, m *query.Model) *readPlan {
	if p, ok := r.plans.Load(m); ok {
		return p.(*readPlan)
	}
	p := r.makePlan(e, m)
	r.plans.Store(m, p)
	return p
}

func (r *directReader) makePlan(e gormExec, m *query.Model) *readPlan {
	t, sch, err := e.table(m)
	if err != nil || sch.AfterFind {
		return nil
	}
	p := &readPlan{
		table:  r.quote(t.Name),
		fields: make(map[*query.Column]*schema.Field, len(m.Columns)),
		quoted: make(map[*query.Column]string, len(m.Columns)),
	}
	for _, c := range m.Columns {
		f := sch.LookUpField(c.Name)
		if f == nil || f.DBName != c.Name || !f.Readable || f.Serializer != nil || f.Set == nil {
			return nil
		}
		p.fields[c], p.quoted[c] = f, r.quote(c.Name)
	}
	for _, qc := range sch.QueryClauses {
		sd, ok := qc.(gorm.SoftDeleteQueryClause)
		if !ok || sd.ZeroValue.Valid || sd.Field == nil || p.softDelete != "" {
			return nil
		}
		p.softDelete = r.quote(sd.Field.DBName)
	}
	return p
}

func (r *directReader) quote(name string) string {
	var b strings.Builder
	r.db.Dialector.QuoteTo(&b, name)
	return b.String()
}

// directIdent marks a column among the arguments of query's SQL.
type directIdent struct{ col string }

func directIdentOf(name string) any { return directIdent{name} }

// sqlFor returns the SQL of q: the read of one record by its key, the most
// common query, has its text made once per model; others are rendered.
func (r *directReader) sqlFor(p *readPlan, q *query.Query, count bool) (string, []any) {
	if key, ok := byKey(q); ok && !count {
		p.byKeyOnce.Do(func() { p.byKeySQL, _ = r.statement(p, q, false) })
		return p.byKeySQL, []any{key, q.Limit}
	}
	return r.statement(p, q, count)
}

// byKey returns the key of a query for one record by its primary key, of
// every column, and whether q is one.
func byKey(q *query.Query) (any, bool) {
	if q.Limit != 1 || q.Offset != 0 || len(q.Sort) != 0 || len(q.Columns) != 0 || len(q.Where) != 1 || len(q.Where[0]) != 1 {
		return nil, false
	}
	c := q.Where[0][0]
	if c.Column != q.Model.PrimaryKey || c.Op != query.OpEq || c.Value == nil {
		return nil, false
	}
	return c.Value, true
}

// statement renders q as SQL for the direct path: its text (the same for
// every query of its shape) and its arguments.
func (r *directReader) statement(p *readPlan, q *query.Query, count bool) (string, []any) {
	var b strings.Builder
	var args []any
	add := func(sqlText string, sqlArgs []any) {
		s, a := r.bind(p, sqlText, sqlArgs, len(args))
		b.WriteString(s)
		args = append(args, a...)
	}
	if count {
		b.WriteString("SELECT count(*) FROM ")
	} else {
		b.WriteString("SELECT ")
		cols := q.Columns
		if len(cols) == 0 {
			cols = q.Model.Columns
		}
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(p.quoted[c])
		}
		b.WriteString(" FROM ")
	}
	b.WriteString(p.table)
	where, whereArgs := query.WhereSQL(r.dialect, q.Where, directIdentOf)
	switch {
	case where != "" && p.softDelete != "":
		b.WriteString(" WHERE (")
		add(where, whereArgs)
		b.WriteString(") AND " + p.softDelete + " IS NULL")
	case where != "":
		b.WriteString(" WHERE (")
		add(where, whereArgs)
		b.WriteString(")")
	case p.softDelete != "":
		b.WriteString(" WHERE " + p.softDelete + " IS NULL")
	}
	if count {
		return b.String(), args
	}
	if order, orderArgs := query.OrderSQL(q.Sort, directIdentOf); order != "" {
		b.WriteString(" ORDER BY ")
		add(order, orderArgs)
	}
	switch {
	case q.Limit > 0:
		b.WriteString(" LIMIT " + r.placeholder(len(args)))
		args = append(args, q.Limit)
	case q.Offset > 0 && r.dialect == query.DialectSQLite:
		b.WriteString(" LIMIT -1") // SQLite takes OFFSET only after a LIMIT
	}
	if q.Offset > 0 {
		b.WriteString(" OFFSET " + r.placeholder(len(args)))
		args = append(args, q.Offset)
	}
	return b.String(), args
}

// bind replaces the ? of sqlText: a column argument by the quoted column,
// a value by a placeholder of the dialect (numbered from before on).
func (r *directReader) bind(p *readPlan, sqlText string, sqlArgs []any, before int) (string, []any) {
	var b strings.Builder
	var args []any
	next := 0
	for i := 0; i < len(sqlText); i++ {
		if sqlText[i] != '?' || next >= len(sqlArgs) {
			b.WriteByte(sqlText[i])
			continue
		}
		a := sqlArgs[next]
		next++
		if id, ok := a.(directIdent); ok {
			r.db.Dialector.QuoteTo(&b, id.col)
			continue
		}
		b.WriteString(r.placeholder(before + len(args)))
		args = append(args, a)
	}
	return b.String(), args
}

// placeholder returns the placeholder of the argument with index i.
func (r *directReader) placeholder(i int) string {
	if r.dialect == query.DialectPostgres {
		return "$" + strconv.Itoa(i+1)
	}
	return "?"
}

// queryer is what a direct read runs on: the handle or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// conn returns what e's reads run on directly: the *sql.DB of the handle,
// or the *sql.Tx of a transaction; nil when e is on something else.
func (r *directReader) conn(e gormExec) (*sql.Tx, bool) {
	switch pool := e.db.Statement.ConnPool.(type) {
	case *sql.DB:
		return nil, pool == r.sqlDB
	case *sql.Tx:
		return pool, true
	case *gorm.PreparedStmtDB:
		return nil, true
	case *gorm.PreparedStmtTX:
		tx, ok := pool.Tx.(*sql.Tx)
		return tx, ok
	}
	return nil, false
}

// rows runs the statement of q on e and returns its rows and the function
// to call once they are closed, or false when q does not take the direct
// path.
func (r *directReader) rows(ctx context.Context, e gormExec, q *query.Query, count bool) (*sql.Rows, *readPlan, func(), bool, error) {
	if len(q.Preload) > 0 || q.Lock && r.dialect == query.DialectPostgres {
		return nil, nil, nil, false, nil
	}
	p := r.plan(e, q.Model)
	if p == nil {
		return nil, nil, nil, false, nil
	}
	tx, ok := r.conn(e)
	if !ok {
		return nil, nil, nil, false, nil
	}
	text, args := r.sqlFor(p, q, count)
	if byPrimaryKey(q) {
		// A read of one row by its key cannot run long, and a context
		// that can end costs database/sql and the SQLite driver a
		// goroutine each per query to watch it: the request's deadline
		// still bounds the request, not this statement.
		ctx = context.WithoutCancel(ctx)
	}
	stmt, release, err := r.stmts.get(ctx, r.sqlDB, text)
	if err != nil {
		return nil, nil, nil, true, err
	}
	if tx != nil {
		txStmt := tx.StmtContext(ctx, stmt)
		done := release
		release = func() { _ = txStmt.Close(); done() }
		stmt = txStmt
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		release()
		return nil, nil, nil, true, err
	}
	return rows, p, release, true, nil
}

// byPrimaryKey reports whether q reads at most one row, found by an
// equality on the model's primary key (other filters only narrow it).
func byPrimaryKey(q *query.Query) bool {
	if q.Limit != 1 || q.Model.PrimaryKey == nil {
		return false
	}
	for _, g := range q.Where {
		if len(g) == 1 && g[0].Column == q.Model.PrimaryKey && g[0].Op == query.OpEq {
			return true
		}
	}
	return false
}

// find is Find on the direct path; ok is false when q reads through GORM.
func (r *directReader) find(ctx context.Context, e gormExec, q *query.Query) (out []any, ok bool, err error) {
	rows, p, release, ok, err := r.rows(ctx, e, q, false)
	if !ok || err != nil {
		return nil, ok, err
	}
	defer release()
	defer rows.Close()
	cols := q.Columns
	if len(cols) == 0 {
		cols = q.Model.Columns
	}
	fields := make([]*schema.Field, len(cols))
	for i, c := range cols {
		fields[i] = p.fields[c]
	}
	holders := make([]any, len(cols))
	dest := make([]any, len(cols))
	for i := range dest {
		dest[i] = &holders[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, true, err
		}
		row := reflect.New(q.Model.Type)
		for i, f := range fields {
			if err := f.Set(ctx, row.Elem(), holders[i]); err != nil {
				return nil, true, fmt.Errorf("column %s: %w", f.DBName, err)
			}
			holders[i] = nil
		}
		out = append(out, row.Interface())
	}
	return out, true, rows.Err()
}

// count is Count on the direct path; ok is false when q counts through GORM.
func (r *directReader) count(ctx context.Context, e gormExec, q *query.Query) (n int64, ok bool, err error) {
	rows, _, release, ok, err := r.rows(ctx, e, q, true)
	if !ok || err != nil {
		return 0, ok, err
	}
	defer release()
	defer rows.Close()
	if rows.Next() {
		err = rows.Scan(&n)
	}
	if err == nil {
		err = rows.Err()
	}
	return n, true, err
}

// stmtCache holds prepared statements by SQL text, at most maxStatements;
// the oldest leaves when a new one does not fit, and is closed once no
// query runs on it.
type stmtCache struct {
	mu    sync.Mutex
	stmts map[string]*cachedStmt
	order []*cachedStmt
}

type cachedStmt struct {
	text    string
	stmt    *sql.Stmt
	users   int  // queries running on it (guarded by stmtCache.mu)
	evicted bool // no longer in the cache: closed when users reaches 0
}

// get returns the statement of text, prepared on db, and the function to
// call once the query on it is over.
func (c *stmtCache) get(ctx context.Context, db *sql.DB, text string) (*sql.Stmt, func(), error) {
	c.mu.Lock()
	e, ok := c.stmts[text]
	if !ok {
		c.mu.Unlock()
		s, err := db.PrepareContext(ctx, text)
		if err != nil {
			return nil, nil, err
		}
		c.mu.Lock()
		if e, ok = c.stmts[text]; ok { // prepared meanwhile by another query
			_ = s.Close()
		} else {
			e = c.add(text, s)
		}
	}
	e.users++
	c.mu.Unlock()
	return e.stmt, func() { c.done(e) }, nil
}

// add caches s as the statement of text, making room; c.mu is held.
func (c *stmtCache) add(text string, s *sql.Stmt) *cachedStmt {
	if c.stmts == nil {
		c.stmts = map[string]*cachedStmt{}
	}
	if len(c.order) >= maxStatements {
		oldest := c.order[0]
		c.order = c.order[1:]
		delete(c.stmts, oldest.text)
		oldest.evicted = true
		if oldest.users == 0 {
			_ = oldest.stmt.Close()
		}
	}
	e := &cachedStmt{text: text, stmt: s}
	c.stmts[text] = e
	c.order = append(c.order, e)
	return e
}

// done ends one query on e.
func (c *stmtCache) done(e *cachedStmt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.users--
	if e.evicted && e.users == 0 {
		_ = e.stmt.Close()
	}
}
