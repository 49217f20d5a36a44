package mqttspec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/internal/broker/paho"
	"github.com/mqttspec/mqttspec/query"
)

// Error codes sent in ErrorInfo.Code. They are part of the protocol.
const (
	CodeInvalidJSON       = "invalid_json"
	CodeInvalidMessage    = "invalid_message"
	CodeUnknownOperation  = "unknown_operation"
	CodeUnknownEntity     = "unknown_entity"
	CodeUnknownColumn     = "unknown_column"
	CodeUnknownOperator   = "unknown_operator"
	CodeUnknownRelation   = "unknown_relation"
	CodeInvalidValue      = "invalid_value"
	CodeInvalidOptions    = "invalid_options"
	CodeNotFound          = "not_found"
	CodeConflict          = "conflict"
	CodeForbidden         = "forbidden"
	CodeHookRejected      = "hook_rejected"
	CodeSubscriptionLimit = "subscription_limit"
	CodeOverloaded        = "overloaded"
	CodeTimeout           = "timeout"
	CodeResponseTooLarge  = "response_too_large"
	CodeDatabaseError     = "database_error"
	CodeInternalError     = "internal_error"
)

// Sentinel errors of the package.
var (
	// ErrNotStarted is returned by operations that need a started handler.
	ErrNotStarted = errors.New("mqttspec: handler not started")
	// ErrAlreadyStarted is returned by a second Start.
	ErrAlreadyStarted = errors.New("mqttspec: handler already started")
	// ErrShutdown is returned after Shutdown.
	ErrShutdown = errors.New("mqttspec: handler shut down")
	// ErrNoDatabase is returned when a constructor gets a nil database.
	ErrNoDatabase = errors.New("mqttspec: nil database")
	// ErrNotConnected is returned when the external broker connection is down.
	ErrNotConnected = paho.ErrNotConnected
	// ErrForbidden is a hook error that answers with code "forbidden".
	ErrForbidden = errors.New("forbidden")
)

// Error is an error with a protocol error code. A hook that returns an
// *Error (or wraps one) answers the client with its Code and Message; any
// other hook error answers with CodeHookRejected and the error's text.
type Error struct {
	Code    string
	Message string
	Details map[string]any
}

// NewError returns an *Error with code and a formatted message.
func NewError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// info converts e to the wire form.
func (e *Error) info() *ErrorInfo {
	return &ErrorInfo{Code: e.Code, Message: e.Message, Details: e.Details}
}

// hookError turns a hook's error into the error the client sees: an
// *Error as it is, ErrForbidden as "forbidden", a panic or the end of the
// request's context unchanged (answered "internal_error" or "timeout", see
// errorResponse), anything else as "hook_rejected" with its text.
func hookError(err error) error {
	var e *Error
	var p *HookPanic
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &p):
		return p
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, ErrForbidden):
		return &Error{Code: CodeForbidden, Message: err.Error()}
	default:
		return &Error{Code: CodeHookRejected, Message: err.Error()}
	}
}

// validationCodes maps the query layer's errors to protocol codes. Their
// messages name only what the client sent, so they are passed on.
var validationCodes = []struct {
	err  error
	code string
}{
	{query.ErrUnknownColumn, CodeUnknownColumn},
	{query.ErrUnknownOperator, CodeUnknownOperator},
	{query.ErrUnknownRelation, CodeUnknownRelation},
	{query.ErrInvalidValue, CodeInvalidValue},
	{query.ErrInvalidOptions, CodeInvalidOptions},
}

// errorResponse answers request id with err. Errors that may carry
// database or driver text are logged and replaced by a generic message.
func (h *Handler) errorResponse(id string, err error) *ResponseMessage {
	var e *Error
	var p *HookPanic
	if errors.As(err, &p) {
		h.logger.Error("hook panicked", "request", id, "panic", p.Value, "stack", string(p.Stack))
		return NewErrorResponse(id, CodeInternalError, "internal error")
	}
	if errors.As(err, &e) {
		return &ResponseMessage{ID: id, Type: MessageTypeResponse, Error: e.info(), Timestamp: nowUTC()}
	}
	for _, v := range validationCodes {
		if errors.Is(err, v.err) {
			return NewErrorResponse(id, v.code, err.Error())
		}
	}
	switch {
	case errors.Is(err, adapters.ErrConstraint):
		h.logger.Info("constraint violation", "request", id, "error", err)
		return NewErrorResponse(id, CodeConflict, "the change violates a database constraint")
	case errors.Is(err, context.DeadlineExceeded):
		h.counters.timeouts.Add(1)
		h.logger.Warn("request timed out", "request", id, "error", err)
		return NewErrorResponse(id, CodeTimeout, "the request took longer than the server allows")
	case errors.Is(err, context.Canceled):
		return NewErrorResponse(id, CodeInternalError, "request cancelled: the server is shutting down")
	}
	h.logger.Error("database error", "request", id, "error", err)
	return NewErrorResponse(id, CodeDatabaseError, "database error")
}

// requestID reads the "id" of a payload that may not be a valid message,
// so that even a refused request is answered with its id when possible. It
// scans the top-level object token by token, so a payload that breaks off
// after the id (truncated JSON) still yields it.
func requestID(payload []byte) string {
	dec := json.NewDecoder(bytes.NewReader(payload))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		if key == "id" {
			v, err := dec.Token()
			if s, ok := v.(string); ok && err == nil {
				return s
			}
			return ""
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return ""
		}
	}
	return ""
}

func nowUTC() time.Time { return time.Now().UTC() }
