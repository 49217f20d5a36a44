package query

import (
	"bytes"
	"database/sql"
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

var (
	jsonUnmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	jsonNumberType      = reflect.TypeOf(json.Number(""))
)

// Time layouts ConvertValue and DecodeData accept for time.Time columns.
// RFC 3339 with optional fractional seconds, or a bare date (UTC midnight).
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02"}

// ConvertValue converts v, a filter operand or a record id, to the Go type
// of column c with pointers removed (the base type T). It is lenient about
// the JSON shape: 5, "5" and 5.0 all give an integer 5, "true" gives true,
// the number 5 gives the string "5" for a text column. Values come from
// JSON decoded with UseNumber or from Go code (any numeric type, strings,
// time.Time, pointers to those).
//
// The result's dynamic type is exactly T, so it compares with the column's
// value in a row and can be stored with Column.Set on a non-pointer field.
// A nil v (or nil pointer) gives nil. Types that decode themselves
// (json.Unmarshaler or encoding.TextUnmarshaler, e.g. uuid.UUID or
// gorm.DeletedAt) are decoded from the JSON form of v; other sql.Scanner
// types (sql.NullString...) are filled with Scan. Failures wrap
// ErrInvalidValue and name the column and the expected kind of value.
func ConvertValue(c *Column, v any) (any, error) {
	if c == nil || c.Type == nil {
		return nil, fmt.Errorf("%w: no column", ErrInvalidValue)
	}
	return convert(c, v, false)
}

// DecodeData converts the data object of a create or update request into
// typed column values. limits caps each text or binary value
// (MaxValueBytes) and the whole data object (MaxRecordBytes, measured as
// JSON). Every key must name a visible column of m (JSON key
// or database name); relations and hidden columns are refused with
// ErrUnknownColumn, and two keys naming the same column with
// ErrInvalidValue. Typing is strict: a JSON string is refused for a numeric
// column, a number for a text column, a fractional number for an integer
// column; null is accepted only for nullable columns and gives a nil value.
// Other values convert as in ConvertValue. Each value is of the column's
// full Go type (a *T for a pointer field), ready for Column.Set.
func DecodeData(m *Model, data map[string]any, limits Limits) (map[*Column]any, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: no model", ErrInvalidValue)
	}
	if n, err := jsonSize(data); err != nil || n > limits.maxRecordBytes() {
		return nil, fmt.Errorf("%w: the record is larger than %d bytes", ErrInvalidValue, limits.maxRecordBytes())
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic error reports
	out := make(map[*Column]any, len(data))
	for _, k := range keys {
		c, ok := m.Column(k)
		if !ok {
			if _, isRel := m.Relation(k); isRel {
				return nil, fmt.Errorf("%w: %q is a relation of %s, not a column", ErrUnknownColumn, clip(k), m.Name)
			}
			return nil, unknownColumn(m, k)
		}
		if _, dup := out[c]; dup {
			return nil, fmt.Errorf("%w: column %s is given twice", ErrInvalidValue, c.JSONName)
		}
		v, err := convert(c, data[k], true)
		if err != nil {
			return nil, err
		}
		if err := checkSize(c, v, limits); err != nil {
			return nil, err
		}
		if v == nil {
			if !c.Nullable {
				return nil, fmt.Errorf("%w: %s cannot be null", ErrInvalidValue, c.JSONName)
			}
			out[c] = nil
			continue
		}
		out[c] = wrapPointers(c.Type, v)
	}
	return out, nil
}

// convert implements ConvertValue (strict false) and the typing of
// DecodeData (strict true). It returns a value of the column's base type.
func convert(c *Column, v any, strict bool) (any, error) {
	src := reflect.ValueOf(v)
	for src.Kind() == reflect.Pointer {
		if src.IsNil() {
			return nil, nil
		}
		src = src.Elem()
	}
	if !src.IsValid() {
		return nil, nil
	}
	if !src.CanInterface() {
		return nil, invalid(c, "a plain value")
	}
	t := derefType(c.Type)
	if src.Kind() == reflect.String && src.Type() != jsonNumberType && !isByteSlice(t) {
		if err := validText(c, src.String()); err != nil {
			return nil, err
		}
	}
	if classOf(t) == classOther {
		if b, err := json.Marshal(src.Interface()); err == nil && bytes.Contains(b, []byte(`\u0000`)) {
			return nil, invalid(c, "a value without NUL characters")
		}
	}
	if src.Type() == t && src.Kind() != reflect.Float32 && src.Kind() != reflect.Float64 {
		return src.Interface(), nil
	}
	switch {
	case t == timeType:
		return convertTime(c, src)
	case decodesItself(t):
		return decodeJSON(c, t, src)
	case reflect.PointerTo(t).Implements(scannerType):
		return scanInto(c, t, src)
	}
	out := reflect.New(t).Elem()
	switch {
	case isIntKind(t.Kind()):
		n, ok := toInt(src, strict)
		if !ok {
			return nil, invalid(c, "an integer")
		}
		if out.OverflowInt(n) {
			bits := t.Bits()
			return nil, invalid(c, fmt.Sprintf("an integer from %d to %d", int64(-1)<<(bits-1), int64(1)<<(bits-1)-1))
		}
		out.SetInt(n)
	case isUintKind(t.Kind()):
		n, ok := toUint(src, strict)
		if !ok {
			return nil, invalid(c, "a non-negative integer")
		}
		if out.OverflowUint(n) {
			return nil, invalid(c, fmt.Sprintf("an integer from 0 to %d", ^uint64(0)>>(64-t.Bits())))
		}
		out.SetUint(n)
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		f, ok := toFloat(src, strict)
		if !ok || out.OverflowFloat(f) {
			return nil, invalid(c, "a finite number")
		}
		out.SetFloat(f)
	case t.Kind() == reflect.Bool:
		b, ok := toBool(src, strict)
		if !ok {
			return nil, invalid(c, "true or false")
		}
		out.SetBool(b)
	case t.Kind() == reflect.String:
		s, ok := toString(src, strict)
		if !ok {
			return nil, invalid(c, "a string")
		}
		out.SetString(s)
	case isByteSlice(t):
		switch {
		case src.Kind() == reflect.String && src.Type() != jsonNumberType:
			out.SetBytes([]byte(src.String()))
		case isByteSlice(src.Type()):
			out.SetBytes(append([]byte{}, src.Bytes()...))
		default:
			return nil, invalid(c, "a string")
		}
	default:
		return decodeJSON(c, t, src)
	}
	return out.Interface(), nil
}

// invalid reports a value that does not fit column c.
func invalid(c *Column, want string) error {
	return fmt.Errorf("%w: %s must be %s", ErrInvalidValue, c.JSONName, want)
}

// decodesItself reports whether values of t are decoded by their own
// UnmarshalJSON or UnmarshalText method.
func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(jsonUnmarshalerType) || p.Implements(textUnmarshalerType)
}

