// Package adapters holds the database edge of mqttspec: the Database
// interface the handler calls, the model registry, the validated query
// model that every request is turned into before any SQL exists, and the
// GORM and Bun implementations.
//
// Nothing a client sends reaches SQL as text. Requests are first resolved
// against a registered model (see ParseModel and BuildQuery): every column
// becomes a *Column taken from the model, every operator one of the Op
// constants, every value a Go value of the column's type. Adapters receive
// only that resolved form, quote identifiers through their ORM and pass
// values as bound parameters.
package adapters

import (
	"context"
	"errors"
	"reflect"
)

// Dialect names understood by the query layer. Adapters report one of them
// from Database.Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Errors an adapter returns (wrapped, so test with errors.Is). Their text is
// safe to show to a client; the wrapped driver error is not.
var (
	// ErrConstraint reports a unique, foreign-key, not-null or check violation.
	ErrConstraint = errors.New("adapters: constraint violation")
	// ErrUnknownModel reports a schema.entity that is not registered.
	ErrUnknownModel = errors.New("adapters: unknown model")
	// ErrInvalidModel reports a value that cannot be registered as a model.
	ErrInvalidModel = errors.New("adapters: invalid model")
)

// Op is a filter operator of the request protocol.
type Op string

// Filter operators. Their SQL meaning (and the identical in-memory meaning
// used to match subscriptions) is documented in the README's operator table.
const (
	OpEq        Op = "eq"
	OpNeq       Op = "neq"
	OpGt        Op = "gt"
	OpGte       Op = "gte"
	OpLt        Op = "lt"
	OpLte       Op = "lte"
	OpLike      Op = "like"
	OpILike     Op = "ilike"
	OpIn        Op = "in"
	OpNotIn     Op = "not_in"
	OpIsNull    Op = "is_null"
	OpIsNotNull Op = "is_not_null"
	OpBetween   Op = "between"
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
	// AutoIncrement is true for an integer primary key the database assigns.
	AutoIncrement bool
	// Nullable is true when the Go type can hold NULL (pointer, sql.Null*).
	Nullable bool
	// HasDefault is true when the ORM tag declares a database default.
	HasDefault bool
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

// Model is the parsed description of a registered Go struct.
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
	// PrimaryKey is the primary key column (models must have exactly one).
	PrimaryKey *Column
	// Relations lists preloadable relation fields.
	Relations []*Relation

	byDBName   map[string]*Column
	byJSONName map[string]*Column
	byRelation map[string]*Relation
}

// Condition is one validated filter: a column of the model, an operator and
// values already converted to the column's Go type.
type Condition struct {
	Column *Column
	Op     Op
	// Value holds the operand of eq, neq, gt, gte, lt, lte, like and ilike.
	Value any
	// Values holds the operands of in and not_in, or the two bounds of between.
	Values []any
}

// Group is a list of conditions joined with OR.
type Group []Condition

// Sort is one validated sort key.
type Sort struct {
	Column *Column
	Desc   bool
}

// Query is a fully validated read, update or delete target. Where is an AND
// of OR-groups.
type Query struct {
	Model   *Model
	Where   []Group
	Sort    []Sort
	Limit   int // 0 means no limit
	Offset  int
	Columns []*Column // projection; nil selects every column
	Preload []*Relation
	// Lock asks for SELECT ... FOR UPDATE where the dialect supports it
	// (used inside a transaction before an update or delete).
	Lock bool
}

// Executor runs validated statements. Both Database and Tx implement it.
type Executor interface {
	// Find returns the rows q selects, each a pointer to a new value of
	// q.Model.Type, in the order q.Sort gives.
	Find(ctx context.Context, q *Query) ([]any, error)
	// Count returns how many rows match q.Where (Sort, Limit, Offset ignored).
	Count(ctx context.Context, q *Query) (int64, error)
	// Insert stores row (a pointer to a value of m.Type), writing only the
	// named columns so that the others take their database defaults, and
	// sets the generated primary key on row.
	Insert(ctx context.Context, m *Model, row any, columns []*Column) error
	// Update sets values (column -> typed value) on every row matching
	// where and returns how many rows it changed.
	Update(ctx context.Context, m *Model, where []Group, values map[*Column]any) (int64, error)
	// Delete removes every row matching where and returns how many it removed.
	Delete(ctx context.Context, m *Model, where []Group) (int64, error)
}

// Tx is a database transaction.
type Tx interface {
	Executor
	// Commit makes the transaction's changes permanent.
	Commit() error
	// Rollback abandons the transaction; after Commit it is a no-op.
	Rollback() error
	// Native returns the ORM's own transaction handle (*gorm.DB for GORM,
	// bun.Tx for Bun) so that hooks can run their own statements in it.
	Native() any
}

// Database is the interface the handler uses to reach a database. The GORM
// and Bun adapters implement it; a custom implementation can be checked
// with the adaptertest package.
type Database interface {
	Executor
	// Begin starts a transaction.
	Begin(ctx context.Context) (Tx, error)
	// Dialect returns DialectSQLite, DialectPostgres or another name.
	Dialect() string
}
