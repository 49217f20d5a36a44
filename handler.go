package mqttspec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"gorm.io/gorm"

	"github.com/mqttspec/mqttspec/adapters"
)

// Handler serves database operations and change subscriptions over MQTT.
// Create one with a constructor, register models and hooks, then Start it.
// All methods are safe for concurrent use.
type Handler struct {
	db       adapters.Database
	registry adapters.ModelRegistry
	config   *Config
	hooks    *HookRegistry
	logger   *slog.Logger

	clients  *ClientManager
	subs     *SubscriptionManager
	models   sync.Map // registry name -> *adapters.Model, for custom registries
	commitMu sync.Map // model name -> *sync.Mutex ordering commits and notifications

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex // guards state changes (Start, Shutdown)
	state    handlerState
	broker   BrokerInterface
	dispatch *dispatcher
	// live is the started broker, read without mu by the request path so
	// that Shutdown can wait for running requests while holding mu.
	live atomic.Pointer[BrokerInterface]
}

type handlerState int

const (
	stateNew handlerState = iota
	stateRunning
	stateStopped
)

// NewHandler returns a handler for db and registry configured by config
// (nil means DefaultConfig()). Zero fields of config take their defaults;
// config is copied, so later changes to it have no effect.
func NewHandler(db adapters.Database, registry adapters.ModelRegistry, config *Config) (*Handler, error) {
	cfg := DefaultConfig()
	if config != nil {
		c := *config
		cfg = &c
	}
	return newHandler(db, registry, cfg, nil)
}

// NewHandlerWithGORM returns a handler that reaches the database through
// GORM, with a new model registry.
func NewHandlerWithGORM(db *gorm.DB, opts ...Option) (*Handler, error) {
	if db == nil {
		return nil, ErrNoDatabase
	}
	return NewHandlerWithDatabase(adapters.NewGormAdapter(db), adapters.NewModelRegistry(), opts...)
}

// NewHandlerWithBun returns a handler that reaches the database through
// Bun, with a new model registry.
func NewHandlerWithBun(db *bun.DB, opts ...Option) (*Handler, error) {
	if db == nil {
		return nil, ErrNoDatabase
	}
	return NewHandlerWithDatabase(adapters.NewBunAdapter(db), adapters.NewModelRegistry(), opts...)
}

// NewHandlerWithDatabase returns a handler for a custom Database adapter and
// model registry (nil registry means a new adapters.Registry).
func NewHandlerWithDatabase(db adapters.Database, registry adapters.ModelRegistry, opts ...Option) (*Handler, error) {
	return newHandler(db, registry, DefaultConfig(), opts)
}

func newHandler(db adapters.Database, registry adapters.ModelRegistry, cfg *Config, opts []Option) (*Handler, error) {
	if db == nil {
		return nil, ErrNoDatabase
	}
	if registry == nil {
		registry = adapters.NewModelRegistry()
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Handler{
		db:       db,
		registry: registry,
		config:   cfg,
		hooks:    NewHookRegistry(),
		logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		ctx:      ctx,
		cancel:   cancel,
	}
	for _, opt := range opts {
		if err := opt(h); err != nil {
			cancel()
			return nil, err
		}
	}
	h.config.fillDefaults()
	if err := h.config.validate(); err != nil {
		cancel()
		return nil, err
	}
	h.clients = NewClientManager(ctx)
	h.subs = NewSubscriptionManager()
	return h, nil
}

// Hooks returns the hook registry. Register hooks before Start.
func (h *Handler) Hooks() *HookRegistry { return h.hooks }

// Registry returns the model registry. Register models before Start.
func (h *Handler) Registry() adapters.ModelRegistry { return h.registry }

// GetDatabase returns the database adapter.
func (h *Handler) GetDatabase() adapters.Database { return h.db }

// Config returns a copy of the handler's configuration.
func (h *Handler) Config() Config { return *h.config }

// Broker returns the running broker edge: an *EmbeddedBroker (whose
// Server() is the Mochi server, for adding hooks or listeners) or an
// *ExternalBrokerClient. It is nil before Start.
func (h *Handler) Broker() BrokerInterface {
	if b := h.live.Load(); b != nil {
		return *b
	}
	return nil
}

// Clients returns the registry of known MQTT clients.
func (h *Handler) Clients() *ClientManager { return h.clients }

// Subscriptions returns the live subscriptions.
func (h *Handler) Subscriptions() *SubscriptionManager { return h.subs }

// Addr returns the address the embedded broker's TCP listener is bound to
// (useful with BrokerConfig.Port -1, which picks a free port), or the
// broker URL in external mode. It is empty before Start.
func (h *Handler) Addr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if a, ok := h.broker.(interface{ Addr() string }); ok {
		return a.Addr()
	}
	if h.config.BrokerMode == BrokerModeExternal && h.state == stateRunning {
		return h.config.ExternalBroker.BrokerURL
	}
	return ""
}