// decodeJSON converts src by encoding it as JSON and decoding that into a
// new value of type t.
func decodeJSON(c *Column, t reflect.Type, src reflect.Value) (any, error) {
	b, err := json.Marshal(src.Interface())
	if err != nil {
		return nil, invalid(c, "a valid value")
	}
	p := reflect.New(t)
	if err := json.Unmarshal(b, p.Interface()); err != nil {
		return nil, invalid(c, "a valid value")
	}
	return p.Elem().Interface(), nil
}

// scanInto fills a new value of type t (whose pointer is an sql.Scanner)
// from src with Scan, the way a driver value would be.
func scanInto(c *Column, t reflect.Type, src reflect.Value) (any, error) {
	dv, ok := driverArg(src)
	if !ok {
		return nil, invalid(c, "a valid value")
	}
	p := reflect.New(t)
	if err := p.Interface().(sql.Scanner).Scan(dv); err == nil {
		return p.Elem().Interface(), nil
	}
	if s, isString := dv.(string); isString {
		if tm, ok := parseTime(s); ok {
			p = reflect.New(t)
			if err := p.Interface().(sql.Scanner).Scan(tm); err == nil {
				return p.Elem().Interface(), nil
			}
		}
	}
	return nil, invalid(c, "a valid value")
}

// driverArg turns src into one of the driver.Value types for Scan.
func driverArg(src reflect.Value) (any, bool) {
	if src.Type() == jsonNumberType {
		s := src.String()
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, true
		}
		f, err := strconv.ParseFloat(s, 64)
		return f, err == nil && isFinite(f)
	}
	switch k := src.Kind(); {
	case isIntKind(k):
		return src.Int(), true
	case isUintKind(k):
		u := src.Uint()
		return int64(u), u <= math.MaxInt64
	case k == reflect.Float32 || k == reflect.Float64:
		return src.Float(), isFinite(src.Float())
	case k == reflect.Bool:
		return src.Bool(), true
	case k == reflect.String:
		return src.String(), true
	case isByteSlice(src.Type()):
		return append([]byte{}, src.Bytes()...), true
	case src.Type() == timeType:
		return src.Interface(), true
	}
	return nil, false
}

func convertTime(c *Column, src reflect.Value) (any, error) {
	const want = "a timestamp (RFC 3339, or a date YYYY-MM-DD)"
	if src.Type() == timeType {
		return src.Interface(), nil
	}
	if src.Kind() != reflect.String || src.Type() == jsonNumberType {
		return nil, invalid(c, want)
	}
	tm, ok := parseTime(src.String())
	if !ok {
		return nil, invalid(c, want)
	}
	return tm, nil
}

func parseTime(s string) (time.Time, bool) {
	for _, layout := range timeLayouts {
		if tm, err := time.Parse(layout, s); err == nil {
			return tm, true
		}
	}
	return time.Time{}, false
}

