package mqttspec

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/query"
)

// The change feed (ChangeFeedConfig). Triggers on the registered models'
// tables write every committed change to mqttspec_changes in the writing
// transaction; the feed reads that table in the order of its numbers and
// notifies subscriptions exactly as a write through the handler would
// (queue, notify.go). With the feed on, it is the only source of
// notifications: a write through the handler signals the feed instead of
// notifying by itself, so a change is notified once whoever made it.
//
// Numbers are taken when a row changes and become visible at commit, so
// the feed can see number n+1 before n. A missing number is kept as a gap
// and asked for again at every poll until it shows up or GapWait passes
// (a rolled-back transaction leaves its number unused for good). Changes
// of one record never overtake each other: a transaction that changes a
// record waits for the one that changed it before to commit, so it takes
// the higher number and commits after.

// feedBatch is how many changes one poll reads at most.
const feedBatch = 500

// feedMaxGaps bounds the missing numbers the feed waits for; beyond it
// numbers are given up at once (logged).
const feedMaxGaps = 10000

// feed follows mqttspec_changes for a handler.
type feed struct {
	h    *Handler
	db   adapters.RawSQL
	cfg  ChangeFeedConfig
	wake chan struct{}

	byTable map[string][]*query.Model // table name -> models on it

	mu   sync.Mutex
	read int64               // the highest number read
	gaps map[int64]time.Time // numbers below read not seen yet, since when
	done chan struct{}
}

// feedRow is a row of mqttspec_changes.
type feedRow struct {
	ID          int64   `gorm:"column:id" bun:"id"`
	TableSchema string  `gorm:"column:table_schema" bun:"table_schema"`
	TableName   string  `gorm:"column:table_name" bun:"table_name"`
	Op          string  `gorm:"column:op" bun:"op"`
	OldRow      *string `gorm:"column:old_row" bun:"old_row"`
	NewRow      *string `gorm:"column:new_row" bun:"new_row"`
}

// newFeed returns the feed of h, or an error when the database cannot
// have one.
func newFeed(h *Handler) (*feed, error) {
	db, ok := h.db.(adapters.RawSQL)
	if !ok || db.Dialect() != query.DialectPostgres {
		return nil, fmt.Errorf("mqttspec: the change feed (and a group) needs PostgreSQL through the GORM or Bun adapter")
	}
	f := &feed{h: h, db: db, cfg: h.config.ChangeFeed, wake: make(chan struct{}, 1),
		byTable: map[string][]*query.Model{}, gaps: map[int64]time.Time{}, done: make(chan struct{})}
	for _, m := range h.catalog.models() {
		name := m.Table
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		f.byTable[name] = append(f.byTable[name], m)
	}
	return f, nil
}

// captureBody is the body of the trigger function that records a change.
const captureBody = `
BEGIN
  INSERT INTO mqttspec_changes (table_schema, table_name, op, old_row, new_row)
  VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP,
    CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END,
    CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL;
END`

// install creates what is missing of the feed's table, its trigger
// function, one trigger per registered table and, for a group, the group's
// tables — in one statement under an advisory lock, so that members
// starting together do not race each other's DDL. What exists is left
// alone: a member starting while others write takes no lock on their
// tables (replacing a trigger would, and deadlock with their writes).
func (f *feed) install(ctx context.Context, group bool) error {
	var b strings.Builder
	b.WriteString(`DO $mqttspec$ BEGIN
PERFORM pg_advisory_xact_lock(72616803);
IF to_regclass('mqttspec_changes') IS NULL THEN
  CREATE TABLE mqttspec_changes (
    id bigserial PRIMARY KEY, table_schema text NOT NULL, table_name text NOT NULL,
    op text NOT NULL, old_row jsonb, new_row jsonb, at timestamptz NOT NULL DEFAULT now());
  CREATE INDEX mqttspec_changes_at ON mqttspec_changes (at);
END IF;
IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'mqttspec_capture' AND prosrc = $src$` + captureBody + `$src$) THEN
  CREATE OR REPLACE FUNCTION mqttspec_capture() RETURNS trigger LANGUAGE plpgsql AS $f$` + captureBody + `$f$;
END IF;
`)
	for _, m := range f.h.catalog.models() {
		table := pgTable(m)
		literal := "'" + strings.ReplaceAll(table, "'", "''") + "'"
		fmt.Fprintf(&b, "IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'mqttspec_changes' AND tgrelid = to_regclass(%s)) THEN\n"+
			"  CREATE TRIGGER mqttspec_changes AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION mqttspec_capture();\nEND IF;\n",
			literal, table)
	}
	if group {
		b.WriteString(groupTablesSQL)
	}
	b.WriteString("END $mqttspec$;")
	if _, err := f.db.Exec(ctx, b.String()); err != nil {
		return fmt.Errorf("mqttspec: install the change feed: %w", err)
	}
	var last []int64
	if err := f.db.Scan(ctx, &last, "SELECT COALESCE(max(id), 0) FROM mqttspec_changes"); err != nil || len(last) != 1 {
		return fmt.Errorf("mqttspec: read the change feed's position: %w", errOr(err, "no row"))
	}
	f.read = last[0]
	return nil
}

