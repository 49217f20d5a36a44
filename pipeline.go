package mqttspec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"unicode/utf8"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/internal/broker"
	"github.com/mqttspec/mqttspec/query"
)

// The request path. Every request, whatever its operation, runs through
// serve, top to bottom:
//
//	parse       the payload into a Message
//	envelope    the message's type and operation -> an operation of the table;
//	            record id, data object
//	resolve     schema/entity -> the registered model (or subscription_id ->
//	            the client's subscription)
//	BeforeHandle
//	begin       a transaction, for writes
//	Before hook of the operation
//	validate    options and data -> a validated query, filters, typed values
//	run         the operation's database work
//	After hook  (an error undoes the operation)
//	commit      writes: commit and notify under the entity's commit lock
//	respond     publish the answer on the client's response topic
//
// Operations return results; only serve publishes answers.

// request is one request on its way through serve.
type request struct {
	ctx    context.Context // the request's deadline (TimeoutConfig.Request)
	client *Client
	msg    *Message
	op     *operation
	hctx   *HookContext

	model *query.Model  // the resolved model (targetModel, targetSubscription)
	sub   *Subscription // the named subscription (targetSubscription)
	id    string        // the record a single-record operation names
	tx    adapters.Tx   // the transaction of a write

	// Set by validate after the Before hooks.
	key    any                   // id converted to the primary key's type
	query  *query.Query          // inPage: the read (by id: narrowed to the record)
	where  []query.Group         // inWhere: the filters
	values map[*query.Column]any // inData: typed column values
}

// onRequest is the edge's handler for {prefix}/+/request. It queues the
// message on its client's queue and reports whether it took it. The client
// is the connection that published it when the edge can tell (the embedded
// broker), fixed now and not looked up again later. Where the edge has
// backpressure, a full queue makes the call wait (the client's reads
// pause); elsewhere the client is answered "overloaded". Once Shutdown has
// begun, a message the edge can leave unacknowledged is refused (the
// client sends it again later); others are still taken and answered.
func (h *Handler) onRequest(m broker.Message) bool {
	clientID, ok := h.clientIDFromRequestTopic(m.Topic)
	if !ok {
		h.logger.Debug("ignoring message on malformed request topic", "topic", m.Topic)
		return true
	}
	if h.selfCheckAnswer(clientID, m.Payload) {
		return true
	}
	if g := h.group; g != nil && (!g.serves(clientID) || othersSelfCheck(m.Payload)) {
		return true // another member's client or start-up check, or this member is not serving yet
	}
	features := h.live.Load().features
	if h.draining.Load() && features.Refusable {
		h.counters.refused.Add(1)
		return false
	}
	var sender *Client
	if features.VerifiedSender {
		if sender, ok = m.Sender.(*Client); !ok || sender.ID != clientID {
			h.logger.Warn("dropped a request without a verified sender", "topic", m.Topic)
			return true
		}
	}
	live := h.live.Load()
	if live.t.Backlogged(clientID) {
		// Its acknowledgements of earlier answers are behind its requests:
		// waiting for them here would wait forever. Answered at QoS 0, which
		// needs no acknowledgement, once its write queue has room: that
		// drains as the client reads, and waiting here stops reading it.
		h.counters.overloaded.Add(1)
		resp, _ := NewErrorResponse(requestID(m.Payload), CodeOverloaded,
			"too many answers not yet acknowledged; retry later").ToJSON()
		ctx, cancel := context.WithTimeout(h.drainCtx, h.config.Timeouts.Request)
		_ = live.t.AwaitRoom(ctx, clientID)
		cancel()
		h.send(h.responseTopic(clientID), 0, resp)
		return true
	}
	payload := append([]byte(nil), m.Payload...)
	if !h.dispatch.submit(clientID, func() { h.serve(clientID, sender, payload) }, features.Backpressure) {
		if h.draining.Load() && features.Refusable { // the queue closed while the sender waited
			h.counters.refused.Add(1)
			return false
		}
		h.counters.overloaded.Add(1)
		// Answered off the edge's delivery goroutine, which must not block.
		go h.respond(clientID, NewErrorResponse(requestID(payload), CodeOverloaded,
			"too many requests pending for this client; retry later"))
	}
	return true
}

