package mqttspec

import (
	"fmt"

	"github.com/mqttspec/mqttspec/query"
)

// validate builds the operation's input from the request as its Before
// hooks left it: the record key, the query, the filters and the typed data.
// It is the one place where what a client (or a hook) sent is checked
// against the model; nothing unvalidated reaches an operation.
func (h *Handler) validate(r *request) error {
	m, in, opts := r.model, r.op.inputs, r.hctx.Options
	if in == 0 {
		return nil
	}
	if r.id != "" {
		key, err := query.ConvertValue(m.PrimaryKey, r.id)
		if err != nil {
			return err
		}
		r.key = key
	}
	if in&inPage != 0 || in&inSnapshot != 0 && opts.Snapshot {
		q, err := query.BuildQuery(m, opts, h.limits())
		if err != nil {
			return err
		}
		if r.key != nil { // one record: the hooks' filters still apply
			byKey := query.ByKey(m, r.key, q.Where)
			q.Where, q.Limit, q.Offset, q.Sort = byKey.Where, 1, 0, nil
		}
		r.query = q
	}
	if in&inWhere != 0 {
		where, err := query.BuildWhere(m, opts.Filters, h.limits())
		if err != nil {
			return err
		}
		r.where = where
	}
	if in&inData != 0 {
		if err := requireDataObject(r.hctx); err != nil { // a hook may have replaced it
			return err
		}
		values, err := query.DecodeData(m, r.hctx.Data.(map[string]any), h.limits())
		if err != nil {
			return err
		}
		if r.key != nil {
			if err := keepPrimaryKey(m, values, r.key); err != nil {
				return err
			}
		}
		r.values = values
	}
	return nil
}

func (h *Handler) limits() query.Limits {
	l := h.config.Limits
	return query.Limits{
		DefaultLimit: l.DefaultPageSize, MaxLimit: l.MaxPageSize,
		MaxFilters: l.MaxFilters, MaxSortKeys: l.MaxSortKeys, MaxInValues: l.MaxInValues,
		MaxValueBytes: l.MaxValueBytes, MaxRecordBytes: l.MaxRecordBytes,
	}
}

// keepPrimaryKey refuses an update that would change the primary key; a
// primary key equal to the record's key is dropped from the values.
func keepPrimaryKey(m *query.Model, values map[*query.Column]any, key any) error {
	v, ok := values[m.PrimaryKey]
	if !ok {
		return nil
	}
	if fmt.Sprint(query.Deref(v)) != fmt.Sprint(key) {
		return NewError(CodeInvalidValue, "the primary key %s cannot be changed", m.PrimaryKey.JSONName)
	}
	delete(values, m.PrimaryKey)
	return nil
}
