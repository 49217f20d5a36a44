package query

import (
	"bytes"
	"database/sql/driver"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"
)

// valueClass groups column types by how their values compare.
type valueClass uint8

const (
	classOther  valueClass = iota // no ordering: only is_null / is_not_null
	classNumber                   // signed, unsigned and floating point kinds
	classString                   // string kinds, compared byte by byte
	classBool                     // false < true
	classTime                     // time.Time, compared as instants
	classBytes                    // byte slices, compared with bytes.Compare
	classValuer                   // driver.Valuer: compared by driver value
)

// valuerTypes caches whether a type (or its pointer) implements
// driver.Valuer; Match asks for every condition.
var valuerTypes sync.Map // reflect.Type -> bool

func isValuer(t reflect.Type) bool {
	if v, ok := valuerTypes.Load(t); ok {
		return v.(bool)
	}
	is := t != timeType && (t.Implements(valuerType) || reflect.PointerTo(t).Implements(valuerType))
	valuerTypes.Store(t, is)
	return is
}

// classOf returns the comparison class of base type t.
func classOf(t reflect.Type) valueClass {
	switch {
	case t == timeType:
		return classTime
	case isValuer(t):
		return classValuer
	case isByteSlice(t):
		return classBytes
	}
	switch k := t.Kind(); {
	case isIntKind(k), isUintKind(k), k == reflect.Float32, k == reflect.Float64:
		return classNumber
	case k == reflect.String:
		return classString
	case k == reflect.Bool:
		return classBool
	}
	return classOther
}

// Match reports whether row (a pointer to a value of the model's type)
// satisfies where, with exactly the semantics WhereSQL gives the same
// conditions in the database (see there): an AND of OR-groups; a NULL
// column (nil pointer, or a driver.Valuer whose value is nil) satisfies
// only is_null; numbers compare numerically, also across integer and
// floating point kinds; strings compare byte by byte, as PostgreSQL does
// with the C collation and SQLite with BINARY; false < true; times compare
// as instants (SQLite stores times as text, so its ordering agrees only for
// times stored in one time zone); byte slices compare with bytes.Compare;
// a driver.Valuer type (sql.NullInt64, uuid.UUID...) compares by the
// driver value its Value method returns; like and ilike use the pattern
// language of WhereSQL, ilike comparing strings.ToLower of both sides.
//
// Conditions are expected as BuildWhere makes them, with operands of the
// column's Go type. A condition Match cannot evaluate (no column, a row of
// another type, an operand of an unrelated type, a malformed operand list)
// is false. Match does not panic on any row or condition.
// An empty where matches every row; a nil row matches no condition.
func Match(where []Group, row any) bool {
	rv := reflect.ValueOf(row)
	for _, g := range where {
		if !matchGroup(g, rv) {
			return false
		}
	}
	return true
}

func matchGroup(g Group, row reflect.Value) bool {
	for i := range g {
		if matchCondition(&g[i], row) {
			return true
		}
	}
	return false
}

// fieldState tells what fieldOf found.
type fieldState uint8

const (
	fieldOK      fieldState = iota
	fieldNull               // an embedded pointer on the way is nil
	fieldInvalid            // row is not a value of the column's model
)

// fieldOf returns the field of col in row (a struct or pointers to one),
// checking every step so that a row of another type cannot panic.
func fieldOf(row reflect.Value, col *Column) (reflect.Value, fieldState) {
	v := row
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return reflect.Value{}, fieldInvalid
		}
		v = v.Elem()
	}
	if len(col.Index) == 0 {
		return reflect.Value{}, fieldInvalid
	}
	for _, i := range col.Index {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, fieldNull
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct || i < 0 || i >= v.NumField() {
			return reflect.Value{}, fieldInvalid
		}
		v = v.Field(i)
	}
	if v.Type() != col.Type {
		return reflect.Value{}, fieldInvalid
	}
	return v, fieldOK
}

// matchCondition evaluates one condition against row.
func matchCondition(c *Condition, row reflect.Value) bool {
	if c.Column == nil || c.Column.Type == nil {
		return false
	}
	x, state := fieldOf(row, c.Column)
	if state == fieldInvalid {
		return false
	}
	null := state == fieldNull
	for !null && (x.Kind() == reflect.Pointer || x.Kind() == reflect.Interface) {
		if x.IsNil() {
			null = true
		} else {
			x = x.Elem()
		}
	}
	if !null && isValuer(x.Type()) {
		dv, ok := driverValue(x)
		if !ok {
			return false
		}
		if dv == nil {
			null = true
		} else {
			x = reflect.ValueOf(dv)
		}
	}
	switch c.Op {
	case OpIsNull:
		return null
	case OpIsNotNull:
		return !null
	}
	if null {
		return false
	}
	switch c.Op {
	case OpEq, OpNeq, OpGt, OpGte, OpLt, OpLte:
		cmp, ok := compareTo(x, c.Value)
		if !ok {
			return false
		}
		switch c.Op {
		case OpEq:
			return cmp == 0
		case OpNeq:
			return cmp != 0
		case OpGt:
			return cmp > 0
		case OpGte:
			return cmp >= 0
		case OpLt:
			return cmp < 0
		default:
			return cmp <= 0
		}
	case OpIn:
		for _, y := range c.Values {
			if cmp, ok := compareTo(x, y); ok && cmp == 0 {
				return true
			}
		}
		return false
	case OpNotIn:
		// SQL: x NOT IN (...) is false when x equals a value and unknown
		// (so false) when a value is NULL or cannot be compared.
		if len(c.Values) == 0 {
			return false
		}
		for _, y := range c.Values {
			if cmp, ok := compareTo(x, y); !ok || cmp == 0 {
				return false
			}
		}
		return true
	case OpBetween:
		if len(c.Values) != 2 {
			return false
		}
		lo, ok1 := compareTo(x, c.Values[0])
		hi, ok2 := compareTo(x, c.Values[1])
		return ok1 && ok2 && lo >= 0 && hi <= 0
	case OpLike, OpILike:
		p, ok := c.Value.(string)
		if !ok || x.Kind() != reflect.String || !validPattern(p) {
			return false
		}
		lp := c.like
		if fold := c.Op == OpILike; lp == nil || lp.src != p || lp.fold != fold {
			lp = compileLike(p, fold) // a condition not made by BuildWhere
		}
		return lp.match(x.String())
	}
	return false
}

