package query_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/mqttspec/mqttspec/internal/testdb"
	"github.com/mqttspec/mqttspec/query"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// qtProp is the model of the SQLite property test.
type qtProp struct {
	ID int64    `json:"id" gorm:"primaryKey"`
	N  int      `json:"n"`
	NP *int     `json:"np"`
	S  string   `json:"s"`
	SP *string  `json:"sp"`
	B  bool     `json:"b"`
	F  float64  `json:"f"`
	FP *float64 `json:"fp"`
}

// qtPropSeed is fixed so that failures reproduce; it is logged.
const qtPropSeed = 20240301

// Small value domains so that random filters hit rows.
var (
	qtPropTokens   = []string{"a", "A", "b", "B", "é", "%", "_", `\`, "*", "?", "[", "]", " "}
	qtPropPatterns = []string{"a", "A", "b", "B", "é", "*", "?", "[", "]", "%", "%", "_", `\%`, `\_`, `\\`, `\a`, `\*`, `\[`}
	qtPropFloats   = []float64{-1.5, -1, 0, 0.5, 1, 2, 3.25}
)

func qtPropString(r *rand.Rand, tokens []string, max int) string {
	var b strings.Builder
	for n := r.IntN(max + 1); n > 0; n-- {
		b.WriteString(tokens[r.IntN(len(tokens))])
	}
	return b.String()
}

func qtPropRow(r *rand.Rand, id int64) *qtProp {
	p := &qtProp{
		ID: id,
		N:  r.IntN(7) - 3,
		S:  qtPropString(r, qtPropTokens, 4),
		B:  r.IntN(2) == 1,
		F:  qtPropFloats[r.IntN(len(qtPropFloats))],
	}
	if r.IntN(4) > 0 {
		n := r.IntN(7) - 3
		p.NP = &n
	}
	if r.IntN(4) > 0 {
		s := qtPropString(r, qtPropTokens, 4)
		p.SP = &s
	}
	if r.IntN(4) > 0 {
		f := qtPropFloats[r.IntN(len(qtPropFloats))]
		p.FP = &f
	}
	return p
}

// qtPropValue returns a random operand for column, in the shapes a client
// or a hook may send.
func qtPropValue(r *rand.Rand, column string) any {
	switch column {
	case "n", "np":
		n := r.IntN(9) - 4
		switch r.IntN(3) {
		case 0:
			return fmt.Sprint(n)
		case 1:
			return float64(n)
		}
		return n
	case "s", "sp":
		return qtPropString(r, qtPropTokens, 3)
	case "b":
		return r.IntN(2) == 1
	default:
		return qtPropFloats[r.IntN(len(qtPropFloats))] + float64(r.IntN(2))/4
	}
}

func qtPropFilter(r *rand.Rand) query.FilterOption {
	columns := []string{"n", "np", "s", "sp", "b", "f", "fp"}
	ops := []string{"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "not_in", "is_null", "is_not_null", "between"}
	f := query.FilterOption{Column: columns[r.IntN(len(columns))], Operator: ops[r.IntN(len(ops))]}
	switch f.Operator {
	case "like", "ilike":
		if f.Column[0] != 's' {
			f.Column = "s"
			if r.IntN(2) == 0 {
				f.Column = "sp"
			}
		}
		f.Value = qtPropString(r, qtPropPatterns, 4)
	case "in", "not_in":
		vals := make([]any, 1+r.IntN(3))
		for i := range vals {
			vals[i] = qtPropValue(r, f.Column)
		}
		f.Value = vals
	case "between":
		f.Value = []any{qtPropValue(r, f.Column), qtPropValue(r, f.Column)}
	case "is_null", "is_not_null":
	default:
		f.Value = qtPropValue(r, f.Column)
	}
	switch r.IntN(4) {
	case 0, 1:
		f.LogicOperator = "OR"
	case 2:
		f.LogicOperator = "AND"
	}
	return f
}

// TestMatchAgreesWithDatabases runs random filters both as SQL (through
// GORM, as the adapter does) and through query.Match, on SQLite and PostgreSQL,
// and requires the same rows from both.
func TestMatchAgreesWithDatabases(t *testing.T) {
	for _, dialect := range []string{query.DialectSQLite, query.DialectPostgres} {
		t.Run(dialect, func(t *testing.T) {
			checkMatchAgreesWithDB(t, testdb.OpenGORM(t, dialect), dialect)
		})
	}
}

// checkMatchAgreesWithDB migrates its own table into db, stores random
// rows, and compares the rows the database selects for random filters with
// the rows query.Match accepts.
func checkMatchAgreesWithDB(t *testing.T, db *gorm.DB, dialect string) {
	t.Helper()
	if err := db.AutoMigrate(&qtProp{}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	m, err := query.ParseModel("prop", &qtProp{})
	if err != nil {
		t.Fatalf("ParseModel: %v", err)
	}
	t.Logf("seed %d", qtPropSeed)
	r := rand.New(rand.NewPCG(qtPropSeed, qtPropSeed))

	inserted := make([]*qtProp, 200)
	for i := range inserted {
		inserted[i] = qtPropRow(r, int64(i+1))
	}
	if err := db.CreateInBatches(inserted, 50).Error; err != nil {
		t.Fatalf("insert: %v", err)
	}
	// query.Match the rows as the database returns them.
	var rows []*qtProp
	if err := db.Order("id").Find(&rows).Error; err != nil {
		t.Fatalf("find: %v", err)
	}
	if len(rows) != len(inserted) {
		t.Fatalf("stored %d rows, want %d", len(rows), len(inserted))
	}

	ident := func(name string) any { return clause.Column{Name: name} }
	checked, nonEmpty := 0, 0
	for i := 0; checked < 500 && i < 5000; i++ {
		filters := make([]query.FilterOption, 1+r.IntN(3))
		for j := range filters {
			filters[j] = qtPropFilter(r)
		}
		where, err := query.BuildWhere(m, filters, query.Limits{})
		if err != nil {
			continue // e.g. a fractional operand for an int column
		}
		checked++
		sqlText, args := query.WhereSQL(dialect, where, ident)
		var got []int64
		if err := db.Model(&qtProp{}).Where(sqlText, args...).Order("id").Pluck("id", &got).Error; err != nil {
			t.Fatalf("query %q %v: %v", sqlText, args, err)
		}
		var want []int64
		for _, row := range rows {
			if query.Match(where, row) {
				want = append(want, row.ID)
			}
		}
		if len(want) > 0 {
			nonEmpty++
		}
		if !slices.Equal(got, want) {
			t.Fatalf("filters %+v\nwhere %s\nsql %s %v\n%s ids %v\nMatch ids  %v",
				filters, query.DescribeWhere(where), sqlText, args, dialect, got, want)
		}
	}
	if checked < 500 || nonEmpty < 100 {
		t.Fatalf("only %d filter lists checked, %d with matches", checked, nonEmpty)
	}
	t.Logf("%d filter lists agree (%d match some rows)", checked, nonEmpty)
}
