package query

import (
	"strings"
)

// sqlFalse is rendered for a condition that can match no row: an empty
// group, an unknown operator, an in/not_in without values, a between
// without exactly two bounds, a like pattern that is not a valid string
// pattern, a condition without column. Match gives false for the same
// conditions. BuildWhere never produces any of them.
const sqlFalse = "1 = 0"

// WhereSQL renders where (an AND of OR-groups) as a boolean SQL expression
// for dialect, with a `?` placeholder for every column and every value.
// ident(name) must return the ORM's quoted-identifier argument for a
// database column name (clause.Column{Name: name} for GORM, bun.Ident(name)
// for Bun); it is returned among the args in place of each column and never
// formatted into the string, so the text holds only fixed SQL vocabulary,
// e.g. `? = ? AND (? > ? OR ? IS NULL)`. Groups of several conditions are
// parenthesized, so the result can be combined with other conditions by
// AND. An empty where gives "" and nil args; a nil ident renders every
// condition as false.
//
// Operator semantics are the same on every dialect and are exactly what
// Match evaluates in Go:
//
//   - eq, neq, gt, gte, lt, lte: plain comparisons (`<>` for neq); a NULL
//     column satisfies none of them.
//   - in, not_in: `? IN ( ?, ? )`, `? NOT IN ( ?, ? )` (a space follows the
//     parenthesis so that GORM never expands a []byte operand into a list).
//   - between: `? BETWEEN ? AND ?`, bounds included.
//   - is_null, is_not_null: `? IS NULL`, `? IS NOT NULL`.
//   - like, ilike: pattern language `%` (any run of characters), `_` (one
//     character), `\` (the next character literally). like is case
//     sensitive, ilike is not. PostgreSQL (and any dialect but SQLite) gets
//     `? LIKE ?` / `? ILIKE ?` with the pattern unchanged (backslash is
//     PostgreSQL's default escape). SQLite's LIKE ignores ASCII case and has
//     no default escape, so like becomes `? GLOB ?` and ilike
//     `lower(?) GLOB ?` with the pattern translated to GLOB syntax (and
//     lowercased with strings.ToLower for ilike). SQLite's lower() folds
//     only ASCII letters, so ilike on non-ASCII letters can differ between
//     SQLite on one side and PostgreSQL and Match on the other.
func WhereSQL(dialect string, where []Group, ident func(string) any) (string, []any) {
	if len(where) == 0 {
		return "", nil
	}
	var b strings.Builder
	var args []any
	for i, g := range where {
		if i > 0 {
			b.WriteString(" AND ")
		}
		switch len(g) {
		case 0:
			b.WriteString(sqlFalse) // OR of nothing
		case 1:
			args = writeCondition(&b, args, dialect, &g[0], ident)
		default:
			b.WriteByte('(')
			for j := range g {
				if j > 0 {
					b.WriteString(" OR ")
				}
				args = writeCondition(&b, args, dialect, &g[j], ident)
			}
			b.WriteByte(')')
		}
	}
	return b.String(), args
}

// comparisons maps the comparison operators to their SQL spelling.
var comparisons = map[Op]string{
	OpEq: " = ", OpNeq: " <> ", OpGt: " > ", OpGte: " >= ", OpLt: " < ", OpLte: " <= ",
}

