package mqttspec

import (
	"sync"
	"sync/atomic"

	"github.com/mqttspec/mqttspec/query"
)

// entityOrder orders the changes of one entity and their notifications.
//
// Commits of the entity, subscribes and unsubscribes hold mu, so that a
// subscription's snapshot, its registration and its removal each fall
// between two commits. A commit notes, while it holds mu, which
// subscriptions exist and takes its place in the lane; once mu is released
// its notifications are encoded and matched outside every lock, and
// published when its place comes up. Notifications thus leave in commit
// order, while the cost of matching them holds up neither the database
// transaction nor the next commit.
type entityOrder struct {
	mu   sync.Mutex
	lane lane
	// version counts the entity's changes committed through the handler or
	// reported with NotifyChange (see totals.go); it moves under mu.
	version atomic.Uint64
}

// order returns the entityOrder of m.
func (h *Handler) order(m *query.Model) *entityOrder {
	if o, ok := h.orders.Load(m.Name); ok {
		return o.(*entityOrder)
	}
	o, _ := h.orders.LoadOrStore(m.Name, &entityOrder{})
	return o.(*entityOrder)
}

// maxReady bounds the publications a lane holds prepared while an earlier
// place is still being prepared; past it, those who deposit more wait.
const maxReady = 1024

// lane orders publications: places are taken in commit order, each is
// prepared by its taker (concurrently, outside every lock) and then
// deposited, and the deposited publications run one at a time in place
// order. Nobody waits for an earlier place to be prepared: the publication
// of a place that is not yet due is left in the lane, and whoever runs the
// one before it runs it too. Every place taken must be deposited, or the
// places after it are never published.
type lane struct {
	mu      sync.Mutex
	next    uint64            // the place the next taker gets
	served  uint64            // the place due next
	ready   map[uint64]func() // deposited publications not yet due
	running bool              // a goroutine is running due publications
	moved   chan struct{}     // closed when served moves on
}

// take returns a new place at the end of the lane.
func (l *lane) take() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.next
	l.next++
	return p
}

// deposit hands over place p's publication. If p is due, it runs now, in
// the caller's goroutine, followed by every deposited publication due
// after it; otherwise it is left for the goroutine that runs the one
// before it, and the caller waits only while the lane holds more than
// maxReady of them.
func (l *lane) deposit(p uint64, publish func()) {
	l.mu.Lock()
	if l.ready == nil {
		l.ready = map[uint64]func(){}
	}
	l.ready[p] = publish
	if p != l.served || l.running {
		for len(l.ready) > maxReady && l.served <= p {
			moved := l.movedLocked()
			l.mu.Unlock()
			<-moved
			l.mu.Lock()
		}
		l.mu.Unlock()
		return
	}
	l.running = true
	for {
		fn, ok := l.ready[l.served]
		if !ok {
			break
		}
		delete(l.ready, l.served)
		l.mu.Unlock()
		fn()
		l.mu.Lock()
		l.served++
		if l.moved != nil {
			close(l.moved)
			l.moved = nil
		}
	}
	l.running = false
	l.mu.Unlock()
}

// drain returns once every place taken so far has been published.
func (l *lane) drain() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for last := l.next; l.served < last; {
		moved := l.movedLocked()
		l.mu.Unlock()
		<-moved
		l.mu.Lock()
	}
}

func (l *lane) movedLocked() chan struct{} {
	if l.moved == nil {
		l.moved = make(chan struct{})
	}
	return l.moved
}
