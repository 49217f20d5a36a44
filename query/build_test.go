package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// qtOptions decodes a RequestOptions the way the handler does (UseNumber).
func qtOptions(t testing.TB, src string) *RequestOptions {
	t.Helper()
	if src == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	var o RequestOptions
	if err := dec.Decode(&o); err != nil {
		t.Fatalf("decode %s: %v", src, err)
	}
	return &o
}

// qtDescribe renders where compactly: groups joined by " AND ", conditions
// by " OR ", each as "column op value" with the value's Go type.
func qtDescribe(where []Group) string {
	var groups []string
	for _, g := range where {
		var conds []string
		for _, c := range g {
			s := c.Column.Name + " " + string(c.Op)
			switch {
			case c.Values != nil:
				for _, v := range c.Values {
					s += fmt.Sprintf(" %T(%v)", v, v)
				}
			case c.Value != nil:
				s += fmt.Sprintf(" %T(%v)", c.Value, c.Value)
			}
			conds = append(conds, s)
		}
		groups = append(groups, "("+strings.Join(conds, " OR ")+")")
	}
	return strings.Join(groups, " AND ")
}

func TestQueryBuildWhere(t *testing.T) {
	m := qtModel(t)
	tests := []struct {
		name    string
		filters string // JSON array of filters
		want    string
		wantErr error
	}{
		{name: "none", filters: `[]`, want: ``},
		{name: "eq by json name", filters: `[{"column":"count","operator":"eq","value":5}]`, want: `(cnt eq int(5))`},
		{name: "eq by db name", filters: `[{"column":"cnt","operator":"eq","value":"5"}]`, want: `(cnt eq int(5))`},
		{name: "operator case", filters: `[{"column":"count","operator":"EQ","value":5.0}]`, want: `(cnt eq int(5))`},
		{name: "neq", filters: `[{"column":"name","operator":"neq","value":"x"}]`, want: `(name neq string(x))`},
		{name: "gt gte lt lte", filters: `[{"column":"score","operator":"gt","value":1},{"column":"score","operator":"gte","value":"1.5"},{"column":"small","operator":"lt","value":3},{"column":"big","operator":"lte","value":3}]`,
			want: `(score gt float64(1)) AND (score gte float64(1.5)) AND (small lt int8(3)) AND (big lte uint16(3))`},
		{name: "like", filters: `[{"column":"name","operator":"like","value":"a\\%_%"}]`, want: `(name like string(a\%_%))`},
		{name: "ilike named string", filters: `[{"column":"status","operator":"ilike","value":"OP%"}]`, want: `(status ilike string(OP%))`},
		{name: "in", filters: `[{"column":"count","operator":"in","value":[1,"2",3.0]}]`, want: `(cnt in int(1) int(2) int(3))`},
		{name: "not_in", filters: `[{"column":"name","operator":"not_in","value":["a","b"]}]`, want: `(name not_in string(a) string(b))`},
		{name: "between", filters: `[{"column":"count","operator":"between","value":[1,5]}]`, want: `(cnt between int(1) int(5))`},
		{name: "is_null ignores value", filters: `[{"column":"title","operator":"is_null","value":[1,2]}]`, want: `(title is_null)`},
		{name: "is_not_null", filters: `[{"column":"title","operator":"is_not_null"}]`, want: `(title is_not_null)`},
		{name: "is_null on map column", filters: `[{"column":"extra","operator":"is_null"}]`, want: `(extra is_null)`},
		{name: "pointer column converts to base", filters: `[{"column":"title","operator":"eq","value":"x"}]`, want: `(title eq string(x))`},

		// Grouping rule.
		{name: "a, b OR, c", filters: `[{"column":"count","operator":"eq","value":1},{"column":"count","operator":"eq","value":2,"logic_operator":"OR"},{"column":"name","operator":"eq","value":"c"}]`,
			want: `(cnt eq int(1) OR cnt eq int(2)) AND (name eq string(c))`},
		{name: "first OR starts a group", filters: `[{"column":"count","operator":"eq","value":1,"logic_operator":"or"},{"column":"count","operator":"eq","value":2,"logic_operator":"AND"}]`,
			want: `(cnt eq int(1)) AND (cnt eq int(2))`},
		{name: "appended default filter narrows", filters: `[{"column":"count","operator":"eq","value":1},{"column":"count","operator":"eq","value":2,"logic_operator":"Or"},{"column":"name","operator":"eq","value":"tenant"}]`,
			want: `(cnt eq int(1) OR cnt eq int(2)) AND (name eq string(tenant))`},
		{name: "bad logic operator", filters: `[{"column":"count","operator":"eq","value":1,"logic_operator":"XOR"}]`, wantErr: ErrInvalidOptions},

		// Refusals.
		{name: "unknown column", filters: `[{"column":"nope","operator":"eq","value":1}]`, wantErr: ErrUnknownColumn},
		{name: "hidden column by field name", filters: `[{"column":"Secret","operator":"eq","value":"x"}]`, wantErr: ErrUnknownColumn},
		{name: "hidden column by db name", filters: `[{"column":"secret","operator":"is_null"}]`, wantErr: ErrUnknownColumn},
		{name: "relation is not a column", filters: `[{"column":"tags","operator":"is_null"}]`, wantErr: ErrUnknownColumn},
		{name: "injection in column", filters: `[{"column":"id = 1 OR 1=1 --","operator":"eq","value":1}]`, wantErr: ErrUnknownColumn},
		{name: "unknown operator", filters: `[{"column":"count","operator":"ne","value":1}]`, wantErr: ErrUnknownOperator},
		{name: "empty operator", filters: `[{"column":"count","value":1}]`, wantErr: ErrUnknownOperator},
		{name: "sql operator", filters: `[{"column":"count","operator":"=","value":1}]`, wantErr: ErrUnknownOperator},
		{name: "eq null", filters: `[{"column":"title","operator":"eq","value":null}]`, wantErr: ErrInvalidValue},
		{name: "gt null", filters: `[{"column":"count","operator":"gt"}]`, wantErr: ErrInvalidValue},
		{name: "fraction for int", filters: `[{"column":"count","operator":"eq","value":5.5}]`, wantErr: ErrInvalidValue},
		{name: "like on int", filters: `[{"column":"count","operator":"like","value":"1%"}]`, wantErr: ErrInvalidValue},
		{name: "like number pattern", filters: `[{"column":"name","operator":"like","value":5}]`, wantErr: ErrInvalidValue},
		{name: "like trailing backslash", filters: `[{"column":"name","operator":"like","value":"ab\\"}]`, wantErr: ErrInvalidValue},
		{name: "like escaped backslash ok", filters: `[{"column":"name","operator":"like","value":"ab\\\\"}]`, want: `(name like string(ab\\))`},
		{name: "like NUL", filters: `[{"column":"name","operator":"like","value":"a\u0000"}]`, wantErr: ErrInvalidValue},
		{name: "like too long", filters: `[{"column":"name","operator":"like","value":"` + strings.Repeat("a", maxPatternBytes+1) + `"}]`, wantErr: ErrInvalidValue},
		{name: "like patterns at the total", filters: `[{"column":"name","operator":"like","value":"` + strings.Repeat("a", maxPatternBytes/2) + `"},{"column":"name","operator":"ilike","value":"` + strings.Repeat("b", maxPatternBytes/2) + `","logic_operator":"OR"}]`,
			want: `(name like string(` + strings.Repeat("a", maxPatternBytes/2) + `) OR name ilike string(` + strings.Repeat("b", maxPatternBytes/2) + `))`},
		{name: "like patterns over the total", filters: `[{"column":"name","operator":"like","value":"` + strings.Repeat("a", maxPatternBytes/2) + `"},{"column":"name","operator":"ilike","value":"` + strings.Repeat("b", maxPatternBytes/2+1) + `","logic_operator":"OR"}]`, wantErr: ErrInvalidValue},
		{name: "in scalar", filters: `[{"column":"count","operator":"in","value":1}]`, wantErr: ErrInvalidValue},
		{name: "in string", filters: `[{"column":"name","operator":"in","value":"ab"}]`, wantErr: ErrInvalidValue},
		{name: "in empty", filters: `[{"column":"count","operator":"in","value":[]}]`, wantErr: ErrInvalidValue},
		{name: "in null element", filters: `[{"column":"count","operator":"in","value":[1,null]}]`, wantErr: ErrInvalidValue},
		{name: "in bad element", filters: `[{"column":"count","operator":"not_in","value":[1,"x"]}]`, wantErr: ErrInvalidValue},
		{name: "in too many", filters: `[{"column":"count","operator":"in","value":[` + strings.TrimSuffix(strings.Repeat("1,", DefaultMaxInValues+1), ",") + `]}]`, wantErr: ErrInvalidValue},
		{name: "between one", filters: `[{"column":"count","operator":"between","value":[1]}]`, wantErr: ErrInvalidValue},
		{name: "between three", filters: `[{"column":"count","operator":"between","value":[1,2,3]}]`, wantErr: ErrInvalidValue},
		{name: "compare map column", filters: `[{"column":"extra","operator":"eq","value":{}}]`, wantErr: ErrInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var filters []FilterOption
			dec := json.NewDecoder(strings.NewReader(tt.filters))
			dec.UseNumber()
			if err := dec.Decode(&filters); err != nil {
				t.Fatalf("decode: %v", err)
			}
			where, err := BuildWhere(m, filters, Limits{})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("BuildWhere: %v", err)
			}
			if got := qtDescribe(where); got != tt.want {
				t.Errorf("where = %s\n want   %s", got, tt.want)
			}
		})
	}
}