// pgSchema returns the schema m's table is qualified with ("" for none).
func pgSchema(m *query.Model) string {
	if i := strings.LastIndexByte(m.Table, '.'); i >= 0 {
		return m.Table[:i]
	}
	return m.Schema
}

// pgTable returns m's table as a quoted, schema-qualified identifier.
func pgTable(m *query.Model) string {
	parts := strings.Split(m.Table, ".")
	if len(parts) == 1 && m.Schema != "" {
		parts = []string{m.Schema, m.Table}
	}
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}

// start runs the feed until the handler's context ends.
func (f *feed) start() {
	go func() {
		defer close(f.done)
		tick := time.NewTicker(f.cfg.PollInterval)
		defer tick.Stop()
		clean := time.NewTicker(max(f.cfg.Retention/10, time.Second))
		defer clean.Stop()
		for {
			select {
			case <-f.h.ctx.Done():
				return
			case <-f.wake:
			case <-tick.C:
			case <-clean.C:
				f.clean()
				continue
			}
			for f.poll() == feedBatch && f.h.ctx.Err() == nil {
			}
		}
	}()
}

// nudge makes the feed look now (a write committed).
func (f *feed) nudge() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// poll reads the changes numbered after the last one read, and the missing
// numbers it waits for; it returns how many new changes it read.
func (f *feed) poll() int {
	ctx, cancel := context.WithTimeout(f.h.ctx, f.h.config.Timeouts.Request)
	defer cancel()
	f.mu.Lock()
	from := f.read
	f.mu.Unlock()
	var rows []feedRow
	if err := f.db.Scan(ctx, &rows, "SELECT id, table_schema, table_name, op, old_row::text AS old_row, new_row::text AS new_row "+
		"FROM mqttspec_changes WHERE id > ? ORDER BY id LIMIT ?", from, feedBatch); err != nil {
		if f.h.ctx.Err() == nil {
			f.h.logger.Warn("change feed: read failed", "error", err)
		}
		return 0
	}
	now := time.Now()
	givenUp := 0
	for _, r := range rows {
		f.mu.Lock()
		for n := f.read + 1; n < r.ID; n++ {
			if len(f.gaps) < feedMaxGaps {
				f.gaps[n] = now
			} else {
				givenUp++
			}
		}
		f.mu.Unlock()
		f.deliver(ctx, r)
		f.mu.Lock()
		f.read = r.ID
		f.mu.Unlock()
	}
	if givenUp > 0 {
		f.h.logger.Warn("change feed: too many changes of open transactions to wait for; not waiting for these", "count", givenUp, "waiting", feedMaxGaps)
	}
	f.fillGaps(ctx, now)
	return len(rows)
}

