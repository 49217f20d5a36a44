package broker

import "strings"

// MatchTopic reports whether the topic name matches the MQTT filter ('+'
// one level, '#' the rest including the parent level). A $share/{group}/
// filter is matched by its inner filter, and wildcards at the first level
// do not match a topic that starts with '$'.
func MatchTopic(filter, topic string) bool {
	f := strings.Split(filter, "/")
	if len(f) >= 3 && strings.EqualFold(f[0], "$share") {
		f = f[2:]
	}
	t := strings.Split(topic, "/")
	for i, level := range f {
		if level == "#" {
			return i > 0 || !strings.HasPrefix(topic, "$")
		}
		if i >= len(t) {
			return false
		}
		if level == "+" {
			if i == 0 && strings.HasPrefix(t[0], "$") {
				return false
			}
			continue
		}
		if level != t[i] {
			return false
		}
	}
	return len(f) == len(t)
}
