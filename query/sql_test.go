package query

import (
	"reflect"
	"testing"
)

// qtIdent stands for an ORM identifier so tests can tell columns from values.
type qtIdent string

func qtIdentOf(name string) any { return qtIdent(name) }

func TestWhereSQL(t *testing.T) {
	m := qtModel(t)
	name, count, title := qtCol(t, m, "name"), qtCol(t, m, "count"), qtCol(t, m, "title")
	tests := []struct {
		name     string
		dialect  string
		where    []Group
		wantSQL  string
		wantArgs []any
	}{
		{name: "empty", dialect: DialectSQLite, where: nil, wantSQL: "", wantArgs: nil},
		{name: "eq", dialect: DialectPostgres, where: []Group{{{Column: count, Op: OpEq, Value: 5}}},
			wantSQL: "? = ?", wantArgs: []any{qtIdent("cnt"), 5}},
		{name: "comparisons", dialect: DialectPostgres, where: []Group{
			{{Column: count, Op: OpNeq, Value: 1}}, {{Column: count, Op: OpGt, Value: 2}},
			{{Column: count, Op: OpGte, Value: 3}}, {{Column: count, Op: OpLt, Value: 4}},
			{{Column: count, Op: OpLte, Value: 5}},
		},
			wantSQL:  "? <> ? AND ? > ? AND ? >= ? AND ? < ? AND ? <= ?",
			wantArgs: []any{qtIdent("cnt"), 1, qtIdent("cnt"), 2, qtIdent("cnt"), 3, qtIdent("cnt"), 4, qtIdent("cnt"), 5}},
		{name: "groups", dialect: DialectSQLite, where: []Group{
			{{Column: name, Op: OpEq, Value: "a"}},
			{{Column: count, Op: OpGt, Value: 1}, {Column: title, Op: OpIsNull}},
		},
			wantSQL:  "? = ? AND (? > ? OR ? IS NULL)",
			wantArgs: []any{qtIdent("name"), "a", qtIdent("cnt"), 1, qtIdent("title")}},
		{name: "single OR group is parenthesized", dialect: DialectSQLite, where: []Group{
			{{Column: title, Op: OpIsNotNull}, {Column: count, Op: OpEq, Value: 1}},
		},
			wantSQL: "(? IS NOT NULL OR ? = ?)", wantArgs: []any{qtIdent("title"), qtIdent("cnt"), 1}},
		{name: "in", dialect: DialectPostgres, where: []Group{{{Column: count, Op: OpIn, Values: []any{1, 2, 3}}}},
			wantSQL: "? IN ( ?, ?, ? )", wantArgs: []any{qtIdent("cnt"), 1, 2, 3}},
		{name: "not in", dialect: DialectSQLite, where: []Group{{{Column: count, Op: OpNotIn, Values: []any{1}}}},
			wantSQL: "? NOT IN ( ? )", wantArgs: []any{qtIdent("cnt"), 1}},
		{name: "between", dialect: DialectSQLite, where: []Group{{{Column: count, Op: OpBetween, Values: []any{1, 9}}}},
			wantSQL: "? BETWEEN ? AND ?", wantArgs: []any{qtIdent("cnt"), 1, 9}},
		{name: "like postgres", dialect: DialectPostgres, where: []Group{{{Column: name, Op: OpLike, Value: `a\%_*`}}},
			wantSQL: "? LIKE ?", wantArgs: []any{qtIdent("name"), `a\%_*`}},
		{name: "ilike postgres", dialect: DialectPostgres, where: []Group{{{Column: name, Op: OpILike, Value: `A%`}}},
			wantSQL: "? ILIKE ?", wantArgs: []any{qtIdent("name"), `A%`}},
		{name: "other dialect like postgres", dialect: "mysqlish", where: []Group{{{Column: name, Op: OpLike, Value: `A%`}}},
			wantSQL: "? LIKE ?", wantArgs: []any{qtIdent("name"), `A%`}},
		{name: "like sqlite", dialect: DialectSQLite, where: []Group{{{Column: name, Op: OpLike, Value: `A\%_*?[%`}}},
			wantSQL: "? GLOB ?", wantArgs: []any{qtIdent("name"), `A%?[*][?][[]*`}},
		{name: "ilike sqlite", dialect: DialectSQLite, where: []Group{{{Column: name, Op: OpILike, Value: `AbC\_%`}}},
			wantSQL: "lower(?) GLOB ?", wantArgs: []any{qtIdent("name"), `abc_*`}},
		// Malformed hand-built conditions render as false.
		{name: "empty group", dialect: DialectSQLite, where: []Group{{}}, wantSQL: "1 = 0", wantArgs: nil},
		{name: "no column", dialect: DialectSQLite, where: []Group{{{Op: OpEq, Value: 1}}}, wantSQL: "1 = 0", wantArgs: nil},
		{name: "unknown op", dialect: DialectSQLite, where: []Group{{{Column: count, Op: "drop", Value: 1}}}, wantSQL: "1 = 0", wantArgs: nil},
		{name: "in without values", dialect: DialectSQLite, where: []Group{{{Column: count, Op: OpIn}}}, wantSQL: "1 = 0", wantArgs: nil},
		{name: "between one bound", dialect: DialectSQLite, where: []Group{{{Column: count, Op: OpBetween, Values: []any{1}}}}, wantSQL: "1 = 0", wantArgs: nil},
		{name: "like trailing escape", dialect: DialectPostgres, where: []Group{{{Column: name, Op: OpLike, Value: `a\`}}}, wantSQL: "1 = 0", wantArgs: nil},
		{name: "like non-string", dialect: DialectPostgres, where: []Group{{{Column: name, Op: OpLike, Value: 5}}}, wantSQL: "1 = 0", wantArgs: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sql, args := WhereSQL(tt.dialect, tt.where, qtIdentOf)
			if sql != tt.wantSQL {
				t.Errorf("sql = %q, want %q", sql, tt.wantSQL)
			}
			if !reflect.DeepEqual(args, tt.wantArgs) {
				t.Errorf("args = %#v, want %#v", args, tt.wantArgs)
			}
		})
	}
}

func TestWhereSQLNilIdent(t *testing.T) {
	m := qtModel(t)
	sql, args := WhereSQL(DialectSQLite, []Group{{{Column: qtCol(t, m, "name"), Op: OpEq, Value: "x"}}}, nil)
	if sql != "1 = 0" || args != nil {
		t.Errorf("got %q %v", sql, args)
	}
}

func TestOrderSQL(t *testing.T) {
	m := qtModel(t)
	name, count, title := qtCol(t, m, "name"), qtCol(t, m, "count"), qtCol(t, m, "title")
	tests := []struct {
		name     string
		sorts    []Sort
		wantSQL  string
		wantArgs []any
	}{
		{name: "none", wantSQL: "", wantArgs: nil},
		{name: "one", sorts: []Sort{{Column: name}}, wantSQL: "? ASC", wantArgs: []any{qtIdent("name")}},
		{name: "two", sorts: []Sort{{Column: name, Desc: true}, {Column: count}}, wantSQL: "? DESC, ? ASC", wantArgs: []any{qtIdent("name"), qtIdent("cnt")}},
		{name: "skips missing column", sorts: []Sort{{}, {Column: count, Desc: true}}, wantSQL: "? DESC", wantArgs: []any{qtIdent("cnt")}},
		{name: "nullable: NULL smallest", sorts: []Sort{{Column: title}, {Column: title, Desc: true}}, wantSQL: "? ASC NULLS FIRST, ? DESC NULLS LAST", wantArgs: []any{qtIdent("title"), qtIdent("title")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sql, args := OrderSQL(tt.sorts, qtIdentOf)
			if sql != tt.wantSQL || !reflect.DeepEqual(args, tt.wantArgs) {
				t.Errorf("got %q %#v, want %q %#v", sql, args, tt.wantSQL, tt.wantArgs)
			}
		})
	}
}

func TestSQLLikeToGlob(t *testing.T) {
	tests := []struct {
		like, glob string
	}{
		{"", ""},
		{"abc", "abc"},
		{"a%", "a*"},
		{"a_c", "a?c"},
		{`a\%`, "a%"},
		{`a\_`, "a_"},
		{`a\\`, `a\`},
		{`\a`, "a"},
		{"*", "[*]"},
		{"?", "[?]"},
		{"[", "[[]"},
		{`\*\?\[`, "[*][?][[]"},
		{"]", "]"},
		{"[ab]", "[[]ab]"},
		{"^", "^"},
		{`é_%\é`, "é?*é"},
		{"%%", "**"},
	}
	for _, tt := range tests {
		t.Run(tt.like, func(t *testing.T) {
			if got := likeToGlob(tt.like); got != tt.glob {
				t.Errorf("likeToGlob(%q) = %q, want %q", tt.like, got, tt.glob)
			}
		})
	}
}

func TestSQLValidPattern(t *testing.T) {
	tests := []struct {
		p    string
		want bool
	}{
		{"", true}, {"a%", true}, {`a\\`, true}, {`a\%`, true},
		{`a\`, false}, {`\`, false}, {`a\\\`, false}, {"a\x00", false}, {"\\\x00", false},
	}
	for _, tt := range tests {
		if got := validPattern(tt.p); got != tt.want {
			t.Errorf("validPattern(%q) = %v, want %v", tt.p, got, tt.want)
		}
	}
}