func TestQueryBuildWhereErrorText(t *testing.T) {
	m := qtModel(t)
	long := strings.Repeat("x", 500)
	_, err := BuildWhere(m, []FilterOption{{Column: long, Operator: "eq", Value: 1}}, Limits{})
	if !errors.Is(err, ErrUnknownColumn) {
		t.Fatalf("err = %v", err)
	}
	if len(err.Error()) > 200 || !strings.Contains(err.Error(), "shop.items") {
		t.Errorf("error text %q: want a short message naming the model", err)
	}
}

func TestBuildQuery(t *testing.T) {
	m := qtModel(t)
	tests := []struct {
		name    string
		opts    string
		limits  Limits
		wantErr error
		check   func(t *testing.T, q *Query)
	}{
		{name: "nil options", limits: Limits{DefaultLimit: 20, MaxLimit: 100}, check: func(t *testing.T, q *Query) {
			if q.Model != m || q.Where != nil || q.Sort != nil || q.Columns != nil || q.Preload != nil || q.Limit != 20 || q.Offset != 0 {
				t.Errorf("query = %+v", q)
			}
		}},
		{name: "limit given", opts: `{"limit":5,"offset":10}`, limits: Limits{DefaultLimit: 20, MaxLimit: 100}, check: qtLimit(5, 10)},
		{name: "limit clamped", opts: `{"limit":500}`, limits: Limits{DefaultLimit: 20, MaxLimit: 100}, check: qtLimit(100, 0)},
		{name: "limit zero uses default", opts: `{"limit":0}`, limits: Limits{DefaultLimit: 20}, check: qtLimit(20, 0)},
		{name: "negative limit uses default", opts: `{"limit":-3}`, limits: Limits{DefaultLimit: 20, MaxLimit: 100}, check: qtLimit(20, 0)},
		{name: "no limits", opts: `{"limit":-3}`, check: qtLimit(0, 0)},
		{name: "no cap", opts: `{"limit":100000}`, limits: Limits{DefaultLimit: 20}, check: qtLimit(100000, 0)},
		{name: "cap without default", opts: `{}`, limits: Limits{MaxLimit: 50}, check: qtLimit(50, 0)},
		{name: "default above cap", opts: `{}`, limits: Limits{DefaultLimit: 80, MaxLimit: 50}, check: qtLimit(50, 0)},
		{name: "negative offset", opts: `{"offset":-1}`, wantErr: ErrInvalidOptions},
		{name: "sort", opts: `{"sort":[{"column":"name"},{"column":"cnt","direction":"DESC"},{"column":"score","direction":"Asc"}]}`, check: func(t *testing.T, q *Query) {
			got := ""
			for _, s := range q.Sort {
				got += fmt.Sprintf("%s:%v ", s.Column.Name, s.Desc)
			}
			if got != "name:false cnt:true score:false " {
				t.Errorf("sort = %q", got)
			}
		}},
		{name: "sort bad direction", opts: `{"sort":[{"column":"name","direction":"up"}]}`, wantErr: ErrInvalidOptions},
		{name: "sort unknown column", opts: `{"sort":[{"column":"id; DROP TABLE users"}]}`, wantErr: ErrUnknownColumn},
		{name: "sort hidden column", opts: `{"sort":[{"column":"secret"}]}`, wantErr: ErrUnknownColumn},
		{name: "columns keep pk, model order", opts: `{"columns":["score","name","name"]}`, check: qtColumns("id name score")},
		{name: "columns by db name", opts: `{"columns":["cnt"]}`, check: qtColumns("id cnt")},
		{name: "omit", opts: `{"omit_columns":["name","blob","extra","ref","code","removed","status","deleted","created","big","small","active","ratio","score","title"]}`, check: qtColumns("id cnt")},
		{name: "omit cannot drop pk", opts: `{"columns":["id","name"],"omit_columns":["id"]}`, check: qtColumns("id name")},
		{name: "columns and omit", opts: `{"columns":["name","count"],"omit_columns":["count"]}`, check: qtColumns("id name")},
		{name: "columns unknown", opts: `{"columns":["name","password"]}`, wantErr: ErrUnknownColumn},
		{name: "columns hidden", opts: `{"columns":["Secret"]}`, wantErr: ErrUnknownColumn},
		{name: "omit unknown", opts: `{"omit_columns":["nope"]}`, wantErr: ErrUnknownColumn},
		{name: "preload", opts: `{"preload":[{"relation":"tags"},{"relation":"Owner"},{"relation":"Tags"}]}`, check: func(t *testing.T, q *Query) {
			if len(q.Preload) != 2 || q.Preload[0].Name != "Tags" || q.Preload[1].Name != "Owner" {
				t.Errorf("preload = %+v", q.Preload)
			}
		}},
		{name: "preload unknown", opts: `{"preload":[{"relation":"name"}]}`, wantErr: ErrUnknownRelation},
		{name: "filters", opts: `{"filters":[{"column":"name","operator":"eq","value":"x"}]}`, check: func(t *testing.T, q *Query) {
			if got := qtDescribe(q.Where); got != "(name eq string(x))" {
				t.Errorf("where = %s", got)
			}
		}},
		{name: "filter error", opts: `{"filters":[{"column":"name","operator":"nope","value":"x"}]}`, wantErr: ErrUnknownOperator},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := BuildQuery(m, qtOptions(t, tt.opts), tt.limits)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("BuildQuery: %v", err)
			}
			tt.check(t, q)
		})
	}
}

func qtLimit(limit, offset int) func(*testing.T, *Query) {
	return func(t *testing.T, q *Query) {
		if q.Limit != limit || q.Offset != offset {
			t.Errorf("limit, offset = %d, %d; want %d, %d", q.Limit, q.Offset, limit, offset)
		}
	}
}

func qtColumns(want string) func(*testing.T, *Query) {
	return func(t *testing.T, q *Query) {
		var names []string
		for _, c := range q.Columns {
			names = append(names, c.Name)
		}
		if got := strings.Join(names, " "); got != want {
			t.Errorf("columns = %q, want %q", got, want)
		}
	}
}

func TestBuildQueryNilModel(t *testing.T) {
	if _, err := BuildQuery(nil, nil, Limits{}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("err = %v", err)
	}
	if _, err := BuildWhere(nil, nil, Limits{}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("err = %v", err)
	}
}
