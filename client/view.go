package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mqttspec/mqttspec"
)

// OperationSnapshot is the Operation of a Change that replaces the whole
// contents of a view: the view found a gap in its notifications (or the
// broker forgot the session) and subscribed again with a fresh snapshot.
const OperationSnapshot mqttspec.OperationType = "snapshot"

// Change is one change of a live view, in the order of the server's
// commits.
type Change struct {
	// Operation is create, update or delete, or OperationSnapshot.
	Operation mqttspec.OperationType
	// Record is the record after the change (the deleted record for a
	// delete); Previous the record before an update.
	Record   json.RawMessage
	Previous json.RawMessage
	// Matches is false when an update moved the record out of the view's
	// filters: remove it from the view.
	Matches bool
	// Seq is the notification's number within the view's subscription.
	Seq uint64
	// Records and Page are the view's new contents, for OperationSnapshot;
	// Reason says why it was taken.
	Records []json.RawMessage
	Page    Page
	Reason  string
}

// Decode decodes the change's record into into.
func (ch Change) Decode(into any) error { return json.Unmarshal(ch.Record, into) }

// note is a notification as it arrives.
type note struct {
	Operation mqttspec.OperationType `json:"operation"`
	Data      json.RawMessage        `json:"data"`
	Previous  json.RawMessage        `json:"previous"`
	Matches   bool                   `json:"matches"`
	Seq       uint64                 `json:"seq"`
}

// View is a live view of the records of an entity that match filters: the
// snapshot the subscription started with (Records), then every change
// after it (Changes), in commit order and without gaps. A View is safe for
// concurrent use.
type View struct {
	c              *Client
	schema, entity string
	opts           mqttspec.RequestOptions
	records        []json.RawMessage
	page           Page
	out            chan Change
	done           chan struct{}

	mu        sync.Mutex
	sub       string // the current subscription id; "" while resubscribing
	last      uint64 // seq of the last change handed over
	ahead     map[uint64]*note
	gap       *time.Timer
	resyncing bool
	queue     []Change // changes the reader has not taken yet
	wake      chan struct{}
	ended     bool
	err       error
}

// Subscribe starts a live view of schema.entity: the records matching
// filters now (paged like a read by opts' limit, sort and projection; nil
// opts takes the server's default page), then their changes. filters
// replace opts.Filters when not nil. Read the changes from Changes until
// the view ends; Close it when done.
func (c *Client) Subscribe(ctx context.Context, schema, entity string, filters []mqttspec.FilterOption, opts *mqttspec.RequestOptions) (*View, error) {
	v := &View{c: c, schema: schema, entity: entity, out: make(chan Change), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	if opts != nil {
		v.opts = *opts
	}
	if filters != nil {
		v.opts.Filters = filters
	}
	v.opts.Snapshot = true
	records, page, err := c.subscribeView(ctx, v, "")
	if err != nil {
		return nil, err
	}
	v.records, v.page = records, *page
	c.mu.Lock()
	c.open[v] = struct{}{}
	c.mu.Unlock()
	go v.pump()
	return v, nil
}

// subscribeView subscribes v with a snapshot. The answer is applied on
// the message router, before any notification of the new subscription:
// the view follows it from then on, and a resubscribe (reason set) hands
// the snapshot over as a Change.
func (c *Client) subscribeView(ctx context.Context, v *View, reason string) ([]json.RawMessage, *Page, error) {
	var (
		records []json.RawMessage
		page    *Page
		fail    error
	)
	req := request{Type: mqttspec.MessageTypeSubscription, Operation: mqttspec.OperationSubscribe, Schema: v.schema, Entity: v.entity, Options: &v.opts}
	_, err := c.do(ctx, req, func(a *answer) {
		var data struct {
			SubscriptionID string            `json:"subscription_id"`
			Records        []json.RawMessage `json:"records"`
		}
		if fail = json.Unmarshal(a.Data, &data); fail == nil && data.SubscriptionID == "" {
			fail = errors.New("no subscription_id")
		}
		if fail != nil {
			return
		}
		records, page = data.Records, pageOf(a.Metadata)
		c.mu.Lock()
		c.views[data.SubscriptionID] = v
		c.mu.Unlock()
		v.mu.Lock()
		defer v.mu.Unlock()
		v.sub, v.last, v.ahead, v.resyncing = data.SubscriptionID, 0, nil, false
		if reason != "" {
			clear(v.queue)
			v.queue = v.queue[:0] // the snapshot supersedes what the reader has not taken
			v.pushLocked(Change{Operation: OperationSnapshot, Records: records, Page: *page, Reason: reason})
		}
	})
	if err == nil && fail != nil {
		err = fmt.Errorf("mqttspec client: subscribe %s.%s: bad answer: %w", v.schema, v.entity, fail)
	}
	if err != nil {
		if page != nil { // answered after the call gave up: end that subscription
			v.mu.Lock()
			sub := v.sub
			v.sub = ""
			v.mu.Unlock()
			c.forget(sub)
			go c.unsubscribe(sub)
		}
		return nil, nil, err
	}
	return records, page, nil
}

// ID returns the id of the view's current subscription (it changes when
// the view subscribes again), or "" while it is subscribing again.
func (v *View) ID() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.sub
}

