package mqttspec_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func subscribe(t *testing.T, c *testClient, filters ...map[string]any) string {
	t.Helper()
	fs := make([]any, len(filters))
	for i, f := range filters {
		fs[i] = f
	}
	data := requireOK(t, c.request(map[string]any{
		"type": "subscription", "operation": "subscribe", "schema": "public", "entity": "users",
		"options": map[string]any{"filters": fs},
	})).(map[string]any)
	subID := data["subscription_id"].(string)
	require.Equal(t, "spec/"+c.id+"/notify/"+subID, data["notify_topic"])
	return subID
}

func TestSubscriptionNotifications(t *testing.T) {
	srv := startServer(t, nil)
	sub := connectClient(t, srv.url, "watcher")
	w := connectClient(t, srv.url, "writer")
	subID := subscribe(t, sub, map[string]any{"column": "status", "operator": "eq", "value": "active"})

	// a matching create notifies with the full record.
	rec := requireOK(t, w.request(req("create", "users", map[string]any{"data": map[string]any{"name": "m", "status": "active"}}))).(map[string]any)
	n := sub.nextNote()
	require.Equal(t, "create", n["operation"])
	require.Equal(t, subID, n["subscription_id"])
	require.Equal(t, "spec/watcher/notify/"+subID, n["_topic"])
	require.Equal(t, rec, n["data"])
	require.Equal(t, true, n["matches"])

	// a create that does not match notifies nobody.
	requireOK(t, w.request(req("create", "users", map[string]any{"data": map[string]any{"name": "x", "status": "inactive"}})))
	sub.noNote(w)

	// an update that keeps the record inside the filter.
	id := fmt.Sprint(rec["id"])
	requireOK(t, w.request(req("update", "users", map[string]any{"record_id": id, "data": map[string]any{"name": "m2"}})))
	n = sub.nextNote()
	require.Equal(t, "update", n["operation"])
	require.Equal(t, "m2", n["data"].(map[string]any)["name"])
	require.Equal(t, "m", n["previous"].(map[string]any)["name"])
	require.Equal(t, true, n["matches"])

	// an update that moves it out: notified with matches=false.
	requireOK(t, w.request(req("update", "users", map[string]any{"record_id": id, "data": map[string]any{"status": "inactive"}})))
	n = sub.nextNote()
	require.Equal(t, false, n["matches"])
	require.Equal(t, "inactive", n["data"].(map[string]any)["status"])

	// updates and deletes of records outside the filter notify nobody.
	requireOK(t, w.request(req("update", "users", map[string]any{"record_id": id, "data": map[string]any{"name": "m3"}})))
	requireOK(t, w.request(req("delete", "users", map[string]any{"record_id": id})))
	sub.noNote(w)

	// a delete of a matching record carries the whole record.
	rec = requireOK(t, w.request(req("create", "users", map[string]any{"data": map[string]any{"name": "d", "status": "active", "email": "d@x"}}))).(map[string]any)
	require.Equal(t, "create", sub.nextNote()["operation"])
	requireOK(t, w.request(req("delete", "users", map[string]any{"record_id": fmt.Sprint(rec["id"])})))
	n = sub.nextNote()
	require.Equal(t, "delete", n["operation"])
	require.Equal(t, rec, n["data"])

	// unsubscribe with the id at the top level stops notifications.
	requireOK(t, sub.request(map[string]any{"type": "subscription", "operation": "unsubscribe", "subscription_id": subID}))
	requireOK(t, w.request(req("create", "users", map[string]any{"data": map[string]any{"name": "late", "status": "active"}})))
	sub.noNote(w)
	require.Zero(t, srv.h.Subscriptions().Count())
}

func TestSubscriptionsEndWithCleanSession(t *testing.T) {
	srv := startServer(t, nil)
	sub := connectClient(t, srv.url, "leaver")
	subscribe(t, sub, map[string]any{"column": "status", "operator": "eq", "value": "active"})
	require.Equal(t, 1, srv.h.Subscriptions().Count())
	sub.c.Disconnect(50)
	deadline := time.Now().Add(waitTimeout)
	for srv.h.Subscriptions().Count() != 0 {
		require.True(t, time.Now().Before(deadline), "subscription not removed after disconnect")
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

func TestUnsubscribeOnlyByOwner(t *testing.T) {
	srv := startServer(t, nil)
	owner := connectClient(t, srv.url, "owner")
	other := connectClient(t, srv.url, "other")
	subID := subscribe(t, owner)
	requireError(t, other.request(map[string]any{"type": "subscription", "operation": "unsubscribe", "data": map[string]any{"subscription_id": subID}}), "not_found")
	require.Equal(t, 1, srv.h.Subscriptions().Count())
}