// fillGaps asks for the missing numbers again, delivers those that
// committed meanwhile, and gives up those older than GapWait.
func (f *feed) fillGaps(ctx context.Context, now time.Time) {
	f.mu.Lock()
	if len(f.gaps) == 0 {
		f.mu.Unlock()
		return
	}
	ids := make([]byte, 0, 16*len(f.gaps))
	ids = append(ids, '{')
	for n, since := range f.gaps {
		if now.Sub(since) > f.cfg.GapWait {
			delete(f.gaps, n)
			continue
		}
		if len(ids) > 1 {
			ids = append(ids, ',')
		}
		ids = strconv.AppendInt(ids, n, 10)
	}
	ids = append(ids, '}')
	f.mu.Unlock()
	if len(ids) == 2 {
		return
	}
	var rows []feedRow
	if err := f.db.Scan(ctx, &rows, "SELECT id, table_schema, table_name, op, old_row::text AS old_row, new_row::text AS new_row "+
		"FROM mqttspec_changes WHERE id = ANY(?::bigint[]) ORDER BY id", string(ids)); err != nil {
		return
	}
	for _, r := range rows {
		f.deliver(ctx, r)
		f.mu.Lock()
		delete(f.gaps, r.ID)
		f.mu.Unlock()
	}
}

// watermark returns the number up to which every change has been handed
// to the subscriptions (or given up).
func (f *feed) watermark() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.read
	for n := range f.gaps {
		w = min(w, n-1)
	}
	return w
}

// visibleAfter returns the numbers of the changes after n that are
// committed now: a snapshot read after this already holds them.
func (f *feed) visibleAfter(ctx context.Context, n int64) (map[int64]struct{}, error) {
	var ids []int64
	if err := f.db.Scan(ctx, &ids, "SELECT id FROM mqttspec_changes WHERE id > ?", n); err != nil {
		return nil, fmt.Errorf("read the change feed: %w", err)
	}
	set := make(map[int64]struct{}, len(ids))
	for _, id := range ids {
		set[id] = struct{}{}
	}
	return set, nil
}

// deliver notifies the subscriptions r concerns.
func (f *feed) deliver(ctx context.Context, r feedRow) {
	for _, m := range f.byTable[r.TableName] {
		if s := pgSchema(m); s != "" && s != r.TableSchema {
			continue
		}
		o := f.h.order(m)
		o.mu.Lock()
		if f.h.subs.CountForEntity(m.Schema, m.Entity) == 0 {
			// Nobody here to notify: no need to read the records. (A
			// subscription made later takes its snapshot after this.)
			o.version.Add(1)
			o.mu.Unlock()
			continue
		}
		o.mu.Unlock()
		ch := &change{model: m, feedID: r.ID}
		var err error
		switch r.Op {
		case "INSERT":
			ch.op = OperationCreate
			ch.row, err = f.decode(ctx, m, r.NewRow)
		case "UPDATE":
			ch.op = OperationUpdate
			if ch.row, err = f.decode(ctx, m, r.NewRow); err == nil {
				ch.prev, err = f.decode(ctx, m, r.OldRow)
			}
		case "DELETE":
			ch.op = OperationDelete
			ch.row, err = f.decode(ctx, m, r.OldRow)
		default:
			continue
		}
		if f.h.ctx.Err() != nil {
			return // stopping
		}
		if err != nil || ch.row == nil {
			f.h.logger.Error("change feed: cannot read a change", "entity", m.Name, "change", r.ID, "error", errOr(err, "no record"))
			continue
		}
		o.mu.Lock()
		publish := f.h.queue(o, ch)
		o.mu.Unlock()
		publish()
	}
}

// decode turns a row as the trigger recorded it (jsonb) into a record of
// m, through the ORM: PostgreSQL rebuilds the table's row type from the
// JSON, so every column comes back with its own type.
func (f *feed) decode(ctx context.Context, m *query.Model, row *string) (any, error) {
	if row == nil {
		return nil, nil
	}
	rec := m.New()
	if err := f.db.Scan(ctx, rec, "SELECT * FROM jsonb_populate_record(NULL::"+pgTable(m)+", ?::jsonb)", *row); err != nil {
		return nil, err
	}
	return rec, nil
}

// clean deletes recorded changes (and group answers) older than Retention.
func (f *feed) clean() {
	ctx, cancel := context.WithTimeout(f.h.ctx, f.h.config.Timeouts.Request)
	defer cancel()
	cutoff := time.Now().Add(-f.cfg.Retention)
	if _, err := f.db.Exec(ctx, "DELETE FROM mqttspec_changes WHERE at < ?", cutoff); err != nil && f.h.ctx.Err() == nil {
		f.h.logger.Warn("change feed: clean-up failed", "error", err)
	}
	if f.h.group != nil {
		f.h.group.clean(ctx)
	}
}
