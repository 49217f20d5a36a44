// Package group holds the membership of a group of handler instances that
// share one topic prefix, and decides which member serves which client:
// every member computes the same owner for a client id from the same
// member list (rendezvous hashing), so the members split the clients among
// themselves without talking to each other, and when a member leaves only
// its clients move.
package group

import (
	"slices"
	"sync"
)

// Members is the membership of one group as one member sees it: itself and
// the others it has heard of. It is safe for concurrent use.
type Members struct {
	self string

	mu     sync.RWMutex
	others map[string]struct{}
	list   []string // self and others, sorted
}

// New returns the membership of a group in which self is, so far, alone.
func New(self string) *Members {
	return &Members{self: self, others: map[string]struct{}{}, list: []string{self}}
}

// Self returns this member's id.
func (m *Members) Self() string { return m.self }

// Join adds member id and reports whether the membership changed.
func (m *Members) Join(id string) bool {
	if id == "" || id == m.self {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.others[id]; ok {
		return false
	}
	m.others[id] = struct{}{}
	m.relist()
	return true
}

// Leave removes member id and reports whether the membership changed.
func (m *Members) Leave(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.others[id]; !ok {
		return false
	}
	delete(m.others, id)
	m.relist()
	return true
}

// Reset forgets every other member (after a reconnect, the broker's
// retained presence tells again who is there).
func (m *Members) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.others)
	m.relist()
}

func (m *Members) relist() {
	l := make([]string, 0, len(m.others)+1)
	l = append(l, m.self)
	for id := range m.others {
		l = append(l, id)
	}
	slices.Sort(l)
	m.list = l
}

// Has reports whether id is a member (this one included).
func (m *Members) Has(id string) bool {
	if id == m.self {
		return true
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.others[id]
	return ok
}

// List returns the members, this one included, sorted.
func (m *Members) List() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.list)
}

// Owner returns the member that serves clientID: the one with the highest
// score(member, clientID).
func (m *Members) Owner(clientID string) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return Owner(m.list, clientID)
}

// Owns reports whether this member serves clientID.
func (m *Members) Owns(clientID string) bool { return m.Owner(clientID) == m.self }

// Owner returns the member of members that serves clientID ("" when there
// are none). Every member computing it over the same list gets the same
// answer; removing a member moves only the clients it served.
func Owner(members []string, clientID string) string {
	best, bestScore := "", uint64(0)
	for _, id := range members {
		if s := score(id, clientID); best == "" || s > bestScore || s == bestScore && id < best {
			best, bestScore = id, s
		}
	}
	return best
}

// score is a 64-bit FNV-1a hash of member, a zero byte and clientID,
// mixed once more so that near ids spread well.
func score(member, clientID string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(member); i++ {
		h = (h ^ uint64(member[i])) * prime
	}
	h *= prime // the zero byte
	for i := 0; i < len(clientID); i++ {
		h = (h ^ uint64(clientID[i])) * prime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}
