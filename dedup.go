package mqttspec

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// dedup keeps the answers of recent writes so that a write delivered
// again is answered again instead of run again: an MQTT redelivery (DUP,
// same packet id) after a reconnect, or a client's own retry. A write is
// the same write when it comes from the same client id and principal with
// the same request id and the same payload, within the window. A request
// id reused with another payload is a new request. Only successful answers
// are kept (a failed write did not happen; running it again is safe).
// Memory is bounded: at most maxBytes of answers in all, at most
// perClientMax entries for one client id; the oldest go first.
type dedup struct {
	window       time.Duration
	maxBytes     int
	perClientMax int

	mu       sync.Mutex
	entries  map[dedupKey]*dedupEntry
	order    *list.List            // of *dedupEntry, oldest first
	byClient map[string]*list.List // of *dedupEntry, oldest first, per client id
	bytes    int
}

// dedupKey names one request of one client.
type dedupKey struct{ client, principal, request string }

type dedupEntry struct {
	key    dedupKey
	sum    [sha256.Size]byte // of the request's payload
	answer []byte
	at     time.Time
	elem   *list.Element // in order
	celem  *list.Element // in byClient[key.client]
}

// dedupPerClient caps the answers kept for one client id.
const dedupPerClient = 1024

func newDedup(window time.Duration, maxBytes int) *dedup {
	return &dedup{window: window, maxBytes: maxBytes, perClientMax: dedupPerClient,
		entries: map[dedupKey]*dedupEntry{}, order: list.New(), byClient: map[string]*list.List{}}
}

// replay returns the answer kept for the request key with this payload,
// if any.
func (d *dedup) replay(key dedupKey, payload []byte) ([]byte, bool) {
	if key.request == "" {
		return nil, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(time.Now())
	e, ok := d.entries[key]
	if !ok || e.sum != sha256.Sum256(payload) {
		return nil, false
	}
	return e.answer, true
}

// keep stores the answer of the write key with this payload.
func (d *dedup) keep(key dedupKey, payload, answer []byte) {
	if key.request == "" || len(answer) > d.maxBytes {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	d.expire(now)
	if old, ok := d.entries[key]; ok {
		d.remove(old)
	}
	mine := d.byClient[key.client]
	if mine == nil {
		mine = list.New()
		d.byClient[key.client] = mine
	}
	for mine.Len() >= d.perClientMax {
		d.remove(mine.Front().Value.(*dedupEntry))
	}
	e := &dedupEntry{key: key, sum: sha256.Sum256(payload), answer: answer, at: now}
	e.elem = d.order.PushBack(e)
	e.celem = mine.PushBack(e)
	d.entries[key] = e
	d.bytes += len(answer)
	for d.bytes > d.maxBytes {
		d.remove(d.order.Front().Value.(*dedupEntry))
	}
}

// expire drops the entries older than the window.
func (d *dedup) expire(now time.Time) {
	for f := d.order.Front(); f != nil; f = d.order.Front() {
		e := f.Value.(*dedupEntry)
		if now.Sub(e.at) < d.window {
			return
		}
		d.remove(e)
	}
}

func (d *dedup) remove(e *dedupEntry) {
	d.order.Remove(e.elem)
	mine := d.byClient[e.key.client]
	mine.Remove(e.celem)
	if mine.Len() == 0 {
		delete(d.byClient, e.key.client)
	}
	delete(d.entries, e.key)
	d.bytes -= len(e.answer)
}

// len returns how many answers are kept.
func (d *dedup) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.entries)
}
