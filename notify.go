package mqttspec

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/mqttspec/mqttspec/query"
)

// NotifyChange publishes a change that the service made itself (outside
// MQTT) to the subscriptions it concerns, with the same matching rules and
// the same per-entity ordering as changes made through requests.
//
// op is OperationCreate, OperationUpdate or OperationDelete; record is the
// record after the change (the deleted record for a delete) and previous the
// record before an update (nil otherwise), each a value of, or pointer to,
// the model type registered as schema.entity. Call it after your
// transaction has committed. To order your commit exactly among concurrent
// writes made over MQTT, commit inside WithCommitLock and call
// NotifyChangeLocked there.
func (h *Handler) NotifyChange(schema, entity string, op OperationType, record, previous any) error {
	return h.notifyChange(schema, entity, op, record, previous, true)
}

// WithCommitLock runs fn while holding the lock under which the handler
// commits writes of schema.entity and notes the subscriptions they notify.
//
// Do the writes of your transaction first and put only its Commit and
// NotifyChangeLocked inside fn, as the handler does itself: a transaction
// begun inside fn could wait for a database lock held by a handler write that
// is itself waiting for this lock (on SQLite every writer holds the single
// write lock from BEGIN).
func (h *Handler) WithCommitLock(schema, entity string, fn func() error) error {
	m, err := h.catalog.resolve(schema, entity)
	if err != nil {
		return fmt.Errorf("mqttspec: %w", err)
	}
	o := h.order(m)
	o.mu.Lock()
	defer o.mu.Unlock()
	return fn()
}

// NotifyChangeLocked is NotifyChange for use inside WithCommitLock.
func (h *Handler) NotifyChangeLocked(schema, entity string, op OperationType, record, previous any) error {
	return h.notifyChange(schema, entity, op, record, previous, false)
}

func (h *Handler) notifyChange(schema, entity string, op OperationType, record, previous any, lock bool) error {
	m, err := h.catalog.resolve(schema, entity)
	if err != nil {
		return fmt.Errorf("mqttspec: notify change: %w", err)
	}
	switch op {
	case OperationCreate, OperationUpdate, OperationDelete:
	default:
		return fmt.Errorf("mqttspec: notify change: operation %q is not a change", op)
	}
	row, err := asModelPointer(m, record)
	if err != nil || row == nil {
		return fmt.Errorf("mqttspec: notify change: record: %w", errOr(err, "nil record"))
	}
	prev, err := asModelPointer(m, previous)
	if err != nil {
		return fmt.Errorf("mqttspec: notify change: previous: %w", err)
	}
	if op != OperationUpdate {
		prev = nil
	}
	ch := &change{model: m, op: op, row: row, prev: prev}
	o := h.order(m)
	if lock {
		o.mu.Lock()
		publish := h.queue(o, ch)
		o.mu.Unlock()
		publish()
		return nil
	}
	h.queue(o, ch)()
	return nil
}

// asModelPointer returns v as a pointer to m's type (copying a value).
func asModelPointer(m *query.Model, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	rv := reflect.ValueOf(v)
	switch {
	case rv.Type() == reflect.PointerTo(m.Type):
		if rv.IsNil() {
			return nil, nil
		}
		return v, nil
	case rv.Type() == m.Type:
		p := reflect.New(m.Type)
		p.Elem().Set(rv)
		return p.Interface(), nil
	}
	return nil, fmt.Errorf("%T is not %s", v, m.Type)
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%s", msg)
}

// The notifications of a change are worked out in two steps, so that
// nothing expensive runs while the entity's commit lock is held (see
// entityOrder): queue, under the lock, notes the subscriptions the change
// could concern and takes its place in the entity's lane; the function it
// returns encodes the records and matches them outside the lock, and the
// lane numbers and publishes the notifications in the change's turn. Rules:
// create and delete notify subscriptions the record matches; update
// notifies subscriptions the record matched before or after, with
// "matches" telling which (false: the record left the filter).

// notification is a change's notifications, prepared.
type notification struct {
	ch      *change
	parts   noteParts
	targets []recipient
}

// recipient is a subscription a change concerns.
type recipient struct {
	sub     *Subscription
	matches bool // the record matches it now
}

