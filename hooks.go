package mqttspec

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/mqttspec/mqttspec/adapters"
)

// HookType names the moment a hook runs at.
type HookType string

// Hook types. Before* hooks may refuse by returning an error; After* hooks
// observe (on create, update and delete they may still refuse, which rolls
// the change back). See the README's hook table for what each may change.
const (
	// BeforeHandle runs for every request and subscription message once its
	// model is resolved, before the operation's own hooks.
	BeforeHandle HookType = "before_handle"

	BeforeRead   HookType = "before_read"
	AfterRead    HookType = "after_read"
	BeforeCreate HookType = "before_create"
	AfterCreate  HookType = "after_create"
	BeforeUpdate HookType = "before_update"
	AfterUpdate  HookType = "after_update"
	BeforeDelete HookType = "before_delete"
	AfterDelete  HookType = "after_delete"

	BeforeSubscribe   HookType = "before_subscribe"
	AfterSubscribe    HookType = "after_subscribe"
	BeforeUnsubscribe HookType = "before_unsubscribe"
	AfterUnsubscribe  HookType = "after_unsubscribe"

	BeforeConnect    HookType = "before_connect"
	AfterConnect     HookType = "after_connect"
	BeforeDisconnect HookType = "before_disconnect"
	AfterDisconnect  HookType = "after_disconnect"
)

// HookContext is what a hook sees. Hooks of one request share one
// HookContext, so a Before* hook can leave values in Metadata for the
// After* hook.
type HookContext struct {
	// Context is the request's context.
	Context context.Context
	// Handler is the handler running the hook.
	Handler *Handler
	// Client is the MQTT client (also in Metadata["mqtt_client"]).
	Client *Client
	// Message is the request as received (nil for connection hooks).
	Message *Message
	// Operation is the request's operation.
	Operation OperationType
	// Schema, Entity and TableName identify the model.
	Schema    string
	Entity    string
	TableName string
	// Model is the registered model value; ModelPtr a pointer to a new one.
	Model    any
	ModelPtr any
	// Options are the request's options; Before* hooks may change them
	// (e.g. append a tenant filter). Changes are validated like client input.
	Options *RequestOptions
	// ID is the record id of a single-record operation (read only: the
	// target is chosen before hooks run; narrow it with Options filters).
	ID string
	// Data is the request data: map[string]any for create and update;
	// Before* hooks may change the map (e.g. set a tenant column).
	Data any
	// Result is the operation's result (After* hooks): the record(s) read,
	// created, updated or deleted.
	Result any
	// Previous is the record as it was before an update or delete.
	Previous any
	// Subscription is the subscription being created or removed.
	Subscription *Subscription
	// Tx is the transaction of a create, update or delete; Before* hooks,
	// the write and After* hooks all run in it. Tx.Native() gives the ORM's
	// handle (*gorm.DB or bun.Tx) for writes that must commit or roll back
	// with the operation, such as an audit row.
	Tx adapters.Tx
	// Error is the error of a failed operation, if any.
	Error error
	// Metadata carries "mqtt_client" (*Client) and anything hooks add.
	Metadata map[string]any
}

// HookFunc is a hook. Returning an error from a Before* hook aborts the
// operation with an error response; see Error for how it is coded.
type HookFunc func(*HookContext) error

// HookRegistry holds hooks by type. It is safe for concurrent use; hooks of
// one type run in registration order and the first error stops the rest.
type HookRegistry struct {
	mu    sync.RWMutex
	hooks map[HookType][]HookFunc
}

// NewHookRegistry returns an empty registry.
func NewHookRegistry() *HookRegistry {
	return &HookRegistry{hooks: map[HookType][]HookFunc{}}
}

// Register adds fn to the hooks of hookType.
func (hr *HookRegistry) Register(hookType HookType, fn HookFunc) {
	if fn == nil {
		return
	}
	hr.mu.Lock()
	defer hr.mu.Unlock()
	hr.hooks[hookType] = append(hr.hooks[hookType], fn)
}

// RegisterBefore registers fn as the Before hook of operation.
func (hr *HookRegistry) RegisterBefore(operation OperationType, fn HookFunc) {
	if t, ok := operationHooks[operation]; ok {
		hr.Register(t[0], fn)
	}
}

// RegisterAfter registers fn as the After hook of operation.
func (hr *HookRegistry) RegisterAfter(operation OperationType, fn HookFunc) {
	if t, ok := operationHooks[operation]; ok {
		hr.Register(t[1], fn)
	}
}

var operationHooks = map[OperationType][2]HookType{
	OperationRead:        {BeforeRead, AfterRead},
	OperationCreate:      {BeforeCreate, AfterCreate},
	OperationUpdate:      {BeforeUpdate, AfterUpdate},
	OperationDelete:      {BeforeDelete, AfterDelete},
	OperationSubscribe:   {BeforeSubscribe, AfterSubscribe},
	OperationUnsubscribe: {BeforeUnsubscribe, AfterUnsubscribe},
}

// Execute runs the hooks of hookType in registration order and returns the
// first error, unchanged, so its text and type reach the client as the hook
// wrote them. A panicking hook is turned into an error (a *HookPanic, which
// the handler logs with its stack and answers "internal_error").
func (hr *HookRegistry) Execute(hookType HookType, ctx *HookContext) error {
	hr.mu.RLock()
	hooks := hr.hooks[hookType]
	hr.mu.RUnlock()
	for _, fn := range hooks {
		if err := runHook(fn, ctx); err != nil {
			return err
		}
	}
	return nil
}

func runHook(fn HookFunc, ctx *HookContext) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &HookPanic{Value: r, Stack: debug.Stack()}
		}
	}()
	return fn(ctx)
}

// HookPanic is the error of a hook that panicked. Its text stays in the
// server log; the client is answered "internal_error".
type HookPanic struct {
	// Value is what the hook panicked with; Stack is where.
	Value any
	Stack []byte
}

// Error implements error.
func (p *HookPanic) Error() string { return fmt.Sprintf("hook panicked: %v", p.Value) }

// HasHooks reports whether any hook is registered for hookType.
func (hr *HookRegistry) HasHooks(hookType HookType) bool {
	hr.mu.RLock()
	defer hr.mu.RUnlock()
	return len(hr.hooks[hookType]) > 0
}

// Clear removes the hooks of hookType.
func (hr *HookRegistry) Clear(hookType HookType) {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	delete(hr.hooks, hookType)
}

// ClearAll removes every hook.
func (hr *HookRegistry) ClearAll() {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	hr.hooks = map[HookType][]HookFunc{}
}
