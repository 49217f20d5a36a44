package query

import (
	"database/sql"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// qtStatus is a named string type, converted by kind.
type qtStatus string

// qtTag is a related model of qtItem.
type qtTag struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// qtItem is the model the query-layer tests share: one column of every
// kind the converter and matcher handle, a hidden column and relations.
type qtItem struct {
	ID      int64          `json:"id"`
	Name    string         `json:"name"`
	Title   *string        `json:"title"`
	Count   int            `json:"count"`
	Score   float64        `json:"score"`
	Ratio   *float32       `json:"ratio"`
	Active  bool           `json:"active"`
	Small   int8           `json:"small"`
	Big     uint16         `json:"big"`
	Created time.Time      `json:"created"`
	Deleted *time.Time     `json:"deleted"`
	Status  qtStatus       `json:"status"`
	Blob    []byte         `json:"blob"`
	Code    sql.NullString `json:"code"`
	Ref     uuid.UUID      `json:"ref"`
	Removed gorm.DeletedAt `json:"removed"`
	Secret  string         `json:"-"`
	Extra   map[string]any `json:"extra"`
	Tags    []qtTag        `json:"tags"`
	Owner   *qtTag         `json:"owner"`
}

// qtModel describes qtItem with the conventional mapping, its count field
// stored in the column "cnt" (as a gorm column tag would say), failing the
// test on error.
func qtModel(t testing.TB) *Model {
	t.Helper()
	mp, err := ConventionalMapping(&qtItem{})
	if err != nil {
		t.Fatalf("ConventionalMapping: %v", err)
	}
	for i := range mp.Columns {
		if mp.Columns[i].Name == "count" {
			mp.Columns[i].Name = "cnt"
		}
	}
	m, err := NewModel("shop.items", &qtItem{}, mp)
	if err != nil {
		t.Fatalf("NewModel: %v", err)
	}
	return m
}

// qtCol returns the column named name of m.
func qtCol(t testing.TB, m *Model, name string) *Column {
	t.Helper()
	c, ok := m.Column(name)
	if !ok {
		t.Fatalf("no column %q", name)
	}
	return c
}

type qtBase struct {
	ID        uint
	CreatedAt time.Time
}

type qtEmbedding struct {
	qtBase
	UserID   int    `json:"user_id"`
	HTTPCode int    `json:"http_code"`
	Note     string `json:"memo"`
	private  string //nolint:unused // must be skipped
}

type qtNoKey struct{ Name string }

func TestNewModel(t *testing.T) {
	tests := []struct {
		name    string
		model   any
		mapping func(Mapping) Mapping // adjusts the conventional mapping
		wantErr error
		check   func(t *testing.T, m *Model)
	}{
		{
			name:  "columns, hidden column, relations",
			model: qtItem{},
			check: func(t *testing.T, m *Model) {
				if m.Schema != "shop" || m.Entity != "items" || m.Table != "qt_items" {
					t.Errorf("names = %q %q %q", m.Schema, m.Entity, m.Table)
				}
				if m.PrimaryKey == nil || m.PrimaryKey.Name != "id" {
					t.Errorf("primary key = %+v", m.PrimaryKey)
				}
				if _, ok := m.Column("Secret"); ok {
					t.Error("hidden column is addressable by its field name")
				}
				if _, ok := m.Column("secret"); ok {
					t.Error("hidden column is addressable by its database name")
				}
				if len(m.Relations) != 2 {
					t.Errorf("relations = %d, want 2", len(m.Relations))
				}
				for _, n := range []string{"Tags", "tags", "owner"} {
					if _, ok := m.Relation(n); !ok {
						t.Errorf("relation %q not found", n)
					}
				}
				for _, n := range []string{"title", "ratio", "deleted", "blob", "code", "removed", "extra"} {
					if !qtCol(t, m, n).Nullable {
						t.Errorf("%s not nullable", n)
					}
				}
				for _, n := range []string{"name", "count", "created", "ref"} {
					if qtCol(t, m, n).Nullable {
						t.Errorf("%s nullable", n)
					}
				}
			},
		},
		{
			name:  "embedded struct, snake case, unexported skipped",
			model: &qtEmbedding{},
			check: func(t *testing.T, m *Model) {
				var names []string
				for _, c := range m.Columns {
					names = append(names, c.Name)
				}
				want := []string{"id", "created_at", "user_id", "http_code", "note"}
				if !reflect.DeepEqual(names, want) {
					t.Errorf("columns = %v, want %v", names, want)
				}
				if m.PrimaryKey.Name != "id" || !reflect.DeepEqual(m.PrimaryKey.Index, []int{0, 0}) {
					t.Errorf("primary key = %+v", m.PrimaryKey)
				}
				if c := qtCol(t, m, "memo"); c.Name != "note" {
					t.Errorf("json key memo names column %q", c.Name)
				}
			},
		},
		{
			name:  "the mapping's table and key win",
			model: qtNoKey{},
			mapping: func(mp Mapping) Mapping {
				mp.Table = "custom"
				mp.Columns[0].PrimaryKey = true
				return mp
			},
			check: func(t *testing.T, m *Model) {
				if m.Table != "custom" || m.PrimaryKey.Name != "name" {
					t.Errorf("table %q key %+v", m.Table, m.PrimaryKey)
				}
			},
		},
		{name: "nil", model: nil, wantErr: ErrInvalidModel},
		{name: "not a struct", model: 5, wantErr: ErrInvalidModel},
		{name: "no primary key", model: qtNoKey{}, wantErr: ErrInvalidModel},
		{name: "composite key", model: qtEmbedding{}, wantErr: ErrInvalidModel, mapping: func(mp Mapping) Mapping {
			mp.Columns[1].PrimaryKey = true
			return mp
		}},
		{name: "duplicate column", model: qtEmbedding{}, wantErr: ErrInvalidModel, mapping: func(mp Mapping) Mapping {
			mp.Columns[2].Name = "id"
			return mp
		}},
		{name: "index outside the struct", model: qtEmbedding{}, wantErr: ErrInvalidModel, mapping: func(mp Mapping) Mapping {
			mp.Columns[2].Index = []int{42}
			return mp
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp, err := ConventionalMapping(tt.model)
			if err == nil && tt.mapping != nil {
				mp = tt.mapping(mp)
			}
			var m *Model
			if err == nil {
				m, err = NewModel("shop.items", tt.model, mp)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewModel: %v", err)
			}
			tt.check(t, m)
		})
	}
}

func TestModelColumnValueSet(t *testing.T) {
	m := qtModel(t)
	title := "t"
	row := &qtItem{Name: "n", Title: &title, Count: 3}
	tests := []struct {
		col  string
		want any
	}{
		{"name", "n"},
		{"count", 3},
		{"title", &title},
		{"ratio", nil},
	}
	for _, tt := range tests {
		t.Run(tt.col, func(t *testing.T) {
			if got := qtCol(t, m, tt.col).Value(row); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Value = %#v, want %#v", got, tt.want)
			}
		})
	}
	qtCol(t, m, "count").Set(row, 7)
	qtCol(t, m, "title").Set(row, nil)
	if row.Count != 7 || row.Title != nil {
		t.Errorf("after Set: count %d title %v", row.Count, row.Title)
	}
}