// compareTo orders x (a column value, pointers removed, driver value for
// valuers) against operand y. ok is false when y is NULL or the two cannot
// be compared.
func compareTo(x reflect.Value, y any) (int, bool) {
	yv := reflect.ValueOf(y)
	for yv.Kind() == reflect.Pointer || yv.Kind() == reflect.Interface {
		if yv.IsNil() {
			return 0, false
		}
		yv = yv.Elem()
	}
	if !yv.IsValid() {
		return 0, false
	}
	if isValuer(yv.Type()) {
		dv, ok := driverValue(yv)
		if !ok || dv == nil {
			return 0, false
		}
		yv = reflect.ValueOf(dv)
	}
	return order(x, yv)
}

// driverValue calls the Value method of v's type (or of its pointer).
func driverValue(v reflect.Value) (any, bool) {
	if !v.CanInterface() {
		return nil, false
	}
	var valuer driver.Valuer
	switch t := v.Type(); {
	case t.Implements(valuerType):
		valuer, _ = v.Interface().(driver.Valuer)
	case v.CanAddr():
		valuer, _ = v.Addr().Interface().(driver.Valuer)
	default:
		p := reflect.New(t)
		p.Elem().Set(v)
		valuer, _ = p.Interface().(driver.Valuer)
	}
	if valuer == nil {
		return nil, false
	}
	dv, err := valuer.Value()
	return dv, err == nil
}

// order compares two non-NULL values of comparable kinds.
func order(x, y reflect.Value) (int, bool) {
	xk, yk := x.Kind(), y.Kind()
	switch {
	case isIntKind(xk):
		a := x.Int()
		switch {
		case isIntKind(yk):
			return cmpOrdered(a, y.Int()), true
		case isUintKind(yk):
			return -cmpUintInt(y.Uint(), a), true
		case yk == reflect.Float32 || yk == reflect.Float64:
			return cmpIntFloat(a, y.Float())
		}
	case isUintKind(xk):
		a := x.Uint()
		switch {
		case isIntKind(yk):
			return cmpUintInt(a, y.Int()), true
		case isUintKind(yk):
			return cmpOrdered(a, y.Uint()), true
		case yk == reflect.Float32 || yk == reflect.Float64:
			return cmpUintFloat(a, y.Float())
		}
	case xk == reflect.Float32 || xk == reflect.Float64:
		a := x.Float()
		switch {
		case isIntKind(yk):
			cmp, ok := cmpIntFloat(y.Int(), a)
			return -cmp, ok
		case isUintKind(yk):
			cmp, ok := cmpUintFloat(y.Uint(), a)
			return -cmp, ok
		case yk == reflect.Float32 || yk == reflect.Float64:
			b := y.Float()
			if math.IsNaN(a) || math.IsNaN(b) {
				return 0, false
			}
			return cmpOrdered(a, b), true
		}
	case xk == reflect.String:
		if yk == reflect.String {
			return strings.Compare(x.String(), y.String()), true
		}
	case xk == reflect.Bool:
		if yk == reflect.Bool {
			return cmpBool(x.Bool(), y.Bool()), true
		}
	case x.Type() == timeType:
		if y.Type() == timeType {
			a, ok1 := timeOf(x)
			b, ok2 := timeOf(y)
			return a.Compare(b), ok1 && ok2
		}
	case isByteSlice(x.Type()):
		if isByteSlice(y.Type()) {
			return bytes.Compare(x.Bytes(), y.Bytes()), true
		}
	}
	return 0, false
}

func cmpOrdered[T int64 | uint64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case b:
		return -1
	}
	return 1
}

func cmpUintInt(a uint64, b int64) int {
	if b < 0 {
		return 1
	}
	return cmpOrdered(a, uint64(b))
}

// cmpIntFloat compares exactly, without rounding a to float64.
func cmpIntFloat(a int64, f float64) (int, bool) {
	switch {
	case math.IsNaN(f):
		return 0, false
	case f < -(1 << 63):
		return 1, true
	case f >= 1<<63:
		return -1, true
	}
	t := math.Trunc(f)
	if c := cmpOrdered(a, int64(t)); c != 0 {
		return c, true
	}
	return cmpOrdered(t, f), true // a == trunc(f): the fraction decides
}

// cmpUintFloat is cmpIntFloat for unsigned a.
func cmpUintFloat(a uint64, f float64) (int, bool) {
	switch {
	case math.IsNaN(f):
		return 0, false
	case f < 0:
		return 1, true
	case f >= 1<<64:
		return -1, true
	}
	t := math.Trunc(f)
	if c := cmpOrdered(a, uint64(t)); c != 0 {
		return c, true
	}
	return cmpOrdered(t, f), true
}

// timeOf reads a time.Time without copying it into an interface when the
// value is addressable.
func timeOf(v reflect.Value) (time.Time, bool) {
	if !v.CanInterface() {
		return time.Time{}, false
	}
	if v.CanAddr() {
		p, ok := v.Addr().Interface().(*time.Time)
		if ok {
			return *p, true
		}
	}
	t, ok := v.Interface().(time.Time)
	return t, ok
}
