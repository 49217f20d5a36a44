package mqttspec

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseMessage(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		wantErr bool
		check   func(t *testing.T, m *Message)
	}{
		{name: "read with options", in: `{"id":"m1","type":"request","operation":"read","schema":"public","entity":"users","options":{"filters":[{"column":"age","operator":"gt","value":12345678901234567}],"limit":5}}`,
			check: func(t *testing.T, m *Message) {
				require.Equal(t, "m1", m.ID)
				require.Equal(t, OperationRead, m.Operation)
				require.Equal(t, json.Number("12345678901234567"), m.Options.Filters[0].Value, "large integers must survive")
				require.Equal(t, 5, *m.Options.Limit)
			}},
		{name: "data object keeps numbers exact", in: `{"id":"m2","type":"request","operation":"create","entity":"users","data":{"n":1.5}}`,
			check: func(t *testing.T, m *Message) {
				require.Equal(t, json.Number("1.5"), m.Data.(map[string]any)["n"])
			}},
		{name: "malformed", in: `{"id":`, wantErr: true},
		{name: "array", in: `[]`, wantErr: true},
		{name: "trailing garbage", in: `{"id":"x","type":"ping"} {}`, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMessage([]byte(tc.in))
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			tc.check(t, m)
		})
	}
}

func TestMessageValidate(t *testing.T) {
	cases := []struct {
		msg   Message
		valid bool
	}{
		{Message{Type: MessageTypePing}, true},
		{Message{ID: "1", Type: MessageTypeRequest, Operation: OperationRead, Entity: "users"}, true},
		{Message{Type: MessageTypeRequest, Operation: OperationRead, Entity: "users"}, false},
		{Message{ID: "1", Type: MessageTypeRequest, Entity: "users"}, false},
		{Message{ID: "1", Type: MessageTypeRequest, Operation: OperationRead}, false},
		{Message{ID: "1", Type: MessageTypeSubscription, Operation: OperationUnsubscribe}, true},
		{Message{ID: "1", Type: MessageTypeSubscription, Operation: OperationSubscribe}, false},
		{Message{ID: "1", Type: "shout"}, false},
		{Message{}, false},
	}
	for _, tc := range cases {
		require.Equal(t, tc.valid, tc.msg.IsValid(), "%+v", tc.msg)
	}
}

func TestResponseJSONShape(t *testing.T) {
	raw, err := NewErrorResponse("r1", CodeNotFound, "gone").ToJSON()
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(raw, &got))
	require.Equal(t, "r1", got["id"])
	require.Equal(t, "response", got["type"])
	require.Equal(t, false, got["success"])
	require.Equal(t, map[string]any{"code": "not_found", "message": "gone"}, got["error"])

	raw, err = NewNotificationMessage("sub-1", OperationCreate, "public", "users", map[string]any{"id": 1}).ToJSON()
	require.NoError(t, err)
	got = nil
	require.NoError(t, json.Unmarshal(raw, &got))
	for _, k := range []string{"type", "operation", "subscription_id", "schema", "entity", "data", "matches", "seq", "timestamp"} {
		require.Contains(t, got, k)
	}
}

func TestRequestIDFromBrokenPayload(t *testing.T) {
	require.Equal(t, "a", requestID([]byte(`{"id":"a","type":5}`)))
	require.Equal(t, "", requestID([]byte(`{"id":`)))
	require.Equal(t, "b", requestID([]byte(`{"x":{"id":"nested"},"id":"b","type":`)))
	require.Equal(t, "", requestID([]byte(`["id","c"]`)))
	require.Equal(t, "", requestID([]byte(`{"id":7}`)))
}
