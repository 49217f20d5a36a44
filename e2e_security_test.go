package mqttspec_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

func TestImpersonationAndEavesdroppingYieldNothing(t *testing.T) {
	srv := startServer(t, nil)
	victim := mqtttest.Connect(t, srv.url, "victim")
	subscribe(t, victim)
	spy := mqtttest.MustDialRaw(t, srv.url, "spy")

	// Eavesdropping: every filter that reaches another client's topics is refused.
	filters := []string{"spec/victim/response", "spec/victim/notify/+", "spec/+/response", "spec/#", "#", "+/victim/#"}
	for _, f := range filters {
		require.Equal(t, byte(0x80), spy.SubscribeCode(f, 1), "filter %q must be refused", f)
	}

	// Impersonation: a request published on the victim's topic is dropped (QoS 0;
	// a QoS 1 attempt gets the spy disconnected, as MQTT 3.1.1 requires).
	require.NoError(t, spy.Publish("spec/victim/request", 0,
		`{"id":"evil","type":"request","operation":"create","schema":"public","entity":"users","data":{"name":"evil"}}`))

	// The victim's own traffic: a write and its notification, then a response.
	mqtttest.OK(t, victim.Request(mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": "real"}})))
	require.Equal(t, "create", victim.NextNote()["operation"])
	victim.Request(map[string]any{"type": "ping"})

	require.Equal(t, int64(1), countUsers(t, srv.db), "the impersonated create must not run")
	mqtttest.Nothing(t, victim.Orphans, "answer to a request the victim never sent")
	mqtttest.Nothing(t, spy.Msgs, "message for the spy")
}

func TestClientIDWithWildcardsRefused(t *testing.T) {
	srv := startServer(t, nil)
	for _, id := range []string{"a/b", "a+", "a#"} {
		_, err := mqtttest.DialRaw(t, srv.url, id)
		require.Error(t, err, "client id %q must be refused", id)
	}
}

func TestCredentialsCheckedAtConnect(t *testing.T) {
	srv := startServer(t, nil, mqttspec.WithAuth(mqttspec.AuthConfig{
		ValidateCredentials: func(u, p string) bool { return u == "device" && p == "pa55" },
	}))
	_, err := mqtttest.DialRaw(t, srv.url, "bad", mqtttest.Credentials("device", "wrong"))
	require.Error(t, err)

	good := mqtttest.Connect(t, srv.url, "good", mqtttest.Credentials("device", "pa55"))
	mqtttest.OK(t, good.Request(mqtttest.Req("read", "users", nil)))
}