// serve runs one request from its payload to its published answer, as
// sender (nil: the client known by clientID, registered at its first
// request when the edge reports no connections).
//
// A request whose sender's session another principal has taken over in
// the meantime is dropped: neither run nor answered (its answer would go
// to the newcomer). A write the client sent again (same id and payload)
// within the deduplication window is answered with the first answer.
// Before serve runs, the dispatcher has waited until the client has room
// for its answer, so that a client that does not read is held back rather
// than losing answers (and without taking a place from other clients).
func (h *Handler) serve(clientID string, sender *Client, payload []byte) {
	if sender != nil && h.superseded(sender) {
		h.counters.superseded.Add(1)
		h.logger.Info("dropped a request of a session taken over by another principal", "client", clientID)
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.config.Timeouts.Request)
	defer cancel()
	client := sender
	if client == nil {
		if _, known := h.clients.GetClient(clientID); !known && isDisconnect(payload) {
			// The will of a client the handler has forgotten (or never
			// knew): nothing to end, and no reason to admit it first.
			resp, _ := NewResponseMessage(requestID(payload), true, nil).ToJSON()
			h.send(h.responseTopic(clientID), h.config.QoS.Response, resp)
			return
		}
		var err error
		if client, err = h.clientFor(clientID); err != nil {
			h.respond(clientID, h.errorResponse(requestID(payload), err))
			return
		}
	}
	resp, res := h.handle(ctx, client, payload)
	if res != nil && res.elsewhere {
		h.counters.duplicates.Add(1)
		return
	}
	if res != nil && res.replay != nil {
		h.counters.duplicates.Add(1)
		h.send(h.responseTopic(clientID), h.config.QoS.Response, res.replay)
		return
	}
	// A committed write's notifications are on their way before its answer
	// (in the order of its commit; earlier changes still being matched do
	// not hold the answer up).
	res.notifyChange()
	if sender != nil && h.superseded(sender) { // taken over while it ran: the answer is not the newcomer's
		h.counters.superseded.Add(1)
		h.logger.Info("withheld the answer of a session taken over by another principal", "client", clientID)
		res.finish()
		return
	}
	answer := h.respond(clientID, resp)
	if res != nil && res.change != nil && resp.Success {
		h.dedup.keep(writeKey(client, resp.ID), payload, answer)
	}
	res.finish()
}

// writeKey is the deduplication key of a write of client with request id
// id: the same client id, principal and id make the same write.
func writeKey(client *Client, id string) dedupKey {
	return dedupKey{client: client.ID, principal: client.Principal(), request: id}
}

// handle runs the request path up to the answer, which the caller
// publishes before it calls finish on the result. A write delivered again
// (see dedup.go) is not run: the result holds the first answer (replay). It never panics: a panic
// is logged with its stack and answered "internal_error".
func (h *Handler) handle(ctx context.Context, client *Client, payload []byte) (resp *ResponseMessage, res *result) {
	defer func() {
		if p := recover(); p != nil {
			res.finish()
			res = nil
			h.logger.Error("panic while handling request", "client", client.ID, "panic", p, "stack", string(debug.Stack()))
			resp = NewErrorResponse(requestID(payload), CodeInternalError, "internal error")
		}
	}()
	r, err := h.parse(ctx, client, payload)
	if err != nil {
		return h.errorResponse(requestID(payload), err), nil
	}
	if r.op.writes {
		if answer, ok := h.dedup.replay(writeKey(client, r.msg.ID), payload); ok {
			return nil, &result{replay: answer}
		}
		if g := h.group; g != nil {
			if answer, ok := g.replay(ctx, writeKey(client, r.msg.ID), payload); ok {
				return nil, &result{replay: answer}
			}
		}
	}
	res, err = h.execute(r, payload)
	if errors.Is(err, errHandledElsewhere) {
		res.finish()
		return nil, &result{elsewhere: true}
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil { // whatever failed, it failed because time ran out
			h.logger.Debug("request failed after its deadline", "request", r.msg.ID, "error", err)
			err = ctxErr
		}
		return h.errorResponse(r.msg.ID, err), res
	}
	return h.answer(r, res), res
}

