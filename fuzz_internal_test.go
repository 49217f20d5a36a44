package mqttspec

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzHandleRequest sends arbitrary payloads through the request path
// (parse, validation, hooks, database, answer; no MQTT). Whatever the
// payload, the handler answers: a success, or a failure with a code other
// than internal_error (which would mean a panic or an unforeseen error),
// and the answer encodes as JSON.
func FuzzHandleRequest(f *testing.F) {
	for _, seed := range []string{
		`{"id":"1","type":"request","operation":"read","schema":"iot","entity":"devices","record_id":"1"}`,
		`{"id":"2","type":"request","operation":"read","schema":"iot","entity":"devices","options":{"filters":[{"column":"room","operator":"like","value":"k%"},{"column":"temp","operator":"between","value":[1,5],"logic_operator":"OR"}],"sort":[{"column":"temp","direction":"desc"}],"limit":2,"offset":1,"columns":["id","room"]}}`,
		`{"id":"3","type":"request","operation":"create","schema":"iot","entity":"devices","data":{"room":"hall","temp":3,"status":null}}`,
		`{"id":"4","type":"request","operation":"update","schema":"iot","entity":"devices","record_id":"1","data":{"temp":"7"}}`,
		`{"id":"5","type":"request","operation":"delete","schema":"iot","entity":"devices","record_id":"2"}`,
		`{"id":"6","type":"subscription","operation":"subscribe","schema":"iot","entity":"devices","options":{"filters":[{"column":"room","operator":"in","value":["a","b"]}],"snapshot":true}}`,
		`{"id":"7","type":"subscription","operation":"unsubscribe","subscription_id":"sub-x"}`,
		`{"id":"8","type":"ping"}`,
		`{"id":"9","type":"request","operation":"meta","schema":"iot","entity":"devices"}`,
		`{"id":"10","type":"request","operation":"read","entity":"devices","options":{"filters":[{"column":"temp","operator":"gt","value":1e400}]}}`,
		"{\"id\":\"11\",\"type\":\"request\",\"operation\":\"create\",\"entity\":\"devices\",\"data\":{\"room\":\"a\\u0000b\"}}",
		`[1,2]`, `null`, `{"id":`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	h := benchHandler(f, 3)
	client := NewClient("fuzzer", "", h)
	f.Fuzz(func(t *testing.T, payload []byte) {
		resp, res := h.handle(context.Background(), client, payload)
		res.finish()
		if resp == nil {
			t.Fatalf("no answer to %q", payload)
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("answer to %q does not encode: %v", payload, err)
		}
		if resp.Success {
			return
		}
		if resp.Error == nil || resp.Error.Code == "" || resp.Error.Message == "" {
			t.Fatalf("failure without a code and message for %q: %+v", payload, resp)
		}
		if resp.Error.Code == CodeInternalError {
			t.Fatalf("internal error for %q: %s", payload, resp.Error.Message)
		}
	})
}