// Start starts the embedded broker (or connects to the external one) and
// subscribes to {prefix}/+/request. It returns once clients can connect and
// requests are served, or with the reason they cannot (e.g. the port is in
// use). A handler starts once.
func (h *Handler) Start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch h.state {
	case stateRunning:
		return ErrAlreadyStarted
	case stateStopped:
		return ErrShutdown
	}
	var b BrokerInterface
	switch h.config.BrokerMode {
	case BrokerModeExternal:
		b = NewExternalBrokerClient(h.config.ExternalBroker, h.clients)
	default:
		b = NewEmbeddedBroker(h.config.Broker, h.clients)
	}
	b.SetHandler(h)
	ctx, cancel := context.WithTimeout(h.ctx, h.config.Timeouts.Connect)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		return fmt.Errorf("mqttspec: start %s broker: %w", h.config.BrokerMode, err)
	}
	h.dispatch = newDispatcher(h.config.Limits.MaxConcurrency, h.config.Limits.MaxPendingPerClient)
	h.live.Store(&b)
	if err := b.Subscribe(h.requestFilter(), h.config.QoS.Request, h.onRequest); err != nil {
		_ = b.Stop(context.Background())
		h.live.Store(nil)
		return fmt.Errorf("mqttspec: subscribe %s: %w", h.requestFilter(), err)
	}
	h.broker = b
	h.state = stateRunning
	if h.config.BrokerMode == BrokerModeExternal {
		go h.forgetIdleClients(h.config.Limits.ExternalClientIdle)
	}
	h.logger.Info("mqttspec started", "mode", h.config.BrokerMode, "requests", h.requestFilter())
	return nil
}

// Shutdown stops taking requests, waits (up to Timeouts.Disconnect) for the
// requests already queued to be answered, then stops the broker or
// connection, releasing its port. It is safe to call more than once.
func (h *Handler) Shutdown() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateRunning {
		h.state = stateStopped
		h.cancel()
		return nil
	}
	h.state = stateStopped
	var errs []error
	if err := h.broker.Unsubscribe(h.requestFilter()); err != nil {
		errs = append(errs, fmt.Errorf("unsubscribe requests: %w", err))
	}
	drained := make(chan struct{})
	go func() { h.dispatch.close(); close(drained) }()
	ctx, cancel := context.WithTimeout(context.Background(), h.config.Timeouts.Disconnect)
	defer cancel()
	select {
	case <-drained:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("requests still running after %s", h.config.Timeouts.Disconnect))
	}
	h.cancel() // aborts database work still running
	if err := h.broker.Stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stop broker: %w", err))
	}
	h.clients.Shutdown()
	h.subs.clear()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mqttspec: shutdown: %w", err)
	}
	h.logger.Info("mqttspec stopped")
	return nil
}

