package mqttspec

import (
	"context"
	"fmt"
	"reflect"

	"github.com/google/uuid"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/query"
)

// change is one committed write, as subscriptions see it.
type change struct {
	model *query.Model
	op    OperationType
	row   any // the record after the change (the deleted record for delete)
	prev  any // the record before an update
	// feedID is the change's number in the change feed (0: not from the feed).
	feedID int64
}

// runCreate inserts the record of the request's data (in the write's
// transaction); the answer is the stored record as the database returns it
// (generated id, defaults).
func (h *Handler) runCreate(r *request) (*result, error) {
	m := r.model
	row := m.New()
	cols := make([]*query.Column, 0, len(r.values)+1)
	for c, v := range r.values {
		if c.PrimaryKey && v == nil {
			continue
		}
		c.Set(row, v)
		cols = append(cols, c)
	}
	if v, given := r.values[m.PrimaryKey]; !given || v == nil {
		if pk, ok := newStringKey(m.PrimaryKey); ok {
			m.PrimaryKey.Set(row, pk)
			cols = append(cols, m.PrimaryKey)
		}
	}
	if err := r.tx.Insert(r.ctx, m, row, cols); err != nil {
		return nil, fmt.Errorf("create %s: %w", m.Name, err)
	}
	stored, err := findOne(r.ctx, r.tx, query.ByKey(m, query.Deref(m.PrimaryKey.Value(row)), nil))
	if err != nil {
		return nil, err
	}
	if stored == nil {
		return nil, fmt.Errorf("create %s: inserted record not found", m.Name)
	}
	r.hctx.ID = fmt.Sprint(query.Deref(m.PrimaryKey.Value(stored)))
	r.hctx.Result = stored
	return &result{change: &change{model: m, op: OperationCreate, row: stored}}, nil
}

// runUpdate changes the fields present in data (and only those) of the
// record the request names, and answers with the stored record.
func (h *Handler) runUpdate(r *request) (*result, error) {
	m := r.model
	prev, q, err := h.lockTarget(r)
	if err != nil {
		return nil, err
	}
	if len(r.values) > 0 {
		if _, err := r.tx.Update(r.ctx, m, q.Where, r.values); err != nil {
			return nil, fmt.Errorf("update %s %s: %w", m.Name, r.id, err)
		}
	}
	stored, err := findOne(r.ctx, r.tx, query.ByKey(m, query.Deref(m.PrimaryKey.Value(prev)), nil))
	if err != nil {
		return nil, err
	}
	if stored == nil {
		return nil, notFound(m, r.id)
	}
	r.hctx.Previous, r.hctx.Result = prev, stored
	return &result{change: &change{model: m, op: OperationUpdate, row: stored, prev: prev}}, nil
}

// runDelete removes the record the request names and answers with it.
func (h *Handler) runDelete(r *request) (*result, error) {
	m := r.model
	prev, q, err := h.lockTarget(r)
	if err != nil {
		return nil, err
	}
	n, err := r.tx.Delete(r.ctx, m, q.Where)
	if err != nil {
		return nil, fmt.Errorf("delete %s %s: %w", m.Name, r.id, err)
	}
	if n == 0 {
		return nil, notFound(m, r.id)
	}
	r.hctx.Previous, r.hctx.Result = prev, prev
	return &result{change: &change{model: m, op: OperationDelete, row: prev}}, nil
}

// lockTarget reads, locking it for the transaction, the record an update
// or delete names. The query is narrowed by the request's (and hooks')
// filters, so a tenant filter binds updates and deletes too: a record
// outside it is not_found.
func (h *Handler) lockTarget(r *request) (any, *query.Query, error) {
	q := query.ByKey(r.model, r.key, r.where)
	q.Lock = true
	prev, err := findOne(r.ctx, r.tx, q)
	if err != nil {
		return nil, nil, err
	}
	if prev == nil {
		return nil, nil, notFound(r.model, r.id)
	}
	return prev, q, nil
}

// commit commits a write's transaction under the model's commit lock and
// queues its notifications (see entityOrder); the caller runs publish once
// the write has been answered.
func (h *Handler) commit(tx adapters.Tx, ch *change) (publish func(), err error) {
	o := h.order(ch.model)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit %s: %w", ch.model.Name, err)
	}
	if h.feed != nil { // the feed notifies it, as any other change
		o.version.Add(1)
		h.feed.nudge()
		if h.group != nil {
			h.group.signal()
		}
		return func() {}, nil
	}
	return h.queue(o, ch), nil
}

// findOne returns the first row q selects, or nil.
func findOne(ctx context.Context, ex adapters.Executor, q *query.Query) (any, error) {
	rows, err := ex.Find(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", q.Model.Name, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return rows[0], nil
}

// newStringKey returns a new UUID for a string primary key the client did
// not give (integer keys are left to the database).
func newStringKey(c *query.Column) (any, bool) {
	t := derefType(c.Type)
	if t.Kind() != reflect.String {
		return nil, false
	}
	v := reflect.New(t).Elem()
	v.SetString(uuid.NewString())
	if c.Type.Kind() == reflect.Pointer {
		p := reflect.New(t)
		p.Elem().Set(v)
		return p.Interface(), true
	}
	return v.Interface(), true
}
