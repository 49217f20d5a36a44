package mochi

import (
	"context"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttspec/mqttspec/internal/broker"
)

// conn is what the broker keeps for one accepted connection, from its
// CONNECT to its end.
type conn struct {
	session     broker.Session
	cl          *mqtt.Client
	established atomic.Bool  // OnSessionEstablished ran
	connacked   atomic.Bool  // a successful CONNACK was written
	queuedBytes atomic.Int64 // payload bytes of the QoS 1/2 messages held for it
	// subsChanged counts the changes of the client's subscriptions;
	// private holds those that can match its private topics as of one
	// count (see privateGrants).
	subsChanged atomic.Uint64
	private     atomic.Pointer[grants]

	mu          sync.Mutex
	sizes       map[uint16]int  // payload bytes of the held messages, by packet id
	wake        chan struct{}   // closed when the client's queues shrink; nil when nobody waits
	subscribing map[string]bool // the filters of the SUBSCRIBE being processed
}

// subscribingTo reports whether filter is one of the SUBSCRIBE being
// processed (and not a topic delivered meanwhile).
func (c *conn) subscribingTo(filter string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subscribing[filter]
}

// progress wakes whoever waits for the client's queues to shrink.
func (c *conn) progress() {
	c.mu.Lock()
	if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
	c.mu.Unlock()
}

// waitProgress returns a channel closed at the client's next progress.
func (c *conn) waitProgress() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wake == nil {
		c.wake = make(chan struct{})
	}
	return c.wake
}

// connOf returns what the broker keeps for cl: its connection's, or,
// once the connection has ended, its kept session's (see keepSession).
func (b *Broker) connOf(cl *mqtt.Client) (*conn, bool) {
	if cl == nil {
		return nil, false
	}
	if v, ok := b.conns.Load(cl); ok {
		return v.(*conn), true
	}
	if v, ok := b.kept.Load(cl.ID); ok && v.(*conn).cl == cl {
		return v.(*conn), true
	}
	return nil, false
}

// keepSession keeps c's accounting of the messages held for its client
// after the connection ended with the session kept: deliveries to the
// session while it has no connection count against the same limits, and
// a resumed session (resumeSession) carries the count on.
// A connection taken over by another is not kept: the newcomer has the
// session.
func (b *Broker) keepSession(c *conn) {
	if cur, ok := b.server.Clients.Get(c.cl.ID); ok && cur == c.cl && !c.cl.IsTakenOver() {
		b.kept.Store(c.cl.ID, c)
	}
}

// resumeSession moves the accounting of client id's kept session to c, the
// connection that resumes it; a connection that does not resume it (clean
// session, another principal) just ends it.
func (b *Broker) resumeSession(id string, c *conn, resumes bool) {
	v, ok := b.kept.LoadAndDelete(id)
	if !ok || !resumes {
		return
	}
	old := v.(*conn)
	old.mu.Lock()
	defer old.mu.Unlock()
	c.sizes = maps.Clone(old.sizes)
	c.queuedBytes.Store(old.queuedBytes.Load())
}

// unsent returns how many packets Mochi has queued for cl and not yet
// written out: those in its write queue and the one being written. Mochi
// keeps the count unexported (it moves it with atomic adds), so it is read
// through its address; TestUnsentReadsMochisCount pins the field.
func unsent(cl *mqtt.Client) int {
	f := reflect.ValueOf(&cl.State).Elem().FieldByName("outboundQty")
	if !f.IsValid() || f.Kind() != reflect.Int32 {
		return 0
	}
	return int(atomic.LoadInt32((*int32)(unsafe.Pointer(f.UnsafeAddr()))))
}

