package mochi

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/mqttspec/mqttspec/internal/broker"
)

// Messages the core publishes at QoS 1 or 2 to a connected client, and at
// any QoS to a connected MQTT 3.1.1 client, go through that client's
// outbox. Mochi writes to a client's socket while holding the client's
// lock, and a QoS 1/2 publish to the client takes the same lock (for a
// packet id): published straight from the core's goroutines, a message
// would hold them up for as long as the client's socket stays full, which
// for a client that does not read is until its connection times out. The
// outbox's goroutine, which exists only while the outbox holds messages,
// writes them to the connection itself (writeDirect, direct.go) or hands
// them to Mochi, so nothing of the core ever waits on one client. What a
// client that does not read leaves in its outbox beyond writesPending
// messages or MaxQueuedBytes bytes is dropped and reported.

// outbox is the queue of one client id.
type outbox struct {
	mu      sync.Mutex
	queue   []outMsg
	bytes   int
	running bool          // a goroutine is handing the queue to Mochi
	sending bool          // it is handing one over now (taken from queue, not yet given)
	handed  chan struct{} // made by emptyOutbox while one is handed over; closed once it has been given
	idle    bool          // that goroutine lingers with nothing to do; wake wakes it
	wake    chan struct{}
	gone    bool // removed from Broker.outboxes: the next message makes a new one
}

// outboxLinger is how long an outbox's goroutine waits for the next message
// before it ends: a goroutine started afresh for each answer would grow
// its stack again for each one.
const outboxLinger = 100 * time.Millisecond

// outMsg is a message waiting in an outbox.
type outMsg struct {
	topic   string
	payload []byte
	qos     byte
}

// viaOutbox reports whether a message to client id on topic at qos must
// go through the client's outbox: it has one already (messages keep their
// order), or it is connected and the message reaches it at QoS 1 or 2, or
// it is a connected MQTT 3.1.1 client, whose outbox writes every message
// itself (writeDirect). A session without connection is only stored into,
// and Mochi hands a QoS 0 delivery to an MQTT 5 client's write queue
// without waiting: neither can hold up the publisher, so such messages are
// handed to Mochi at once (and a session's are queued before it can
// return).
func (b *Broker) viaOutbox(id, topic string, qos byte) bool {
	if _, ok := b.outboxes.Load(id); ok {
		return true
	}
	cl, ok := b.server.Clients.Get(id)
	if !ok || cl.Closed() {
		return false
	}
	c, ok := b.connOf(cl)
	if !ok {
		return true
	}
	return plainV311(cl) || min(b.privateGrants(c).max, qos) > 0
}

// grants are the subscriptions of a client that can match topics under
// {prefix}/{client id}/, with the QoS each was granted, as of one count of
// the client's subscription changes.
type grants struct {
	changes uint64
	filters []string
	qos     []byte
	max     byte
}

// privateGrants returns c's subscriptions that can match its private
// topics, computed again only after they changed.
func (b *Broker) privateGrants(c *conn) *grants {
	changes := c.subsChanged.Load()
	if g := c.private.Load(); g != nil && g.changes == changes {
		return g
	}
	g := &grants{changes: changes}
	under := append(splitTopic(b.config.Prefix), c.cl.ID)
	for filter, sub := range c.cl.State.Subscriptions.GetAll() {
		f := splitTopic(filter)
		if len(f) > 2 && strings.EqualFold(f[0], "$share") {
			f = f[2:]
		}
		if filterReachesUnder(f, under) {
			g.filters = append(g.filters, filter)
			g.qos = append(g.qos, sub.Qos)
			g.max = max(g.max, sub.Qos)
		}
	}
	c.private.Store(g)
	return g
}

// grantFor returns the highest QoS of the subscriptions in g that match
// topic, and whether any does.
func (g *grants) grantFor(topic string) (qos byte, ok bool) {
	for i, f := range g.filters {
		if broker.MatchTopic(f, topic) {
			qos, ok = max(qos, g.qos[i]), true
		}
	}
	return qos, ok
}

// filterReachesUnder reports whether the filter levels f can match a topic
// with more levels than p that starts with the levels p.
func filterReachesUnder(f, p []string) bool {
	for i, level := range p {
		switch {
		case i >= len(f):
			return false
		case f[i] == "#":
			return true
		case f[i] != "+" && f[i] != level:
			return false
		}
	}
	return len(f) > len(p)
}

// privateClient returns the client id of a topic under the prefix,
// {prefix}/{id}/..., and whether topic is one.
func privateClient(prefix, topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, prefix+"/")
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, "/")
	return id, ok && id != ""
}