// toInt reads an integer from a number (json.Number or Go numeric value;
// a float only if integral) or, when not strict, from numeric text.
func toInt(src reflect.Value, strict bool) (int64, bool) {
	if src.Type() == jsonNumberType {
		return parseIntText(src.String())
	}
	switch k := src.Kind(); {
	case isIntKind(k):
		return src.Int(), true
	case isUintKind(k):
		u := src.Uint()
		return int64(u), u <= math.MaxInt64
	case k == reflect.Float32 || k == reflect.Float64:
		return floatToInt(src.Float())
	case k == reflect.String && !strict:
		return parseIntText(src.String())
	}
	return 0, false
}

func parseIntText(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return n, true
	}
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return floatToInt(f)
}

// floatToInt accepts integral finite floats within the int64 range.
func floatToInt(f float64) (int64, bool) {
	if !isFinite(f) || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}

// toUint is toInt for unsigned columns.
func toUint(src reflect.Value, strict bool) (uint64, bool) {
	if src.Type() == jsonNumberType {
		return parseUintText(src.String())
	}
	switch k := src.Kind(); {
	case isIntKind(k):
		return uint64(src.Int()), src.Int() >= 0
	case isUintKind(k):
		return src.Uint(), true
	case k == reflect.Float32 || k == reflect.Float64:
		return floatToUint(src.Float())
	case k == reflect.String && !strict:
		return parseUintText(src.String())
	}
	return 0, false
}

func parseUintText(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err == nil {
		return n, true
	}
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return floatToUint(f)
}

func floatToUint(f float64) (uint64, bool) {
	if !isFinite(f) || f != math.Trunc(f) || f < 0 || f >= 1<<64 {
		return 0, false
	}
	return uint64(f), true
}

// toFloat reads a finite number, or numeric text when not strict.
func toFloat(src reflect.Value, strict bool) (float64, bool) {
	var f float64
	switch k := src.Kind(); {
	case src.Type() == jsonNumberType || (k == reflect.String && !strict):
		var err error
		if f, err = strconv.ParseFloat(src.String(), 64); err != nil {
			return 0, false
		}
	case isIntKind(k):
		f = float64(src.Int())
	case isUintKind(k):
		f = float64(src.Uint())
	case k == reflect.Float32 || k == reflect.Float64:
		f = src.Float()
	default:
		return 0, false
	}
	return f, isFinite(f)
}

// toBool reads a bool; when not strict also "true"/"false" (any case) and
// the numbers 1 and 0.
func toBool(src reflect.Value, strict bool) (bool, bool) {
	if src.Kind() == reflect.Bool {
		return src.Bool(), true
	}
	if strict {
		return false, false
	}
	if src.Kind() == reflect.String && src.Type() != jsonNumberType {
		switch s := src.String(); {
		case strings.EqualFold(s, "true"):
			return true, true
		case strings.EqualFold(s, "false"):
			return false, true
		}
		return false, false
	}
	n, ok := toInt(src, true)
	if !ok || (n != 0 && n != 1) {
		return false, false
	}
	return n == 1, true
}

// toString reads text; when not strict also a number's decimal text
// (json.Number as written, Go integers).
func toString(src reflect.Value, strict bool) (string, bool) {
	if src.Type() == jsonNumberType {
		return src.String(), !strict
	}
	switch k := src.Kind(); {
	case k == reflect.String:
		return src.String(), true
	case strict:
		return "", false
	case isIntKind(k):
		return strconv.FormatInt(src.Int(), 10), true
	case isUintKind(k):
		return strconv.FormatUint(src.Uint(), 10), true
	}
	return "", false
}

// wrapPointers turns base (of t with pointers removed) into a value of t.
func wrapPointers(t reflect.Type, base any) any {
	if t.Kind() != reflect.Pointer {
		return base
	}
	inner := reflect.ValueOf(wrapPointers(t.Elem(), base))
	p := reflect.New(t.Elem())
	p.Elem().Set(inner)
	return p.Interface()
}

func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func isIntKind(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Int64
}

func isUintKind(k reflect.Kind) bool {
	return k >= reflect.Uint && k <= reflect.Uintptr
}

func isByteSlice(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
}

// checkSize refuses a text or binary value larger than limits allow.
func checkSize(c *Column, v any, limits Limits) error {
	n := 0
	switch x := v.(type) {
	case string:
		n = len(x)
	case []byte:
		n = len(x)
	default:
		rv := reflect.ValueOf(v)
		switch {
		case rv.Kind() == reflect.String:
			n = rv.Len()
		case rv.IsValid() && isByteSlice(rv.Type()):
			n = rv.Len()
		}
	}
	if max := limits.maxValueBytes(); n > max {
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidValue, c.JSONName, max)
	}
	return nil
}

// jsonSize returns the length of v encoded as JSON.
func jsonSize(v any) (int, error) {
	b, err := json.Marshal(v)
	return len(b), err
}

// validText refuses text that no supported database stores the same way:
// a NUL character (PostgreSQL cannot store it, SQLite truncates at it in
// places) or invalid UTF-8.
func validText(c *Column, s string) error {
	if !utf8.ValidString(s) {
		return invalid(c, "valid UTF-8 text")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return invalid(c, "text without NUL characters")
	}
	return nil
}