// Records returns the records the view started with; Page their metadata
// (Page().Partial() reports a snapshot cut by the page limit).
func (v *View) Records() []json.RawMessage { return v.records }

// Page returns the metadata of the view's first snapshot.
func (v *View) Page() Page { return v.page }

// Changes returns the view's changes, in order. The channel is closed when
// the view ends (Close, the client's Close, or Err).
func (v *View) Changes() <-chan Change { return v.out }

// Err returns why the view ended on its own (the server refused to
// subscribe it again), or nil.
func (v *View) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// Close unsubscribes the view and closes its Changes channel.
func (v *View) Close(ctx context.Context) error {
	v.mu.Lock()
	sub, ended := v.sub, v.ended
	v.mu.Unlock()
	if ended {
		return nil
	}
	v.end(nil)
	if sub == "" {
		return nil
	}
	_, err := v.c.do(ctx, request{Type: mqttspec.MessageTypeSubscription, Operation: mqttspec.OperationUnsubscribe, SubscriptionID: sub}, nil)
	return err
}

// end stops the view: nothing more is handed over.
func (v *View) end(err error) {
	v.mu.Lock()
	if v.ended {
		v.mu.Unlock()
		return
	}
	v.ended, v.err = true, err
	if v.gap != nil {
		v.gap.Stop()
	}
	sub := v.sub
	v.mu.Unlock()
	close(v.done)
	v.c.forget(sub)
	v.c.mu.Lock()
	delete(v.c.open, v)
	v.c.mu.Unlock()
}

// onNote takes a notification of subscription sub, on the message router.
func (v *View) onNote(sub string, n *note) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ended || sub != v.sub {
		return
	}
	switch {
	case n.Seq <= v.last:
		return // sent again after a reconnect
	case n.Seq == v.last+1:
		v.applyLocked(n)
		for {
			next, ok := v.ahead[v.last+1]
			if !ok || v.sub != sub {
				break
			}
			delete(v.ahead, v.last+1)
			v.applyLocked(next)
		}
		if len(v.ahead) == 0 && v.gap != nil {
			v.gap.Stop()
			v.gap = nil
		}
	default: // overtook one still missing: wait for it, a while
		if v.ahead == nil {
			v.ahead = map[uint64]*note{}
		}
		v.ahead[n.Seq] = n
		if len(v.ahead) > v.c.cfg.viewBuffer {
			v.resyncLocked("too many notifications arrived ahead of a missing one")
			return
		}
		if v.gap == nil {
			v.gap = time.AfterFunc(v.c.cfg.gapWait, func() { v.gapExpired(sub) })
		}
	}
}

// applyLocked hands n over as a Change.
func (v *View) applyLocked(n *note) {
	v.last = n.Seq
	v.pushLocked(Change{Operation: n.Operation, Record: n.Data, Previous: n.Previous, Matches: n.Matches, Seq: n.Seq})
}