// enqueue puts a message to client id in its outbox.
func (b *Broker) enqueue(id string, m outMsg) {
	for {
		v, ok := b.outboxes.Load(id)
		if !ok {
			v, _ = b.outboxes.LoadOrStore(id, &outbox{wake: make(chan struct{}, 1)})
		}
		ob := v.(*outbox)
		ob.mu.Lock()
		if ob.gone {
			ob.mu.Unlock()
			continue
		}
		if len(ob.queue) >= b.writesPending || ob.bytes+len(m.payload) > b.config.MaxQueuedBytes {
			ob.mu.Unlock()
			b.events.Dropped(id, m.topic, "the client's outbox is full: it does not read")
			return
		}
		ob.queue = append(ob.queue, m)
		ob.bytes += len(m.payload)
		start := !ob.running
		ob.running = true
		if ob.idle {
			ob.idle = false
			ob.wake <- struct{}{}
		}
		ob.mu.Unlock()
		if start {
			go b.drainOutbox(id, ob)
		}
		return
	}
}

// drainOutbox writes ob's messages to the client (or hands them to Mochi)
// until ob has stayed empty for outboxLinger, then removes it.
func (b *Broker) drainOutbox(id string, ob *outbox) {
	timer := time.NewTimer(outboxLinger)
	defer timer.Stop()
	for {
		ob.mu.Lock()
		if len(ob.queue) == 0 {
			if ob.idle || !b.running.Load() { // lingered for nothing, or stopping
				ob.running, ob.idle, ob.gone = false, false, true
				b.outboxes.CompareAndDelete(id, ob)
				ob.mu.Unlock()
				return
			}
			ob.idle = true
			ob.mu.Unlock()
			b.progressOf(id)
			timer.Reset(outboxLinger)
			select {
			case <-ob.wake:
				if !timer.Stop() {
					<-timer.C
				}
			case <-timer.C:
			}
			continue
		}
		m := ob.queue[0]
		n := copy(ob.queue, ob.queue[1:]) // in place: the queue's array serves again
		ob.queue[n] = outMsg{}
		ob.queue = ob.queue[:n]
		ob.bytes -= len(m.payload)
		ob.sending = true
		ob.mu.Unlock()
		if !b.writeDirect(id, m) {
			_ = b.server.Publish(m.topic, m.payload, false, m.qos)
		}
		ob.mu.Lock()
		ob.sending = false
		if ob.handed != nil {
			close(ob.handed)
			ob.handed = nil
		}
		ob.mu.Unlock()
		b.progressOf(id)
	}
}

// emptyOutbox drops what client id's outbox holds (its session is being
// discarded) and returns a channel closed once the message being handed to
// Mochi, if any, has been given: until then it may still land in the
// session.
func (b *Broker) emptyOutbox(id string) (handing <-chan struct{}) {
	v, ok := b.outboxes.Load(id)
	if !ok {
		return nil
	}
	ob := v.(*outbox)
	ob.mu.Lock()
	defer ob.mu.Unlock()
	clear(ob.queue)
	ob.queue, ob.bytes = ob.queue[:0], 0
	if !ob.sending {
		return nil
	}
	if ob.handed == nil {
		ob.handed = make(chan struct{})
	}
	return ob.handed
}

// wakeOutboxes ends the linger of every outbox's goroutine (the broker is
// stopping).
func (b *Broker) wakeOutboxes() {
	b.outboxes.Range(func(_, v any) bool {
		ob := v.(*outbox)
		ob.mu.Lock()
		if ob.idle {
			ob.idle = false
			ob.wake <- struct{}{}
		}
		ob.mu.Unlock()
		return true
	})
}

// outboxLen returns how many messages wait in client id's outbox, the one
// being handed to Mochi included.
func (b *Broker) outboxLen(id string) int {
	v, ok := b.outboxes.Load(id)
	if !ok {
		return 0
	}
	ob := v.(*outbox)
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if ob.sending {
		return len(ob.queue) + 1
	}
	return len(ob.queue)
}

// progressOf wakes whoever waits for client id's queues to shrink.
func (b *Broker) progressOf(id string) {
	if cl, ok := b.server.Clients.Get(id); ok {
		if c, ok := b.connOf(cl); ok {
			c.progress()
		}
	}
}

// flushOutboxes waits until every outbox is empty (or its client has no
// connection left to write to), or ctx ends.
func (b *Broker) flushOutboxes(ctx context.Context) error {
	for {
		var wait <-chan struct{}
		b.outboxes.Range(func(k, _ any) bool {
			id := k.(string)
			cl, ok := b.server.Clients.Get(id)
			c, connected := b.connOf(cl)
			if !ok || !connected || cl.Closed() {
				return true // nobody to write to: what it holds is dropped with it
			}
			w := c.waitProgress()
			if b.outboxLen(id) > 0 {
				wait = w
				return false
			}
			return true
		})
		if wait == nil {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