// queue notes the subscriptions ch could concern and returns the function
// that notifies them; the caller holds the commit lock of ch's entity
// (o.mu) and must call the function exactly once, after releasing the lock
// unless it runs inside WithCommitLock. The function matches in the
// caller's goroutine and publishes in ch's turn, without waiting for the
// changes before it to be matched (see lane).
func (h *Handler) queue(o *entityOrder, ch *change) (publish func()) {
	o.version.Add(1)
	subs := h.subs.candidates(ch.model, ch.row, ch.prev)
	if len(subs) == 0 {
		return func() {}
	}
	place := o.lane.take()
	return func() {
		var n *notification
		h.safely(ch, func() { n = h.prepare(ch, subs) })
		o.lane.deposit(place, func() { h.safely(ch, func() { h.publish(n) }) })
	}
}

// safely runs fn, logging a panic instead of letting it through: a
// notification that cannot be made must not stop those after it.
func (h *Handler) safely(ch *change, fn func()) {
	defer func() {
		if p := recover(); p != nil {
			h.logger.Error("panic while notifying a change", "entity", ch.model.Name, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	fn()
}

// prepare encodes ch and matches subs; nil when the change cannot be
// encoded (logged).
func (h *Handler) prepare(ch *change, subs []*Subscription) *notification {
	n := &notification{ch: ch}
	data, err := json.Marshal(ch.row)
	var prev []byte
	if err == nil && ch.prev != nil && ch.op == OperationUpdate {
		prev, err = json.Marshal(ch.prev)
	}
	if err != nil {
		h.logger.Error("cannot encode notification", "entity", ch.model.Name, "error", err)
		return nil
	}
	n.parts = newNoteParts(ch, data, prev, nowUTC())
	for _, s := range subs {
		if _, held := s.feedSkip[ch.feedID]; held && ch.feedID != 0 {
			continue // its snapshot holds the change
		}
		now := s.MatchesFilters(ch.row)
		if now || ch.prev != nil && s.MatchesFilters(ch.prev) {
			n.targets = append(n.targets, recipient{sub: s, matches: now})
		}
	}
	return n
}

// publish numbers and publishes prepared notifications, in their change's
// turn: each subscription's seq counts them in commit order.
func (h *Handler) publish(n *notification) {
	if n == nil {
		return
	}
	for _, t := range n.targets {
		s := t.sub
		s.deliver(func() {
			seq := s.seq.Add(1)
			if g := h.group; g != nil {
				g.reserveSeq(s, seq)
			}
			payload := n.parts.encode(s.ID, t.matches, seq)
			h.send(h.notifyTopic(s.ConnectionID, s.ID), h.config.QoS.Notification, payload)
		})
	}
}

// noteParts are what the notifications of one change share, encoded once:
// a change notified to many subscriptions is encoded once, not once per
// subscription. encode gives the same JSON as NotificationMessage.ToJSON.
type noteParts struct {
	head []byte // {"type":"notification","operation":...,"subscription_id":
	body []byte // ,"schema":...,"entity":...,"data":...[,"previous":...],"matches":
	tail []byte // ,"timestamp":...}
}

func newNoteParts(ch *change, data, prev []byte, at time.Time) noteParts {
	str := func(v string) []byte { b, _ := json.Marshal(v); return b }
	var p noteParts
	p.head = append(p.head, `{"type":"notification","operation":`...)
	p.head = append(p.head, str(string(ch.op))...)
	p.head = append(p.head, `,"subscription_id":`...)
	p.body = append(p.body, `,"schema":`...)
	p.body = append(p.body, str(ch.model.Schema)...)
	p.body = append(p.body, `,"entity":`...)
	p.body = append(p.body, str(ch.model.Entity)...)
	p.body = append(p.body, `,"data":`...)
	p.body = append(p.body, data...)
	if prev != nil {
		p.body = append(p.body, `,"previous":`...)
		p.body = append(p.body, prev...)
	}
	p.body = append(p.body, `,"matches":`...)
	stamp, _ := at.MarshalJSON()
	p.tail = append(p.tail, `,"timestamp":`...)
	p.tail = append(p.tail, stamp...)
	p.tail = append(p.tail, '}')
	return p
}

// encode returns the notification of subscription id.
func (p *noteParts) encode(id string, matches bool, seq uint64) []byte {
	sid, _ := json.Marshal(id)
	b := make([]byte, 0, len(p.head)+len(sid)+len(p.body)+len(p.tail)+32)
	b = append(b, p.head...)
	b = append(b, sid...)
	b = append(b, p.body...)
	b = strconv.AppendBool(b, matches)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, p.tail...)
}
