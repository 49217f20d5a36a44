package main

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
	"github.com/mqttspec/mqttspec/internal/testbroker"
	"github.com/mqttspec/mqttspec/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// TestExternalExample serves the model through mosquitto on an SQLite file
// and on a PostgreSQL URL (-db), as the flags would.
func TestExternalExample(t *testing.T) {
	for _, tc := range []struct {
		name string
		db   func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "external.db") }},
		{"postgres", func(t *testing.T) string { return testdb.PostgresDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := testbroker.Mosquitto(t)
			h, err := start(slog.New(slog.NewTextHandler(io.Discard, nil)),
				mqttspec.ExternalBrokerConfig{BrokerURL: url, ClientID: "example-" + tc.name}, tc.db(t))
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, h.Shutdown()) })

			c := mqtttest.Connect(t, url, "demo")
			created := mqtttest.OK(t, c.Request(mqtttest.Req("create", "users", map[string]any{
				"data": map[string]any{"name": "Ada", "email": "ada@example.com", "status": "active"}}))).(map[string]any)
			got := mqtttest.OK(t, c.Request(mqtttest.Req("read", "users", map[string]any{"record_id": "1"}))).(map[string]any)
			require.Equal(t, created, got)
		})
	}
}

func TestRedact(t *testing.T) {
	require.Equal(t, "postgres://app:xxxxx@db:5432/app", redact("postgres://app:secret@db:5432/app"))
	require.Equal(t, "postgres://app@db/app", redact("postgres://app@db/app"))
	require.Equal(t, "external.db", redact("external.db"))
}