// writeCondition appends the SQL of c to b and its arguments to args.
func writeCondition(b *strings.Builder, args []any, dialect string, c *Condition, ident func(string) any) []any {
	if c.Column == nil || ident == nil {
		b.WriteString(sqlFalse)
		return args
	}
	col := ident(c.Column.Name)
	if sym, ok := comparisons[c.Op]; ok {
		b.WriteString("?" + sym + "?")
		return append(args, col, c.Value)
	}
	switch c.Op {
	case OpIsNull:
		b.WriteString("? IS NULL")
		return append(args, col)
	case OpIsNotNull:
		b.WriteString("? IS NOT NULL")
		return append(args, col)
	case OpIn, OpNotIn:
		if len(c.Values) == 0 {
			break
		}
		if c.Op == OpIn {
			b.WriteString("? IN ( ")
		} else {
			b.WriteString("? NOT IN ( ")
		}
		for i := range c.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('?')
		}
		b.WriteString(" )")
		args = append(args, col)
		return append(args, c.Values...)
	case OpBetween:
		if len(c.Values) != 2 {
			break
		}
		b.WriteString("? BETWEEN ? AND ?")
		return append(args, col, c.Values[0], c.Values[1])
	case OpLike, OpILike:
		p, ok := c.Value.(string)
		if !ok || !validPattern(p) {
			break
		}
		switch {
		case dialect == DialectSQLite && c.Op == OpLike:
			b.WriteString("? GLOB ?")
			return append(args, col, likeToGlob(p))
		case dialect == DialectSQLite:
			b.WriteString("lower(?) GLOB ?")
			return append(args, col, likeToGlob(strings.ToLower(p)))
		case c.Op == OpLike:
			b.WriteString("? LIKE ?")
		default:
			b.WriteString("? ILIKE ?")
		}
		return append(args, col, p)
	}
	b.WriteString(sqlFalse)
	return args
}

// OrderSQL renders sorts as an ORDER BY list (without the keywords), e.g.
// `? ASC, ? DESC NULLS LAST`, with ident(column name) as the argument of
// each `?` (see WhereSQL). Both dialects sort NULL as the smallest value:
// first in ascending, last in descending order. That is SQLite's native
// order; PostgreSQL sorts NULL as the largest value, so nullable columns
// get an explicit NULLS FIRST / NULLS LAST (which SQLite >= 3.30 accepts as
// well). Non-nullable columns get no NULLS clause, which keeps plain btree
// indexes usable for them on PostgreSQL. Sort keys without a column are
// skipped; no keys (or a nil ident) give "" and nil args.
func OrderSQL(sorts []Sort, ident func(string) any) (string, []any) {
	if ident == nil {
		return "", nil
	}
	var b strings.Builder
	var args []any
	for _, s := range sorts {
		if s.Column == nil {
			continue
		}
		if len(args) > 0 {
			b.WriteString(", ")
		}
		switch {
		case s.Desc && s.Column.Nullable:
			b.WriteString("? DESC NULLS LAST")
		case s.Desc:
			b.WriteString("? DESC")
		case s.Column.Nullable:
			b.WriteString("? ASC NULLS FIRST")
		default:
			b.WriteString("? ASC")
		}
		args = append(args, ident(s.Column.Name))
	}
	return b.String(), args
}

// validPattern reports whether p is a usable like pattern: no escape
// character at its very end (PostgreSQL refuses those) and no NUL
// character (PostgreSQL text cannot hold it and SQLite's pattern matching
// stops at it).
func validPattern(p string) bool {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case 0:
			return false
		case '\\':
			i++
			if i == len(p) || p[i] == 0 {
				return false
			}
		}
	}
	return true
}

// likeToGlob translates a valid like pattern into SQLite GLOB syntax:
// `%` becomes `*`, `_` becomes `?`, and the characters GLOB treats
// specially (`*`, `?`, `[`), escaped or not, become one-character classes
// `[*]`, `[?]`, `[[]`. Other escaped characters are copied literally; `]`
// needs no escape outside a class. Working byte by byte is safe because
// every special character is ASCII and never part of a multi-byte UTF-8
// sequence.
func likeToGlob(p string) string {
	var b strings.Builder
	b.Grow(len(p) + 8)
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '%':
			b.WriteByte('*')
			continue
		case '_':
			b.WriteByte('?')
			continue
		case '\\':
			i++
			if i == len(p) {
				return b.String() // not reached for a valid pattern
			}
			c = p[i]
		}
		switch c {
		case '*':
			b.WriteString("[*]")
		case '?':
			b.WriteString("[?]")
		case '[':
			b.WriteString("[[]")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
