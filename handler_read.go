package mqttspec

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/mqttspec/mqttspec/adapters"
)

// handleRead answers a read: one record when the request names an id
// (record_id or data.{primary key}), else a page of records.
func (h *Handler) handleRead(hctx *HookContext, m *adapters.Model) (*ResponseMessage, error) {
	id, err := recordID(hctx.Message, m)
	if err != nil {
		return nil, err
	}
	hctx.ID = id
	if err := h.hooks.Execute(BeforeRead, hctx); err != nil {
		return nil, hookError(err)
	}
	q, err := adapters.BuildQuery(m, hctx.Options, h.limits())
	if err != nil {
		return nil, err
	}
	ctx := hctx.Context
	if id != "" {
		if err := whereID(q, m, id); err != nil {
			return nil, err
		}
		q.Limit, q.Offset, q.Sort = 1, 0, nil
		rows, err := h.db.Find(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("read %s %s: %w", m.Name, id, err)
		}
		if len(rows) == 0 {
			return nil, notFound(m, id)
		}
		hctx.Result = rows[0]
		if err := h.hooks.Execute(AfterRead, hctx); err != nil {
			return nil, hookError(err)
		}
		return NewResponseMessage(hctx.Message.ID, true, project(hctx.Result, q.Columns)), nil
	}
	rows, err := h.db.Find(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.Name, err)
	}
	if rows == nil {
		rows = []any{}
	}
	total, err := h.total(hctx, q, len(rows))
	if err != nil {
		return nil, err
	}
	hctx.Result = rows
	if err := h.hooks.Execute(AfterRead, hctx); err != nil {
		return nil, hookError(err)
	}
	resp := NewResponseMessage(hctx.Message.ID, true, projectAll(hctx.Result, q.Columns))
	resp.Metadata = map[string]any{"total": total, "count": len(rows), "limit": q.Limit, "offset": q.Offset}
	return resp, nil
}

// total returns how many records match the query's filters. When the page
// came back short of its limit the answer is known without a COUNT(*):
// offset + rows (unless the page is empty past the first one).
func (h *Handler) total(hctx *HookContext, q *adapters.Query, got int) (int64, error) {
	if (q.Limit == 0 || got < q.Limit) && (got > 0 || q.Offset == 0) {
		return int64(q.Offset + got), nil
	}
	n, err := h.db.Count(hctx.Context, q)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", q.Model.Name, err)
	}
	return n, nil
}

// handleMeta describes the model: its columns and primary key.
func (h *Handler) handleMeta(hctx *HookContext, m *adapters.Model) (*ResponseMessage, error) {
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
	for _, r := range m.Relations {
		rels = append(rels, r.JSONName)
	}
	return NewResponseMessage(hctx.Message.ID, true, map[string]any{
		"schema": m.Schema, "entity": m.Entity, "table": m.Table,
		"primary_key": m.PrimaryKey.JSONName, "columns": cols, "relations": rels,
	}), nil
}

func (h *Handler) limits() adapters.Limits {
	return adapters.Limits{DefaultLimit: h.config.Limits.DefaultPageSize, MaxLimit: h.config.Limits.MaxPageSize}
}

// recordID returns the id a request names: record_id, or the primary key
// (by JSON or column name) inside data. Empty when there is none.
func recordID(msg *Message, m *adapters.Model) (string, error) {
	if msg.RecordID != "" {
		return msg.RecordID, nil
	}
	data, ok := msg.Data.(map[string]any)
	if !ok {
		return "", nil
	}
	for _, key := range []string{m.PrimaryKey.JSONName, m.PrimaryKey.Name} {
		if v, ok := data[key]; ok && v != nil {
			switch v := v.(type) {
			case string:
				return v, nil
			case json.Number:
				return v.String(), nil
			default:
				return "", NewError(CodeInvalidValue, "%s must be a string or a number", key)
			}
		}
	}
	return "", nil
}

// whereID narrows q to the record with primary key id (on top of any
// filters, so a hook's tenant filter still applies).
func whereID(q *adapters.Query, m *adapters.Model, id string) error {
	v, err := adapters.ConvertValue(m.PrimaryKey, id)
	if err != nil {
		return err
	}
	q.Where = append(q.Where, adapters.Group{{Column: m.PrimaryKey, Op: adapters.OpEq, Value: v}})
	return nil
}

func notFound(m *adapters.Model, id string) *Error {
	return NewError(CodeNotFound, "%s %s not found", m.Name, id)
}

// project limits a record's JSON to the projected columns (nil = all).
func project(row any, cols []*adapters.Column) any {
	if cols == nil || row == nil {
		return row
	}
	out := make(map[string]any, len(cols))
	for _, c := range cols {
		if !c.Hidden {
			out[c.JSONName] = c.Value(row)
		}
	}
	return out
}

func projectAll(result any, cols []*adapters.Column) any {
	rows, ok := result.([]any)
	if !ok || cols == nil {
		return result
	}
	out := make([]any, len(rows))
	for i, r := range rows {
		out[i] = project(r, cols)
	}
	return out
}

func typeName(c *adapters.Column) string {
	t := c.Type
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.String() {
	case "time.Time":
		return "timestamp"
	}
	return t.Kind().String()
}
