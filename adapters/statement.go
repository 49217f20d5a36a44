package adapters

import (
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/mqttspec/mqttspec/query"
)

// Helpers shared by the GORM and Bun adapters.

// errEmptyWhere is returned by Update and Delete for an empty where: a
// statement on every row of a table is never what a request means.
var errEmptyWhere = errors.New("refusing to change every row: empty where")

// qualifiedTable returns the table of m as the ORM names it, qualified with
// m.Schema on PostgreSQL ("schema.table", which both ORMs quote part by
// part). SQLite has no schemas in our sense, so m.Schema is ignored there.
func qualifiedTable(m *query.Model, dialect, table string) string {
	if m.Schema != "" && dialect == query.DialectPostgres && !strings.Contains(table, ".") {
		return m.Schema + "." + table
	}
	return table
}

// columnNames returns the database names of cols.
func columnNames(cols []*query.Column) []string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return names
}

// sortedColumns returns the keys of values ordered by column name, so that
// generated SQL does not depend on map iteration order.
func sortedColumns(values map[*query.Column]any) []*query.Column {
	cols := make([]*query.Column, 0, len(values))
	for c := range values {
		cols = append(cols, c)
	}
	sort.Slice(cols, func(i, j int) bool { return cols[i].Name < cols[j].Name })
	return cols
}

// setColumn stores v into column c of row. A value of the base type of a
// pointer field is stored through a new pointer; a value of another type
// is an error (never a panic).
func setColumn(row any, c *query.Column, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: column %s: cannot store %T", query.ErrInvalidValue, c.Name, v)
		}
	}()
	if v != nil && c.Type.Kind() == reflect.Pointer {
		if rv := reflect.ValueOf(v); rv.Type() != c.Type && rv.Type().ConvertibleTo(c.Type.Elem()) {
			p := reflect.New(c.Type.Elem())
			p.Elem().Set(rv.Convert(c.Type.Elem()))
			v = p.Interface()
		}
	}
	c.Set(row, v)
	return nil
}

// checkRow reports whether row is a non-nil pointer to a value of m.Type.
func checkRow(m *query.Model, row any) error {
	v := reflect.ValueOf(row)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Type() != m.Type {
		return fmt.Errorf("%w: row is %T, want *%s", query.ErrInvalidModel, row, m.Type)
	}
	return nil
}

// newSlice returns a pointer to a new empty []T for the model type T.
func newSlice(m *query.Model) reflect.Value {
	return reflect.New(reflect.SliceOf(m.Type))
}

// slicePointers returns pointers to the elements of the slice slicePtr
// points to, as Executor.Find returns them.
func slicePointers(slicePtr reflect.Value) []any {
	s := slicePtr.Elem()
	out := make([]any, s.Len())
	for i := range out {
		out[i] = s.Index(i).Addr().Interface()
	}
	return out
}

// ignoreTxDone turns the error of a Rollback after Commit (or after the
// transaction's context ended) into nil: Rollback is then a no-op.
func ignoreTxDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// checkQuery rejects a nil query or one without a model.
func checkQuery(q *query.Query) error {
	if q == nil || q.Model == nil {
		return fmt.Errorf("%w: query without model", query.ErrInvalidModel)
	}
	return nil
}
