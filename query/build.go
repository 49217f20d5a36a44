package query

import (
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"
)

// Limits bounds what one request may ask. For DefaultLimit and MaxLimit
// zero means "no default" and "no cap"; for the other fields zero means the
// Default* constant of the same name.
type Limits struct {
	// DefaultLimit is the page size of a request that gives no limit.
	DefaultLimit int
	// MaxLimit is the largest page size a request may ask for.
	MaxLimit int
	// MaxFilters caps the filters of a request.
	MaxFilters int
	// MaxSortKeys caps the sort keys of a request.
	MaxSortKeys int
	// MaxInValues caps the operands of in and not_in.
	MaxInValues int
	// MaxValueBytes caps one text or binary value (in data or a filter).
	MaxValueBytes int
	// MaxRecordBytes caps the data of one create or update.
	MaxRecordBytes int
}

// Defaults of Limits.
const (
	DefaultMaxFilters     = 50
	DefaultMaxSortKeys    = 10
	DefaultMaxInValues    = 1000
	DefaultMaxValueBytes  = 64 << 10
	DefaultMaxRecordBytes = 256 << 10
)

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func (l Limits) maxFilters() int     { return orDefault(l.MaxFilters, DefaultMaxFilters) }
func (l Limits) maxSortKeys() int    { return orDefault(l.MaxSortKeys, DefaultMaxSortKeys) }
func (l Limits) maxInValues() int    { return orDefault(l.MaxInValues, DefaultMaxInValues) }
func (l Limits) maxValueBytes() int  { return orDefault(l.MaxValueBytes, DefaultMaxValueBytes) }
func (l Limits) maxRecordBytes() int { return orDefault(l.MaxRecordBytes, DefaultMaxRecordBytes) }

const (
	// maxPatternBytes bounds the like and ilike patterns of one request,
	// all of them together. It keeps the in-memory matcher cheap (a
	// subscription's like filters cost at most a few dozen word operations
	// per byte of a changed record) and the translated SQLite pattern far
	// below SQLite's pattern length limit.
	maxPatternBytes = 2000
	// maxNameInError bounds how much of a client-supplied name is echoed
	// back in an error message.
	maxNameInError = 64
)

// operators maps the lowercased operator names of the protocol to Op.
var operators = map[string]Op{
	string(OpEq): OpEq, string(OpNeq): OpNeq,
	string(OpGt): OpGt, string(OpGte): OpGte,
	string(OpLt): OpLt, string(OpLte): OpLte,
	string(OpLike): OpLike, string(OpILike): OpILike,
	string(OpIn): OpIn, string(OpNotIn): OpNotIn,
	string(OpIsNull): OpIsNull, string(OpIsNotNull): OpIsNotNull,
	string(OpBetween): OpBetween,
}

// BuildQuery validates opts against m and returns the resolved query. opts
// may be nil (every row, default page size).
//
// Every name in opts is resolved through the model: filter, sort, columns
// and omit_columns names through m.Column (JSON key or database name,
// hidden columns refused) and preloads through m.Relation. Filters become
// Where as BuildWhere describes. The limit defaults to limits.DefaultLimit
// and is capped at limits.MaxLimit; with a cap and no default, a request
// without a limit gets the cap. A projection (columns and/or omit_columns)
// always keeps the primary key so that records stay identifiable; without
// one Query.Columns is nil.
func BuildQuery(m *Model, opts *RequestOptions, limits Limits) (*Query, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: no model", ErrInvalidOptions)
	}
	if opts == nil {
		opts = &RequestOptions{}
	}
	q := &Query{Model: m}
	var err error
	if q.Where, err = BuildWhere(m, opts.Filters, limits); err != nil {
		return nil, err
	}
	if n := limits.maxSortKeys(); len(opts.Sort) > n {
		return nil, fmt.Errorf("%w: at most %d sort keys", ErrInvalidOptions, n)
	}
	if q.Sort, err = buildSort(m, opts.Sort); err != nil {
		return nil, err
	}
	if q.Columns, err = buildProjection(m, opts.Columns, opts.OmitColumns); err != nil {
		return nil, err
	}
	if q.Preload, err = buildPreload(m, opts.Preload); err != nil {
		return nil, err
	}
	q.Limit = pageSize(opts.Limit, limits)
	if opts.Offset != nil {
		if *opts.Offset < 0 {
			return nil, fmt.Errorf("%w: offset %d is negative", ErrInvalidOptions, *opts.Offset)
		}
		q.Offset = *opts.Offset
	}
	return q, nil
}

