package mqttspec

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mqttspec/mqttspec/query"
)

// A full page's metadata.total costs a COUNT(*) over every matching row,
// which for a filter that matches thousands of rows costs many times the
// page itself. The handler keeps each total it counted, by entity and
// filters, and gives it again while no write of the entity has committed
// through the handler (or been reported with NotifyChange) since, and for
// at most LimitConfig.TotalMaxAge, which bounds how long a write made
// behind the handler's back can be missing from a total.

// maxTotals bounds the totals kept.
const maxTotals = 4096

// totals is the cache of counted totals.
type totals struct {
	mu      sync.Mutex
	maxAge  time.Duration // <= 0: nothing is kept
	entries map[totalKey]totalEntry
}

type totalKey struct {
	model string
	where string // whereKey of the filters
}

type totalEntry struct {
	n       int64
	version uint64 // the entity's change version it was counted at
	at      time.Time
}

func newTotals(maxAge time.Duration) *totals {
	return &totals{maxAge: maxAge, entries: map[totalKey]totalEntry{}}
}

// count returns the total of q's filters: kept, or counted with count and
// kept when no change of the entity committed while it was counted.
func (t *totals) count(o *entityOrder, q *query.Query, count func() (int64, error)) (int64, error) {
	if t.maxAge <= 0 {
		return count()
	}
	key := totalKey{model: q.Model.Name, where: whereKey(q.Where)}
	version := o.version.Load()
	now := time.Now()
	t.mu.Lock()
	e, ok := t.entries[key]
	t.mu.Unlock()
	if ok && e.version == version && now.Sub(e.at) < t.maxAge {
		return e.n, nil
	}
	n, err := count()
	if err != nil || o.version.Load() != version {
		return n, err // a change committed meanwhile: this count is not kept
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.entries) >= maxTotals {
		t.evict(now)
	}
	t.entries[key] = totalEntry{n: n, version: version, at: now}
	return n, nil
}

// evict makes room: entries past their age go, or else any half of them.
func (t *totals) evict(now time.Time) {
	for k, e := range t.entries {
		if now.Sub(e.at) >= t.maxAge {
			delete(t.entries, k)
		}
	}
	for k := range t.entries {
		if len(t.entries) < maxTotals/2 {
			return
		}
		delete(t.entries, k)
	}
}

// whereKey is a text that tells apart any two different filters: every
// condition's column, operator and values, with their Go types.
func whereKey(where []query.Group) string {
	var b strings.Builder
	for _, g := range where {
		b.WriteString("(")
		for _, c := range g {
			name := ""
			if c.Column != nil {
				name = c.Column.Name
			}
			fmt.Fprintf(&b, "%q %s %#v %#v;", name, c.Op, c.Value, c.Values)
		}
		b.WriteString(")")
	}
	return b.String()
}
