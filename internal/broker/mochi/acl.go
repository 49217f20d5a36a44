package mochi

import "strings"

// Topic access rules of the embedded broker.
//
// Everything under {prefix}/ is private: the level after the prefix is the
// client id that owns the topic. A client X may publish there only to
// {prefix}/X/request, and receives from there only topics {prefix}/X/...
// Subscribing is not restricted: any valid filter is granted, `#` and
// `spec/+/response` included, and what the client may not read is
// withheld at delivery (Mochi checks each concrete topic before it queues
// a message for a client, retained messages included). MQTT leaves
// authorization to the server (MQTT 3.1.1 section 5.4.2, MQTT 5 section
// 5.4.2); granting a filter and delivering only what the client may read
// keeps wildcard subscriptions of other applications working as on any
// broker. Topics outside the prefix are not restricted.
//
// $SYS topics describe the server; they are closed unless enabled:
// subscribing to a filter that starts with $SYS is refused and $SYS topics
// are not delivered. Topics under $mqttspec are the broker's own and never
// delivered.
//
// These functions are pure so that they can be tested exhaustively; the
// Mochi hook (hook.go) applies them.

// reservedTopic is the first level of the broker's own topics.
const reservedTopic = "$mqttspec"

// aclAllowsPublish reports whether the client clientID may publish to
// topic. It runs for every publish, so it works on the string.
func aclAllowsPublish(prefix, clientID, topic string) bool {
	if strings.ContainsAny(topic, "+#") {
		return false // not a topic name; Mochi refuses it too
	}
	if first, _, _ := strings.Cut(topic, "/"); first == reservedTopic {
		return false // the broker's own
	}
	rest, under := underPrefix(prefix, topic)
	if !under {
		return true
	}
	owner, tail, _ := strings.Cut(rest, "/")
	return aclValidClientLevel(clientID) && owner == clientID && tail == "request"
}

// underPrefix returns what follows {prefix}/ in topic, and whether topic
// lies under the prefix (at least one level more).
func underPrefix(prefix, topic string) (string, bool) {
	if len(topic) <= len(prefix) || topic[len(prefix)] != '/' || topic[:len(prefix)] != prefix {
		return "", false
	}
	return topic[len(prefix)+1:], true
}

// aclAllowsSubscribe reports whether a SUBSCRIBE to filter is granted:
// every valid filter is, but those of $SYS topics when sys is false and
// those of the broker's own topics. A shared subscription
// $share/{group}/{filter} is judged by its inner filter.
func aclAllowsSubscribe(filter string, sys bool) bool {
	f := splitTopic(filter)
	if len(f) > 0 && strings.EqualFold(f[0], "$share") { // Mochi matches $share case-insensitively
		if len(f) < 3 {
			return false // not a valid shared subscription
		}
		f = f[2:]
	}
	switch {
	case f[0] == "$SYS":
		return sys
	case f[0] == reservedTopic:
		return false
	}
	return true
}

// aclAllowsRead reports whether the client clientID may receive a message
// published to topic: not another client's private topic, not a $SYS
// topic when sys is false, never one of the broker's own. It runs for
// every delivery, so it works on the string without splitting it.
func aclAllowsRead(prefix, clientID, topic string, sys bool) bool {
	first, _, _ := strings.Cut(topic, "/")
	switch first {
	case "$SYS":
		return sys
	case reservedTopic:
		return false
	}
	rest, ok := strings.CutPrefix(topic, prefix)
	if !ok || !strings.HasPrefix(rest, "/") {
		return true // not under the prefix
	}
	owner, _, _ := strings.Cut(rest[1:], "/")
	return aclValidClientLevel(clientID) && owner == clientID
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
	rest, under := underPrefix(prefix, topic)
	if !under {
		return true
	}
	owner, tail, _ := strings.Cut(rest, "/")
	if tail != "request" {
		return true
	}
	return owner == clientID
}