// parse decodes the payload and reads its envelope: the operation of the
// table it asks for, the record it names and the shape of its data.
func (h *Handler) parse(ctx context.Context, client *Client, payload []byte) (*request, error) {
	if !utf8.Valid(payload) {
		return nil, NewError(CodeInvalidValue, "the message is not valid UTF-8 text")
	}
	msg, err := ParseMessage(payload)
	if err != nil {
		return nil, NewError(CodeInvalidJSON, "message is not a valid JSON object")
	}
	if err := msg.validate(); err != nil {
		return nil, NewError(CodeInvalidMessage, "%s", err.Error())
	}
	name, byType := typeOperations[msg.Type]
	if !byType {
		name = msg.Operation
	}
	op, ok := operations[name]
	if !ok || op.byType != byType { // "operation":"ping" on a request is not a ping
		return nil, NewError(CodeUnknownOperation, "unknown operation %q", msg.Operation)
	}
	return &request{ctx: ctx, client: client, msg: msg, op: op}, nil
}

// execute resolves the request's target and runs its operation between its
// hooks; a write commits and notifies. The result is returned also with an
// error when it holds something to release after the answer.
func (h *Handler) execute(r *request, payload []byte) (*result, error) {
	op := r.op
	if err := h.resolve(r); err != nil {
		return nil, err
	}
	r.hctx = h.requestHookContext(r)
	if op.target == targetModel {
		if err := h.hooks.Execute(BeforeHandle, r.hctx); err != nil {
			return nil, hookError(err)
		}
	}
	if err := h.envelope(r); err != nil {
		return nil, err
	}
	if op.writes {
		done, err := h.writeTurn(r.ctx)
		if err != nil {
			return nil, err
		}
		defer done() // after the rollback below
		tx, err := h.db.Begin(r.ctx)
		if err != nil {
			return nil, fmt.Errorf("begin %s: %w", r.model.Name, err)
		}
		r.tx, r.hctx.Tx = tx, tx
		defer func() { _ = tx.Rollback() }() // a no-op after Commit
	}
	if err := h.hooks.Execute(op.before, r.hctx); err != nil {
		return nil, hookError(err)
	}
	if err := h.validate(r); err != nil {
		return nil, err
	}
	res, err := op.run(h, r)
	if err != nil {
		r.hctx.Error = err
		return res, err
	}
	if err := h.hooks.Execute(op.after, r.hctx); err != nil {
		if res.undo != nil {
			res.undo()
		}
		return res, hookError(err)
	}
	if op.writes {
		if g := h.group; g != nil {
			if err := g.record(r, h.answer(r, res), payload); err != nil {
				return res, err
			}
		}
		publish, err := h.commit(r.tx, res.change)
		if err != nil {
			return res, err
		}
		res.notify = publish
	}
	return res, nil
}

// resolve finds what the request names: the registered model of its schema
// and entity, or the client's subscription of its subscription_id.
func (h *Handler) resolve(r *request) (err error) {
	switch r.op.target {
	case targetModel:
		r.model, err = h.catalog.resolve(r.msg.Schema, r.msg.Entity)
	case targetSubscription:
		subID := r.msg.SubscriptionID
		if data, ok := r.msg.Data.(map[string]any); ok && subID == "" {
			subID, _ = data["subscription_id"].(string)
		}
		if subID == "" {
			return NewError(CodeInvalidMessage, "%s needs subscription_id", r.op.name)
		}
		sub, ok := r.client.GetSubscription(subID)
		if !ok {
			return NewError(CodeNotFound, "subscription %s not found", subID)
		}
		r.sub, r.model = sub, sub.model
	}
	return err
}

// envelope checks what the operation needs from the message before any
// hook of the operation runs: the record it names and data of the right
// shape.
func (h *Handler) envelope(r *request) error {
	if r.model == nil || r.op.target != targetModel {
		return nil
	}
	if r.op.needsData {
		if err := requireDataObject(r.hctx); err != nil {
			return err
		}
	}
	if r.op.record == recordNone {
		return nil
	}
	id, err := recordID(r.msg, r.model)
	if err != nil {
		return err
	}
	if r.op.record == recordRequired && id == "" {
		return NewError(CodeInvalidMessage, "%s needs record_id or data.%s", r.op.name, r.model.PrimaryKey.JSONName)
	}
	r.id, r.hctx.ID = id, id
	return nil
}

