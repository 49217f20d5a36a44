package mochi

import "strings"

// Topic access rules of the embedded broker.
//
// Everything under {prefix}/ is private: the level after the prefix is the
// client id that owns the topic. A client X may publish there only to
// {prefix}/X/request, and may read (subscribe to, or receive) only filters
// and topics whose levels start with the prefix's levels followed by the
// literal level X. Filters and topics that cannot reach {prefix}/ at all
// are left alone, so the broker can carry other traffic.
//
// These functions are pure so that they can be tested exhaustively; the
// Mochi hook (hook.go) applies them.

// aclAllowsPublish reports whether the client clientID may publish to topic.
func aclAllowsPublish(prefix, clientID, topic string) bool {
	if strings.ContainsAny(topic, "+#") {
		return false // not a topic name; Mochi refuses it too
	}
	p := splitTopic(prefix)
	t := splitTopic(topic)
	if !aclUnderPrefix(p, t) {
		return true
	}
	return aclValidClientLevel(clientID) &&
		len(t) == len(p)+2 && t[len(p)] == clientID && t[len(p)+1] == "request"
}

// aclAllowsRead reports whether the client clientID may subscribe to filter
// or receive a message published to the topic filter (a topic name is a
// filter without wildcards). A shared subscription $share/{group}/{filter}
// is judged by its inner filter.
func aclAllowsRead(prefix, clientID, filter string) bool {
	f := splitTopic(filter)
	if len(f) > 0 && strings.EqualFold(f[0], "$share") { // Mochi matches $share case-insensitively
		if len(f) < 3 {
			return false // not a valid shared subscription
		}
		f = f[2:]
	}
	p := splitTopic(prefix)
	if !aclFilterReaches(f, p) {
		return true
	}
	if !aclValidClientLevel(clientID) || len(f) <= len(p) {
		return false
	}
	for i, level := range p {
		if f[i] != level {
			return false
		}
	}
	return f[len(p)] == clientID
}

// aclUnderPrefix reports whether the topic levels t lie strictly under the
// prefix levels p (at least one more level).
func aclUnderPrefix(p, t []string) bool {
	if len(t) <= len(p) {
		return false
	}
	for i, level := range p {
		if t[i] != level {
			return false
		}
	}
	return true
}

// aclFilterReaches reports whether the filter levels f can match at least
// one topic strictly under the prefix levels p.
//
// Wildcards are taken to match every level, including a first level that
// starts with '$'. The MQTT rule that '#' and '+' do not match such a level
// is deliberately not relied on: Mochi applies it when routing live
// messages but, for retained messages sent to a new subscription, only to
// $SYS. The stricter answer is the safe one, and the handler's prefix cannot
// start with '$' anyway.
func aclFilterReaches(f, p []string) bool {
	for i, level := range p {
		if i >= len(f) {
			return false // the filter ends above or at the prefix
		}
		switch f[i] {
		case "#":
			return true
		case "+":
			continue
		default:
			if f[i] != level {
				return false
			}
		}
	}
	// Every remaining level (literal, '+' or '#') matches some topic under
	// the prefix; none remaining means the filter matches only the prefix.
	return len(f) > len(p)
}

// aclValidClientLevel reports whether id can be one literal topic level.
func aclValidClientLevel(id string) bool {
	return id != "" && !strings.ContainsAny(id, "/+#\x00")
}

// splitTopic splits a topic or filter into its levels.
func splitTopic(s string) []string {
	return strings.Split(s, "/")
}

// senderOwnsTopic reports whether clientID may have published topic: a
// topic {prefix}/{id}/request only by client {id}; other topics pass. The
// ACL hook already refuses other publishes; the check is defence in depth
// for a user hook that allows more (Mochi ORs the hooks' answers).
func senderOwnsTopic(prefix, clientID, topic string) bool {
	p, t := splitTopic(prefix), splitTopic(topic)
	if !aclUnderPrefix(p, t) || len(t) != len(p)+2 || t[len(t)-1] != "request" {
		return true
	}
	return t[len(p)] == clientID
}
