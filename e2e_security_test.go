package mqttspec_test

import (
	"strings"
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

	// Eavesdropping: filters that reach another client's topics are granted
	// (as MQTT expects of '#'), but nothing of the victim's is delivered.
	filters := []string{"spec/victim/response", "spec/victim/notify/+", "spec/+/response", "spec/#", "#", "+/victim/#"}
	for _, f := range filters {
		require.Equal(t, byte(1), spy.SubscribeCode(f, 1), "filter %q", f)
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

	// The spy's own pong is published after all of the victim's messages:
	// once it has arrived, anything of the victim's would have too.
	require.NoError(t, spy.Publish("spec/spy/request", 1, `{"id":"spy-ping","type":"ping"}`))
	for {
		m := mqtttest.Recv(t, spy.Msgs, "the spy's pong")
		require.True(t, strings.HasPrefix(m.Topic, "spec/spy/"), "the spy received %s: %s", m.Topic, m.Payload)
		if m.Topic == "spec/spy/response" {
			break
		}
	}
}

func TestClientIDWithWildcardsRefused(t *testing.T) {
	srv := startServer(t, nil)
	for _, id := range []string{"a/b", "a+", "a#"} {
		_, err := mqtttest.DialRaw(t, srv.url, id)
		require.Error(t, err, "client id %q must be refused", id)
	}
}

func TestCredentialsCheckedAtConnect(t *testing.T) {
	auth := mqttspec.WithAuth(mqttspec.AuthConfig{
		ValidateCredentials: func(u, p string) bool { return u == "device" && p == "pa55" },
	})
	broker := mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1})
	// Either order of the options gives the same server.
	for name, srv := range map[string]*testServer{
		"auth after broker":  startWith(t, broker, nil, auth),
		"auth before broker": startWith(t, auth, nil, broker),
	} {
		t.Run(name, func(t *testing.T) {
			for _, creds := range [][2]string{{"device", "wrong"}, {"device", ""}, {"", ""}} {
				_, err := mqtttest.DialRaw(t, srv.url, "bad", mqtttest.Credentials(creds[0], creds[1]))
				require.Error(t, err, "credentials %q", creds)
			}
			_, err := mqtttest.DialRaw(t, srv.url, "anonymous")
			require.Error(t, err, "no credentials")

			good := mqtttest.Connect(t, srv.url, "good", mqtttest.Credentials("device", "pa55"))
			mqtttest.OK(t, good.Request(mqtttest.Req("read", "users", nil)))
		})
	}
}
