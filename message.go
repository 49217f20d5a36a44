package mqttspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mqttspec/mqttspec/query"
)

// Query option types of the request protocol, defined in adapters so the
// database layer can use them without importing this package.
type (
	// RequestOptions is the "options" object of a request.
	RequestOptions = query.RequestOptions
	// FilterOption is one filter of a request.
	FilterOption = query.FilterOption
	// SortOption is one sort key of a request.
	SortOption = query.SortOption
	// PreloadOption names a relation to load with each record.
	PreloadOption = query.PreloadOption
)

// MessageType is the "type" field of a message.
type MessageType string

// Message types.
const (
	MessageTypeRequest      MessageType = "request"
	MessageTypeResponse     MessageType = "response"
	MessageTypeNotification MessageType = "notification"
	MessageTypeSubscription MessageType = "subscription"
	MessageTypeError        MessageType = "error"
	MessageTypePing         MessageType = "ping"
	MessageTypePong         MessageType = "pong"
	// MessageTypeDisconnect is a client saying it has gone (typically its
	// will, published by the broker when its connection drops): with an
	// external broker the handler ends its session then (see README,
	// "Connection hooks and client lifetime").
	MessageTypeDisconnect MessageType = "disconnect"
)

// OperationType is the "operation" field of a message.
type OperationType string

// Operations.
const (
	OperationRead        OperationType = "read"
	OperationCreate      OperationType = "create"
	OperationUpdate      OperationType = "update"
	OperationDelete      OperationType = "delete"
	OperationSubscribe   OperationType = "subscribe"
	OperationUnsubscribe OperationType = "unsubscribe"
	OperationMeta        OperationType = "meta"
)

