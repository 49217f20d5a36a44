package mqttspec_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

func TestSubscriptionNotifications(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil)
		sub := mqtttest.Connect(t, srv.url, "watcher")
		w := mqtttest.Connect(t, srv.url, "writer")
		subID := subscribe(t, sub, map[string]any{"column": "status", "operator": "eq", "value": "active"})

		// a matching create notifies with the full record.
		rec := mqtttest.OK(t, w.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "m", "status": "active"}}))).(map[string]any)
		n := sub.NextNote()
		require.Equal(t, "create", n["operation"])
		require.Equal(t, subID, n["subscription_id"])
		require.Equal(t, "spec/watcher/notify/"+subID, n["_topic"])
		require.Equal(t, rec, n["data"])
		require.Equal(t, true, n["matches"])

		// a create that does not match notifies nobody.
		mqtttest.OK(t, w.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "x", "status": "inactive"}})))
		sub.NoNote(w)

		// an update that keeps the record inside the filter.
		id := fmt.Sprint(rec["id"])
		mqtttest.OK(t, w.Request(mqtttest.Req("update", "users", map[string]any{"record_id": id, "data": map[string]any{"name": "m2"}})))
		n = sub.NextNote()
		require.Equal(t, "update", n["operation"])
		require.Equal(t, "m2", n["data"].(map[string]any)["name"])
		require.Equal(t, "m", n["previous"].(map[string]any)["name"])
		require.Equal(t, true, n["matches"])

		// an update that moves it out: notified with matches=false.
		mqtttest.OK(t, w.Request(mqtttest.Req("update", "users", map[string]any{"record_id": id, "data": map[string]any{"status": "inactive"}})))
		n = sub.NextNote()
		require.Equal(t, false, n["matches"])
		require.Equal(t, "inactive", n["data"].(map[string]any)["status"])

		// updates and deletes of records outside the filter notify nobody.
		mqtttest.OK(t, w.Request(mqtttest.Req("update", "users", map[string]any{"record_id": id, "data": map[string]any{"name": "m3"}})))
		mqtttest.OK(t, w.Request(mqtttest.Req("delete", "users", map[string]any{"record_id": id})))
		sub.NoNote(w)

		// a delete of a matching record carries the whole record.
		rec = mqtttest.OK(t, w.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "d", "status": "active", "email": "d@x"}}))).(map[string]any)
		require.Equal(t, "create", sub.NextNote()["operation"])
		mqtttest.OK(t, w.Request(mqtttest.Req("delete", "users", map[string]any{"record_id": fmt.Sprint(rec["id"])})))
		n = sub.NextNote()
		require.Equal(t, "delete", n["operation"])
		require.Equal(t, rec, n["data"])

		// unsubscribe with the id at the top level stops notifications.
		mqtttest.OK(t, sub.Request(map[string]any{"type": "subscription", "operation": "unsubscribe", "subscription_id": subID}))
		mqtttest.OK(t, w.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "late", "status": "active"}})))
		sub.NoNote(w)
		require.Zero(t, srv.h.Subscriptions().Count())
	})
}

func TestSubscriptionsEndWithCleanSession(t *testing.T) {
	gone := make(chan struct{}, 1)
	srv := startServer(t, func(h *mqttspec.Handler) {
		h.Hooks().Register(mqttspec.AfterDisconnect, func(*mqttspec.HookContext) error {
			gone <- struct{}{}
			return nil
		})
	})
	sub := mqtttest.Connect(t, srv.url, "leaver")
	subscribe(t, sub, map[string]any{"column": "status", "operator": "eq", "value": "active"})
	require.Equal(t, 1, srv.h.Subscriptions().Count())
	sub.Disconnect(50)
	mqtttest.Recv(t, gone, "AfterDisconnect")
	require.Zero(t, srv.h.Subscriptions().Count(), "a clean session's subscriptions end with it")
}

func TestUnsubscribeOnlyByOwner(t *testing.T) {
	eachTransport(t, func(t *testing.T, start starter) {
		srv := start(t, nil)
		owner := mqtttest.Connect(t, srv.url, "owner")
		other := mqtttest.Connect(t, srv.url, "other")
		subID := subscribe(t, owner)
		mqtttest.Fails(t, other.Request(map[string]any{"type": "subscription", "operation": "unsubscribe", "data": map[string]any{"subscription_id": subID}}), "not_found")
		require.Equal(t, 1, srv.h.Subscriptions().Count())
	})
}