// forgetIdleClients periodically drops external-broker clients that hold no
// subscription and have been silent for idle, until the handler stops.
func (h *Handler) forgetIdleClients(idle time.Duration) {
	t := time.NewTicker(max(idle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case now := <-t.C:
			if n := h.clients.forgetIdle(now.Add(-idle)); n > 0 {
				h.logger.Debug("forgot idle external clients", "count", n)
			}
		}
	}
}

// ---- topics ----

func (h *Handler) requestFilter() string { return h.config.Topics.Prefix + "/+/request" }

func (h *Handler) responseTopic(clientID string) string {
	return h.config.Topics.Prefix + "/" + clientID + "/response"
}

func (h *Handler) notifyTopic(clientID, subID string) string {
	return h.config.Topics.Prefix + "/" + clientID + "/notify/" + subID
}

// clientIDFromRequestTopic extracts {client_id} from {prefix}/{client_id}/request.
func (h *Handler) clientIDFromRequestTopic(topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, h.config.Topics.Prefix+"/")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "/request")
	if !ok || !validClientID(id) {
		return "", false
	}
	return id, true
}

// validClientID reports whether id can be one topic level of its own.
func validClientID(id string) bool {
	return id != "" && !strings.ContainsAny(id, "/+#\x00")
}

// ---- broker events ----

// authenticate implements brokerEvents: it checks the client id, the
// credentials (EnableAuth) and the BeforeConnect hooks.
func (h *Handler) authenticate(info ConnectInfo) (*Client, error) {
	if !validClientID(info.ClientID) {
		return nil, fmt.Errorf("mqttspec: client id %q must be non-empty and contain no '/', '+' or '#'", info.ClientID)
	}
	if h.config.Broker.EnableAuth && h.config.BrokerMode == BrokerModeEmbedded {
		if fn := h.config.Auth.ValidateCredentials; fn == nil || !fn(info.Username, string(info.Password)) {
			return nil, fmt.Errorf("mqttspec: bad credentials for client %q", info.ClientID)
		}
	}
	c := NewClient(info.ClientID, info.Username, h)
	c.password = append([]byte(nil), info.Password...)
	c.persistent = !info.CleanSession
	hctx := h.connHookContext(c)
	if err := h.hooks.Execute(BeforeConnect, hctx); err != nil {
		h.logger.Info("connection refused by BeforeConnect", "client", info.ClientID, "reason", err)
		return nil, fmt.Errorf("mqttspec: connection refused: %w", err)
	}
	if old, ok := h.clients.GetClient(info.ClientID); ok {
		// The broker resumes a session only when both connections asked to
		// keep it; otherwise the old subscriptions end with it.
		if info.CleanSession || !old.persistent {
			h.dropSubscriptions(old)
		} else {
			for _, id := range old.subscriptionIDs() {
				if s, ok := old.GetSubscription(id); ok {
					c.AddSubscription(s)
				}
			}
		}
	}
	h.clients.add(c)
	return c, nil
}

// connected implements brokerEvents.
func (h *Handler) connected(c *Client) {
	if err := h.hooks.Execute(AfterConnect, h.connHookContext(c)); err != nil {
		h.logger.Warn("AfterConnect hook failed", "client", c.ID, "error", err)
	}
}

// disconnected implements brokerEvents. A client whose session the broker
// keeps (clean session false) keeps its subscriptions; notifications for
// it are queued by the broker until it returns or the session expires.
func (h *Handler) disconnected(c *Client, cause error, sessionKept bool) {
	hctx := h.connHookContext(c)
	hctx.Error = cause
	if err := h.hooks.Execute(BeforeDisconnect, hctx); err != nil {
		h.logger.Warn("BeforeDisconnect hook failed", "client", c.ID, "error", err)
	}
	if cur, ok := h.clients.GetClient(c.ID); ok && cur == c && !sessionKept {
		h.dropSubscriptions(c)
		h.clients.Unregister(c.ID)
	}
	if err := h.hooks.Execute(AfterDisconnect, hctx); err != nil {
		h.logger.Warn("AfterDisconnect hook failed", "client", c.ID, "error", err)
	}
}

