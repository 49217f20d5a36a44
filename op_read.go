package mqttspec

import (
	"context"
	"fmt"
	"reflect"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/query"
)

// runRead reads the record the request names, or a page of records.
func (h *Handler) runRead(r *request) (*result, error) {
	if r.key != nil {
		rows, err := h.db.Find(r.ctx, r.query)
		if err != nil {
			return nil, fmt.Errorf("read %s %s: %w", r.model.Name, r.id, err)
		}
		if len(rows) == 0 {
			return nil, notFound(r.model, r.id)
		}
		r.hctx.Result = rows[0]
		return &result{columns: r.query.Columns}, nil
	}
	rows, meta, err := h.readPage(r.ctx, h.db, r.query)
	if err != nil {
		return nil, err
	}
	r.hctx.Result = rows
	return &result{meta: meta, columns: r.query.Columns}, nil
}

// readPage reads one page of q with its metadata: total (all matches),
// count (this page), limit and offset. Reads and snapshots use it.
func (h *Handler) readPage(ctx context.Context, ex adapters.Executor, q *query.Query) ([]any, map[string]any, error) {
	rows, err := ex.Find(ctx, q)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", q.Model.Name, err)
	}
	if rows == nil {
		rows = []any{}
	}
	total, err := h.pageTotal(ctx, ex, q, len(rows))
	if err != nil {
		return nil, nil, err
	}
	return rows, map[string]any{"total": total, "count": len(rows), "limit": q.Limit, "offset": q.Offset}, nil
}

// pageTotal returns how many records match the query's filters. When the
// page came back short of its limit the answer is known without a COUNT(*):
// offset + rows (unless the page is empty past the first one). A counted
// total is kept for a while (see totals.go).
func (h *Handler) pageTotal(ctx context.Context, ex adapters.Executor, q *query.Query, got int) (int64, error) {
	if (q.Limit == 0 || got < q.Limit) && (got > 0 || q.Offset == 0) {
		return int64(q.Offset + got), nil
	}
	n, err := h.totals.count(h.order(q.Model), q, func() (int64, error) { return ex.Count(ctx, q) })
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", q.Model.Name, err)
	}
	return n, nil
}

// runMeta describes the model: its columns and primary key.
func (h *Handler) runMeta(r *request) (*result, error) {
	m := r.model
	cols := make([]map[string]any, 0, len(m.Columns))
	for _, c := range m.Columns {
		if c.Hidden {
			continue
		}
		cols = append(cols, map[string]any{
			"name": c.JSONName, "column": c.Name, "type": typeName(c),
			"nullable": c.Nullable, "primary_key": c.PrimaryKey,
		})
	}
	rels := make([]string, 0, len(m.Relations))
	for _, rel := range m.Relations {
		rels = append(rels, rel.JSONName)
	}
	r.hctx.Result = map[string]any{
		"schema": m.Schema, "entity": m.Entity, "table": m.Table,
		"primary_key": m.PrimaryKey.JSONName, "columns": cols, "relations": rels,
	}
	return &result{}, nil
}

// runPing answers a ping.
func (h *Handler) runPing(*request) (*result, error) { return &result{pong: true}, nil }

func notFound(m *query.Model, id string) *Error {
	return NewError(CodeNotFound, "%s %s not found", m.Name, id)
}

// projectResult limits the records of an answer (one record or a list) to
// the projected columns (nil: all).
func projectResult(result any, cols []*query.Column) any {
	if cols == nil || result == nil {
		return result
	}
	if rows, ok := result.([]any); ok {
		out := make([]any, len(rows))
		for i, row := range rows {
			out[i] = project(row, cols)
		}
		return out
	}
	return project(result, cols)
}

// project limits one record's JSON to the projected columns.
func project(row any, cols []*query.Column) any {
	if reflect.TypeOf(row) == nil || derefType(reflect.TypeOf(row)).Kind() != reflect.Struct {
		return row // not a record: something an After hook set
	}
	out := make(map[string]any, len(cols))
	for _, c := range cols {
		if !c.Hidden {
			out[c.JSONName] = c.Value(row)
		}
	}
	return out
}

func typeName(c *query.Column) string {
	t := derefType(c.Type)
	if t.String() == "time.Time" {
		return "timestamp"
	}
	return t.Kind().String()
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}
