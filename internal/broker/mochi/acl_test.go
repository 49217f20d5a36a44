package mochi

import (
	"strings"
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

// splitAllowsPublish and splitOwns are the ACL publish checks as first
// written on split topics: the references of the string versions.
func splitAllowsPublish(prefix, clientID, topic string) bool {
	if strings.ContainsAny(topic, "+#") {
		return false
	}
	p, t := strings.Split(prefix, "/"), strings.Split(topic, "/")
	if t[0] == reservedTopic {
		return false
	}
	if !aclUnderPrefix(p, t) {
		return true
	}
	return aclValidClientLevel(clientID) && len(t) == len(p)+2 && t[len(p)] == clientID && t[len(p)+1] == "request"
}

func splitOwns(prefix, clientID, topic string) bool {
	p, t := strings.Split(prefix, "/"), strings.Split(topic, "/")
	if !aclUnderPrefix(p, t) || len(t) != len(p)+2 || t[len(t)-1] != "request" {
		return true
	}
	return t[len(p)] == clientID
}

// TestPublishChecksAgreeWithSplitting: every topic of up to four levels
// from the prefix's levels, client ids, "request", wildcards and empty
// levels, for one- and two-level prefixes and several client ids.
func TestPublishChecksAgreeWithSplitting(t *testing.T) {
	levels := []string{"spec", "app", "x", "request", "", "+", "$mqttspec", "a/b"}
	var topics []string
	prev := []string{""}
	for depth := 0; depth < 4; depth++ {
		var next []string
		for _, p := range prev {
			for _, l := range levels {
				if depth == 0 {
					next = append(next, l)
				} else {
					next = append(next, p+"/"+l)
				}
			}
		}
		topics = append(topics, next...)
		prev = next
	}
	for _, prefix := range []string{"spec", "app/spec"} {
		for _, id := range []string{"x", "request", "", "a/b", "spec"} {
			for _, topic := range topics {
				if got, want := aclAllowsPublish(prefix, id, topic), splitAllowsPublish(prefix, id, topic); got != want {
					t.Fatalf("aclAllowsPublish(%q, %q, %q) = %v, splitting says %v", prefix, id, topic, got, want)
				}
				if got, want := senderOwnsTopic(prefix, id, topic), splitOwns(prefix, id, topic); got != want {
					t.Fatalf("senderOwnsTopic(%q, %q, %q) = %v, splitting says %v", prefix, id, topic, got, want)
				}
			}
		}
	}
}