// pushLocked queues ch for the reader. A reader that is viewBuffer changes
// behind gets a fresh snapshot instead.
func (v *View) pushLocked(ch Change) {
	if len(v.queue) >= v.c.cfg.viewBuffer {
		clear(v.queue)
		v.queue = v.queue[:0]
		v.resyncLocked("the reader fell behind")
		return
	}
	v.queue = append(v.queue, ch)
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// gapExpired takes a fresh snapshot when the missing notification of sub
// has not arrived.
func (v *View) gapExpired(sub string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gap = nil
	if !v.ended && v.sub == sub && len(v.ahead) > 0 {
		v.resyncLocked(fmt.Sprintf("notification %d did not arrive", v.last+1))
	}
}

// resync makes the view subscribe again with a fresh snapshot.
func (v *View) resync(reason string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.resyncLocked(reason)
}

// resyncLocked stops following the current subscription and subscribes
// again in the background; the snapshot arrives as a Change.
func (v *View) resyncLocked(reason string) {
	if v.ended || v.resyncing {
		return
	}
	v.resyncing = true
	old := v.sub
	v.sub, v.ahead = "", nil
	if v.gap != nil {
		v.gap.Stop()
		v.gap = nil
	}
	go v.resubscribe(old, reason)
}

// resubscribe ends subscription old and subscribes the view again,
// retrying while the server cannot be reached. A refusal ends the view.
func (v *View) resubscribe(old, reason string) {
	c := v.c
	c.cfg.logger.Info("mqttspec client: view takes a fresh snapshot", "client", c.cfg.clientID,
		"entity", v.schema+"."+v.entity, "reason", reason)
	c.forget(old)
	go c.unsubscribe(old) // best effort; the new subscription does not wait for it
	// A request published while no handler is subscribed (both reconnect
	// after a broker restart) is dropped by the broker: each attempt waits
	// a short while at first, then longer.
	wait, patience := 100*time.Millisecond, min(time.Second, c.cfg.requestTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		_, _, err := c.subscribeView(ctx, v, reason)
		cancel()
		patience = min(2*patience, c.cfg.requestTimeout)
		var refused *mqttspec.Error
		switch {
		case err == nil:
			return
		case errors.Is(err, ErrClosed):
			return
		case errors.As(err, &refused) && refused.Code != mqttspec.CodeOverloaded && refused.Code != mqttspec.CodeTimeout:
			c.cfg.logger.Error("mqttspec client: view ended: subscribing again was refused", "client", c.cfg.clientID,
				"entity", v.schema+"."+v.entity, "error", err)
			v.end(err)
			return
		}
		c.cfg.logger.Warn("mqttspec client: view could not subscribe again; retrying", "client", c.cfg.clientID, "error", err)
		select {
		case <-time.After(wait):
		case <-v.done:
			return
		}
		wait = min(2*wait, c.cfg.maxReconnect)
	}
}

// pump hands the queued changes to the reader.
func (v *View) pump() {
	defer close(v.out)
	for {
		v.mu.Lock()
		for len(v.queue) == 0 && !v.ended {
			v.mu.Unlock()
			select {
			case <-v.wake:
			case <-v.done:
			}
			v.mu.Lock()
		}
		if v.ended {
			v.mu.Unlock()
			return
		}
		ch := v.queue[0]
		v.queue[0] = Change{}
		v.queue = v.queue[1:]
		v.mu.Unlock()
		select {
		case v.out <- ch:
		case <-v.done:
			return
		}
	}
}

// forget stops routing the notifications of subscription sub.
func (c *Client) forget(sub string) {
	if sub == "" {
		return
	}
	c.mu.Lock()
	delete(c.views, sub)
	c.mu.Unlock()
}

// unsubscribe ends subscription sub on the server, best effort (it may be
// gone already).
func (c *Client) unsubscribe(sub string) {
	if sub == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.requestTimeout)
	defer cancel()
	_, _ = c.do(ctx, request{Type: mqttspec.MessageTypeSubscription, Operation: mqttspec.OperationUnsubscribe, SubscriptionID: sub}, nil)
}
