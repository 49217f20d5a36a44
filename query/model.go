package query

import (
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/jinzhu/inflection"
)

var (
	scannerType = reflect.TypeOf((*sql.Scanner)(nil)).Elem()
	valuerType  = reflect.TypeOf((*driver.Valuer)(nil)).Elem()
	timeType    = reflect.TypeOf(time.Time{})
	rawJSONType = reflect.TypeOf(json.RawMessage{})
)

// Column describes one database column of a registered model.
type Column struct {
	// Name is the database column name (used in SQL, always quoted by the ORM).
	Name string
	// JSONName is the key the column has in JSON (from the json tag).
	JSONName string
	// Field is the Go struct field name.
	Field string
	// Index is the field's index path for reflect.Value.FieldByIndex.
	Index []int
	// Type is the field's Go type (possibly a pointer).
	Type reflect.Type
	// PrimaryKey is true for the model's primary key column.
	PrimaryKey bool
	// Nullable is true when the Go type can hold NULL (pointer, slice, map,
	// sql.Null*).
	Nullable bool
	// Hidden is true for a column whose json tag is "-": it is stored but
	// never shown to clients and cannot be named in a request.
	Hidden bool
}

// Relation describes a field that refers to other models and can be
// preloaded.
type Relation struct {
	// Name is the Go field name (what the ORM preloads by).
	Name string
	// JSONName is the JSON key of the field.
	JSONName string
	// Index is the field's index path.
	Index []int
	// Many is true for has-many / many-to-many relations (slice fields).
	Many bool
}

// Model is the parsed description of a registered Go struct: what a
// request may name (columns by JSON key or database name, relations) and
// how to read and write its fields.
type Model struct {
	// Name is the registry key, "schema.entity".
	Name string
	// Schema and Entity are the two halves of Name (Schema may be empty).
	Schema string
	Entity string
	// Table is the table name the ORM uses for Type (without schema).
	Table string
	// Type is the struct type (never a pointer).
	Type reflect.Type
	// Columns lists the columns in struct order.
	Columns []*Column
	// PrimaryKey is the primary key column (models have exactly one).
	PrimaryKey *Column
	// Relations lists preloadable relation fields.
	Relations []*Relation

	byDBName   map[string]*Column
	byJSONName map[string]*Column
	byRelation map[string]*Relation
}

// Mapping is how an ORM stores a struct type: the table and, for every
// stored field, its column. Each database adapter derives it from its own
// ORM (the ORM reads its own struct tags); NewModel adds what is ORM-neutral
// (JSON names, nullability, types).
type Mapping struct {
	// Table is the table name, without schema.
	Table string
	// Columns lists the stored fields in struct order.
	Columns []ColumnMapping
	// Relations lists the fields that refer to other models.
	Relations []RelationMapping
}

// ColumnMapping maps one struct field to a column.
type ColumnMapping struct {
	// Index is the field's index path in the struct (through embedded structs).
	Index []int
	// Name is the column name.
	Name string
	// PrimaryKey marks the primary key column.
	PrimaryKey bool
}

// RelationMapping names one relation field.
type RelationMapping struct {
	// Index is the field's index path in the struct.
	Index []int
	// Name is the name the ORM preloads the relation by (the Go field name
	// for GORM and Bun).
	Name string
	// Many is true for has-many and many-to-many relations.
	Many bool
}

