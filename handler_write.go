package mqttspec

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"github.com/google/uuid"

	"github.com/mqttspec/mqttspec/adapters"
)

// change is one committed write, as subscriptions see it.
type change struct {
	model *adapters.Model
	op    OperationType
	row   any // the record after the change (the deleted record for delete)
	prev  any // the record before an update
}

// handleCreate inserts the record in data. Before hooks, the insert and
// After hooks run in one transaction; the answer is the stored record as
// the database returns it (generated id, defaults).
func (h *Handler) handleCreate(hctx *HookContext, m *adapters.Model) (*ResponseMessage, error) {
	if err := requireDataObject(hctx); err != nil {
		return nil, err
	}
	return h.inTx(hctx, m, func(tx adapters.Tx) (*change, error) {
		values, err := h.beforeWrite(hctx, m, BeforeCreate)
		if err != nil {
			return nil, err
		}
		row := m.New()
		cols := make([]*adapters.Column, 0, len(values)+1)
		for c, v := range values {
			if c.PrimaryKey && v == nil {
				continue
			}
			c.Set(row, v)
			cols = append(cols, c)
		}
		if _, given := values[m.PrimaryKey]; !given || values[m.PrimaryKey] == nil {
			if pk, ok := newStringKey(m.PrimaryKey); ok {
				m.PrimaryKey.Set(row, pk)
				cols = append(cols, m.PrimaryKey)
			}
		}
		if err := tx.Insert(hctx.Context, m, row, cols); err != nil {
			return nil, fmt.Errorf("create %s: %w", m.Name, err)
		}
		stored, err := findByKey(hctx.Context, tx, m, m.PrimaryKey.Value(row))
		if err != nil {
			return nil, err
		}
		if stored == nil {
			return nil, fmt.Errorf("create %s: inserted record not found", m.Name)
		}
		hctx.ID = fmt.Sprint(m.PrimaryKey.Value(stored))
		hctx.Result = stored
		if err := h.hooks.Execute(AfterCreate, hctx); err != nil {
			return nil, hookError(err)
		}
		return &change{model: m, op: OperationCreate, row: stored}, nil
	})
}

// handleUpdate changes the fields present in data (and only those) of the
// record the request names, and answers with the stored record.
func (h *Handler) handleUpdate(hctx *HookContext, m *adapters.Model) (*ResponseMessage, error) {
	id, err := recordID(hctx.Message, m)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, NewError(CodeInvalidMessage, "update needs record_id or data.%s", m.PrimaryKey.JSONName)
	}
	if err := requireDataObject(hctx); err != nil {
		return nil, err
	}
	hctx.ID = id
	return h.inTx(hctx, m, func(tx adapters.Tx) (*change, error) {
		values, err := h.beforeWrite(hctx, m, BeforeUpdate)
		if err != nil {
			return nil, err
		}
		if err := keepPrimaryKey(m, values, id); err != nil {
			return nil, err
		}
		prev, q, err := lockTarget(hctx, tx, m, id)
		if err != nil {
			return nil, err
		}
		if len(values) > 0 {
			if _, err := tx.Update(hctx.Context, m, q.Where, values); err != nil {
				return nil, fmt.Errorf("update %s %s: %w", m.Name, id, err)
			}
		}
		stored, err := findByKey(hctx.Context, tx, m, m.PrimaryKey.Value(prev))
		if err != nil {
			return nil, err
		}
		if stored == nil {
			return nil, notFound(m, id)
		}
		hctx.Previous, hctx.Result = prev, stored
		if err := h.hooks.Execute(AfterUpdate, hctx); err != nil {
			return nil, hookError(err)
		}
		return &change{model: m, op: OperationUpdate, row: stored, prev: prev}, nil
	})
}

// handleDelete removes the record the request names and answers with it.
func (h *Handler) handleDelete(hctx *HookContext, m *adapters.Model) (*ResponseMessage, error) {
	id, err := recordID(hctx.Message, m)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, NewError(CodeInvalidMessage, "delete needs record_id or data.%s", m.PrimaryKey.JSONName)
	}
	hctx.ID = id
	return h.inTx(hctx, m, func(tx adapters.Tx) (*change, error) {
		if err := h.hooks.Execute(BeforeDelete, hctx); err != nil {
			return nil, hookError(err)
		}
		prev, q, err := lockTarget(hctx, tx, m, id)
		if err != nil {
			return nil, err
		}
		n, err := tx.Delete(hctx.Context, m, q.Where)
		if err != nil {
			return nil, fmt.Errorf("delete %s %s: %w", m.Name, id, err)
		}
		if n == 0 {
			return nil, notFound(m, id)
		}
		hctx.Previous, hctx.Result = prev, prev
		if err := h.hooks.Execute(AfterDelete, hctx); err != nil {
			return nil, hookError(err)
		}
		return &change{model: m, op: OperationDelete, row: prev}, nil
	})
}

