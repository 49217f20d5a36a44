package mqttspec

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/mqttspec/mqttspec/adapters"
)

// handleSubscribe registers a subscription to the entity's changes that
// match the request's filters. With options.snapshot the answer also holds
// the records matching now, read while no write of the entity can commit,
// so that every later change arrives as a notification and none is lost
// between the snapshot and the first notification.
func (h *Handler) handleSubscribe(hctx *HookContext, m *adapters.Model) (*ResponseMessage, error) {
	client := hctx.Client
	if err := h.hooks.Execute(BeforeSubscribe, hctx); err != nil {
		return nil, hookError(err)
	}
	where, err := adapters.BuildWhere(m, hctx.Options.Filters)
	if err != nil {
		return nil, err
	}
	if max := h.config.Limits.MaxSubscriptionsPerClient; client.SubscriptionCount() >= max {
		return nil, NewError(CodeSubscriptionLimit, "a client may hold at most %d subscriptions", max)
	}
	sub := &Subscription{
		ID: "sub-" + uuid.NewString(), ConnectionID: client.ID,
		Schema: m.Schema, Entity: m.Entity, Options: hctx.Options, model: m, where: where,
	}
	hctx.Subscription = sub
	data := map[string]any{"subscription_id": sub.ID, "notify_topic": h.notifyTopic(client.ID, sub.ID)}

	if !hctx.Options.Snapshot {
		return h.registerSubscription(hctx, sub, data, nil)
	}
	q, err := adapters.BuildQuery(m, hctx.Options, h.limits())
	if err != nil {
		return nil, err
	}
	mu := h.commitLock(m)
	mu.Lock()
	defer mu.Unlock()
	rows, err := h.db.Find(hctx.Context, q)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", m.Name, err)
	}
	if rows == nil {
		rows = []any{}
	}
	total, err := h.total(hctx, q, len(rows))
	if err != nil {
		return nil, err
	}
	data["records"] = projectAll(rows, q.Columns)
	meta := map[string]any{"total": total, "count": len(rows), "limit": q.Limit, "offset": q.Offset}
	resp, err := h.registerSubscription(hctx, sub, data, meta)
	if err != nil {
		return nil, err
	}
	// Sent before the commit lock is released: the answer reaches the
	// client ahead of any notification of this subscription.
	h.respond(client.ID, resp)
	return nil, nil
}

// registerSubscription makes sub live and runs the AfterSubscribe hooks; a
// hook error withdraws the subscription.
func (h *Handler) registerSubscription(hctx *HookContext, sub *Subscription, data, meta map[string]any) (*ResponseMessage, error) {
	h.subs.add(sub)
	hctx.Client.AddSubscription(sub)
	hctx.Result = data
	if err := h.hooks.Execute(AfterSubscribe, hctx); err != nil {
		h.subs.Unsubscribe(sub.ID)
		hctx.Client.RemoveSubscription(sub.ID)
		return nil, hookError(err)
	}
	resp := NewResponseMessage(hctx.Message.ID, true, data)
	resp.Metadata = meta
	return resp, nil
}

// handleUnsubscribe removes one of the client's own subscriptions, named by
// subscription_id at the top level or inside data.
func (h *Handler) handleUnsubscribe(client *Client, msg *Message) *ResponseMessage {
	subID := msg.SubscriptionID
	if data, ok := msg.Data.(map[string]any); ok && subID == "" {
		subID, _ = data["subscription_id"].(string)
	}
	if subID == "" {
		return NewErrorResponse(msg.ID, CodeInvalidMessage, "unsubscribe needs subscription_id")
	}
	sub, ok := client.GetSubscription(subID)
	if !ok {
		return NewErrorResponse(msg.ID, CodeNotFound, fmt.Sprintf("subscription %s not found", subID))
	}
	hctx := &HookContext{
		Context: h.ctx, Handler: h, Client: client, Message: msg, Operation: OperationUnsubscribe,
		Schema: sub.Schema, Entity: sub.Entity, Options: sub.Options, Subscription: sub,
		Metadata: map[string]any{"mqtt_client": client},
	}
	if err := h.hooks.Execute(BeforeUnsubscribe, hctx); err != nil {
		return h.errorResponse(msg.ID, hookError(err))
	}
	// Removed under the commit lock: no notification of this subscription
	// can be published after the answer below.
	if sub.model != nil {
		mu := h.commitLock(sub.model)
		mu.Lock()
		h.subs.Unsubscribe(subID)
		mu.Unlock()
	} else {
		h.subs.Unsubscribe(subID)
	}
	client.RemoveSubscription(subID)
	if err := h.hooks.Execute(AfterUnsubscribe, hctx); err != nil {
		h.logger.Warn("AfterUnsubscribe hook failed", "subscription", subID, "error", err)
	}
	return NewResponseMessage(msg.ID, true, map[string]any{"subscription_id": subID})
}