// AwaitRoom waits until the client's write queue is less than half full.
// The core calls it before running a request of the client, so a client
// that does not read its answers stops being served (and, its request
// queue filling up, stops being read) instead of having its answers
// dropped. The write queue drains as the client reads, whatever it sends,
// so the wait cannot deadlock on the client's own acknowledgements (those
// are read only after its pending requests). It returns at once for a
// client that is not connected, when the connection ends, and with ctx's
// error when ctx ends first.
func (b *Broker) AwaitRoom(ctx context.Context, clientID string) error {
	cl, ok := b.server.Clients.Get(clientID)
	if !ok || cl.Closed() {
		return nil
	}
	c, ok := b.connOf(cl)
	if !ok {
		return nil
	}
	// Mochi uncounts a packet it wrote only after it has told the hooks
	// (progress), so the last write before there is room gives no signal:
	// while packets are counted, look again after a short, growing pause.
	poll := time.Millisecond
	for {
		wait := c.waitProgress()
		if b.hasRoom(cl) {
			return nil
		}
		timer := time.NewTimer(poll)
		select {
		case <-wait:
		case <-timer.C:
			poll = min(2*poll, 50*time.Millisecond)
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
		timer.Stop()
		if cl.Closed() {
			return nil
		}
	}
}

// hasRoom reports whether cl's write queue and its outbox are below half
// full.
func (b *Broker) hasRoom(cl *mqtt.Client) bool {
	return unsent(cl) < b.writesPending/2 && b.outboxLen(cl.ID) < b.writesPending/2
}

// Backlogged reports whether the client holds half of its QoS 1/2 window
// in unacknowledged messages. Its acknowledgements may be stuck behind its
// own pipelined requests, so the core does not wait for them: it answers
// such a client "overloaded" instead of taking more work from it.
func (b *Broker) Backlogged(clientID string) bool {
	cl, ok := b.server.Clients.Get(clientID)
	return ok && !cl.Closed() && cl.State.Inflight.Len() >= b.config.MaxQueuedMessages/2
}

// Flush waits until no connected client has messages waiting in its
// outbox or packets in its write queue, or ctx ends.
func (b *Broker) Flush(ctx context.Context) error {
	if err := b.flushOutboxes(ctx); err != nil {
		return err
	}
	for _, cl := range b.server.Clients.GetAll() {
		c, ok := b.connOf(cl)
		if !ok {
			continue
		}
		for !cl.Closed() && unsent(cl) > 0 {
			// Mochi counts a packet as sent only after it has told the
			// hooks (progress): the last one gives no signal, so look
			// again shortly as well.
			select {
			case <-c.waitProgress():
			case <-time.After(2 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// deliverable decides, in the ACL check Mochi makes before it queues a
// message for cl, whether the session can take one more: not when its
// QoS 1/2 window or its queued bytes are full (Mochi would drop the
// message at a full window without telling anyone). A refusal is reported
// as a drop.
func (b *Broker) deliverable(c *conn, cl *mqtt.Client, topic string) bool {
	switch {
	case cl.State.Inflight.Len() >= b.config.MaxQueuedMessages:
		b.events.Dropped(cl.ID, topic, "the session holds MaxQueuedMessages messages")
		return false
	case c.queuedBytes.Load() >= int64(b.config.MaxQueuedBytes):
		b.events.Dropped(cl.ID, topic, "the session holds MaxQueuedBytes bytes")
		return false
	}
	return true
}

// queued counts the payload of a QoS 1/2 message now held for cl, by its
// packet id (resends are not counted again); done uncounts it once its
// packet id completes or is dropped. Mochi reports the completion with the
// acknowledgement, which has no payload, hence the sizes by id. Mochi
// keeps the client's packet ids and its own in one table, so an inbound
// flow with the id of a held message replaces that message there; done
// uncounts it then too, as Mochi no longer holds it.
func (b *Broker) queued(cl *mqtt.Client, pk packets.Packet, resends int) {
	c, ok := b.connOf(cl)
	if !ok || resends > 0 || pk.FixedHeader.Type != packets.Publish {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sizes == nil {
		c.sizes = map[uint16]int{}
	}
	if old, held := c.sizes[pk.PacketID]; held {
		c.queuedBytes.Add(-int64(old))
	}
	c.sizes[pk.PacketID] = len(pk.Payload)
	c.queuedBytes.Add(int64(len(pk.Payload)))
}

func (b *Broker) done(cl *mqtt.Client, pk packets.Packet) {
	c, ok := b.connOf(cl)
	if !ok {
		return
	}
	c.mu.Lock()
	if size, held := c.sizes[pk.PacketID]; held {
		delete(c.sizes, pk.PacketID)
		c.queuedBytes.Add(-int64(size))
	}
	c.mu.Unlock()
	c.progress()
}

// discardSession drops what Mochi keeps for client id: the newcomer is
// another principal and may not resume it. A session whose connection has
// ended is removed, so the newcomer's CONNACK says no session is present;
// a live one is emptied here and taken over (disconnected) by Mochi.
// Messages still waiting in the id's outbox are dropped with it: handed
// over later, they would reach whoever subscribes under the id by then.
func (b *Broker) discardSession(id string) {
	existing, ok := b.server.Clients.Get(id)
	if !ok {
		return
	}
	b.server.UnsubscribeClient(existing)
	b.kept.Delete(id)
	if handing := b.emptyOutbox(id); handing != nil {
		existing.Stop(packets.ErrSessionTakenOver) // a write to it blocked on a full socket ends now
		<-handing
	}
	existing.ClearInflights()
	if existing.Closed() {
		b.server.Clients.Delete(id)
	}
}

// aborted cleans up after a connection that ended before its session was
// established (for example a CONNECT followed by a reset, where writing
// CONNACK fails): Mochi fires no disconnect hook then and, for a clean
// session, leaves the client in its table.
//
// A connection whose CONNACK went out but which closed before Mochi ran
// OnSessionEstablished (another connection took its id over meanwhile)
// is not aborted: Mochi goes on to establish it, runs its will and reports
// its end. It is looked at again after abortGrace, in case Mochi gave up
// in between (resending a resumed session's messages failed).
func (b *Broker) aborted(cl *mqtt.Client) {
	c, ok := b.connOf(cl)
	if !ok || c.established.Load() {
		return // a normal end: OnDisconnect reports it
	}
	if c.connacked.Load() {
		time.AfterFunc(abortGrace, func() {
			if !c.established.Load() {
				b.forgetAborted(cl, c)
			}
		})
		return
	}
	b.forgetAborted(cl, c)
}

// abortGrace is how long a closed connection whose CONNACK went out may
// take to be established before it counts as aborted.
const abortGrace = 2 * time.Second

// forgetAborted drops what the broker keeps for a connection that ended
// without an established session, and reports its end.
func (b *Broker) forgetAborted(cl *mqtt.Client, c *conn) {
	if _, ok := b.conns.LoadAndDelete(cl); !ok {
		return // reported already
	}
	if cur, ok := b.server.Clients.Get(cl.ID); ok && cur == cl && !persistent(cl) {
		b.server.UnsubscribeClient(cl)
		b.server.Clients.Delete(cl.ID)
	}
	b.events.Disconnected(c.session, mqtt.ErrConnectionClosed, persistent(cl))
}

// persistent reports whether cl asked the broker to keep its session.
func persistent(cl *mqtt.Client) bool {
	if cl.Properties.ProtocolVersion == 5 {
		return cl.Properties.Props.SessionExpiryInterval > 0
	}
	return !cl.Properties.Clean
}