// pageSize applies limits to the requested limit (nil or <= 0: none given).
func pageSize(requested *int, limits Limits) int {
	n := limits.DefaultLimit
	if requested != nil && *requested > 0 {
		n = *requested
	}
	if n < 0 {
		n = 0
	}
	// 0 means "no limit", which is more than any cap.
	if limits.MaxLimit > 0 && (n == 0 || n > limits.MaxLimit) {
		n = limits.MaxLimit
	}
	return n
}

// BuildWhere validates filters against m and groups them.
//
// Grouping rule (it decides what a filter appended by a server hook can
// do, so it is part of the security model): filters are read left to
// right; a filter whose LogicOperator is "OR" (any case) joins the group
// of the filter before it, any other filter ("" or "AND") starts a new
// group. Groups are ANDed and the conditions inside a group ORed, so
// [a, b OR, c] means (a OR b) AND c. A filter appended with the default
// logic operator therefore always narrows the result, whatever the client
// sent before it. An OR on the first filter simply starts the first group.
// Any other logic operator is refused with ErrInvalidOptions.
//
// Each condition's value is converted to the column's type (see
// ConvertValue and the operator rules in WhereSQL); eq and neq refuse
// null (use is_null / is_not_null). limits caps the number of filters, the
// operands of in and not_in and the size of text values.
func BuildWhere(m *Model, filters []FilterOption, limits Limits) ([]Group, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: no model", ErrInvalidOptions)
	}
	if len(filters) == 0 {
		return nil, nil
	}
	if n := limits.maxFilters(); len(filters) > n {
		return nil, fmt.Errorf("%w: at most %d filters", ErrInvalidOptions, n)
	}
	var groups []Group
	patternBytes := 0
	for i, f := range filters {
		cond, err := buildCondition(m, f, limits)
		if err != nil {
			return nil, fmt.Errorf("filter %d: %w", i+1, err)
		}
		if cond.like != nil {
			if patternBytes += len(cond.like.src); patternBytes > maxPatternBytes {
				return nil, fmt.Errorf("filter %d: %w: like and ilike patterns total more than %d bytes in one request",
					i+1, ErrInvalidValue, maxPatternBytes)
			}
		}
		switch {
		case f.LogicOperator == "" || strings.EqualFold(f.LogicOperator, "AND"):
			groups = append(groups, Group{cond})
		case strings.EqualFold(f.LogicOperator, "OR"):
			if len(groups) == 0 {
				groups = append(groups, Group{cond})
			} else {
				groups[len(groups)-1] = append(groups[len(groups)-1], cond)
			}
		default:
			return nil, fmt.Errorf("filter %d: %w: logic operator %q is not AND or OR",
				i+1, ErrInvalidOptions, clip(f.LogicOperator))
		}
	}
	return groups, nil
}

// buildCondition resolves one filter.
func buildCondition(m *Model, f FilterOption, limits Limits) (Condition, error) {
	c, ok := m.Column(f.Column)
	if !ok {
		return Condition{}, unknownColumn(m, f.Column)
	}
	op, ok := operators[strings.ToLower(f.Operator)]
	if !ok {
		return Condition{}, fmt.Errorf("%w: %q", ErrUnknownOperator, clip(f.Operator))
	}
	cond := Condition{Column: c, Op: op}
	if op == OpIsNull || op == OpIsNotNull {
		return cond, nil // the value is ignored
	}
	if classOf(derefType(c.Type)) == classOther {
		return Condition{}, fmt.Errorf("%w: column %s only supports is_null and is_not_null", ErrInvalidValue, c.JSONName)
	}
	switch op {
	case OpLike, OpILike:
		p, err := checkPattern(c, op, f.Value)
		if err != nil {
			return Condition{}, err
		}
		cond.Value, cond.like = p, compileLike(p, op == OpILike)
	case OpIn, OpNotIn, OpBetween:
		vals, err := listOperands(c, op, f.Value, limits)
		if err != nil {
			return Condition{}, err
		}
		cond.Values = vals
	default:
		v, err := ConvertValue(c, f.Value)
		if err != nil {
			return Condition{}, err
		}
		if err := checkSize(c, v, limits); err != nil {
			return Condition{}, err
		}
		if v == nil {
			return Condition{}, fmt.Errorf("%w: %s needs a value for column %s (use is_null or is_not_null)",
				ErrInvalidValue, op, c.JSONName)
		}
		cond.Value = v
	}
	return cond, nil
}

// checkPattern checks the operand of like and ilike.
func checkPattern(c *Column, op Op, v any) (string, error) {
	if derefType(c.Type).Kind() != reflect.String {
		return "", fmt.Errorf("%w: %s needs a text column, %s is not one", ErrInvalidValue, op, c.JSONName)
	}
	p, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%w: %s on column %s needs a string pattern", ErrInvalidValue, op, c.JSONName)
	}
	if len(p) > maxPatternBytes {
		return "", fmt.Errorf("%w: %s pattern for column %s is longer than %d bytes", ErrInvalidValue, op, c.JSONName, maxPatternBytes)
	}
	if !validPattern(p) {
		return "", fmt.Errorf("%w: %s pattern for column %s ends with a lone escape character or contains a NUL character",
			ErrInvalidValue, op, c.JSONName)
	}
	return p, nil
}

