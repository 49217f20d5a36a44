package query

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// qtSQLText is the only alphabet WhereSQL and OrderSQL may produce from a
// client's options; qtSQLWords the only words.
var (
	qtSQLText  = regexp.MustCompile(`^[?()<>=, A-Za-z]*$`)
	qtSQLWord  = regexp.MustCompile(`[A-Za-z]+`)
	qtSQLWords = map[string]bool{
		"AND": true, "OR": true, "NOT": true, "IN": true, "IS": true, "NULL": true,
		"LIKE": true, "ILIKE": true, "GLOB": true, "BETWEEN": true, "lower": true,
		"ASC": true, "DESC": true, "NULLS": true, "FIRST": true, "LAST": true,
	}
	qtSentinels = []error{ErrUnknownColumn, ErrUnknownOperator, ErrUnknownRelation, ErrInvalidValue, ErrInvalidOptions}
)

// FuzzBuildQuery feeds arbitrary request options (as JSON) through
// BuildQuery, WhereSQL, OrderSQL and Match. Nothing may panic; refusals
// must wrap one of the validation errors; and accepted options must give
// SQL text made only of fixed vocabulary, every client string travelling
// as a bound argument and every identifier being a column of the model.
func FuzzBuildQuery(f *testing.F) {
	f.Add(`{"filters":[{"column":"name","operator":"eq","value":"x"}]}`)
	m := qtModel(f)
	isColumn := map[string]bool{}
	for _, c := range m.Columns {
		if !c.Hidden {
			isColumn[c.Name] = true
		}
	}
	title := "T"
	rows := []any{&qtItem{}, &qtItem{ID: 3, Name: "abc", Title: &title, Count: 2, Score: 1.5, Created: time.Now()}}
	limits := Limits{DefaultLimit: 10, MaxLimit: 100}

	f.Fuzz(func(t *testing.T, data string) {
		dec := json.NewDecoder(strings.NewReader(data))
		dec.UseNumber()
		var opts RequestOptions
		if err := dec.Decode(&opts); err != nil {
			t.Skip()
		}
		q, err := BuildQuery(m, &opts, limits)
		if err != nil {
			for _, s := range qtSentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error %v wraps no validation error", err)
		}
		if q.Limit < 1 || q.Limit > limits.MaxLimit || q.Offset < 0 {
			t.Fatalf("limit %d offset %d out of bounds", q.Limit, q.Offset)
		}
		ident := func(name string) any {
			if !isColumn[name] {
				t.Fatalf("identifier %q is not a visible column", name)
			}
			return qtIdent(name)
		}
		for _, dialect := range []string{DialectSQLite, DialectPostgres} {
			sql, args := WhereSQL(dialect, q.Where, ident)
			qtCheckSQL(t, sql, args)
		}
		sql, args := OrderSQL(q.Sort, ident)
		qtCheckSQL(t, sql, args)
		for _, r := range rows {
			Match(q.Where, r)
		}
	})
}

// qtCheckSQL asserts that sql is fixed vocabulary with one argument per
// placeholder.
func qtCheckSQL(t *testing.T, sql string, args []any) {
	t.Helper()
	if !qtSQLText.MatchString(sql) {
		t.Fatalf("SQL %q has characters outside the fixed vocabulary", sql)
	}
	for _, w := range qtSQLWord.FindAllString(sql, -1) {
		if !qtSQLWords[w] {
			t.Fatalf("SQL %q has the word %q", sql, w)
		}
	}
	if n := strings.Count(sql, "?"); n != len(args) {
		t.Fatalf("SQL %q has %d placeholders for %d args", sql, n, len(args))
	}
}
