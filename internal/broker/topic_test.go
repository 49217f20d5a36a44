package broker

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMatchTopic(t *testing.T) {
	cases := []struct {
		filter, topic string
		want          bool
	}{
		{"spec/+/request", "spec/A/request", true},
		{"spec/+/request", "spec/A/response", false},
		{"spec/+/request", "spec/A/B/request", false},
		{"spec/+/request", "spec//request", true},
		{"spec/#", "spec", true},
		{"spec/#", "spec/A/B", true},
		{"spec/#", "specs/A", false},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"a/b", "a/b", true},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"+", "a", true},
		{"+", "a/b", false},
		{"$share/g/spec/+/request", "spec/A/request", true},
		{"$share/g/spec/+/request", "spec/A/response", false},
	}
	for _, c := range cases {
		require.Equal(t, c.want, MatchTopic(c.filter, c.topic), "filter %q topic %q", c.filter, c.topic)
	}
}
