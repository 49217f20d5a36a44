package broker

import "strings"

// MatchTopic reports whether the topic name matches the MQTT filter ('+'
// one level, '#' the rest including the parent level). A $share/{group}/
// filter is matched by its inner filter, and wildcards at the first level
// do not match a topic that starts with '$'. It runs for every message, so
// it walks the levels without splitting them.
func MatchTopic(filter, topic string) bool {
	if first, rest, ok := strings.Cut(filter, "/"); ok && strings.EqualFold(first, "$share") {
		if _, inner, ok := strings.Cut(rest, "/"); ok {
			filter = inner
		}
	}
	f, t := filter, topic
	topicDone := false
	for i := 0; ; i++ {
		fl, fRest, fMore := strings.Cut(f, "/")
		if fl == "#" {
			return i > 0 || !strings.HasPrefix(topic, "$")
		}
		if topicDone {
			return false
		}
		tl, tRest, tMore := strings.Cut(t, "/")
		if fl == "+" {
			if i == 0 && strings.HasPrefix(tl, "$") {
				return false
			}
		} else if fl != tl {
			return false
		}
		if !fMore {
			return !tMore
		}
		f, t, topicDone = fRest, tRest, !tMore
	}
}
