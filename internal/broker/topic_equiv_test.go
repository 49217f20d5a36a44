package broker

import (
	"strings"
	"testing"
)

// splitMatch is MatchTopic as first written, level by level on split
// strings: the reference the allocation-free MatchTopic must agree with.
func splitMatch(filter, topic string) bool {
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

// topicsUpTo returns every string of 1 to n levels made of levels.
func topicsUpTo(levels []string, n int) []string {
	out := append([]string(nil), levels...)
	prev := levels
	for i := 1; i < n; i++ {
		var next []string
		for _, p := range prev {
			for _, l := range levels {
				next = append(next, p+"/"+l)
			}
		}
		out = append(out, next...)
		prev = next
	}
	return out
}

// TestMatchTopicAgreesWithSplitting: every filter and topic of up to three
// levels drawn from wildcards, empty levels, $-levels and $share.
func TestMatchTopicAgreesWithSplitting(t *testing.T) {
	all := topicsUpTo([]string{"a", "b", "", "+", "#", "$SYS", "$share", "$SHARE", "g"}, 3)
	n := 0
	for _, f := range all {
		for _, topic := range all {
			if got, want := MatchTopic(f, topic), splitMatch(f, topic); got != want {
				t.Fatalf("MatchTopic(%q, %q) = %v, splitting says %v", f, topic, got, want)
			}
			n++
		}
	}
	t.Logf("%d pairs agree", n)
}

func BenchmarkMatchTopic(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		MatchTopic("spec/+/request", "spec/device-17/request")
	}
}
