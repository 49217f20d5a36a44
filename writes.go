package mqttspec

import (
	"context"
	"fmt"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/query"
)

// SQLite lets one transaction write at a time. A write transaction that
// finds another one writing waits in SQLite's busy handler, which sleeps
// 1, 2, 5, 10… ms between attempts whatever happens meanwhile: under a
// steady stream of writes some of them sleep again and again (creates at
// 80 in flight had a p99 of 130 ms). On SQLite the handler therefore lets
// its own writes take the database in turn, behind a mutex held from
// BEGIN to COMMIT: a write waiting for it starts the moment the previous
// one ends, and Go's mutex lets no waiter wait for long behind newcomers
// (p99 30–50 ms at the same load, and more writes per second). The wait
// cannot be cut short, but it lasts only as long as the writes before it,
// each bounded by its own request's deadline; a write whose deadline passed
// meanwhile ends at once with a timeout. Writes made outside the handler
// still meet SQLite's busy handler.

// serializesWrites reports whether writes to db take turns (SQLite).
func serializesWrites(db adapters.Database) bool {
	raw, ok := db.(adapters.RawSQL)
	return ok && raw.Dialect() == query.DialectSQLite
}

// writeTurn waits for the database's turn to write (SQLite) and returns
// the function that ends it.
func (h *Handler) writeTurn(ctx context.Context) (done func(), err error) {
	if !h.serialWrites {
		return func() {}, nil
	}
	h.writeMu.Lock()
	if err := ctx.Err(); err != nil {
		h.writeMu.Unlock()
		return nil, fmt.Errorf("wait for the database to write: %w", err)
	}
	return h.writeMu.Unlock, nil
}