// requestHookContext builds the HookContext shared by every hook of r.
func (h *Handler) requestHookContext(r *request) *HookContext {
	hctx := &HookContext{
		Context:   r.ctx,
		Handler:   h,
		Client:    r.client,
		Message:   r.msg,
		Operation: r.op.name,
		Data:      r.msg.Data,
		Metadata:  map[string]any{"mqtt_client": r.client},
	}
	switch {
	case r.sub != nil:
		hctx.Schema, hctx.Entity, hctx.Options, hctx.Subscription = r.sub.Schema, r.sub.Entity, r.sub.Options, r.sub
	default:
		hctx.Options = r.msg.Options.Clone()
	}
	if m := r.model; m != nil {
		hctx.Schema, hctx.Entity, hctx.TableName = m.Schema, m.Entity, m.Table
		hctx.Model, hctx.ModelPtr = m.New(), m.New()
	}
	return hctx
}

// answer builds the successful response of r from the hooks' view of the
// result.
func (h *Handler) answer(r *request, res *result) *ResponseMessage {
	if res.pong {
		return &ResponseMessage{ID: r.msg.ID, Type: MessageTypePong, Success: true, Timestamp: nowUTC()}
	}
	resp := NewResponseMessage(r.msg.ID, true, projectResult(r.hctx.Result, res.columns))
	resp.Metadata = res.meta
	return resp
}

// respond publishes resp on the client's response topic and returns what
// it published. An answer larger than LimitConfig.MaxResponseBytes is
// replaced by a response_too_large error.
func (h *Handler) respond(clientID string, resp *ResponseMessage) []byte {
	payload, err := resp.ToJSON()
	switch {
	case err != nil:
		h.logger.Error("cannot encode response", "client", clientID, "error", err)
		payload, _ = NewErrorResponse(resp.ID, CodeInternalError, "response could not be encoded").ToJSON()
	case len(payload) > h.config.Limits.MaxResponseBytes:
		payload, _ = NewErrorResponse(resp.ID, CodeResponseTooLarge, fmt.Sprintf(
			"the answer would be larger than %d bytes; ask for fewer records or columns", h.config.Limits.MaxResponseBytes)).ToJSON()
	}
	h.send(h.responseTopic(clientID), h.config.QoS.Response, payload)
	return payload
}

// send publishes payload on topic through the edge.
func (h *Handler) send(topic string, qos byte, payload []byte) {
	live := h.live.Load()
	if live == nil {
		return
	}
	if err := live.t.Publish(topic, qos, payload); err != nil {
		h.logger.Warn("publish failed", "topic", topic, "error", err)
	}
}

// fitsAnswer refuses records that would make an answer larger than
// LimitConfig.MaxResponseBytes, before anything takes effect.
func (h *Handler) fitsAnswer(records any) error {
	b, err := json.Marshal(records)
	if err != nil {
		return fmt.Errorf("encode records: %w", err)
	}
	if limit := h.config.Limits.MaxResponseBytes; len(b) > limit {
		return NewError(CodeResponseTooLarge, "the answer would be larger than %d bytes; ask for fewer records or columns", limit)
	}
	return nil
}

// recordID returns the id a request names: record_id, or the primary key
// (by JSON or column name) inside data. Empty when there is none.
func recordID(msg *Message, m *query.Model) (string, error) {
	if msg.RecordID != "" {
		return msg.RecordID, nil
	}
	data, ok := msg.Data.(map[string]any)
	if !ok {
		return "", nil
	}
	for _, key := range []string{m.PrimaryKey.JSONName, m.PrimaryKey.Name} {
		if v, ok := data[key]; ok && v != nil {
			switch v := v.(type) {
			case string:
				return v, nil
			case json.Number:
				return v.String(), nil
			default:
				return "", NewError(CodeInvalidValue, "%s must be a string or a number", key)
			}
		}
	}
	return "", nil
}

// requireDataObject refuses a create or update whose data is not an object.
func requireDataObject(hctx *HookContext) error {
	if _, ok := hctx.Data.(map[string]any); !ok {
		return NewError(CodeInvalidMessage, "%s needs \"data\" to be a JSON object", hctx.Operation)
	}
	return nil
}
