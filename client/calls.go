package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mqttspec/mqttspec"
)

// Page is the metadata of a list read or a snapshot.
type Page struct {
	// Total counts every record matching the filters; Count the records of
	// this page.
	Total  int64 `json:"total"`
	Count  int   `json:"count"`
	Limit  int   `json:"limit"`
	Offset int   `json:"offset"`
}

// Partial reports whether more records match than the page holds.
func (p Page) Partial() bool { return p.Total > int64(p.Count) }

// Meta describes a registered model, as the meta operation answers.
type Meta struct {
	Schema     string       `json:"schema"`
	Entity     string       `json:"entity"`
	Table      string       `json:"table"`
	PrimaryKey string       `json:"primary_key"`
	Columns    []MetaColumn `json:"columns"`
	Relations  []string     `json:"relations"`
}

// MetaColumn is one column of a Meta.
type MetaColumn struct {
	Name       string `json:"name"`
	Column     string `json:"column"`
	Type       string `json:"type"`
	Nullable   bool   `json:"nullable"`
	PrimaryKey bool   `json:"primary_key"`
}

// Read reads the records of schema.entity that opts selects (filters,
// sort, paging, projection, preloads; nil reads the first page) into
// into, a pointer to a slice (nil discards them), and returns the page's
// metadata.
func (c *Client) Read(ctx context.Context, schema, entity string, opts *mqttspec.RequestOptions, into any) (*Page, error) {
	a, err := c.do(ctx, request{Type: mqttspec.MessageTypeRequest, Operation: mqttspec.OperationRead, Schema: schema, Entity: entity, Options: opts}, nil)
	if err != nil {
		return nil, err
	}
	if err := decode(a.Data, into); err != nil {
		return nil, fmt.Errorf("mqttspec client: read %s.%s: %w", schema, entity, err)
	}
	return pageOf(a.Metadata), nil
}

// ReadOne reads the record of schema.entity whose primary key is id into
// into. A missing record is a *mqttspec.Error with code not_found.
func (c *Client) ReadOne(ctx context.Context, schema, entity string, id any, into any) error {
	return c.write(ctx, mqttspec.OperationRead, schema, entity, id, nil, into)
}

// Create creates record (a struct or map with the JSON names of the
// model's fields) in schema.entity and decodes the stored record, with
// its generated key and defaults, into into (nil discards it).
func (c *Client) Create(ctx context.Context, schema, entity string, record any, into any) error {
	return c.write(ctx, mqttspec.OperationCreate, schema, entity, nil, record, into)
}

// Update changes the record of schema.entity whose primary key is id:
// only the keys present in changes (a map, or a struct whose JSON encoding
// holds just the keys to change) are written. The stored record is decoded
// into into (nil discards it).
func (c *Client) Update(ctx context.Context, schema, entity string, id any, changes any, into any) error {
	return c.write(ctx, mqttspec.OperationUpdate, schema, entity, id, changes, into)
}

// Delete deletes the record of schema.entity whose primary key is id and
// decodes the deleted record into into (nil discards it).
func (c *Client) Delete(ctx context.Context, schema, entity string, id any, into any) error {
	return c.write(ctx, mqttspec.OperationDelete, schema, entity, id, nil, into)
}

// Meta describes schema.entity: its table, primary key, columns and
// relations.
func (c *Client) Meta(ctx context.Context, schema, entity string) (*Meta, error) {
	var m Meta
	if err := c.write(ctx, mqttspec.OperationMeta, schema, entity, nil, nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Ping asks the server for a pong: it proves the whole path (broker,
// handler, answer) works.
func (c *Client) Ping(ctx context.Context) error {
	a, err := c.do(ctx, request{Type: mqttspec.MessageTypePing}, nil)
	if err != nil {
		return err
	}
	if a.Type != string(mqttspec.MessageTypePong) {
		return fmt.Errorf("mqttspec client: ping answered with a %q message", a.Type)
	}
	return nil
}

// write sends a single-record request and decodes its data into into.
func (c *Client) write(ctx context.Context, op mqttspec.OperationType, schema, entity string, id, data, into any) error {
	req := request{Type: mqttspec.MessageTypeRequest, Operation: op, Schema: schema, Entity: entity, Data: data}
	if id != nil {
		req.RecordID = fmt.Sprint(id)
		if req.RecordID == "" {
			return fmt.Errorf("mqttspec client: %s %s.%s: empty record id", op, schema, entity)
		}
	}
	a, err := c.do(ctx, req, nil)
	if err != nil {
		return err
	}
	if err := decode(a.Data, into); err != nil {
		return fmt.Errorf("mqttspec client: %s %s.%s: %w", op, schema, entity, err)
	}
	return nil
}

// decode decodes raw into into, when both are set.
func decode(raw json.RawMessage, into any) error {
	if into == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("decode the answer: %w", err)
	}
	return nil
}

// pageOf reads a Page from an answer's metadata.
func pageOf(md map[string]any) *Page {
	num := func(k string) int64 {
		f, _ := md[k].(float64)
		return int64(f)
	}
	return &Page{Total: num("total"), Count: int(num("count")), Limit: int(num("limit")), Offset: int(num("offset"))}
}