// NewModel describes the struct type of model (a struct or a pointer to
// one), registered as name ("schema.entity" or "entity"), as mapping says an
// ORM stores it. The JSON key of each column comes from its json tag; json
// "-" keeps the column but hides it from clients. It fails with
// ErrInvalidModel unless there is exactly one primary key.
func NewModel(name string, model any, mapping Mapping) (*Model, error) {
	t, err := structType(name, model)
	if err != nil {
		return nil, err
	}
	m := &Model{Name: name, Type: t, Table: mapping.Table,
		byDBName: map[string]*Column{}, byJSONName: map[string]*Column{}, byRelation: map[string]*Relation{}}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		m.Schema, m.Entity = name[:i], name[i+1:]
	} else {
		m.Entity = name
	}
	if m.Entity == "" {
		return nil, fmt.Errorf("%w: %q: empty entity name", ErrInvalidModel, name)
	}
	if m.Table == "" {
		m.Table = DefaultTable(t)
	}
	for _, cm := range mapping.Columns {
		f, err := fieldAt(t, cm.Index)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: column %s: %v", ErrInvalidModel, name, cm.Name, err)
		}
		jsonName, hidden := jsonFieldName(f)
		c := &Column{
			Name: cm.Name, JSONName: jsonName, Field: f.Name, Index: append([]int(nil), cm.Index...),
			Type: f.Type, PrimaryKey: cm.PrimaryKey, Nullable: isNullable(f.Type), Hidden: hidden,
		}
		if _, dup := m.byDBName[c.Name]; dup || c.Name == "" {
			return nil, fmt.Errorf("%w: %s: column %q declared twice or without a name", ErrInvalidModel, name, c.Name)
		}
		if c.PrimaryKey {
			if m.PrimaryKey != nil {
				return nil, fmt.Errorf("%w: %s: composite primary keys are not supported", ErrInvalidModel, name)
			}
			m.PrimaryKey = c
		}
		m.Columns = append(m.Columns, c)
		m.byDBName[c.Name] = c
		if !hidden {
			m.byJSONName[c.JSONName] = c
		}
	}
	if m.PrimaryKey == nil {
		return nil, fmt.Errorf("%w: %s: no primary key (tag a field as the primary key or name it ID)", ErrInvalidModel, name)
	}
	for _, rm := range mapping.Relations {
		f, err := fieldAt(t, rm.Index)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: relation %s: %v", ErrInvalidModel, name, rm.Name, err)
		}
		jsonName, hidden := jsonFieldName(f)
		if hidden {
			continue
		}
		r := &Relation{Name: rm.Name, JSONName: jsonName, Index: append([]int(nil), rm.Index...), Many: rm.Many}
		m.Relations = append(m.Relations, r)
		m.byRelation[r.Name] = r
		m.byRelation[r.JSONName] = r
	}
	return m, nil
}

// ConventionalMapping maps a struct type the way GORM and Bun do when its
// fields carry no ORM tags: every exported field of a value type is a
// column named in snake_case (fields of embedded structs included), the
// field named ID is the primary key, struct and slice-of-struct fields are
// relations. It serves custom adapters and tests; the GORM and Bun adapters
// ask their ORM instead.
func ConventionalMapping(model any) (Mapping, error) {
	t, err := structType("model", model)
	if err != nil {
		return Mapping{}, err
	}
	mp := Mapping{Table: DefaultTable(t)}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			idx := append(append([]int(nil), index...), i)
			ft := derefType(f.Type)
			if f.Anonymous && ft.Kind() == reflect.Struct && !isValueStruct(ft) {
				walk(ft, idx)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if many, ok := relationKind(f.Type); ok {
				mp.Relations = append(mp.Relations, RelationMapping{Index: idx, Name: f.Name, Many: many})
				continue
			}
			name := SnakeCase(f.Name)
			mp.Columns = append(mp.Columns, ColumnMapping{Index: idx, Name: name, PrimaryKey: name == "id"})
		}
	}
	walk(t, nil)
	return mp, nil
}

// ParseModel describes model with ConventionalMapping.
func ParseModel(name string, model any) (*Model, error) {
	mp, err := ConventionalMapping(model)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidModel, name, err)
	}
	return NewModel(name, model, mp)
}

// structType returns the struct type of model (a struct or pointer to one).
func structType(name string, model any) (reflect.Type, error) {
	if model == nil {
		return nil, fmt.Errorf("%w: %s: nil model", ErrInvalidModel, name)
	}
	t := derefType(reflect.TypeOf(model))
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: %s: %s is not a struct", ErrInvalidModel, name, t)
	}
	return t, nil
}

