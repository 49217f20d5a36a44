package adapters

import (
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// sqliteConstraint is SQLITE_CONSTRAINT, the primary result code of every
// constraint violation (extended codes keep it in their low byte).
const sqliteConstraint = 19

// isConstraintError reports whether err (from any supported driver) is a
// unique, foreign-key, not-null or check violation. Drivers are recognised
// by behaviour, not by type, so that this package links no SQL driver:
//
//   - PostgreSQL (pgx *pgconn.PgError, lib/pq *pq.Error): SQLState() of
//     class "23" (integrity constraint violation);
//   - SQLite (glebarez/go-sqlite and modernc.org/sqlite *Error): Code()
//     whose primary code is SQLITE_CONSTRAINT; other SQLite drivers by
//     SQLite's "... constraint failed" message;
//   - GORM's translated errors (gorm.Config.TranslateError).
func isConstraintError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrConstraint) || errors.Is(err, gorm.ErrDuplicatedKey) ||
		errors.Is(err, gorm.ErrForeignKeyViolated) || errors.Is(err, gorm.ErrCheckConstraintViolated) {
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

// wrapError adds context to a driver error: "adapters: <orm> <op> <model>:
// ...". A constraint violation is also wrapped in ErrConstraint, so that
// errors.Is(err, ErrConstraint) holds while the driver error stays
// reachable with errors.As.
func wrapError(orm, op string, m *Model, err error) error {
	if err == nil {
		return nil
	}
	name := ""
	if m != nil {
		name = " " + m.Name
	}
	if isConstraintError(err) && !errors.Is(err, ErrConstraint) {
		return fmt.Errorf("adapters: %s %s%s: %w: %w", orm, op, name, ErrConstraint, err)
	}
	return fmt.Errorf("adapters: %s %s%s: %w", orm, op, name, err)
}
