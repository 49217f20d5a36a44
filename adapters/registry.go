package adapters

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// ModelRegistry maps "schema.entity" names to Go model types. The handler
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

// Registry is the default, concurrency-safe ModelRegistry. It parses each
// model once at registration, so a model the handler cannot serve is
// refused there and not at the first request.
type Registry struct {
	mu     sync.RWMutex
	models map[string]*Model
	values map[string]any
}

// NewModelRegistry returns an empty Registry.
func NewModelRegistry() *Registry {
	return &Registry{models: map[string]*Model{}, values: map[string]any{}}
}

// RegisterModel parses and stores model under name ("schema.entity" or
// "entity"). Registering a name twice replaces the earlier model.
func (r *Registry) RegisterModel(name string, model any) error {
	m, err := ParseModel(name, model)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.models[name] = m
	r.values[name] = model
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
	m, err := r.Lookup(schema, entity)
	if err != nil {
		return nil, err
	}
	return r.GetModel(m.Name)
}

// Lookup returns the parsed description of the model for schema and entity.
func (r *Registry) Lookup(schema, entity string) (*Model, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if schema != "" {
		if m, ok := r.models[schema+"."+entity]; ok {
			return m, nil
		}
		return nil, fmt.Errorf("%w: %s.%s", ErrUnknownModel, schema, entity)
	}
	if m, ok := r.models[entity]; ok {
		return m, nil
	}
	var found []*Model
	for name, m := range r.models {
		if strings.HasSuffix(name, "."+entity) {
			found = append(found, m)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownModel, entity)
}

// Names returns the registered names in sorted order.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.models))
	for n := range r.models {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
