// Package query is the core query model of mqttspec: what a request may
// ask of a registered model, validated before any SQL exists.
//
// Nothing a client sends reaches SQL as text. A request's options are
// resolved against a Model (BuildQuery, BuildWhere, DecodeData): every
// column becomes a *Column of the model, every operator one of the Op
// constants, every value a Go value of the column's type. WhereSQL and
// OrderSQL render that resolved form with a placeholder for every
// identifier and value, for the database adapters to bind; Match evaluates
// the same conditions in memory, with the same meaning, to decide which
// subscriptions a change concerns.
//
// The package knows no ORM and no driver: an adapter describes each model
// as its ORM maps it (a Mapping, see NewModel).
package query

// Dialect names understood by WhereSQL.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
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

// Condition is one validated filter: a column of the model, an operator and
// values already converted to the column's Go type.
type Condition struct {
	Column *Column
	Op     Op
	// Value holds the operand of eq, neq, gt, gte, lt, lte, like and ilike.
	Value any
	// Values holds the operands of in and not_in, or the two bounds of between.
	Values []any

	like *likePattern // Value compiled, for like and ilike (set by BuildWhere)
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
	// Lock asks for SELECT ... FOR UPDATE where the dialect supports it. It
	// is meaningful only in a transaction, before an update or delete.
	Lock bool
}

// ByKey returns the query for the record of m whose primary key is key (a
// value of the key's type), on top of where.
func ByKey(m *Model, key any, where []Group) *Query {
	w := make([]Group, len(where), len(where)+1)
	copy(w, where)
	return &Query{Model: m, Limit: 1, Where: append(w, Group{{Column: m.PrimaryKey, Op: OpEq, Value: key}})}
}
