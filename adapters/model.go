package adapters

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

// tableNamer is implemented by models that choose their own table name
// (the GORM convention).
type tableNamer interface{ TableName() string }

// ParseModel describes model (a struct or a pointer to one) for the registry
// key name ("schema.entity" or "entity"). It reads the json, gorm and bun
// struct tags: `gorm:"column:x;primaryKey;autoIncrement;default:v"`,
// `bun:"x,pk,autoincrement,default:v"`, "-" in any of them to skip a field
// (json "-" keeps the column but hides it from clients). Without tags the
// column name is the snake_case field name and a field named ID is the
// primary key, as both ORMs do by default.
func ParseModel(name string, model any) (*Model, error) {
	if model == nil {
		return nil, fmt.Errorf("%w: %s: nil model", ErrInvalidModel, name)
	}
	t := reflect.TypeOf(model)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: %s: %s is not a struct", ErrInvalidModel, name, t)
	}
	m := &Model{Name: name, Type: t, byDBName: map[string]*Column{}, byJSONName: map[string]*Column{}, byRelation: map[string]*Relation{}}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		m.Schema, m.Entity = name[:i], name[i+1:]
	} else {
		m.Entity = name
	}
	if m.Entity == "" {
		return nil, fmt.Errorf("%w: %q: empty entity name", ErrInvalidModel, name)
	}
	if err := m.addFields(t, nil); err != nil {
		return nil, err
	}
	m.Table = tableName(t)
	if m.PrimaryKey == nil {
		for _, c := range m.Columns {
			if c.Name == "id" {
				c.PrimaryKey = true
				c.AutoIncrement = isInteger(c.Type)
				m.PrimaryKey = c
			}
		}
	}
	if m.PrimaryKey == nil {
		return nil, fmt.Errorf("%w: %s: no primary key (tag a field primaryKey/pk or name it ID)", ErrInvalidModel, name)
	}
	return m, nil
}

func (m *Model) addFields(t reflect.Type, index []int) error {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		gormTag, bunTag := parseGormTag(f.Tag.Get("gorm")), parseBunTag(f.Tag.Get("bun"))
		if f.Anonymous || gormTag.embedded {
			ft := derefType(f.Type)
			if ft.Name() == "BaseModel" && strings.HasSuffix(ft.PkgPath(), "uptrace/bun") {
				continue // bun.BaseModel only carries the table tag
			}
			if ft.Kind() == reflect.Struct && ft != timeType && !reflect.PointerTo(ft).Implements(scannerType) {
				if err := m.addFields(ft, idx); err != nil {
					return err
				}
				continue
			}
		}
		if !f.IsExported() || gormTag.skip || bunTag.skip {
			continue
		}
		jsonName, hidden := jsonFieldName(f)
		if rel, ok := relationOf(f, gormTag, bunTag); ok {
			rel.Index, rel.JSONName = idx, jsonName
			if !hidden {
				m.Relations = append(m.Relations, rel)
				m.byRelation[rel.Name] = rel
				m.byRelation[rel.JSONName] = rel
			}
			continue
		}
		c := &Column{
			Name:       firstNonEmpty(gormTag.column, bunTag.column, snakeCase(f.Name)),
			JSONName:   jsonName,
			Field:      f.Name,
			Index:      idx,
			Type:       f.Type,
			Hidden:     hidden,
			Nullable:   isNullable(f.Type),
			HasDefault: gormTag.hasDefault || bunTag.hasDefault,
		}
		if gormTag.primaryKey || bunTag.primaryKey {
			if m.PrimaryKey != nil {
				return fmt.Errorf("%w: %s: composite primary keys are not supported", ErrInvalidModel, m.Name)
			}
			c.PrimaryKey = true
			c.AutoIncrement = isInteger(f.Type) && !gormTag.noAutoIncrement
			m.PrimaryKey = c
		}
		if _, dup := m.byDBName[c.Name]; dup {
			return fmt.Errorf("%w: %s: column %q declared twice", ErrInvalidModel, m.Name, c.Name)
		}
		m.Columns = append(m.Columns, c)
		m.byDBName[c.Name] = c
		if !hidden {
			m.byJSONName[c.JSONName] = c
		}
	}
	return nil
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

type gormTagInfo struct {
	skip, primaryKey, noAutoIncrement, hasDefault, embedded bool
	column                                                  string
	relation                                                bool
}

func parseGormTag(tag string) gormTagInfo {
	var g gormTagInfo
	if tag == "" {
		return g
	}
	for _, part := range strings.Split(tag, ";") {
		key, val, _ := strings.Cut(strings.TrimSpace(part), ":")
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "-":
			g.skip = val == "" || val == "all"
		case "column":
			g.column = strings.TrimSpace(val)
		case "primarykey", "primary_key":
			g.primaryKey = true
		case "autoincrement":
			g.noAutoIncrement = strings.EqualFold(strings.TrimSpace(val), "false")
		case "default":
			g.hasDefault = true
		case "embedded":
			g.embedded = true
		case "foreignkey", "references", "many2many", "polymorphic", "joinforeignkey", "joinreferences":
			g.relation = true
		}
	}
	return g
}

type bunTagInfo struct {
	skip, primaryKey, hasDefault, relation bool
	column                                 string
}

func parseBunTag(tag string) bunTagInfo {
	var b bunTagInfo
	if tag == "" {
		return b
	}
	if tag == "-" {
		b.skip = true
		return b
	}
	for i, part := range strings.Split(tag, ",") {
		key, _, hasVal := strings.Cut(part, ":")
		if i == 0 && !hasVal {
			b.column = key
			continue
		}
		switch key {
		case "pk":
			b.primaryKey = true
		case "default":
			b.hasDefault = true
		case "rel", "m2m", "join":
			b.relation = true
		}
	}
	return b
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

// relationOf reports whether f refers to another model: a struct, pointer to
// struct or slice of structs that is not a value type (time, scanner, JSON).
func relationOf(f reflect.StructField, g gormTagInfo, b bunTagInfo) (*Relation, bool) {
	t := f.Type
	many := false
	if t.Kind() == reflect.Slice && t != rawJSONType && t.Elem().Kind() != reflect.Uint8 {
		t, many = t.Elem(), true
	}
	t = derefType(t)
	isStruct := t.Kind() == reflect.Struct && t != timeType &&
		!reflect.PointerTo(t).Implements(scannerType) && !t.Implements(valuerType)
	if !(g.relation || b.relation || isStruct) || !isStruct {
		return nil, false
	}
	return &Relation{Name: f.Name, Many: many}, true
}

func tableName(t reflect.Type) string {
	if tn, ok := reflect.New(t).Interface().(tableNamer); ok {
		if n := tn.TableName(); n != "" {
			return n
		}
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Name() == "BaseModel" {
			for _, part := range strings.Split(f.Tag.Get("bun"), ",") {
				if k, v, ok := strings.Cut(part, ":"); ok && k == "table" {
					return v
				}
			}
		}
	}
	return inflection.Plural(snakeCase(t.Name()))
}

// snakeCase turns a Go identifier into the column name both ORMs derive by
// default: CreatedAt -> created_at, UserID -> user_id, HTTPCode -> http_code.
func snakeCase(s string) string {
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

func isInteger(t reflect.Type) bool {
	switch derefType(t).Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

func isNullable(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		return true
	}
	return reflect.PointerTo(t).Implements(scannerType) && t.Kind() == reflect.Struct && t != timeType
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
