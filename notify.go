package mqttspec

import (
	"encoding/json"
	"fmt"
	"reflect"

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
// commits writes of schema.entity and publishes their notifications.
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
	mu := h.commitLock(m)
	mu.Lock()
	defer mu.Unlock()
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
	if lock {
		mu := h.commitLock(m)
		mu.Lock()
		defer mu.Unlock()
	}
	h.notify(ch)
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

// notify publishes ch to every subscription it concerns. It runs under the
// model's commit lock, so notifications leave in commit order. Rules:
// create and delete notify subscriptions the record matches; update
// notifies subscriptions the record matched before or after, with
// "matches" telling which (false: the record left the filter).
func (h *Handler) notify(ch *change) {
	subs := h.subs.candidates(ch.model, ch.row, ch.prev)
	if len(subs) == 0 {
		return
	}
	data, err := json.Marshal(ch.row)
	if err != nil {
		h.logger.Error("cannot encode notification", "entity", ch.model.Name, "error", err)
		return
	}
	var prev json.RawMessage
	if ch.prev != nil {
		if prev, err = json.Marshal(ch.prev); err != nil {
			h.logger.Error("cannot encode notification", "entity", ch.model.Name, "error", err)
			return
		}
	}
	for _, s := range subs {
		matchNew := s.MatchesFilters(ch.row)
		matchOld := ch.prev != nil && s.MatchesFilters(ch.prev)
		if !matchNew && !matchOld {
			continue
		}
		n := NewNotificationMessage(s.ID, ch.op, s.Schema, s.Entity, json.RawMessage(data))
		n.Matches = matchNew
		if ch.op == OperationUpdate {
			n.Previous = prev
		}
		n.Seq = s.seq.Add(1)
		h.publishNotification(s, n)
	}
}

func (h *Handler) publishNotification(s *Subscription, n *NotificationMessage) {
	payload, err := n.ToJSON()
	if err != nil {
		h.logger.Error("cannot encode notification", "subscription", s.ID, "error", err)
		return
	}
	h.publish(h.notifyTopic(s.ConnectionID, s.ID), h.config.QoS.Notification, payload)
}
