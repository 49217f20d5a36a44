package query

import (
	"database/sql"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

func TestConvertValue(t *testing.T) {
	m := qtModel(t)
	ref := uuid.MustParse("0b6a3f5e-8a47-4f5c-9a51-2f0b2c7b9c11")
	day := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	stamp := time.Date(2024, 3, 1, 12, 30, 0, 500, time.UTC)
	five := 5
	var nilInt *int
	tests := []struct {
		name    string
		col     string
		in      any
		want    any
		wantErr bool
	}{
		// Integers.
		{name: "int from json number", col: "count", in: json.Number("5"), want: 5},
		{name: "int from string", col: "count", in: "5", want: 5},
		{name: "int from float", col: "count", in: 5.0, want: 5},
		{name: "int from json 5.0", col: "count", in: json.Number("5.0"), want: 5},
		{name: "int from exponent", col: "count", in: json.Number("1e3"), want: 1000},
		{name: "int from go int64", col: "count", in: int64(-7), want: -7},
		{name: "int from uint", col: "count", in: uint(7), want: 7},
		{name: "int from pointer", col: "count", in: &five, want: 5},
		{name: "nil pointer", col: "count", in: nilInt, want: nil},
		{name: "nil", col: "count", in: nil, want: nil},
		{name: "int fraction", col: "count", in: json.Number("5.5"), wantErr: true},
		{name: "int fraction string", col: "count", in: "5.5", wantErr: true},
		{name: "int float fraction", col: "count", in: 5.5, wantErr: true},
		{name: "int overflow int64", col: "count", in: json.Number("9223372036854775808"), wantErr: true},
		{name: "int overflow big exponent", col: "count", in: json.Number("1e30"), wantErr: true},
		{name: "int8 overflow", col: "small", in: json.Number("128"), wantErr: true},
		{name: "int8 min", col: "small", in: json.Number("-128"), want: int8(-128)},
		{name: "int from bool", col: "count", in: true, wantErr: true},
		{name: "int from text", col: "count", in: "five", wantErr: true},
		{name: "int from array", col: "count", in: []any{1}, wantErr: true},
		{name: "int64 pk from record id", col: "id", in: "42", want: int64(42)},
		{name: "uint16", col: "big", in: json.Number("65535"), want: uint16(65535)},
		{name: "uint16 overflow", col: "big", in: json.Number("65536"), wantErr: true},
		{name: "uint negative", col: "big", in: json.Number("-1"), wantErr: true},
		{name: "uint negative go", col: "big", in: -1, wantErr: true},
		// Floats.
		{name: "float", col: "score", in: json.Number("1.25"), want: 1.25},
		{name: "float from string", col: "score", in: "2", want: 2.0},
		{name: "float from int", col: "score", in: 3, want: 3.0},
		{name: "float NaN text", col: "score", in: "NaN", wantErr: true},
		{name: "float Inf", col: "score", in: math.Inf(1), wantErr: true},
		{name: "float same type NaN", col: "score", in: math.NaN(), wantErr: true},
		{name: "float out of range", col: "score", in: json.Number("1e400"), wantErr: true},
		{name: "float32 pointer column", col: "ratio", in: json.Number("0.5"), want: float32(0.5)},
		{name: "float32 overflow", col: "ratio", in: json.Number("1e300"), wantErr: true},
		// Bools.
		{name: "bool", col: "active", in: true, want: true},
		{name: "bool text", col: "active", in: "false", want: false},
		{name: "bool text case", col: "active", in: "TRUE", want: true},
		{name: "bool 1", col: "active", in: json.Number("1"), want: true},
		{name: "bool 0", col: "active", in: 0, want: false},
		{name: "bool 2", col: "active", in: 2, wantErr: true},
		{name: "bool yes", col: "active", in: "yes", wantErr: true},
		// Strings.
		{name: "string", col: "name", in: "x", want: "x"},
		{name: "string from json number", col: "name", in: json.Number("5"), want: "5"},
		{name: "string from go int", col: "name", in: 5, want: "5"},
		{name: "string from bool", col: "name", in: true, wantErr: true},
		{name: "string pointer column", col: "title", in: "x", want: "x"},
		{name: "named string", col: "status", in: "open", want: qtStatus("open")},
		// Times.
		{name: "time RFC3339", col: "created", in: "2024-03-01T12:30:00.0000005Z", want: stamp},
		{name: "time date", col: "created", in: "2024-03-01", want: day},
		{name: "time value", col: "deleted", in: day, want: day},
		{name: "time bad", col: "created", in: "yesterday", wantErr: true},
		{name: "time number", col: "created", in: json.Number("1700000000"), wantErr: true},
		// Bytes.
		{name: "bytes from string", col: "blob", in: "ab", want: []byte("ab")},
		{name: "bytes from number", col: "blob", in: json.Number("1"), wantErr: true},
		// Types that decode themselves or scan.
		{name: "uuid", col: "ref", in: ref.String(), want: ref},
		{name: "uuid bad", col: "ref", in: "not-a-uuid", wantErr: true},
		{name: "uuid number", col: "ref", in: json.Number("5"), wantErr: true},
		{name: "null string scan", col: "code", in: "c", want: sql.NullString{String: "c", Valid: true}},
		{name: "null string from number", col: "code", in: json.Number("5"), want: sql.NullString{String: "5", Valid: true}},
		{name: "deleted at", col: "removed", in: "2024-03-01T00:00:00Z", want: gorm.DeletedAt{Time: day, Valid: true}},
		{name: "deleted at bad", col: "removed", in: "soon", wantErr: true},
		{name: "map by json", col: "extra", in: map[string]any{"a": json.Number("1")}, want: map[string]any{"a": json.Number("1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := qtCol(t, m, tt.col)
			got, err := ConvertValue(c, tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidValue) {
					t.Fatalf("err = %v, want ErrInvalidValue (got value %#v)", err, got)
				}
				if !strings.Contains(err.Error(), c.JSONName) {
					t.Errorf("error %q does not name the column", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ConvertValue: %v", err)
			}
			if tm, ok := tt.want.(time.Time); ok {
				if g, ok := got.(time.Time); !ok || !g.Equal(tm) {
					t.Errorf("got %#v, want %v", got, tm)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %T %#v, want %T %#v", got, got, tt.want, tt.want)
			}
			if got != nil && reflect.TypeOf(got) != derefType(c.Type) {
				t.Errorf("type %T, want the base type %v", got, derefType(c.Type))
			}
		})
	}
}

func TestConvertValueErrorText(t *testing.T) {
	m := qtModel(t)
	_, err := ConvertValue(qtCol(t, m, "small"), "300")
	if err == nil || err.Error() != "invalid value: small must be an integer from -128 to 127" {
		t.Errorf("err = %v", err)
	}
	if _, err := ConvertValue(nil, 1); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("nil column: err = %v", err)
	}
}

func TestConvertDecodeData(t *testing.T) {
	m := qtModel(t)
	ref := uuid.MustParse("0b6a3f5e-8a47-4f5c-9a51-2f0b2c7b9c11")
	title := "t"
	ratio := float32(0.5)
	tests := []struct {
		name    string
		data    string
		want    map[string]any // column name -> value
		wantErr error
	}{
		{name: "empty", data: `{}`, want: map[string]any{}},
		{name: "unknown among known", data: `{"name":"n","count":5,"cnt_ignored":null}`, wantErr: ErrUnknownColumn},
		{name: "scalars", data: `{"name":"n","cnt":5.0,"score":1.5,"active":true,"small":-3,"big":7,"status":"s"}`,
			want: map[string]any{"name": "n", "cnt": 5, "score": 1.5, "active": true, "small": int8(-3), "big": uint16(7), "status": qtStatus("s")}},
		{name: "pointer columns get pointers", data: `{"title":"t","ratio":0.5}`, want: map[string]any{"title": &title, "ratio": &ratio}},
		{name: "nullable null", data: `{"title":null,"code":null,"blob":null,"deleted":null}`, want: map[string]any{"title": nil, "code": nil, "blob": nil, "deleted": nil}},
		{name: "self-decoding", data: `{"ref":"` + ref.String() + `","code":"c","extra":{"k":[1]}}`,
			want: map[string]any{"ref": ref, "code": sql.NullString{String: "c", Valid: true}, "extra": map[string]any{"k": []any{json.Number("1")}}}},
		{name: "not nullable null", data: `{"name":null}`, wantErr: ErrInvalidValue},
		{name: "string for int", data: `{"count":"5"}`, wantErr: ErrInvalidValue},
		{name: "number for string", data: `{"name":5}`, wantErr: ErrInvalidValue},
		{name: "fraction for int", data: `{"count":5.5}`, wantErr: ErrInvalidValue},
		{name: "string for bool", data: `{"active":"true"}`, wantErr: ErrInvalidValue},
		{name: "number for bool", data: `{"active":1}`, wantErr: ErrInvalidValue},
		{name: "string for float", data: `{"score":"1.5"}`, wantErr: ErrInvalidValue},
		{name: "overflow", data: `{"small":1000}`, wantErr: ErrInvalidValue},
		{name: "bad time", data: `{"created":"noon"}`, wantErr: ErrInvalidValue},
		{name: "object for string", data: `{"name":{"a":1}}`, wantErr: ErrInvalidValue},
		{name: "unknown key", data: `{"nope":1}`, wantErr: ErrUnknownColumn},
		{name: "hidden key", data: `{"Secret":"x"}`, wantErr: ErrUnknownColumn},
		{name: "hidden db name", data: `{"secret":"x"}`, wantErr: ErrUnknownColumn},
		{name: "relation key", data: `{"tags":[]}`, wantErr: ErrUnknownColumn},
		{name: "same column twice", data: `{"count":1,"cnt":2}`, wantErr: ErrInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var data map[string]any
			dec := json.NewDecoder(strings.NewReader(tt.data))
			dec.UseNumber()
			if err := dec.Decode(&data); err != nil {
				t.Fatalf("decode: %v", err)
			}
			got, err := DecodeData(m, data, Limits{})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeData: %v", err)
			}
			byName := map[string]any{}
			for c, v := range got {
				byName[c.Name] = v
			}
			if !reflect.DeepEqual(byName, tt.want) {
				t.Errorf("got  %#v\nwant %#v", byName, tt.want)
			}
			// Every value must be storable with Column.Set.
			row := &qtItem{}
			for c, v := range got {
				c.Set(row, v)
			}
		})
	}
}

func TestConvertDecodeDataGoValues(t *testing.T) {
	m := qtModel(t)
	now := time.Now()
	n := int32(9)
	got, err := DecodeData(m, map[string]any{"count": &n, "created": now, "deleted": now, "name": qtStatus("x"), "blob": []byte("b")}, Limits{})
	if err != nil {
		t.Fatalf("DecodeData: %v", err)
	}
	row := &qtItem{}
	for c, v := range got {
		c.Set(row, v)
	}
	if row.Count != 9 || !row.Created.Equal(now) || row.Deleted == nil || !row.Deleted.Equal(now) || row.Name != "x" || string(row.Blob) != "b" {
		t.Errorf("row = %+v", row)
	}
	if _, err := DecodeData(nil, nil, Limits{}); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("nil model: err = %v", err)
	}
}