// inTx runs write in a transaction exposed as hctx.Tx. When write succeeds
// the transaction commits and the change is published to subscriptions
// under the model's commit lock, so notifications leave in commit order.
// Any error rolls everything back and sends no notification.
func (h *Handler) inTx(hctx *HookContext, m *adapters.Model, write func(adapters.Tx) (*change, error)) (*ResponseMessage, error) {
	tx, err := h.db.Begin(hctx.Context)
	if err != nil {
		return nil, fmt.Errorf("begin %s: %w", m.Name, err)
	}
	hctx.Tx = tx
	defer func() { _ = tx.Rollback() }()
	ch, err := write(tx)
	if err != nil {
		hctx.Error = err
		return nil, err
	}
	mu := h.commitLock(m)
	mu.Lock()
	defer mu.Unlock()
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit %s: %w", m.Name, err)
	}
	h.notify(ch)
	return NewResponseMessage(hctx.Message.ID, true, hctx.Result), nil
}

// commitLock returns the mutex that orders commits and notifications of m.
func (h *Handler) commitLock(m *adapters.Model) *sync.Mutex {
	if mu, ok := h.commitMu.Load(m.Name); ok {
		return mu.(*sync.Mutex)
	}
	mu, _ := h.commitMu.LoadOrStore(m.Name, &sync.Mutex{})
	return mu.(*sync.Mutex)
}

// requireDataObject refuses a create or update whose data is not an object.
func requireDataObject(hctx *HookContext) error {
	if _, ok := hctx.Data.(map[string]any); !ok {
		return NewError(CodeInvalidMessage, "%s needs \"data\" to be a JSON object", hctx.Operation)
	}
	return nil
}

// beforeWrite runs the Before hook of a create or update and decodes the
// data the hooks leave behind (they may have changed it).
func (h *Handler) beforeWrite(hctx *HookContext, m *adapters.Model, hook HookType) (map[*adapters.Column]any, error) {
	if err := h.hooks.Execute(hook, hctx); err != nil {
		return nil, hookError(err)
	}
	if err := requireDataObject(hctx); err != nil {
		return nil, err
	}
	return adapters.DecodeData(m, hctx.Data.(map[string]any))
}

// lockTarget reads, locking it for the transaction, the record id of m that
// an update or delete targets. The query is narrowed by the request's (and
// hooks') filters, so a tenant filter binds updates and deletes too: a
// record outside it is not_found.
func lockTarget(hctx *HookContext, tx adapters.Tx, m *adapters.Model, id string) (any, *adapters.Query, error) {
	where, err := adapters.BuildWhere(m, hctx.Options.Filters)
	if err != nil {
		return nil, nil, err
	}
	q := &adapters.Query{Model: m, Where: where, Limit: 1}
	if err := whereID(q, m, id); err != nil {
		return nil, nil, err
	}
	prev, err := findOne(hctx.Context, tx, q, true)
	if err != nil {
		return nil, nil, err
	}
	if prev == nil {
		return nil, nil, notFound(m, id)
	}
	return prev, q, nil
}

// findOne returns the first row q selects, or nil.
func findOne(ctx context.Context, ex adapters.Executor, q *adapters.Query, lock bool) (any, error) {
	q.Lock = lock
	rows, err := ex.Find(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", q.Model.Name, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return rows[0], nil
}

// findByKey returns the record of m whose primary key is key, or nil.
func findByKey(ctx context.Context, ex adapters.Executor, m *adapters.Model, key any) (any, error) {
	q := &adapters.Query{Model: m, Limit: 1, Where: []adapters.Group{{{Column: m.PrimaryKey, Op: adapters.OpEq, Value: deref(key)}}}}
	return findOne(ctx, ex, q, false)
}

// keepPrimaryKey refuses an update that would change the primary key; a
// primary key equal to the record's id is dropped from the values.
func keepPrimaryKey(m *adapters.Model, values map[*adapters.Column]any, id string) error {
	v, ok := values[m.PrimaryKey]
	if !ok {
		return nil
	}
	want, err := adapters.ConvertValue(m.PrimaryKey, id)
	if err != nil {
		return err
	}
	if fmt.Sprint(deref(v)) != fmt.Sprint(want) {
		return NewError(CodeInvalidValue, "the primary key %s cannot be changed", m.PrimaryKey.JSONName)
	}
	delete(values, m.PrimaryKey)
	return nil
}

// newStringKey returns a new UUID for a string primary key the client did
// not give (integer keys are left to the database).
func newStringKey(c *adapters.Column) (any, bool) {
	t := c.Type
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
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

// deref returns the value a pointer points to (nil for a nil pointer).
func deref(v any) any {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return nil
	}
	return rv.Interface()
}