// Message is a request as a client sends it (and the general shape of every
// message of the protocol).
type Message struct {
	// ID correlates a request with its response; the handler echoes it.
	ID string `json:"id,omitempty"`
	// Type is request, subscription or ping for client messages.
	Type MessageType `json:"type"`
	// Operation is what to do (read, create, ...).
	Operation OperationType `json:"operation,omitempty"`
	// Schema and Entity name the registered model ("public", "users").
	Schema string `json:"schema,omitempty"`
	Entity string `json:"entity,omitempty"`
	// RecordID selects one record for read, update and delete; data.id does too.
	RecordID string `json:"record_id,omitempty"`
	// Data is the record (create, update) or the key (read, delete, unsubscribe).
	Data any `json:"data,omitempty"`
	// Options holds filters, sort, paging, projection and preloads.
	Options *RequestOptions `json:"options,omitempty"`
	// SubscriptionID names the subscription of an unsubscribe.
	SubscriptionID string `json:"subscription_id,omitempty"`
	// Success, Error and Metadata are set on responses.
	Success  bool           `json:"success,omitempty"`
	Error    *ErrorInfo     `json:"error,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
	// Timestamp is when the message was created.
	Timestamp time.Time `json:"timestamp,omitempty"`
}

// ErrorInfo is the "error" object of a failed response.
type ErrorInfo struct {
	// Code is stable and documented in the README's error table.
	Code string `json:"code"`
	// Message is a human-readable explanation, safe to show to the client.
	Message string `json:"message"`
	// Details carries structured context (e.g. the offending column).
	Details map[string]any `json:"details,omitempty"`
}

// ResponseMessage answers one request on {prefix}/{client_id}/response.
type ResponseMessage struct {
	ID        string         `json:"id"`
	Type      MessageType    `json:"type"`
	Success   bool           `json:"success"`
	Data      any            `json:"data,omitempty"`
	Error     *ErrorInfo     `json:"error,omitempty"`
	Metadata  map[string]any `json:"metadata,omitempty"`
	Timestamp time.Time      `json:"timestamp"`
}

// NotificationMessage tells a subscriber about a change, on
// {prefix}/{client_id}/notify/{subscription_id}.
type NotificationMessage struct {
	Type           MessageType   `json:"type"`
	Operation      OperationType `json:"operation"`
	SubscriptionID string        `json:"subscription_id"`
	Schema         string        `json:"schema"`
	Entity         string        `json:"entity"`
	// Data is the record after the change (the deleted record for delete).
	Data any `json:"data"`
	// Previous is the record before an update.
	Previous any `json:"previous,omitempty"`
	// Matches is false when an update moved the record out of the
	// subscription's filters: the subscriber should drop it from its view.
	Matches bool `json:"matches"`
	// Seq increases by one for every notification of a subscription.
	Seq       uint64    `json:"seq"`
	Timestamp time.Time `json:"timestamp"`
}

// NewResponseMessage returns a response for request id.
func NewResponseMessage(id string, success bool, data any) *ResponseMessage {
	return &ResponseMessage{ID: id, Type: MessageTypeResponse, Success: success, Data: data, Timestamp: nowUTC()}
}

// NewErrorResponse returns a failed response for request id.
func NewErrorResponse(id string, code, message string) *ResponseMessage {
	return &ResponseMessage{
		ID: id, Type: MessageTypeResponse, Success: false,
		Error: &ErrorInfo{Code: code, Message: message}, Timestamp: nowUTC(),
	}
}

// NewNotificationMessage returns a notification for subscriptionID.
func NewNotificationMessage(subscriptionID string, operation OperationType, schema, entity string, data any) *NotificationMessage {
	return &NotificationMessage{
		Type: MessageTypeNotification, Operation: operation, SubscriptionID: subscriptionID,
		Schema: schema, Entity: entity, Data: data, Matches: true, Timestamp: nowUTC(),
	}
}

// ParseMessage decodes a JSON message. Numbers inside data and filter
// values are kept as json.Number so that large integers survive.
func ParseMessage(data []byte) (*Message, error) {
	// The fixed fields are decoded in one pass; data and options, which may
	// hold numbers of any size, are decoded apart with json.Number (most
	// requests have neither, or only small ones).
	var envelope struct {
		Message
		Data    json.RawMessage `json:"data,omitempty"`
		Options json.RawMessage `json:"options,omitempty"`
	}
	if err := json.Unmarshal(data, &envelope); err != nil {
		return nil, fmt.Errorf("mqttspec: parse message: %w", err)
	}
	msg := envelope.Message
	if len(envelope.Data) > 0 {
		if err := decodeNumbers(envelope.Data, &msg.Data); err != nil {
			return nil, fmt.Errorf("mqttspec: parse message: data: %w", err)
		}
	}
	if len(envelope.Options) > 0 {
		if err := decodeNumbers(envelope.Options, &msg.Options); err != nil {
			return nil, fmt.Errorf("mqttspec: parse message: options: %w", err)
		}
	}
	return &msg, nil
}

// decodeNumbers decodes raw (one JSON value) into v, numbers as json.Number.
func decodeNumbers(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// ToJSON encodes the message.
func (m *Message) ToJSON() ([]byte, error) { return json.Marshal(m) }

// ToJSON encodes the response.
func (r *ResponseMessage) ToJSON() ([]byte, error) { return json.Marshal(r) }

// ToJSON encodes the notification.
func (n *NotificationMessage) ToJSON() ([]byte, error) { return json.Marshal(n) }

// IsValid reports whether m has the fields its type requires: a request
// needs an id, an operation and an entity (except meta-less ping); a
// subscription message needs an id and an operation.
func (m *Message) IsValid() bool {
	return m.validate() == nil
}

// validate explains what is missing from m.
func (m *Message) validate() error {
	switch m.Type {
	case "":
		return fmt.Errorf("missing \"type\"")
	case MessageTypePing, MessageTypeDisconnect:
		return nil
	case MessageTypeRequest:
		if m.ID == "" {
			return fmt.Errorf("missing \"id\"")
		}
		if m.Operation == "" {
			return fmt.Errorf("missing \"operation\"")
		}
		if m.Entity == "" {
			return fmt.Errorf("missing \"entity\"")
		}
	case MessageTypeSubscription:
		if m.ID == "" {
			return fmt.Errorf("missing \"id\"")
		}
		if m.Operation == "" {
			return fmt.Errorf("missing \"operation\"")
		}
		if m.Operation == OperationSubscribe && m.Entity == "" {
			return fmt.Errorf("missing \"entity\"")
		}
	default:
		return fmt.Errorf("unknown message type %q", m.Type)
	}
	return nil
}