// listOperands converts the array operand of in, not_in and between.
func listOperands(c *Column, op Op, v any, limits Limits) ([]any, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array) || isByteSlice(rv.Type()) {
		return nil, fmt.Errorf("%w: %s on column %s needs an array", ErrInvalidValue, op, c.JSONName)
	}
	n := rv.Len()
	switch {
	case op == OpBetween && n != 2:
		return nil, fmt.Errorf("%w: between on column %s needs an array of exactly 2 values", ErrInvalidValue, c.JSONName)
	case n == 0:
		return nil, fmt.Errorf("%w: %s on column %s needs at least one value", ErrInvalidValue, op, c.JSONName)
	case n > limits.maxInValues():
		return nil, fmt.Errorf("%w: %s on column %s takes at most %d values", ErrInvalidValue, op, c.JSONName, limits.maxInValues())
	}
	out := make([]any, n)
	for i := 0; i < n; i++ {
		e := rv.Index(i)
		if !e.CanInterface() {
			return nil, fmt.Errorf("%w: %s on column %s: unusable value", ErrInvalidValue, op, c.JSONName)
		}
		cv, err := ConvertValue(c, e.Interface())
		if err != nil {
			return nil, err
		}
		if err := checkSize(c, cv, limits); err != nil {
			return nil, err
		}
		if cv == nil {
			return nil, fmt.Errorf("%w: %s on column %s cannot hold null", ErrInvalidValue, op, c.JSONName)
		}
		out[i] = cv
	}
	return out, nil
}

// buildSort resolves sort keys.
func buildSort(m *Model, sorts []SortOption) ([]Sort, error) {
	if len(sorts) == 0 {
		return nil, nil
	}
	out := make([]Sort, 0, len(sorts))
	for _, s := range sorts {
		c, ok := m.Column(s.Column)
		if !ok {
			return nil, fmt.Errorf("sort: %w", unknownColumn(m, s.Column))
		}
		var desc bool
		switch {
		case s.Direction == "" || strings.EqualFold(s.Direction, "asc"):
		case strings.EqualFold(s.Direction, "desc"):
			desc = true
		default:
			return nil, fmt.Errorf("%w: sort direction %q is not asc or desc", ErrInvalidOptions, clip(s.Direction))
		}
		out = append(out, Sort{Column: c, Desc: desc})
	}
	return out, nil
}

// buildProjection resolves columns and omit_columns into the selected
// columns in model order, always keeping the primary key. Hidden columns
// are never selected by a projection (they could not be named anyway).
func buildProjection(m *Model, columns, omit []string) ([]*Column, error) {
	if len(columns) == 0 && len(omit) == 0 {
		return nil, nil
	}
	chosen := make(map[*Column]bool, len(m.Columns))
	if len(columns) == 0 {
		for _, c := range m.Columns {
			chosen[c] = !c.Hidden
		}
	}
	for _, name := range columns {
		c, ok := m.Column(name)
		if !ok {
			return nil, fmt.Errorf("columns: %w", unknownColumn(m, name))
		}
		chosen[c] = true
	}
	for _, name := range omit {
		c, ok := m.Column(name)
		if !ok {
			return nil, fmt.Errorf("omit_columns: %w", unknownColumn(m, name))
		}
		chosen[c] = false
	}
	if m.PrimaryKey != nil {
		chosen[m.PrimaryKey] = true
	}
	out := make([]*Column, 0, len(chosen))
	for _, c := range m.Columns {
		if chosen[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

// buildPreload resolves preloads, dropping repetitions.
func buildPreload(m *Model, preloads []PreloadOption) ([]*Relation, error) {
	if len(preloads) == 0 {
		return nil, nil
	}
	out := make([]*Relation, 0, len(preloads))
	seen := make(map[*Relation]bool, len(preloads))
	for _, p := range preloads {
		r, ok := m.Relation(p.Relation)
		if !ok {
			return nil, fmt.Errorf("%w: %q is not a relation of %s", ErrUnknownRelation, clip(p.Relation), m.Name)
		}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out, nil
}

func unknownColumn(m *Model, name string) error {
	return fmt.Errorf("%w: %q is not a column of %s", ErrUnknownColumn, clip(name), m.Name)
}

// clip shortens a client-supplied string for an error message.
func clip(s string) string {
	if len(s) <= maxNameInError {
		return s
	}
	cut := maxNameInError
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
