package mqttspec

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/internal/group"
)

// TestRebalanceLetsGoOfClientsServedElsewhere: once another member owns a
// client, this member drops the client and its subscriptions — also one
// registered after the client was forgotten here (a request that was
// already running when the client moved) — and keeps what it still owns.
func TestRebalanceLetsGoOfClientsServedElsewhere(t *testing.T) {
	h := benchHandler(t, 1)
	m, err := h.catalog.resolve("iot", "devices")
	require.NoError(t, err)
	g := &groupMember{h: h, members: group.New("a"), kick: make(chan struct{}, 1)}
	g.readyAt.Store(time.Now().Add(time.Hour).UnixNano()) // not serving yet: no database part
	h.group = g
	g.members.Join("b")

	var mine, theirs string
	for i := 0; mine == "" || theirs == ""; i++ {
		id := fmt.Sprintf("dev-%d", i)
		if group.Owner([]string{"a", "b"}, id) == "a" {
			mine = id
		} else {
			theirs = id
		}
	}
	for _, id := range []string{mine, theirs} {
		c := h.clients.Register(id, "", h)
		s := newTestSub(t, m, "sub-"+id)
		s.ConnectionID = id
		h.subs.add(s)
		c.AddSubscription(s)
	}
	late := newTestSub(t, m, "sub-late") // its client is no longer registered here
	late.ConnectionID = theirs
	h.subs.add(late)

	g.rebalance("")
	_, kept := h.clients.GetClient(mine)
	_, dropped := h.clients.GetClient(theirs)
	require.True(t, kept, "a client this member owns stays")
	require.False(t, dropped, "a client served elsewhere is let go")
	_, ok := h.subs.GetSubscription("sub-" + mine)
	require.True(t, ok)
	for _, id := range []string{"sub-" + theirs, "sub-late"} {
		_, ok := h.subs.GetSubscription(id)
		require.False(t, ok, "%s ended here", id)
	}
	require.False(t, late.Active, "nothing more is sent for it from here")
}

// TestOthersSelfCheckIsNotAnswered: the start-up ping of another member
// (whose id this member may not know yet) is left to that member; a
// client's own ping is not mistaken for one.
func TestOthersSelfCheckIsNotAnswered(t *testing.T) {
	require.True(t, othersSelfCheck([]byte(`{"id":"mqttspec-self-check-0b3c","type":"ping"}`)))
	require.False(t, othersSelfCheck([]byte(`{"id":"1","type":"ping"}`)))
	require.False(t, othersSelfCheck([]byte(`{"type":"ping","id":"x"}`)))
}
