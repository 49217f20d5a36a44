package query

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

func TestMatch(t *testing.T) {
	m := qtModel(t)
	col := func(n string) *Column { return qtCol(t, m, n) }
	title := "Hello_World"
	ratio := float32(0.5)
	day := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	ref := uuid.MustParse("0b6a3f5e-8a47-4f5c-9a51-2f0b2c7b9c11")
	row := &qtItem{
		ID: 1, Name: "abc", Title: &title, Count: 5, Score: 2.5, Ratio: &ratio, Active: true,
		Small: -3, Big: 7, Created: day, Status: "open", Blob: []byte("b"),
		Code: sql.NullString{String: "c", Valid: true}, Ref: ref,
	}
	cond := func(name string, op Op, v any, vs ...any) Condition {
		return Condition{Column: col(name), Op: op, Value: v, Values: vs}
	}
	tests := []struct {
		name  string
		where []Group
		want  bool
	}{
		{"empty where", nil, true},
		{"eq int", []Group{{cond("count", OpEq, 5)}}, true},
		{"eq int miss", []Group{{cond("count", OpEq, 6)}}, false},
		{"neq", []Group{{cond("count", OpNeq, 6)}}, true},
		{"gt", []Group{{cond("count", OpGt, 4)}}, true},
		{"gt equal", []Group{{cond("count", OpGt, 5)}}, false},
		{"gte", []Group{{cond("count", OpGte, 5)}}, true},
		{"lt", []Group{{cond("count", OpLt, 5)}}, false},
		{"lte", []Group{{cond("count", OpLte, 5)}}, true},
		{"int8 negative", []Group{{cond("small", OpLt, int8(0))}}, true},
		{"uint", []Group{{cond("big", OpEq, uint16(7))}}, true},
		{"float", []Group{{cond("score", OpGt, 2.0)}}, true},
		{"int vs float operand", []Group{{cond("count", OpLt, 5.5)}}, true},
		{"int vs float equal", []Group{{cond("count", OpEq, 5.0)}}, true},
		{"uint vs negative int", []Group{{cond("big", OpGt, -1)}}, true},
		{"float pointer", []Group{{cond("ratio", OpEq, float32(0.5))}}, true},
		{"bool", []Group{{cond("active", OpGt, false)}}, true},
		{"string byte order", []Group{{cond("name", OpGt, "ABC")}}, true},
		{"string pointer", []Group{{cond("title", OpEq, "Hello_World")}}, true},
		{"named string", []Group{{cond("status", OpEq, qtStatus("open"))}}, true},
		{"time", []Group{{cond("created", OpEq, day.In(time.FixedZone("x", 3600)))}}, true},
		{"time before", []Group{{cond("created", OpLt, day.Add(time.Second))}}, true},
		{"bytes", []Group{{cond("blob", OpGte, []byte("a"))}}, true},
		{"null string valuer", []Group{{cond("code", OpEq, sql.NullString{String: "c", Valid: true})}}, true},
		{"valuer vs plain operand", []Group{{cond("code", OpEq, "c")}}, true},
		{"invalid valuer operand", []Group{{cond("code", OpEq, sql.NullString{})}}, false},
		{"uuid", []Group{{cond("ref", OpEq, ref)}}, true},
		{"uuid other", []Group{{cond("ref", OpNeq, uuid.Nil)}}, true},
		{"in", []Group{{cond("count", OpIn, nil, 1, 5)}}, true},
		{"in miss", []Group{{cond("count", OpIn, nil, 1, 2)}}, false},
		{"not in", []Group{{cond("count", OpNotIn, nil, 1, 2)}}, true},
		{"not in hit", []Group{{cond("count", OpNotIn, nil, 5)}}, false},
		{"not in with null operand", []Group{{cond("count", OpNotIn, nil, 1, nil)}}, false},
		{"in empty", []Group{{cond("count", OpIn, nil)}}, false},
		{"not in empty", []Group{{cond("count", OpNotIn, nil)}}, false},
		{"between", []Group{{cond("count", OpBetween, nil, 5, 9)}}, true},
		{"between upper", []Group{{cond("count", OpBetween, nil, 1, 5)}}, true},
		{"between reversed", []Group{{cond("count", OpBetween, nil, 9, 1)}}, false},
		{"between malformed", []Group{{cond("count", OpBetween, nil, 1)}}, false},
		{"like", []Group{{cond("name", OpLike, "a%")}}, true},
		{"like case", []Group{{cond("name", OpLike, "A%")}}, false},
		{"ilike case", []Group{{cond("name", OpILike, "A%")}}, true},
		{"like underscore literal", []Group{{cond("title", OpLike, `Hello\_W%`)}}, true},
		{"like underscore wildcard", []Group{{cond("title", OpLike, `Hello_World`)}}, true},
		{"like trailing escape", []Group{{cond("name", OpLike, `abc\`)}}, false},
		{"like non-string pattern", []Group{{cond("name", OpLike, 5)}}, false},
		{"is null", []Group{{cond("deleted", OpIsNull, nil)}}, true},
		{"is null on value", []Group{{cond("count", OpIsNull, nil)}}, false},
		{"is not null", []Group{{cond("title", OpIsNotNull, nil)}}, true},
		{"null valuer is null", []Group{{cond("removed", OpIsNull, nil)}}, true},
		{"null never compares", []Group{{cond("deleted", OpNeq, day)}}, false},
		{"null not in", []Group{{cond("deleted", OpNotIn, nil, day)}}, false},
		{"null like", []Group{{cond("deleted", OpLt, day)}}, false},
		{"or group", []Group{{cond("count", OpEq, 1), cond("name", OpEq, "abc")}}, true},
		{"and of groups", []Group{{cond("count", OpEq, 5)}, {cond("name", OpEq, "x")}}, false},
		{"empty group", []Group{{}}, false},
		{"unknown op", []Group{{cond("count", "drop", 5)}}, false},
		{"operand of other type", []Group{{cond("count", OpEq, "5")}}, false},
		{"nil operand", []Group{{cond("count", OpEq, nil)}}, false},
		{"nil column", []Group{{{Op: OpIsNull}}}, false},
		{"pointer operand", []Group{{cond("count", OpEq, &[]int{5}[0])}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Match(tt.where, row); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLikeMatch(t *testing.T) {
	tests := []struct {
		p, s       string
		like, fold bool
	}{
		{"", "", true, true},
		{"", "a", false, false},
		{"%", "", true, true},
		{"%", "anything", true, true},
		{"_", "", false, false},
		{"_", "é", true, true},
		{"__", "é", false, false},
		{"a%c", "abbbc", true, true},
		{"a%c", "abbbcd", false, false},
		{"%a%b%", "xxaxxbxx", true, true},
		{"%ab", "aab", true, true},
		{"a_%_c", "abc", false, false},
		{"a_%_c", "abbc", true, true},
		{`\%`, "%", true, true},
		{`\%`, "a", false, false},
		{`a\_c`, "abc", false, false},
		{`\\`, `\`, true, true},
		{`\a`, "a", true, true},
		{"ABC", "abc", false, true},
		{"É%", "école", false, true},
		{"É%", "ecole", false, false},
		{"É%", "éCOLE", false, true},
		{"%%%x", "aaaax", true, true},
		{"*?[", "*?[", true, true},
		{"*", "a", false, false},
		{"a\nb%", "a\nbc", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.p+"~"+tt.s, func(t *testing.T) {
			if got := likeMatch(tt.p, tt.s, false); got != tt.like {
				t.Errorf("like = %v, want %v", got, tt.like)
			}
			if got := likeMatch(tt.p, tt.s, true); got != tt.fold {
				t.Errorf("ilike = %v, want %v", got, tt.fold)
			}
		})
	}
}

func TestMatchOrderNumbers(t *testing.T) {
	big := int64(math.MaxInt64)
	tests := []struct {
		name string
		x, y any
		want int
		ok   bool
	}{
		{"int int", 1, 2, -1, true},
		{"int uint", -1, uint64(0), -1, true},
		{"uint int", uint64(math.MaxUint64), int64(-1), 1, true},
		{"big int vs float", big, float64(big), -1, true}, // float64(MaxInt64) is 2^63
		{"int vs fraction", int64(2), 2.5, -1, true},
		{"int vs negative fraction", int64(-2), -2.5, 1, true},
		{"uint vs float", uint64(3), 2.9, 1, true},
		{"uint vs negative float", uint64(0), -0.1, 1, true},
		{"uint vs huge float", uint64(math.MaxUint64), 1e30, -1, true},
		{"float vs int", 2.0, int64(2), 0, true},
		{"NaN", math.NaN(), 1.0, 0, false},
		{"NaN vs int", int64(1), math.NaN(), 0, false},
		{"string vs int", "1", 1, 0, false},
		{"bool vs string", true, "true", 0, false},
		{"bools", false, true, -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := compareTo(reflect.ValueOf(tt.x), tt.y)
			if got != tt.want || ok != tt.ok {
				t.Errorf("compare = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// qtOddValuer has a pointer-receiver Value method that fails for negatives.
type qtOddValuer int

func (v *qtOddValuer) Value() (driver.Value, error) {
	if *v < 0 {
		return nil, errors.New("negative")
	}
	return int64(*v) * 10, nil
}

type qtInner struct {
	Deep int `json:"deep"`
}

type qtOdd struct {
	ID    int            `json:"id"`
	Odd   qtOddValuer    `json:"odd"`
	Any   any            `json:"any"`
	Ch    chan int       `json:"ch"`
	Fn    func()         `json:"fn"`
	C     complex128     `json:"c"`
	PP    **int          `json:"pp"`
	Arr   [2]int         `json:"arr"`
	Slice []string       `json:"slice"`
	M     map[string]int `json:"m"`
	*qtInner
}

// TestMatchOddTypes checks that Match never panics, whatever the column
// type, operator, operand or row.
func TestMatchOddTypes(t *testing.T) {
	m, err := ParseModel("odd", &qtOdd{})
	if err != nil {
		t.Fatalf("ParseModel: %v", err)
	}
	one := 1
	pone := &one
	rows := []any{
		nil, 5, "x", qtOdd{}, &qtOdd{}, &qtItem{}, (*qtOdd)(nil),
		&qtOdd{Odd: -1, Any: 3, Ch: make(chan int), Fn: func() {}, C: 1i, PP: &pone, Slice: []string{"a"}, M: map[string]int{}, qtInner: &qtInner{Deep: 2}},
		&qtOdd{Odd: 2, Any: (*int)(nil), PP: new(*int)},
	}
	operands := []any{nil, 1, int64(20), "x", 2.5, []any{1}, qtOddValuer(2), qtOddValuer(-1), time.Time{}, []byte("x"), struct{}{}, pone, make(chan int)}
	ops := []Op{OpEq, OpNeq, OpGt, OpGte, OpLt, OpLte, OpLike, OpILike, OpIn, OpNotIn, OpIsNull, OpIsNotNull, OpBetween, "bogus"}
	cols := append([]*Column{nil, {}, {Name: "x", Type: qtItemType, Index: []int{99}}, {Name: "y", Type: qtItemType, Index: []int{0, 0}}}, m.Columns...)
	matched := 0
	for _, c := range cols {
		for _, op := range ops {
			for _, v := range operands {
				cond := Condition{Column: c, Op: op, Value: v, Values: []any{v, v}}
				for _, r := range rows {
					if Match([]Group{{cond}}, r) {
						matched++
					}
				}
			}
		}
	}
	if matched == 0 {
		t.Error("nothing matched at all")
	}
	// Spot checks.
	odd := qtCol(t, m, "odd")
	if !Match([]Group{{{Column: odd, Op: OpEq, Value: qtOddValuer(2)}}}, &qtOdd{Odd: 2}) {
		t.Error("pointer-receiver valuer: 2 != 2")
	}
	if !Match([]Group{{{Column: odd, Op: OpEq, Value: int64(20)}}}, qtOdd{Odd: 2}) {
		t.Error("valuer on a non-addressable row: driver value 20 not found")
	}
	if Match([]Group{{{Column: odd, Op: OpIsNotNull}}}, &qtOdd{Odd: -1}) {
		t.Error("failing Value method matched")
	}
	deep := qtCol(t, m, "deep")
	if !Match([]Group{{{Column: deep, Op: OpIsNull}}}, &qtOdd{}) {
		t.Error("field behind a nil embedded pointer is not NULL")
	}
	if !Match([]Group{{{Column: deep, Op: OpEq, Value: 2}}}, &qtOdd{qtInner: &qtInner{Deep: 2}}) {
		t.Error("embedded field")
	}
}

var qtItemType = reflect.TypeOf(qtItem{})

func BenchmarkMatch(b *testing.B) {
	m := qtModel(b)
	where, err := BuildWhere(m, []FilterOption{
		{Column: "count", Operator: "eq", Value: 5},
		{Column: "name", Operator: "eq", Value: "abc"},
		{Column: "name", Operator: "like", Value: "a%c", LogicOperator: "OR"},
	}, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	row := &qtItem{Count: 5, Name: "abc"}
	var r any = row
	b.ReportAllocs()
	for b.Loop() {
		if !Match(where, r) {
			b.Fatal("no match")
		}
	}
}

func TestMatchAllocations(t *testing.T) {
	m := qtModel(t)
	where, err := BuildWhere(m, []FilterOption{
		{Column: "count", Operator: "eq", Value: 5},
		{Column: "name", Operator: "eq", Value: "abc"},
		{Column: "title", Operator: "ilike", Value: "%X%"},
	}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	title := "axb"
	var row any = &qtItem{Count: 5, Name: "abc", Title: &title}
	Match(where, row) // warm the valuer cache
	if n := testing.AllocsPerRun(100, func() { Match(where, row) }); n != 0 {
		t.Errorf("Match allocates %v times per call, want 0", n)
	}
}

// likeMatchReference is the backtracking like matcher the bounded one
// replaced: simple enough to trust, but O(len(p)*len(s)) at worst. The
// tests and the fuzz target check likeMatch against it.
func likeMatchReference(p, s string, fold bool) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch p[pi] {
			case '%':
				pi++
				starP, starS = pi, si
				continue
			case '_':
				_, w := utf8.DecodeRuneInString(s[si:])
				pi++
				si += w
				continue
			default:
				q := pi
				if p[q] == '\\' && q+1 < len(p) {
					q++
				}
				pr, pw := utf8.DecodeRuneInString(p[q:])
				sr, sw := utf8.DecodeRuneInString(s[si:])
				if pr == sr || (fold && unicode.ToLower(pr) == unicode.ToLower(sr)) {
					pi = q + pw
					si += sw
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		_, w := utf8.DecodeRuneInString(s[starS:])
		starS += w
		pi, si = starP, starS
	}
	for pi < len(p) && p[pi] == '%' {
		pi++
	}
	return pi == len(p)
}

// FuzzLikeMatch checks the bounded like matcher against the backtracking
// reference on arbitrary patterns and values, both case-sensitive and
// folded.
func FuzzLikeMatch(f *testing.F) {
	for _, seed := range [][2]string{{"a%b_c", "axxbyc"}, {`%\%_`, "50%!"}, {"%é_%", "ÉxÉ"}, {"__%%_", "abc"}, {"%aa%a", "aaaa"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, p, s string) {
		if len(p) > maxPatternBytes || !validPattern(p) || !utf8.ValidString(p) || !utf8.ValidString(s) {
			t.Skip()
		}
		for _, fold := range []bool{false, true} {
			if got, want := likeMatch(p, s, fold), likeMatchReference(p, s, fold); got != want {
				t.Fatalf("likeMatch(%q, %q, fold=%v) = %v, reference says %v", p, s, fold, got, want)
			}
		}
	})
}

// BenchmarkLikeAdversarial matches a hostile 2,000-byte pattern (a long
// segment that almost matches everywhere) against a 300,000-character
// value, with the bounded matcher and with the backtracking reference it
// replaced.
func BenchmarkLikeAdversarial(b *testing.B) {
	p := "%" + strings.Repeat("a", 1997) + "b%"
	s := strings.Repeat("a", 300000)
	for _, m := range []struct {
		name string
		fn   func(p, s string, fold bool) bool
	}{{"bounded", likeMatch}, {"reference", likeMatchReference}} {
		b.Run(m.name, func(b *testing.B) {
			for b.Loop() {
				if m.fn(p, s, false) {
					b.Fatal("matched")
				}
			}
		})
	}
}
