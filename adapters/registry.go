package adapters

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// ModelRegistry maps "schema.entity" names to Go model values. The handler
// resolves every request's schema and entity through it.
type ModelRegistry interface {
	// RegisterModel adds model (a struct or pointer to struct) under name.
	RegisterModel(name string, model any) error
	// GetModel returns the model registered under name.
	GetModel(name string) (any, error)
	// GetAllModels returns every registered model by name.
	GetAllModels() map[string]any
	// GetModelByEntity returns the model for schema and entity; an empty
	// schema matches an entity registered without one, or under exactly one
	// schema.
	GetModelByEntity(schema, entity string) (any, error)
}

// Registry is the default, concurrency-safe ModelRegistry. It stores model
// values by name; the handler describes each one once, through its
// database adapter.
type Registry struct {
	mu     sync.RWMutex
	values map[string]any
}

// NewModelRegistry returns an empty Registry.
func NewModelRegistry() *Registry {
	return &Registry{values: map[string]any{}}
}

// RegisterModel stores model under name ("schema.entity" or "entity").
// Registering a name twice replaces the earlier model. model must be a
// struct or a pointer to one.
func (r *Registry) RegisterModel(name string, model any) error {
	if err := checkModelValue(name, model); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values[name] = model
	return nil
}

// checkModelValue refuses a name or value that cannot be a model.
func checkModelValue(name string, model any) error {
	if name == "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return fmt.Errorf("adapters: register model: invalid name %q", name)
	}
	if model == nil {
		return fmt.Errorf("adapters: register model %s: nil model", name)
	}
	t := reflect.TypeOf(model)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return fmt.Errorf("adapters: register model %s: %s is not a struct", name, t)
	}
	return nil
}

// GetModel returns the model registered under name.
func (r *Registry) GetModel(name string) (any, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.values[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownModel, name)
	}
	return v, nil
}

// GetAllModels returns a copy of the registered models by name.
func (r *Registry) GetAllModels() map[string]any {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]any, len(r.values))
	for k, v := range r.values {
		out[k] = v
	}
	return out
}

// GetModelByEntity returns the model for schema and entity.
func (r *Registry) GetModelByEntity(schema, entity string) (any, error) {
	name, err := r.Resolve(schema, entity)
	if err != nil {
		return nil, err
	}
	return r.GetModel(name)
}

// Resolve returns the name a request's schema and entity refer to: exactly
// "schema.entity" when a schema is given; otherwise an entity registered
// without a schema, or the only "*.entity".
func (r *Registry) Resolve(schema, entity string) (string, error) {
	return ResolveName(r.GetAllModelNames(), schema, entity)
}

// GetAllModelNames returns the registered names in sorted order.
func (r *Registry) GetAllModelNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.values))
	for n := range r.values {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ResolveName applies the lookup rule of GetModelByEntity to a list of
// registered names.
func ResolveName(names []string, schema, entity string) (string, error) {
	if schema != "" {
		want := schema + "." + entity
		for _, n := range names {
			if n == want {
				return n, nil
			}
		}
		return "", fmt.Errorf("%w: %s", ErrUnknownModel, want)
	}
	var found []string
	for _, n := range names {
		if n == entity {
			return n, nil
		}
		if strings.HasSuffix(n, "."+entity) {
			found = append(found, n)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return "", fmt.Errorf("%w: %s", ErrUnknownModel, entity)
}
