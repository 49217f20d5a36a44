package query

// RequestOptions is the "options" object of a request: filters, sorting,
// paging, projection and preloads. Hooks may change it before the query is
// built; everything in it is validated against the model afterwards, so a
// hook cannot introduce an unchecked column either.
type RequestOptions struct {
	Preload     []PreloadOption `json:"preload,omitempty"`
	Columns     []string        `json:"columns,omitempty"`
	OmitColumns []string        `json:"omit_columns,omitempty"`
	Filters     []FilterOption  `json:"filters,omitempty"`
	Sort        []SortOption    `json:"sort,omitempty"`
	Limit       *int            `json:"limit,omitempty"`
	Offset      *int            `json:"offset,omitempty"`
	// Snapshot, on a subscribe request, asks for the records that match the
	// filters right now in the subscribe answer (see README, "Live views").
	Snapshot bool `json:"snapshot,omitempty"`
}

// FilterOption is one filter of a request. LogicOperator "OR" joins the
// filter to the group of the filter before it; groups are joined with AND.
// So [a, b OR, c] means (a OR b) AND c, and a filter a hook appends with the
// default logic operator always narrows the whole result.
type FilterOption struct {
	Column        string `json:"column"`
	Operator      string `json:"operator"`
	Value         any    `json:"value"`
	LogicOperator string `json:"logic_operator,omitempty"`
}

// SortOption is one sort key; Direction is "asc" (default) or "desc".
type SortOption struct {
	Column    string `json:"column"`
	Direction string `json:"direction,omitempty"`
}

// PreloadOption names a relation to load with each record.
type PreloadOption struct {
	Relation string `json:"relation"`
}

// Clone returns a deep copy of o's slices so a hook's changes to one
// request never leak into another. A nil o gives an empty options value.
func (o *RequestOptions) Clone() *RequestOptions {
	if o == nil {
		return &RequestOptions{}
	}
	c := *o
	c.Preload = append([]PreloadOption(nil), o.Preload...)
	c.Columns = append([]string(nil), o.Columns...)
	c.OmitColumns = append([]string(nil), o.OmitColumns...)
	c.Filters = append([]FilterOption(nil), o.Filters...)
	c.Sort = append([]SortOption(nil), o.Sort...)
	return &c
}
