package mqttspec

import (
	"github.com/google/uuid"
)

// runSubscribe registers a subscription to the entity's changes that match
// the request's filters. It holds the entity's commit lock until its answer
// is published, so the answer always precedes the subscription's first
// notification. With options.snapshot the answer also holds the records
// matching now, read under that lock: every later change arrives as a
// notification and none is lost between the snapshot and the first one.
func (h *Handler) runSubscribe(r *request) (*result, error) {
	client, m := r.client, r.model
	if limit := h.config.Limits.MaxSubscriptionsPerClient; client.SubscriptionCount() >= limit {
		return nil, NewError(CodeSubscriptionLimit, "a client may hold at most %d subscriptions", limit)
	}
	if limit := h.config.Limits.MaxSubscriptions; h.subs.Count() >= limit {
		return nil, NewError(CodeSubscriptionLimit, "the server holds %d subscriptions, its limit", limit)
	}
	sub := &Subscription{
		ID: "sub-" + uuid.NewString(), ConnectionID: client.ID,
		Schema: m.Schema, Entity: m.Entity, Options: r.hctx.Options, model: m, where: r.where,
	}
	r.hctx.Subscription = sub
	data := map[string]any{"subscription_id": sub.ID, "notify_topic": h.notifyTopic(client.ID, sub.ID)}
	o := h.order(m)
	o.mu.Lock()
	res := &result{release: o.mu.Unlock}
	if h.feed != nil {
		// Changes the feed has not handed out yet but that are committed
		// now are in the snapshot read next: they are not notified to
		// this subscription. (One committing between the two reads is in
		// both: notified again, which changes nothing in a view.)
		skip, err := h.feed.visibleAfter(r.ctx, h.feed.watermark())
		if err != nil {
			return res, err
		}
		sub.feedSkip = skip
	}
	if r.query != nil {
		rows, meta, err := h.readPage(r.ctx, h.db, r.query)
		if err != nil {
			return res, err
		}
		records := projectResult(rows, r.query.Columns)
		if err := h.fitsAnswer(records); err != nil {
			return res, err
		}
		data["records"] = records
		res.meta = meta
	}
	if g := h.group; g != nil {
		if err := g.saveSubscription(r.ctx, sub, client); err != nil {
			return res, err
		}
	}
	h.subs.add(sub)
	client.AddSubscription(sub)
	res.undo = func() {
		h.subs.Unsubscribe(sub.ID)
		client.RemoveSubscription(sub.ID)
		if g := h.group; g != nil {
			g.deleteSubscriptions(sub.ID)
		}
	}
	r.hctx.Result = data
	return res, nil
}

// runUnsubscribe removes one of the client's own subscriptions. It is
// removed under the entity's commit lock, held until the answer is
// published, once the notifications of earlier commits have left: no
// notification of the subscription follows its answer, and an
// AfterUnsubscribe hook that refuses restores it before any change could be
// missed.
func (h *Handler) runUnsubscribe(r *request) (*result, error) {
	sub, client := r.sub, r.client
	res := &result{}
	if sub.model != nil {
		o := h.order(sub.model)
		o.mu.Lock()
		res.release = o.mu.Unlock
		// Changes committed before this point may still be on their way
		// to the subscription: they leave first, before it ends.
		o.lane.drain()
	}
	h.subs.Unsubscribe(sub.ID)
	client.RemoveSubscription(sub.ID)
	if g := h.group; g != nil {
		g.deleteSubscriptions(sub.ID)
	}
	res.undo = func() {
		h.subs.add(sub)
		client.AddSubscription(sub)
		if g := h.group; g != nil {
			_ = g.saveSubscription(r.ctx, sub, client)
		}
	}
	r.hctx.Result = map[string]any{"subscription_id": sub.ID}
	return res, nil
}
