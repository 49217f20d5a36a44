package mqttspec_test

import (
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
)

func TestImpersonationAndEavesdroppingYieldNothing(t *testing.T) {
	srv := startServer(t, nil)
	victim := connectClient(t, srv.url, "victim")
	subscribe(t, victim)

	spyMsgs := make(chan mqtt.Message, 100)
	o := newClientOptions(srv.url, "spy")
	o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { spyMsgs <- m })
	spy := newMQTTClient(o)
	tok := spy.Connect()
	require.True(t, tok.WaitTimeout(waitTimeout))
	require.NoError(t, tok.Error())
	defer spy.Disconnect(20)

	// Eavesdropping: every filter that reaches another client's topics is refused.
	filters := []string{"spec/victim/response", "spec/victim/notify/+", "spec/+/response", "spec/#", "#", "+/victim/#"}
	for _, f := range filters {
		st := spy.Subscribe(f, 1, nil)
		require.True(t, st.WaitTimeout(waitTimeout))
		res := st.(*mqtt.SubscribeToken).Result()
		require.Equal(t, byte(0x80), res[f], "filter %q must be refused", f)
	}

	// Impersonation: a request published on the victim's topic is dropped (QoS 0;
	// a QoS 1 attempt gets the spy disconnected, as MQTT 3.1.1 requires).
	pt := spy.Publish("spec/victim/request", 0, false,
		[]byte(`{"id":"evil","type":"request","operation":"create","schema":"public","entity":"users","data":{"name":"evil"}}`))
	require.True(t, pt.WaitTimeout(waitTimeout))

	// The victim's own traffic: a write and its notification, then a response.
	requireOK(t, victim.request(req("create", "users", map[string]any{"data": map[string]any{"name": "real"}})))
	require.Equal(t, "create", victim.nextNote()["operation"])
	victim.request(map[string]any{"type": "ping"})

	require.Equal(t, int64(1), countUsers(t, srv.db), "the impersonated create must not run")
	select {
	case r := <-victim.orphans:
		t.Fatalf("victim received an answer to a request it never sent: %v", r)
	default:
	}
	select {
	case m := <-spyMsgs:
		t.Fatalf("spy received %s: %s", m.Topic(), m.Payload())
	default:
	}
}

func TestClientIDWithWildcardsRefused(t *testing.T) {
	srv := startServer(t, nil)
	for _, id := range []string{"a/b", "a+", "a#"} {
		cl := newMQTTClient(newClientOptions(srv.url, id))
		tok := cl.Connect()
		require.True(t, tok.WaitTimeout(waitTimeout))
		require.Error(t, tok.Error(), "client id %q must be refused", id)
	}
}

func TestCredentialsCheckedAtConnect(t *testing.T) {
	srv := startServer(t, nil, mqttspec.WithAuth(mqttspec.AuthConfig{
		ValidateCredentials: func(u, p string) bool { return u == "device" && p == "pa55" },
	}))
	bad := newClientOptions(srv.url, "bad")
	bad.SetUsername("device").SetPassword("wrong")
	cl := newMQTTClient(bad)
	tok := cl.Connect()
	require.True(t, tok.WaitTimeout(waitTimeout))
	require.Error(t, tok.Error())

	good := connectClient(t, srv.url, "good", func(o *mqtt.ClientOptions) { o.SetUsername("device").SetPassword("pa55") })
	requireOK(t, good.request(req("read", "users", nil)))
}