// sessionExpired implements brokerEvents.
func (h *Handler) sessionExpired(clientID string) {
	if c, ok := h.clients.GetClient(clientID); ok {
		h.dropSubscriptions(c)
		h.clients.Unregister(clientID)
	}
}

// publishDropped implements brokerEvents.
func (h *Handler) publishDropped(clientID, topic string) {
	h.logger.Warn("broker dropped a message for a slow client", "client", clientID, "topic", topic)
}

func (h *Handler) connHookContext(c *Client) *HookContext {
	return &HookContext{Context: h.ctx, Handler: h, Client: c, Metadata: map[string]any{"mqtt_client": c}}
}

// dropSubscriptions removes every subscription of c.
func (h *Handler) dropSubscriptions(c *Client) {
	for _, id := range c.subscriptionIDs() {
		h.subs.Unsubscribe(id)
		c.RemoveSubscription(id)
	}
}

// ---- request path ----

// onRequest is the broker callback for {prefix}/+/request. It queues the
// message on its client's queue; the embedded broker waits for room (the
// client's reads pause), the external one answers "overloaded".
func (h *Handler) onRequest(topic string, payload []byte) {
	clientID, ok := h.clientIDFromRequestTopic(topic)
	if !ok {
		h.logger.Debug("ignoring message on malformed request topic", "topic", topic)
		return
	}
	payload = append([]byte(nil), payload...)
	wait := h.config.BrokerMode == BrokerModeEmbedded
	if !h.dispatch.submit(clientID, func() { h.handleMessage(clientID, payload) }, wait) {
		// Answered off the broker's delivery goroutine, which must not block.
		go h.respond(clientID, NewErrorResponse(requestID(payload), CodeOverloaded,
			"too many requests pending for this client; retry later"))
	}
}

// handleMessage runs one request from arrival to response. It never panics.
func (h *Handler) handleMessage(clientID string, payload []byte) {
	defer func() {
		if r := recover(); r != nil {
			h.logger.Error("panic while handling request", "client", clientID, "panic", r, "stack", string(debug.Stack()))
			h.respond(clientID, NewErrorResponse(requestID(payload), CodeInternalError, "internal error"))
		}
	}()
	client, err := h.clientFor(clientID)
	if err != nil {
		h.respond(clientID, h.errorResponse(requestID(payload), err))
		return
	}
	msg, err := ParseMessage(payload)
	if err != nil {
		h.respond(clientID, NewErrorResponse(requestID(payload), CodeInvalidJSON, "message is not a valid JSON object"))
		return
	}
	if err := msg.validate(); err != nil {
		h.respond(clientID, NewErrorResponse(msg.ID, CodeInvalidMessage, err.Error()))
		return
	}
	if resp := h.process(client, msg); resp != nil {
		h.respond(clientID, resp)
	}
}

// clientFor returns the registered client. With the external broker a
// client is first seen through its requests: it is registered then, after
// the BeforeConnect hooks accept it.
func (h *Handler) clientFor(clientID string) (*Client, error) {
	if c, ok := h.clients.GetClient(clientID); ok {
		c.lastSeen.Store(time.Now().UnixNano())
		return c, nil
	}
	if h.config.BrokerMode == BrokerModeEmbedded {
		// Every embedded connection is registered at CONNECT; a missing client
		// was dropped by a concurrent disconnect.
		return nil, NewError(CodeForbidden, "client is not connected")
	}
	c, err := h.authenticate(ConnectInfo{ClientID: clientID, CleanSession: true})
	if err != nil {
		return nil, NewError(CodeForbidden, "client refused")
	}
	c.lastSeen.Store(time.Now().UnixNano())
	h.connected(c)
	return c, nil
}

