package mqttspec_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// TestWarningsReachTheDefaultLogger: a handler given no logger still tells
// slog.Default() why it refused a connection; its Info logs stay out.
// Control: with WithLogger, the default logger gets nothing.
func TestWarningsReachTheDefaultLogger(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []mqttspec.Option
		toDefault bool
	}{{"no logger", nil, true}, {"WithLogger", []mqttspec.Option{mqttspec.WithLogger(slog.New(slog.DiscardHandler))}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			prev := slog.Default()
			slog.SetDefault(slog.New(slog.NewTextHandler(&out, nil)))
			t.Cleanup(func() { slog.SetDefault(prev) })

			opts := append([]mqttspec.Option{
				mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}),
				mqttspec.WithAuth(mqttspec.AuthConfig{ValidateCredentials: func(user, _ string) bool { return user == "member" }}),
			}, tc.opts...)
			h, err := mqttspec.NewHandlerWithGORM(openSQLite(t), opts...)
			require.NoError(t, err)
			require.NoError(t, h.Start())
			t.Cleanup(func() { require.NoError(t, h.Shutdown()) })
			url := "tcp://" + h.Addr()

			mqtttest.Connect(t, url, "member-1", mqtttest.Credentials("member", "x")) // accepted: nothing to warn about
			_, err = mqtttest.Dial(t, url, "intruder-1", mqtttest.Credentials("intruder", "x"))
			require.Error(t, err, "the intruder is refused")

			if !tc.toDefault {
				require.Empty(t, out.String())
				return
			}
			mqtttest.Eventually(t, func() bool { return bytes.Contains([]byte(out.String()), []byte("intruder-1")) }, "the refusal logged")
			logged := out.String()
			require.Contains(t, logged, "level=WARN")
			require.Contains(t, logged, "connection refused")
			require.Contains(t, logged, "credentials", "the reason")
			require.NotContains(t, logged, "member-1")
			require.NotContains(t, logged, "mqttspec started", "Info stays out")
		})
	}
}
