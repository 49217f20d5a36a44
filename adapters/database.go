// Package adapters is the database edge of mqttspec: the Database interface
// the handler calls, the model registry, and its implementations for GORM
// (NewGormAdapter) and Bun (NewBunAdapter).
//
// Adapters receive only the resolved form of a request built by package
// query (models, columns, operators, typed values); they quote identifiers
// through their ORM and pass values as bound parameters. Each adapter owns
// what is particular to its ORM: how a struct maps to a table (Describe
// asks the ORM itself), its statements, and how its errors are classified.
package adapters

import (
	"context"
	"errors"

	"github.com/mqttspec/mqttspec/query"
)

// Errors an adapter returns (wrapped, so test with errors.Is). Their text is
// safe to show to a client; the wrapped driver error is not.
var (
	// ErrConstraint reports a unique, foreign-key, not-null or check violation.
	ErrConstraint = errors.New("adapters: constraint violation")
	// ErrUnknownModel reports a schema.entity that is not registered.
	ErrUnknownModel = errors.New("adapters: unknown model")
)

// Executor runs validated statements. Both Database and Tx implement it.
type Executor interface {
	// Find returns the rows q selects, each a pointer to a new value of
	// q.Model.Type, in the order q.Sort gives.
	Find(ctx context.Context, q *query.Query) ([]any, error)
	// Count returns how many rows match q.Where (Sort, Limit, Offset ignored).
	Count(ctx context.Context, q *query.Query) (int64, error)
	// Insert stores row (a pointer to a value of m.Type), writing only the
	// named columns so that the others take their database defaults, and
	// reads the stored row back into row (generated key, defaults).
	Insert(ctx context.Context, m *query.Model, row any, columns []*query.Column) error
	// Update sets values (column -> typed value) on every row matching
	// where and returns how many rows it changed. An empty where is refused.
	Update(ctx context.Context, m *query.Model, where []query.Group, values map[*query.Column]any) (int64, error)
	// Delete removes every row matching where and returns how many it
	// removed. An empty where is refused.
	Delete(ctx context.Context, m *query.Model, where []query.Group) (int64, error)
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

// PoolSizer is implemented by a Database whose connection pool the handler
// sizes at Start: it keeps idle as many connections as requests run at
// once (database/sql keeps 2 by default, so that with more requests at
// once connections are closed and opened again all the time, and a new
// SQLite connection reads the schema again).
type PoolSizer interface {
	SetIdleConnections(n int)
}

// Database is the interface the handler uses to reach a database. The GORM
// and Bun adapters implement it; a custom implementation can be checked
// with the adaptertest package.
type Database interface {
	Executor
	// Begin starts a transaction bound to ctx.
	Begin(ctx context.Context) (Tx, error)
	// Describe returns the model registered as name ("schema.entity") for
	// the struct model (a struct or pointer to one), as this database's ORM
	// maps it: table, column names, primary key and relations. A custom
	// adapter without an ORM can return query.ParseModel(name, model).
	Describe(name string, model any) (*query.Model, error)
}