// fieldAt returns the struct field of t at index, following embedded
// pointers.
func fieldAt(t reflect.Type, index []int) (f reflect.StructField, err error) {
	defer func() {
		if recover() != nil {
			err = fmt.Errorf("no field at index %v", index)
		}
	}()
	if len(index) == 0 {
		return f, fmt.Errorf("empty field index")
	}
	return t.FieldByIndex(index), nil
}

// Column returns the column a client may address as name: its JSON key or
// its database column name. Hidden columns are never returned.
func (m *Model) Column(name string) (*Column, bool) {
	if c, ok := m.byJSONName[name]; ok {
		return c, true
	}
	if c, ok := m.byDBName[name]; ok && !c.Hidden {
		return c, true
	}
	return nil, false
}

// Relation returns the preloadable relation named by its Go field name or
// JSON key.
func (m *Model) Relation(name string) (*Relation, bool) {
	r, ok := m.byRelation[name]
	return r, ok
}

// New returns a pointer to a new zero value of the model's type.
func (m *Model) New() any { return reflect.New(m.Type).Interface() }

// Value returns the value of column c in row (a pointer to the model type).
// A nil pointer field gives nil.
func (c *Column) Value(row any) any {
	v := reflect.ValueOf(row)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	f, err := v.FieldByIndexErr(c.Index)
	if err != nil {
		return nil
	}
	if f.Kind() == reflect.Pointer && f.IsNil() {
		return nil
	}
	return f.Interface()
}

// Set stores value into row (a pointer to the model type). value is of the
// column's Go type or, for a pointer column, of the type it points to; nil
// stores the zero value. Nil embedded pointers on the way are allocated.
func (c *Column) Set(row any, value any) {
	v := reflect.ValueOf(row).Elem()
	for i, idx := range c.Index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(idx)
	}
	if value == nil {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	rv := reflect.ValueOf(value)
	if v.Kind() == reflect.Pointer && rv.Type() != v.Type() {
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(rv.Convert(v.Type().Elem()))
		v.Set(p)
		return
	}
	v.Set(rv.Convert(v.Type()))
}

// Deref returns the value v points to, through any number of pointers
// (nil for a nil pointer); a value that is not a pointer is returned as it
// is. Column values of pointer fields compare and print as their targets.
func Deref(v any) any {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return nil
	}
	return rv.Interface()
}

func jsonFieldName(f reflect.StructField) (name string, hidden bool) {
	tag := f.Tag.Get("json")
	if tag == "-" {
		return f.Name, true
	}
	name, _, _ = strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, false
}

// isValueStruct reports whether struct type t is stored as one value
// (time.Time, a sql.Scanner or driver.Valuer) rather than holding fields.
func isValueStruct(t reflect.Type) bool {
	return t == timeType || reflect.PointerTo(t).Implements(scannerType) || t.Implements(valuerType)
}

// relationKind reports whether a field of type t refers to other models: a
// struct, pointer to struct or slice of structs that is not a value type.
func relationKind(t reflect.Type) (many, ok bool) {
	if t.Kind() == reflect.Slice && t != rawJSONType && t.Elem().Kind() != reflect.Uint8 {
		t, many = t.Elem(), true
	}
	t = derefType(t)
	return many, t.Kind() == reflect.Struct && !isValueStruct(t)
}

// DefaultTable is the table name both ORMs give struct type t by default:
// the plural of its snake_case name.
func DefaultTable(t reflect.Type) string {
	return inflection.Plural(SnakeCase(derefType(t).Name()))
}

// SnakeCase turns a Go identifier into the column name both ORMs derive by
// default: CreatedAt -> created_at, UserID -> user_id, HTTPCode -> http_code.
func SnakeCase(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]) ||
				(i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(c))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func isNullable(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		return true
	}
	return reflect.PointerTo(t).Implements(scannerType) && t.Kind() == reflect.Struct && t != timeType
}
