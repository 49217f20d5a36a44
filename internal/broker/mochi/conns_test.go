package mochi

import (
	"reflect"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// TestUnsentReadsMochisCount pins the unexported field unsent reads: the
// count of packets Mochi has queued for a client and not yet written.
func TestUnsentReadsMochisCount(t *testing.T) {
	f, ok := reflect.TypeOf(mqtt.ClientState{}).FieldByName("outboundQty")
	if !ok || f.Type.Kind() != reflect.Int32 {
		t.Fatalf("mqtt.ClientState has no int32 outboundQty: Mochi changed, unsent must follow")
	}
	cl := &mqtt.Client{}
	if n := unsent(cl); n != 0 {
		t.Fatalf("unsent of a new client = %d", n)
	}
}

// TestFilterReachesUnder: which filters can match a topic under
// spec/A/ (a private topic of client A).
func TestFilterReachesUnder(t *testing.T) {
	under := []string{"spec", "A"}
	for filter, want := range map[string]bool{
		"#": true, "spec/#": true, "spec/A/#": true, "spec/A/response": true, "spec/A/notify/+": true,
		"+/+/+": true, "spec/+/response": true, "+/A/notify/x": true,
		"spec/A": false, "spec/B/#": false, "other/#": false, "+/+": false, "spec": false, "+": false,
	} {
		if got := filterReachesUnder(splitTopic(filter), under); got != want {
			t.Errorf("filterReachesUnder(%q) = %v, want %v", filter, got, want)
		}
	}
}
