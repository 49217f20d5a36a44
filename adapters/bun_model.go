package adapters

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/uptrace/bun/schema"

	"github.com/mqttspec/mqttspec/query"
)

// Describe returns the model registered as name for the struct model, as
// Bun maps it: Bun parses the struct (its bun tags and bun.BaseModel table
// tag) and the table, columns, primary key and relations are taken from
// that table. A struct Bun cannot parse is refused here.
func (a *BunAdapter) Describe(name string, model any) (m *query.Model, err error) {
	t := modelType(model)
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("%w: %s: %T is not a struct", query.ErrInvalidModel, name, model)
	}
	defer func() { // Bun panics on structs it cannot use
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: %s: bun: %v", query.ErrInvalidModel, name, r)
		}
	}()
	table := a.bdb.Dialect().Tables().Get(t)
	mp := query.Mapping{Table: table.Name}
	for _, f := range table.Fields {
		mp.Columns = append(mp.Columns, query.ColumnMapping{Index: f.Index, Name: f.Name, PrimaryKey: f.IsPK})
	}
	// Bun lists primary keys first; the model keeps struct order.
	slices.SortFunc(mp.Columns, func(x, y query.ColumnMapping) int { return slices.Compare(x.Index, y.Index) })
	for _, r := range table.Relations {
		mp.Relations = append(mp.Relations, query.RelationMapping{
			Index: r.Field.Index, Name: r.Field.GoName,
			Many: r.Type == schema.HasManyRelation || r.Type == schema.ManyToManyRelation,
		})
	}
	slices.SortFunc(mp.Relations, func(x, y query.RelationMapping) int { return slices.Compare(x.Index, y.Index) })
	return query.NewModel(name, model, mp)
}

// wrapBun adds context to a Bun error (see wrapError).
func wrapBun(op string, m *query.Model, err error) error {
	return wrapError("bun", op, modelName(m), isDriverConstraint, err)
}