// process dispatches a valid message to its operation and returns the
// response to send (nil when the operation has already sent it).
func (h *Handler) process(client *Client, msg *Message) *ResponseMessage {
	if msg.Type == MessageTypePing {
		return &ResponseMessage{ID: msg.ID, Type: MessageTypePong, Success: true, Timestamp: nowUTC()}
	}
	op := msg.Operation
	switch {
	case msg.Type == MessageTypeSubscription && op == OperationUnsubscribe,
		msg.Type == MessageTypeRequest && op == OperationUnsubscribe:
		return h.handleUnsubscribe(client, msg)
	}
	model, err := h.resolveModel(msg.Schema, msg.Entity)
	if err != nil {
		return h.errorResponse(msg.ID, err)
	}
	hctx := h.requestHookContext(client, msg, model)
	if err := h.hooks.Execute(BeforeHandle, hctx); err != nil {
		return h.errorResponse(msg.ID, hookError(err))
	}
	var resp *ResponseMessage
	switch op {
	case OperationRead:
		resp, err = h.handleRead(hctx, model)
	case OperationCreate:
		resp, err = h.handleCreate(hctx, model)
	case OperationUpdate:
		resp, err = h.handleUpdate(hctx, model)
	case OperationDelete:
		resp, err = h.handleDelete(hctx, model)
	case OperationMeta:
		resp, err = h.handleMeta(hctx, model)
	case OperationSubscribe:
		resp, err = h.handleSubscribe(hctx, model)
	default:
		err = NewError(CodeUnknownOperation, "unknown operation %q", op)
	}
	if err != nil {
		return h.errorResponse(msg.ID, err)
	}
	return resp
}

// resolveModel finds the registered model for schema and entity.
func (h *Handler) resolveModel(schema, entity string) (*adapters.Model, error) {
	if r, ok := h.registry.(*adapters.Registry); ok {
		m, err := r.Lookup(schema, entity)
		if err != nil {
			return nil, NewError(CodeUnknownEntity, "unknown entity %q", qualified(schema, entity))
		}
		return m, nil
	}
	v, err := h.registry.GetModelByEntity(schema, entity)
	if err != nil || v == nil {
		return nil, NewError(CodeUnknownEntity, "unknown entity %q", qualified(schema, entity))
	}
	name := qualified(schema, entity)
	if m, ok := h.models.Load(name); ok {
		return m.(*adapters.Model), nil
	}
	m, err := adapters.ParseModel(name, v)
	if err != nil {
		h.logger.Error("registered model cannot be served", "model", name, "error", err)
		return nil, NewError(CodeUnknownEntity, "entity %q cannot be served", name)
	}
	h.models.Store(name, m)
	return m, nil
}

func qualified(schema, entity string) string {
	if schema == "" {
		return entity
	}
	return schema + "." + entity
}

// requestHookContext builds the HookContext shared by every hook of one request.
func (h *Handler) requestHookContext(client *Client, msg *Message, m *adapters.Model) *HookContext {
	return &HookContext{
		Context:   h.ctx,
		Handler:   h,
		Client:    client,
		Message:   msg,
		Operation: msg.Operation,
		Schema:    m.Schema,
		Entity:    m.Entity,
		TableName: m.Table,
		Model:     m.New(),
		ModelPtr:  m.New(),
		Options:   msg.Options.Clone(),
		Data:      msg.Data,
		Metadata:  map[string]any{"mqtt_client": client},
	}
}

// respond publishes resp on the client's response topic.
func (h *Handler) respond(clientID string, resp *ResponseMessage) {
	payload, err := resp.ToJSON()
	if err != nil {
		h.logger.Error("cannot encode response", "client", clientID, "error", err)
		payload, _ = NewErrorResponse(resp.ID, CodeInternalError, "response could not be encoded").ToJSON()
	}
	h.publish(h.responseTopic(clientID), h.config.QoS.Response, payload)
}

func (h *Handler) publish(topic string, qos byte, payload []byte) {
	b := h.live.Load()
	if b == nil {
		return
	}
	if err := (*b).Publish(topic, qos, payload); err != nil {
		h.logger.Warn("publish failed", "topic", topic, "error", err)
	}
}
