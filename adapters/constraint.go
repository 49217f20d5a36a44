package adapters

import (
	"errors"
	"fmt"
	"strings"
)

// sqliteConstraint is SQLITE_CONSTRAINT, the primary result code of every
// constraint violation (extended codes keep it in their low byte).
const sqliteConstraint = 19

// isDriverConstraint reports whether err, from any supported SQL driver, is
// a unique, foreign-key, not-null or check violation. Drivers are recognised
// by behaviour, not by type, so that this package links no SQL driver:
//
//   - PostgreSQL (pgx *pgconn.PgError, lib/pq *pq.Error): SQLState() of
//     class "23" (integrity constraint violation);
//   - SQLite (glebarez/go-sqlite and modernc.org/sqlite *Error): Code()
//     whose primary code is SQLITE_CONSTRAINT; other SQLite drivers by
//     SQLite's "... constraint failed" message.
//
// Each adapter adds what its ORM reports itself (see gormConstraint).
func isDriverConstraint(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrConstraint) {
		return true
	}
	var state interface{ SQLState() string }
	if errors.As(err, &state) {
		return strings.HasPrefix(state.SQLState(), "23")
	}
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		return coded.Code()&0xff == sqliteConstraint
	}
	return strings.Contains(err.Error(), "constraint failed") // SQLite wording, e.g. mattn/go-sqlite3
}

// wrapError adds context to an error of an adapter: "adapters: <orm> <op>
// <model>: ...". When constraint reports a violation the error also wraps
// ErrConstraint, so that errors.Is(err, ErrConstraint) holds while the
// driver error stays reachable with errors.As.
func wrapError(orm, op, model string, constraint func(error) bool, err error) error {
	if err == nil {
		return nil
	}
	if model != "" {
		model = " " + model
	}
	if constraint(err) && !errors.Is(err, ErrConstraint) {
		return fmt.Errorf("adapters: %s %s%s: %w: %w", orm, op, model, ErrConstraint, err)
	}
	return fmt.Errorf("adapters: %s %s%s: %w", orm, op, model, err)
}
