package mochi

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestACLAllowsPublish(t *testing.T) {
	cases := []struct {
		prefix, client, topic string
		want                  bool
	}{
		// Own request topic only.
		{"spec", "A", "spec/A/request", true},
		{"spec", "A", "spec/B/request", false},
		{"spec", "A", "spec/A/response", false},
		{"spec", "A", "spec/A/notify/1", false},
		{"spec", "A", "spec/A/request/x", false},
		{"spec", "A", "spec/A", false},
		{"spec", "A", "spec/request", false},
		{"spec", "A", "spec//request", false},
		{"spec", "A", "spec/a/request", false}, // ids are case-sensitive
		{"spec", "A", "spec/A/REQUEST", false},
		// Wildcards are never topic names.
		{"spec", "A", "spec/+/request", false},
		{"spec", "A", "spec/#", false},
		{"spec", "A", "other/+", false},
		// Outside the prefix: allowed.
		{"spec", "A", "spec", true},
		{"spec", "A", "sensors/temp", true},
		{"spec", "A", "specs/A/request", true},
		{"spec", "A", "Spec/B/request", true},
		{"spec", "A", "x/spec/B/request", true},
		{"spec", "A", "/spec/B/request", true},
		{"spec", "A", "$SYS/x", true}, // Mochi itself refuses publishing $SYS
		{"spec", "A", "$TopicA/B", true},
		{"spec", "A", "$mqttspec/routed-will", false},
		// Multi-level prefix.
		{"a/b", "A", "a/b/A/request", true},
		{"a/b", "A", "a/b/B/request", false},
		{"a/b", "A", "a/b/A/response", false},
		{"a/b", "A", "a/A/request", true}, // not under a/b/
		{"a/b", "A", "a/b", true},
		{"a/b", "A", "a/c/A/request", true},
		// Invalid client ids own nothing under the prefix.
		{"spec", "", "spec//request", false},
		{"spec", "A/B", "spec/A/B/request", false},
		{"spec", "+", "spec/+/request", false},
		{"spec", "A/B", "sensors/x", true},
	}
	for _, c := range cases {
		require.Equal(t, c.want, aclAllowsPublish(c.prefix, c.client, c.topic),
			"prefix %q client %q publish %q", c.prefix, c.client, c.topic)
	}
}

// TestACLAllowsSubscribe: every valid filter is granted, those reaching
// other clients' private topics included (what they may not read is
// withheld at delivery); $SYS only when enabled; the broker's own topics
// never; a malformed shared subscription never.
func TestACLAllowsSubscribe(t *testing.T) {
	cases := []struct {
		filter string
		sys    bool
		want   bool
	}{
		{"spec/A/response", false, true},
		{"spec/B/response", false, true},
		{"spec/+/response", false, true},
		{"#", false, true},
		{"+/+", false, true},
		{"spec/#", false, true},
		{"sensors/#", false, true},
		{"$share/g/spec/+/request", false, true},
		{"$SHARE/g/#", false, true},
		{"$share/g", false, false},
		{"$share", false, false},
		{"$SYS/#", false, false},
		{"$SYS/broker/clients", false, false},
		{"$SYS/#", true, true},
		{"$share/g/$SYS/#", false, false},
		{"$mqttspec/#", true, false},
		{"$mqttspec/routed-will", false, false},
	}
	for _, c := range cases {
		require.Equal(t, c.want, aclAllowsSubscribe(c.filter, c.sys), "subscribe %q (sys %v)", c.filter, c.sys)
	}
}

// TestACLAllowsRead: a client receives its own private topics and every
// topic outside the prefix, never another client's private topics.
func TestACLAllowsRead(t *testing.T) {
	cases := []struct {
		prefix, client, topic string
		sys                   bool
		want                  bool
	}{
		// Own topics.
		{"spec", "A", "spec/A/response", false, true},
		{"spec", "A", "spec/A/notify/abc", false, true},
		{"spec", "A", "spec/A/request", false, true},
		// Other clients' topics.
		{"spec", "A", "spec/B/response", false, false},
		{"spec", "A", "spec/B/notify/x", false, false},
		{"spec", "A", "spec/B/request", false, false},
		{"spec", "A", "spec/a/response", false, false},
		{"spec", "A", "spec//response", false, false},
		// Outside the prefix.
		{"spec", "A", "sensors/1", false, true},
		{"spec", "A", "spec", false, true},
		{"spec", "A", "specs/A/response", false, true},
		{"spec", "A", "x/spec/B/response", false, true},
		{"spec", "A", "TopicA/B", false, true},
		// Multi-level prefix.
		{"a/b", "A", "a/b/A/response", false, true},
		{"a/b", "A", "a/b/B/response", false, false},
		{"a/b", "A", "a/c/B/response", false, true},
		// $SYS only when enabled; the broker's own topics never.
		{"spec", "A", "$SYS/broker/clients", false, false},
		{"spec", "A", "$SYS/broker/clients", true, true},
		{"spec", "A", "$mqttspec/routed-will", true, false},
		// Invalid client ids read nothing under the prefix.
		{"spec", "", "spec//response", false, false},
		{"spec", "A/B", "spec/A/B/response", false, false},
		{"spec", "+", "spec/+/response", false, false},
		{"spec", "A/B", "sensors/1", false, true},
	}
	for _, c := range cases {
		require.Equal(t, c.want, aclAllowsRead(c.prefix, c.client, c.topic, c.sys),
			"prefix %q client %q read %q", c.prefix, c.client, c.topic)
	}
}
