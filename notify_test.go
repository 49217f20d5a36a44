package mqttspec

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/query"
)

// TestNotePartsEncodeLikeNotificationMessage: the notifications encoded
// from shared parts are what NotificationMessage.ToJSON gives.
func TestNotePartsEncodeLikeNotificationMessage(t *testing.T) {
	m := &query.Model{Schema: "pub\"lic", Entity: "users"}
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	data := json.RawMessage(`{"id":1,"name":"Ada \u003c3"}`)
	prev := json.RawMessage(`{"id":1,"name":"Ada"}`)
	for _, tc := range []struct {
		op      OperationType
		prev    json.RawMessage
		matches bool
	}{{OperationCreate, nil, true}, {OperationUpdate, prev, false}, {OperationDelete, nil, true}} {
		p := newNoteParts(&change{model: m, op: tc.op}, data, tc.prev, at)
		got := p.encode("sub-\"x\"", tc.matches, 42)
		want := NewNotificationMessage("sub-\"x\"", tc.op, m.Schema, m.Entity, data)
		want.Matches, want.Seq, want.Timestamp = tc.matches, 42, at
		if tc.prev != nil {
			want.Previous = tc.prev
		}
		wantJSON, err := want.ToJSON()
		require.NoError(t, err)
		require.True(t, json.Valid(got), "%s", got)
		require.JSONEq(t, string(wantJSON), string(got))
	}
}
