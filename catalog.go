package mqttspec

import (
	"fmt"
	"reflect"
	"sort"
	"sync"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/query"
)

// catalog is the handler's table of served models. It is what
// Handler.Registry returns: it stores registrations in the underlying
// ModelRegistry and describes every model once, through the database
// adapter (which asks its ORM how the struct maps to a table), so a model
// the handler cannot serve is refused by RegisterModel. Requests resolve
// their schema and entity through the catalog's cache; a model registered
// directly in a custom registry (not through Handler.Registry) is described
// at its first use, or at Start.
type catalog struct {
	db       adapters.Database
	registry adapters.ModelRegistry

	mu     sync.RWMutex
	byName map[string]*query.Model // registry name -> model
	lookup map[string]*query.Model // request "schema\x00entity" -> model
}

var _ adapters.ModelRegistry = (*catalog)(nil)

func newCatalog(db adapters.Database, registry adapters.ModelRegistry) *catalog {
	return &catalog{db: db, registry: registry, byName: map[string]*query.Model{}, lookup: map[string]*query.Model{}}
}

// RegisterModel describes model through the database adapter and, when it
// can be served, registers it under name ("schema.entity" or "entity").
// Registering a name again replaces the model.
func (c *catalog) RegisterModel(name string, model any) error {
	m, err := c.db.Describe(name, model)
	if err != nil {
		return fmt.Errorf("mqttspec: register %s: %w", name, err)
	}
	if err := c.registry.RegisterModel(name, model); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byName[name] = m
	clear(c.lookup) // the meaning of a schema-less entity may have changed
	return nil
}

// GetModel returns the model value registered under name.
func (c *catalog) GetModel(name string) (any, error) { return c.registry.GetModel(name) }

// GetAllModels returns every registered model value by name.
func (c *catalog) GetAllModels() map[string]any { return c.registry.GetAllModels() }

// GetModelByEntity returns the model value for schema and entity.
func (c *catalog) GetModelByEntity(schema, entity string) (any, error) {
	return c.registry.GetModelByEntity(schema, entity)
}

// describeAll describes every model of the underlying registry that is not
// described yet (models registered there directly). Start calls it, so a
// model that cannot be served fails Start.
func (c *catalog) describeAll() error {
	all := c.registry.GetAllModels()
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, err := c.model(n, all[n]); err != nil {
			return err
		}
	}
	return nil
}

// model returns the description of the value registered under name.
func (c *catalog) model(name string, value any) (*query.Model, error) {
	c.mu.RLock()
	m, ok := c.byName[name]
	c.mu.RUnlock()
	if ok {
		return m, nil
	}
	m, err := c.db.Describe(name, value)
	if err != nil {
		return nil, fmt.Errorf("mqttspec: model %s: %w", name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.byName[name]; ok {
		return prev, nil
	}
	c.byName[name] = m
	return m, nil
}

// resolve returns the model a request's schema and entity name, with the
// registry's lookup rule (an empty schema matches an entity registered
// without one, or under exactly one schema).
func (c *catalog) resolve(schema, entity string) (*query.Model, error) {
	key := schema + "\x00" + entity
	c.mu.RLock()
	m, ok := c.lookup[key]
	c.mu.RUnlock()
	if ok {
		return m, nil
	}
	unknown := NewError(CodeUnknownEntity, "unknown entity %q", qualified(schema, entity))
	value, err := c.registry.GetModelByEntity(schema, entity)
	if err != nil || value == nil {
		return nil, unknown
	}
	name, err := adapters.ResolveName(sortedKeys(c.registry.GetAllModels()), schema, entity)
	if err != nil {
		return nil, unknown
	}
	if m, err = c.model(name, value); err != nil {
		return nil, NewError(CodeUnknownEntity, "entity %q cannot be served", name)
	}
	c.mu.Lock()
	c.lookup[key] = m
	c.mu.Unlock()
	return m, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func qualified(schema, entity string) string {
	if schema == "" {
		return entity
	}
	return schema + "." + entity
}

// RelationshipInfo describes a relation field of a model.
type RelationshipInfo struct {
	FieldName string `json:"field_name"`
	JSONName  string `json:"json_name"`
	// RelationType is "hasMany" for slice fields and "hasOne" for struct fields.
	RelationType string `json:"relation_type"`
}

// GetRelationshipInfo describes the relation relationName (Go field or JSON
// name) of the model type modelType, or returns nil when there is none.
func (h *Handler) GetRelationshipInfo(modelType reflect.Type, relationName string) *RelationshipInfo {
	for modelType != nil && modelType.Kind() == reflect.Pointer {
		modelType = modelType.Elem()
	}
	if modelType == nil {
		return nil
	}
	m, err := h.db.Describe(modelType.Name(), reflect.New(modelType).Interface())
	if err != nil {
		return nil
	}
	r, ok := m.Relation(relationName)
	if !ok {
		return nil
	}
	kind := "hasOne"
	if r.Many {
		kind = "hasMany"
	}
	return &RelationshipInfo{FieldName: r.Name, JSONName: r.JSONName, RelationType: kind}
}

// models returns every described model, by registry name.
func (c *catalog) models() []*query.Model {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := sortedKeys(c.byName)
	out := make([]*query.Model, 0, len(names))
	for _, n := range names {
		out = append(out, c.byName[n])
	}
	return out
}
