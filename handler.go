package mqttspec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/uptrace/bun"
	"gorm.io/gorm"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/internal/broker"
)

// Handler serves database operations and change subscriptions over MQTT.
// Create one with a constructor, register models and hooks, then Start it.
// All methods are safe for concurrent use.
type Handler struct {
	db      adapters.Database
	catalog *catalog
	config  *Config
	chosen  chosenOptions
	hooks   *HookRegistry
	logger  *slog.Logger

	clients  *ClientManager
	subs     *SubscriptionManager
	orders   sync.Map // model name -> *entityOrder: commits and notifications in order
	dedup    *dedup
	totals   *totals
	counters counters
	draining atomic.Bool // Shutdown has begun: no new requests are taken

	ctx    context.Context // cancelled by Shutdown: ends every request's context
	cancel context.CancelFunc
	// drainCtx ends when Shutdown runs out of time (Timeouts.Disconnect):
	// waits for a client's room for its answers end.
	drainCtx    context.Context
	drainCancel context.CancelFunc

	mu       sync.Mutex // guards state changes (Start, Shutdown)
	state    handlerState
	broker   BrokerInterface // the API view of the edge (Broker)
	dispatch *dispatcher
	// live is the started edge, read without mu by the request path so
	// that Shutdown can wait for running requests while holding mu.
	live atomic.Pointer[liveTransport]
	// selfCheckID is the id of the ping Start sends itself (selfcheck.go).
	selfCheckID atomic.Pointer[string]
	// group is this instance's part in its group (nil: alone); feed
	// follows the database's changes (nil: writes notify by themselves).
	group *groupMember
	feed  *feed
	// serialWrites makes the handler's writes take turns, holding writeMu
	// from BEGIN to COMMIT (SQLite, see writes.go).
	serialWrites bool
	writeMu      sync.Mutex
}

// liveTransport is the started edge and what it provides.
type liveTransport struct {
	t        transport
	features broker.Features
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
		db:      db,
		catalog: newCatalog(db, registry),
		config:  cfg,
		hooks:   NewHookRegistry(),
		logger:  slog.New(defaultLogs{}),
		ctx:     ctx,
		cancel:  cancel,

		serialWrites: serializesWrites(db),
	}
	h.drainCtx, h.drainCancel = context.WithCancel(ctx)
	for _, opt := range opts {
		if err := opt(h); err != nil {
			cancel()
			return nil, err
		}
	}
	if err := h.chosen.apply(h.config); err != nil {
		cancel()
		return nil, err
	}
	h.config.fillDefaults()
	if err := h.config.validate(); err != nil {
		cancel()
		return nil, err
	}
	h.clients = NewClientManager(ctx)
	h.subs = NewSubscriptionManager()
	h.dedup = newDedup(h.config.Limits.DedupWindow, h.config.Limits.MaxDedupBytes)
	h.totals = newTotals(h.config.Limits.TotalMaxAge)
	if h.config.BrokerMode == BrokerModeExternal && h.config.ExternalBroker.Group != "" {
		h.group = newGroupMember(h)
	}
	return h, nil
}

// Hooks returns the hook registry. Register hooks before Start.
func (h *Handler) Hooks() *HookRegistry { return h.hooks }

// Registry returns the model registry. RegisterModel describes the model
// through the database adapter at once and refuses one it cannot serve.
// Register models before Start.
func (h *Handler) Registry() adapters.ModelRegistry { return h.catalog }

// GetDatabase returns the database adapter.
func (h *Handler) GetDatabase() adapters.Database { return h.db }

// Config returns a copy of the handler's configuration.
func (h *Handler) Config() Config { return *h.config }

// Broker returns the running broker edge: an *EmbeddedBroker (whose
// Server() is the Mochi server, for adding hooks or listeners) or an
// *ExternalBrokerClient. It is nil before Start.
func (h *Handler) Broker() BrokerInterface {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateRunning {
		return nil
	}
	return h.broker
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
	if a, ok := h.broker.(interface{ Addr() string }); ok && h.state == stateRunning {
		return a.Addr()
	}
	return ""
}

