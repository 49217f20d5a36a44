package mqttspec

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttspec/mqttspec/query"
)

// Subscription is one client's live subscription to changes of an entity.
// Notifications go to {prefix}/{ConnectionID}/notify/{ID}.
type Subscription struct {
	// ID is the subscription id ("sub-" + UUID).
	ID string
	// ConnectionID is the MQTT client id of the owner.
	ConnectionID string
	// Schema and Entity name the watched model.
	Schema string
	Entity string
	// Options are the subscription's options after BeforeSubscribe hooks;
	// their filters decide which changes are sent.
	Options *RequestOptions
	// Active is true while the subscription is registered.
	Active bool

	model *query.Model
	where []query.Group
	seq   atomic.Uint64
	// state guards Active against deliveries: ending a subscription waits
	// for a delivery in progress, and none starts after it.
	state sync.RWMutex
	// indexed is the equality condition the subscription is indexed by.
	indexed *query.Condition
	// feedSkip holds the change-feed numbers its snapshot already held
	// (set before it is registered, read only after).
	feedSkip map[int64]struct{}
	// seqLimit is the last notification number reserved for it in a
	// group's database (group.go); used in its entity's lane only.
	seqLimit uint64
}

// MatchesFilters reports whether record (a pointer to the entity's model
// struct) satisfies the subscription's filters, with the same semantics as
// the database gives them. A subscription with filters that was not created
// by the handler (so its filters were never validated) matches nothing.
func (s *Subscription) MatchesFilters(record any) bool {
	if s.model == nil {
		return s.Options == nil || len(s.Options.Filters) == 0
	}
	return query.Match(s.where, record)
}

func (s *Subscription) setActive(on bool) {
	s.state.Lock()
	s.Active = on
	s.state.Unlock()
}

// deliver runs send if the subscription is still registered, and reports
// whether it did. Once a subscription has ended (unsubscribed, or its
// session discarded when another principal takes its client id over),
// nothing more is sent to its topic, whose next subscriber may be someone
// else.
func (s *Subscription) deliver(send func()) bool {
	s.state.RLock()
	defer s.state.RUnlock()
	if !s.Active {
		return false
	}
	send()
	return true
}

// SubscriptionManager holds the live subscriptions, indexed so that a write
// only looks at subscriptions it can match: subscriptions with an equality
// filter are found through a hash of that column's value, the rest are
// checked one by one. It is safe for concurrent use.
type SubscriptionManager struct {
	mu       sync.RWMutex
	byID     map[string]*Subscription
	byEntity map[string]*entitySubscriptions
}

type entitySubscriptions struct {
	scan map[string]*Subscription                              // checked one by one
	eq   map[*query.Column]map[string]map[string]*Subscription // column -> value key -> id -> sub
	n    int
}

// NewSubscriptionManager returns an empty manager.
func NewSubscriptionManager() *SubscriptionManager {
	return &SubscriptionManager{byID: map[string]*Subscription{}, byEntity: map[string]*entitySubscriptions{}}
}

// Subscribe registers a subscription for the client connID. Subscriptions
// made this way carry no validated filters; the handler registers its own
// through the subscribe request.
func (sm *SubscriptionManager) Subscribe(id, connID, schema, entity string, options *RequestOptions) *Subscription {
	s := &Subscription{ID: id, ConnectionID: connID, Schema: schema, Entity: entity, Options: options}
	sm.add(s)
	return s
}

// add registers s, indexing it by its first single-condition equality group.
func (sm *SubscriptionManager) add(s *Subscription) {
	for _, g := range s.where {
		if len(g) == 1 && g[0].Op == query.OpEq {
			c := g[0]
			s.indexed = &c
			break
		}
	}
	sm.mu.Lock()
	defer sm.mu.Unlock()
	s.setActive(true)
	sm.byID[s.ID] = s
	key := qualified(s.Schema, s.Entity)
	es := sm.byEntity[key]
	if es == nil {
		es = &entitySubscriptions{scan: map[string]*Subscription{}, eq: map[*query.Column]map[string]map[string]*Subscription{}}
		sm.byEntity[key] = es
	}
	es.n++
	if s.indexed == nil {
		es.scan[s.ID] = s
		return
	}
	byValue := es.eq[s.indexed.Column]
	if byValue == nil {
		byValue = map[string]map[string]*Subscription{}
		es.eq[s.indexed.Column] = byValue
	}
	vk := valueKey(s.indexed.Value)
	if byValue[vk] == nil {
		byValue[vk] = map[string]*Subscription{}
	}
	byValue[vk][s.ID] = s
}

