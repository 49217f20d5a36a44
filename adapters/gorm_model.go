package adapters

import (
	"errors"
	"fmt"
	"reflect"
	"slices"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/mqttspec/mqttspec/query"
)

// Describe returns the model registered as name for the struct model, as
// GORM maps it: GORM parses the struct (its gorm tags, naming strategy and
// TableName method) and the table, columns, primary key and relations are
// taken from that schema. A struct GORM cannot parse (for example a
// relation without a usable foreign key) is refused here rather than at
// the first request.
func (a *GormAdapter) Describe(name string, model any) (*query.Model, error) {
	if model == nil {
		return nil, fmt.Errorf("%w: %s: nil model", query.ErrInvalidModel, name)
	}
	stmt := &gorm.Statement{DB: a.db}
	if err := stmt.Parse(model); err != nil {
		return nil, fmt.Errorf("%w: %s: gorm: %v", query.ErrInvalidModel, name, err)
	}
	s := stmt.Schema
	mp := query.Mapping{Table: s.Table}
	for _, f := range s.Fields {
		if f.DBName == "" || !f.Readable {
			continue // a relation, or a field GORM neither reads nor writes
		}
		mp.Columns = append(mp.Columns, query.ColumnMapping{
			Index: gormIndex(f.StructField.Index), Name: f.DBName, PrimaryKey: f.PrimaryKey,
		})
	}
	for _, r := range s.Relationships.Relations {
		if r.Schema != s || r.Field == nil {
			continue // GORM also files relations of other models here
		}
		mp.Relations = append(mp.Relations, query.RelationMapping{
			Index: gormIndex(r.Field.StructField.Index), Name: r.Name,
			Many: r.Type == schema.HasMany || r.Type == schema.Many2Many,
		})
	}
	slices.SortFunc(mp.Relations, func(x, y query.RelationMapping) int { return slices.Compare(x.Index, y.Index) })
	return query.NewModel(name, model, mp)
}

// gormIndex turns GORM's field index path into a reflect one: GORM marks a
// step through an embedded pointer with a negative index (-i-1).
func gormIndex(index []int) []int {
	out := make([]int, len(index))
	for i, x := range index {
		if x < 0 {
			x = -x - 1
		}
		out[i] = x
	}
	return out
}

// gormConstraint reports a constraint violation as the driver reports it
// or as GORM translated it (gorm.Config.TranslateError).
func gormConstraint(err error) bool {
	return isDriverConstraint(err) || errors.Is(err, gorm.ErrDuplicatedKey) ||
		errors.Is(err, gorm.ErrForeignKeyViolated) || errors.Is(err, gorm.ErrCheckConstraintViolated)
}

// wrapGorm adds context to a GORM error (see wrapError).
func wrapGorm(op string, m *query.Model, err error) error {
	return wrapError("gorm", op, modelName(m), gormConstraint, err)
}

// modelName is m.Name, or "" for no model.
func modelName(m *query.Model) string {
	if m == nil {
		return ""
	}
	return m.Name
}

// modelType returns the struct type of model (a struct or pointers to one).
func modelType(model any) reflect.Type {
	t := reflect.TypeOf(model)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}
