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
		{"spec", "A", "$SYS/x", true},
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

func TestACLAllowsRead(t *testing.T) {
	cases := []struct {
		prefix, client, filter string
		want                   bool
	}{
		// Own topics, literal.
		{"spec", "A", "spec/A/response", true},
		{"spec", "A", "spec/A/notify/+", true},
		{"spec", "A", "spec/A/notify/#", true},
		{"spec", "A", "spec/A/#", true},
		{"spec", "A", "spec/A/+", true},
		{"spec", "A", "spec/A", true},
		{"spec", "A", "spec/A/notify/abc", true},
		// Other clients' topics or wildcards at the client level.
		{"spec", "A", "spec/B/response", false},
		{"spec", "A", "spec/+/response", false},
		{"spec", "A", "spec/+/#", false},
		{"spec", "A", "spec/#", false},
		{"spec", "A", "spec/+", false},
		{"spec", "A", "#", false},
		{"spec", "A", "+/A/response", false},
		{"spec", "A", "+/+/response", false},
		{"spec", "A", "+/x/+/y", false}, // matches spec/x/..., client x's topics
		{"spec", "x", "+/x/+/y", false}, // the prefix levels must be literal
		{"spec", "A", "+/#", false},
		{"spec", "A", "spec/other/response", false},
		{"spec", "A", "spec/a/response", false},
		{"spec", "A", "spec//response", false},
		// Filters that cannot reach spec/...: allowed.
		{"spec", "A", "sensors/#", true},
		{"spec", "A", "other/x", true},
		{"spec", "A", "spec", true}, // matches only the topic "spec"
		{"spec", "A", "+", true},    // one level: cannot reach spec/x
		{"spec", "A", "specs/#", true},
		{"spec", "A", "x/spec/#", true},
		{"spec", "A", "/spec/#", true},
		{"spec", "A", "$SYS/#", true},
		// Shared subscriptions are judged by their inner filter.
		{"spec", "A", "$share/g/spec/A/response", true},
		{"spec", "A", "$share/g/spec/B/response", false},
		{"spec", "A", "$share/g/spec/+/request", false},
		{"spec", "A", "$share/g/#", false},
		{"spec", "A", "$SHARE/g/#", false},
		{"spec", "A", "$Share/g/spec/#", false},
		{"spec", "A", "$share/g/sensors/#", true},
		{"spec", "A", "$share/g", false},
		{"spec", "A", "$share", false},
		// Multi-level prefix.
		{"a/b", "A", "a/b/A/response", true},
		{"a/b", "A", "a/b/A/#", true},
		{"a/b", "A", "a/b/B/response", false},
		{"a/b", "A", "a/b/#", false},
		{"a/b", "A", "a/#", false},
		{"a/b", "A", "a/+/A/response", false},
		{"a/b", "A", "+/b/A/response", false},
		{"a/b", "A", "a/+", true}, // matches a/b itself only
		{"a/b", "A", "a/b", true},
		{"a/b", "A", "a/c/#", true},
		{"a/b", "A", "+", true},
		// A prefix starting with '$' (rejected by the config) is still
		// protected from '#' and '+': Mochi routes such topics to them.
		{"$p", "A", "#", false},
		{"$p", "A", "+/A/response", false},
		{"$p", "A", "$p/A/response", true},
		// Invalid client ids read nothing under the prefix.
		{"spec", "", "spec//response", false},
		{"spec", "A/B", "spec/A/B/response", false},
		{"spec", "+", "spec/+/response", false},
		{"spec", "#", "spec/#", false},
		{"spec", "A/B", "sensors/#", true},
	}
	for _, c := range cases {
		require.Equal(t, c.want, aclAllowsRead(c.prefix, c.client, c.filter),
			"prefix %q client %q read %q", c.prefix, c.client, c.filter)
	}
}