// Unsubscribe removes the subscription subID and reports whether it existed.
func (sm *SubscriptionManager) Unsubscribe(subID string) bool {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	s, ok := sm.byID[subID]
	if !ok {
		return false
	}
	delete(sm.byID, subID)
	s.setActive(false)
	key := qualified(s.Schema, s.Entity)
	es := sm.byEntity[key]
	if es == nil {
		return true
	}
	es.n--
	if s.indexed == nil {
		delete(es.scan, subID)
	} else if byValue := es.eq[s.indexed.Column]; byValue != nil {
		vk := valueKey(s.indexed.Value)
		delete(byValue[vk], subID)
		if len(byValue[vk]) == 0 {
			delete(byValue, vk)
		}
		if len(byValue) == 0 {
			delete(es.eq, s.indexed.Column)
		}
	}
	if es.n == 0 {
		delete(sm.byEntity, key)
	}
	return true
}

// GetSubscription returns the subscription subID.
func (sm *SubscriptionManager) GetSubscription(subID string) (*Subscription, bool) {
	sm.mu.RLock()
	defer sm.mu.RUnlock()
	s, ok := sm.byID[subID]
	return s, ok
}

// GetSubscriptionsByEntity returns the subscriptions of schema.entity.
func (sm *SubscriptionManager) GetSubscriptionsByEntity(schema, entity string) []*Subscription {
	sm.mu.RLock()
	defer sm.mu.RUnlock()
	var out []*Subscription
	for _, s := range sm.byID {
		if s.Schema == schema && s.Entity == entity {
			out = append(out, s)
		}
	}
	return out
}

// GetSubscriptionsByConnection returns the subscriptions of client connID.
func (sm *SubscriptionManager) GetSubscriptionsByConnection(connID string) []*Subscription {
	sm.mu.RLock()
	defer sm.mu.RUnlock()
	var out []*Subscription
	for _, s := range sm.byID {
		if s.ConnectionID == connID {
			out = append(out, s)
		}
	}
	return out
}

// Count returns the number of subscriptions.
func (sm *SubscriptionManager) Count() int {
	sm.mu.RLock()
	defer sm.mu.RUnlock()
	return len(sm.byID)
}

// CountForEntity returns the number of subscriptions of schema.entity.
func (sm *SubscriptionManager) CountForEntity(schema, entity string) int {
	sm.mu.RLock()
	defer sm.mu.RUnlock()
	if es := sm.byEntity[qualified(schema, entity)]; es != nil {
		return es.n
	}
	return 0
}

// candidates returns the subscriptions of the model that row or prev could
// match: the unindexed ones and those whose equality value equals the
// record's (before or after the change).
func (sm *SubscriptionManager) candidates(m *query.Model, row, prev any) []*Subscription {
	sm.mu.RLock()
	defer sm.mu.RUnlock()
	es := sm.byEntity[m.Name]
	if es == nil {
		return nil
	}
	out := make([]*Subscription, 0, len(es.scan)+1)
	for _, s := range es.scan {
		out = append(out, s)
	}
	for col, byValue := range es.eq {
		seen := ""
		for i, r := range []any{row, prev} {
			if r == nil {
				continue
			}
			v := query.Deref(col.Value(r))
			if v == nil {
				continue
			}
			vk := valueKey(v)
			if i == 1 && vk == seen {
				continue
			}
			seen = vk
			for _, s := range byValue[vk] {
				out = append(out, s)
			}
		}
	}
	return out
}

// all returns every live subscription.
func (sm *SubscriptionManager) all() []*Subscription {
	sm.mu.RLock()
	defer sm.mu.RUnlock()
	return slices.Collect(maps.Values(sm.byID))
}

func (sm *SubscriptionManager) clear() {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	sm.byID = map[string]*Subscription{}
	sm.byEntity = map[string]*entitySubscriptions{}
}

// valueKey returns a map key for a converted column value: equal values of
// one column give equal keys.
func valueKey(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10)
	}
	return fmt.Sprint(v)
}
