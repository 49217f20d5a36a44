package mqttspec

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/query"
)

type device struct {
	ID     int64   `json:"id"`
	Room   string  `json:"room"`
	Temp   int     `json:"temp"`
	Status *string `json:"status"`
}

func newTestSub(t testing.TB, m *query.Model, id string, filters ...query.FilterOption) *Subscription {
	t.Helper()
	where, err := query.BuildWhere(m, filters, query.Limits{})
	require.NoError(t, err)
	return &Subscription{ID: id, ConnectionID: "c", Schema: m.Schema, Entity: m.Entity, model: m, where: where}
}

func TestSubscriptionIndexFindsOnlyCandidates(t *testing.T) {
	m, err := query.ParseModel("iot.devices", &device{})
	require.NoError(t, err)
	sm := NewSubscriptionManager()
	for i := 0; i < 100; i++ {
		sm.add(newTestSub(t, m, fmt.Sprintf("room-%d", i), query.FilterOption{Column: "room", Operator: "eq", Value: fmt.Sprintf("r%d", i)}))
	}
	sm.add(newTestSub(t, m, "hot", query.FilterOption{Column: "temp", Operator: "gt", Value: 30}))
	require.Equal(t, 101, sm.CountForEntity("iot", "devices"))

	ids := func(subs []*Subscription) []string {
		var out []string
		for _, s := range subs {
			out = append(out, s.ID)
		}
		return out
	}
	row := &device{ID: 1, Room: "r7", Temp: 20}
	require.ElementsMatch(t, []string{"room-7", "hot"}, ids(sm.candidates(m, row, nil)))
	prev := &device{ID: 1, Room: "r9", Temp: 20}
	require.ElementsMatch(t, []string{"room-7", "room-9", "hot"}, ids(sm.candidates(m, row, prev)))

	require.True(t, sm.Unsubscribe("room-7"))
	require.False(t, sm.Unsubscribe("room-7"))
	require.ElementsMatch(t, []string{"hot"}, ids(sm.candidates(m, row, nil)))
	require.Equal(t, 100, sm.Count())
}

func TestSubscriptionMatchesFilters(t *testing.T) {
	m, err := query.ParseModel("iot.devices", &device{})
	require.NoError(t, err)
	on := "on"
	s := newTestSub(t, m, "s", query.FilterOption{Column: "room", Operator: "eq", Value: "kitchen"},
		query.FilterOption{Column: "temp", Operator: "gte", Value: "20"})
	require.True(t, s.MatchesFilters(&device{Room: "kitchen", Temp: 20, Status: &on}))
	require.False(t, s.MatchesFilters(&device{Room: "kitchen", Temp: 19}))
	require.False(t, s.MatchesFilters(&device{Room: "hall", Temp: 25}))
	// A subscription made without the handler has unvalidated filters: it
	// matches nothing rather than everything.
	raw := NewSubscriptionManager().Subscribe("x", "c", "iot", "devices", &RequestOptions{Filters: []FilterOption{{Column: "room", Operator: "eq", Value: "kitchen"}}})
	require.False(t, raw.MatchesFilters(&device{Room: "kitchen"}))
}

func BenchmarkNotifyCandidates(b *testing.B) {
	m, err := query.ParseModel("iot.devices", &device{})
	require.NoError(b, err)
	for _, n := range []int{0, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			sm := NewSubscriptionManager()
			for i := 0; i < n; i++ {
				sm.add(newTestSub(b, m, fmt.Sprintf("s%d", i), query.FilterOption{Column: "room", Operator: "eq", Value: fmt.Sprintf("r%d", i)}))
			}
			row := &device{ID: 1, Room: "nowhere", Temp: 20}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if len(sm.candidates(m, row, nil)) != 0 {
					b.Fatal("unexpected candidate")
				}
			}
		})
	}
}
