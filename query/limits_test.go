package query

import (
	"errors"
	"strings"
	"testing"
)

// TestLimits: each limit refuses one more than it allows and accepts
// exactly what it allows.
func TestLimits(t *testing.T) {
	m := qtModel(t)
	limits := Limits{MaxFilters: 3, MaxSortKeys: 2, MaxInValues: 4, MaxValueBytes: 8, MaxRecordBytes: 64}
	filters := func(n int) []FilterOption {
		out := make([]FilterOption, n)
		for i := range out {
			out[i] = FilterOption{Column: "count", Operator: "gt", Value: i}
		}
		return out
	}
	sorts := func(n int) []SortOption { return make([]SortOption, n) }
	in := func(n int) []FilterOption {
		vals := make([]any, n)
		for i := range vals {
			vals[i] = i
		}
		return []FilterOption{{Column: "count", Operator: "in", Value: vals}}
	}
	eq := func(s string) []FilterOption { return []FilterOption{{Column: "name", Operator: "eq", Value: s}} }
	cases := []struct {
		name    string
		opts    RequestOptions
		wantErr error
	}{
		{"filters at the limit", RequestOptions{Filters: filters(3)}, nil},
		{"one filter too many", RequestOptions{Filters: filters(4)}, ErrInvalidOptions},
		{"sort keys at the limit", RequestOptions{Sort: []SortOption{{Column: "name"}, {Column: "count"}}}, nil},
		{"one sort key too many", RequestOptions{Sort: sorts(3)}, ErrInvalidOptions},
		{"in values at the limit", RequestOptions{Filters: in(4)}, nil},
		{"one in value too many", RequestOptions{Filters: in(5)}, ErrInvalidValue},
		{"value at the limit", RequestOptions{Filters: eq("12345678")}, nil},
		{"value one byte too long", RequestOptions{Filters: eq("123456789")}, ErrInvalidValue},
		{"NUL in a filter value", RequestOptions{Filters: eq("a\x00b")}, ErrInvalidValue},
		{"invalid UTF-8 in a filter value", RequestOptions{Filters: eq("a\xffb")}, ErrInvalidValue},
		{"UTF-8 text", RequestOptions{Filters: eq("héllo")}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := BuildQuery(m, &tc.opts, limits)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("BuildQuery: err = %v, want %v", err, tc.wantErr)
			}
		})
	}

	data := []struct {
		name    string
		data    map[string]any
		wantErr bool
	}{
		{"small record", map[string]any{"name": "ok"}, false},
		{"value at the limit", map[string]any{"name": "12345678"}, false},
		{"value one byte too long", map[string]any{"name": "123456789"}, true},
		{"bytes one too long", map[string]any{"blob": []byte("123456789")}, true},
		{"record too large", map[string]any{"name": "1234567", "title": "1234567", "status": "1234567", "code": "1234567"}, true},
		{"NUL in text", map[string]any{"name": "a\x00"}, true},
		{"invalid UTF-8", map[string]any{"name": "\xc3\x28"}, true},
		{"NUL inside a JSON column", map[string]any{"extra": map[string]any{"k": "a\x00"}}, true},
		{"JSON column", map[string]any{"extra": map[string]any{"k": "v"}}, false},
		{"NUL in binary data is data", map[string]any{"blob": []byte{0, 1}}, false},
	}
	for _, tc := range data {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeData(m, tc.data, limits)
			if tc.wantErr != errors.Is(err, ErrInvalidValue) || !tc.wantErr && err != nil {
				t.Fatalf("DecodeData: err = %v, want error %v", err, tc.wantErr)
			}
		})
	}

	// The defaults apply to a zero Limits.
	if _, err := BuildWhere(m, filters(DefaultMaxFilters+1), Limits{}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("default filter limit: %v", err)
	}
	if _, err := DecodeData(m, map[string]any{"name": strings.Repeat("x", DefaultMaxValueBytes+1)}, Limits{}); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("default value limit: %v", err)
	}
}