// Start starts the embedded broker (or connects to the external one) and
// subscribes to {prefix}/+/request. It returns once clients can connect and
// requests are served, or with the reason they cannot (e.g. the port is in
// use, or a registered model cannot be served). A handler starts once.
func (h *Handler) Start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch h.state {
	case stateRunning:
		return ErrAlreadyStarted
	case stateStopped:
		return ErrShutdown
	}
	if err := h.catalog.describeAll(); err != nil {
		return err
	}
	if ps, ok := h.db.(adapters.PoolSizer); ok {
		ps.SetIdleConnections(h.config.Limits.MaxConcurrency)
	}
	b, t := h.newBroker()
	connect := h.config.Timeouts.Connect
	if d := h.config.ExternalBroker.ConnectTimeout; h.config.BrokerMode == BrokerModeExternal && d > 0 && d < connect {
		connect = d
	}
	ctx, cancel := context.WithTimeout(h.ctx, connect) // the whole connect, self-check included
	defer cancel()
	if h.config.ChangeFeed.Enabled {
		f, err := newFeed(h)
		if err != nil {
			return err
		}
		if err := f.install(ctx, h.group != nil); err != nil {
			return err
		}
		h.feed = f
	}
	if err := t.Start(ctx); err != nil {
		return fmt.Errorf("mqttspec: start %s broker: %w", h.config.BrokerMode, err)
	}
	// A request waits for room for its answer before it takes one of the
	// MaxConcurrency places; a wait cut short by Shutdown lets the answer
	// go (a drop is counted).
	h.dispatch = newDispatcher(h.config.Limits.MaxConcurrency, h.config.Limits.MaxPendingPerClient,
		func(clientID string) { _ = t.AwaitRoom(h.drainCtx, clientID) })
	live := &liveTransport{t: t, features: t.Features()}
	h.live.Store(live)
	if err := t.Subscribe(h.requestFilter(), h.config.QoS.Request, h.onRequest); err != nil {
		_ = t.Stop(context.Background())
		h.live.Store(nil)
		return fmt.Errorf("mqttspec: subscribe %s: %w", h.requestFilter(), err)
	}
	if id, ok := h.ownClientID(t); ok && !live.features.ConnectEvents {
		if err := h.selfCheck(ctx, t, id); err != nil {
			_ = t.Stop(context.Background())
			h.live.Store(nil)
			return fmt.Errorf("mqttspec: start %s broker: %w", h.config.BrokerMode, err)
		}
	}
	if g := h.group; g != nil {
		if err := g.start(ctx, t); err != nil {
			_ = t.Stop(context.Background())
			h.live.Store(nil)
			return fmt.Errorf("mqttspec: start %s broker: %w", h.config.BrokerMode, err)
		}
	}
	if h.feed != nil {
		h.feed.start()
	}
	h.broker = b
	h.state = stateRunning
	if !live.features.ConnectEvents {
		h.forgetIdleClients()
	}
	h.logger.Info("mqttspec started", "mode", h.config.BrokerMode, "requests", h.requestFilter())
	return nil
}

// Shutdown stops taking requests, answers every request it has taken, then
// stops the broker or connection, releasing its port; all of it within
// Timeouts.Disconnect. It is safe to call more than once.
//
// The order is what makes "acknowledged" mean "answered": first no new
// request is taken (the embedded broker leaves later ones unacknowledged,
// so clients send them again to the next server; an external broker is
// unsubscribed from, and what it still delivers is taken), then the queued
// requests run and their answers are published, then Shutdown waits until
// the answers have been handed to the network, and only then are the
// connections closed.
func (h *Handler) Shutdown() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateRunning {
		h.state = stateStopped
		h.cancel()
		return nil
	}
	h.state = stateStopped
	h.draining.Store(true)
	var errs []error
	live := h.live.Load()
	t := live.t
	if !live.features.Refusable {
		if err := t.Unsubscribe(h.requestFilter()); err != nil {
			// Not a failed shutdown: with the connection gone, nothing more
			// arrives (a kept session queues requests for the next start).
			h.logger.Warn("could not unsubscribe from requests before stopping", "error", err)
		}
	}
	drained := make(chan struct{})
	go func() { h.dispatch.close(); close(drained) }()
	ctx, cancel := context.WithTimeout(context.Background(), h.config.Timeouts.Disconnect)
	defer cancel()
	// Requests still queued wait for their clients' room as usual, until
	// the time for the shutdown is up.
	defer context.AfterFunc(ctx, h.drainCancel)()
	select {
	case <-drained:
		if err := t.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("answers not yet sent after %s", h.config.Timeouts.Disconnect))
		}
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("requests still running after %s", h.config.Timeouts.Disconnect))
	}
	if h.group != nil {
		h.group.leave()
	}
	h.cancel() // aborts database work still running
	if h.feed != nil {
		select { // its last notifications go out before the connection closes
		case <-h.feed.done:
		case <-ctx.Done():
		}
	}
	if err := t.Stop(ctx); err != nil {
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
