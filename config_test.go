package mqttspec

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	require.Equal(t, BrokerModeEmbedded, c.BrokerMode)
	require.Equal(t, "localhost", c.Broker.Host)
	require.Equal(t, 1883, c.Broker.Port)
	require.Equal(t, "spec", c.Topics.Prefix)
	require.Equal(t, QoSConfig{1, 1, 1}, c.QoS)
	require.Equal(t, DefaultPageSize, c.Limits.DefaultPageSize)
	require.Positive(t, c.Limits.MaxConcurrency)
	require.NoError(t, c.validate())
	c.Topics.Prefix = "changed"
	require.Equal(t, "spec", DefaultConfig().Topics.Prefix, "defaults must not be shared")
}

// fakeDB satisfies adapters.Database for option tests; it is never called.
type fakeDB struct{ noDB }

func TestOptions(t *testing.T) {
	cases := []struct {
		name    string
		opts    []Option
		wantErr string
		check   func(t *testing.T, h *Handler)
	}{
		{name: "embedded with partial config keeps defaults", opts: []Option{WithEmbeddedBroker(BrokerConfig{Port: 1999})},
			check: func(t *testing.T, h *Handler) {
				require.Equal(t, 1999, h.config.Broker.Port)
				require.Equal(t, "localhost", h.config.Broker.Host)
			}},
		{name: "external", opts: []Option{WithExternalBroker(ExternalBrokerConfig{BrokerURL: "tcp://127.0.0.1:1"})},
			check: func(t *testing.T, h *Handler) {
				require.Equal(t, BrokerModeExternal, h.config.BrokerMode)
				require.Equal(t, DefaultKeepAlive, h.config.ExternalBroker.KeepAlive)
			}},
		{name: "external needs URL", opts: []Option{WithExternalBroker(ExternalBrokerConfig{})}, wantErr: "BrokerURL"},
		{name: "group", opts: []Option{WithExternalBroker(ExternalBrokerConfig{BrokerURL: "tcp://127.0.0.1:1", ClientID: "api-1", Group: "api"})},
			check: func(t *testing.T, h *Handler) {
				require.True(t, h.config.ChangeFeed.Enabled, "a group turns the feed on")
				require.Equal(t, DefaultGroupSettle, h.config.ExternalBroker.GroupSettle)
				require.NotNil(t, h.group)
				require.Equal(t, []string{"api-1"}, h.GroupMembers())
			}},
		{name: "group member needs its own client id", opts: []Option{WithExternalBroker(ExternalBrokerConfig{BrokerURL: "tcp://127.0.0.1:1", Group: "api"})},
			wantErr: "ClientID"},
		{name: "group name is one topic level", opts: []Option{WithExternalBroker(ExternalBrokerConfig{BrokerURL: "tcp://127.0.0.1:1", ClientID: "a", Group: "a/b"})},
			wantErr: "one topic level"},
		{name: "no group: no feed, no members", opts: []Option{WithExternalBroker(ExternalBrokerConfig{BrokerURL: "tcp://127.0.0.1:1"})},
			check: func(t *testing.T, h *Handler) {
				require.False(t, h.config.ChangeFeed.Enabled)
				require.Nil(t, h.GroupMembers())
			}},
		{name: "change feed defaults", opts: []Option{WithChangeFeed(ChangeFeedConfig{})},
			check: func(t *testing.T, h *Handler) {
				f := h.config.ChangeFeed
				require.True(t, f.Enabled)
				require.Equal(t, ChangeFeedConfig{Enabled: true, PollInterval: DefaultFeedPoll, GapWait: DefaultFeedGapWait, Retention: DefaultFeedRetention}, f)
			}},
		{name: "qos zero is kept", opts: []Option{WithQoS(0, 0, 0)},
			check: func(t *testing.T, h *Handler) { require.Equal(t, QoSConfig{}, h.config.QoS) }},
		{name: "qos 3 refused", opts: []Option{WithQoS(1, 3, 1)}, wantErr: "QoS"},
		{name: "prefix", opts: []Option{WithTopicPrefix("myapp/v1")},
			check: func(t *testing.T, h *Handler) { require.Equal(t, "myapp/v1/x/response", h.responseTopic("x")) }},
		{name: "prefix wildcard refused", opts: []Option{WithTopicPrefix("a/#")}, wantErr: "wildcard"},
		{name: "empty prefix refused", opts: []Option{WithTopicPrefix("")}, wantErr: "empty"},
		{name: "auth without validator refused", opts: []Option{WithEmbeddedBroker(BrokerConfig{EnableAuth: true})}, wantErr: "ValidateCredentials"},
		{name: "auth before the broker option", opts: []Option{
			WithAuth(AuthConfig{ValidateCredentials: func(string, string) bool { return true }}),
			WithEmbeddedBroker(BrokerConfig{Port: 1999}),
		}, check: func(t *testing.T, h *Handler) { require.True(t, h.config.Broker.EnableAuth) }},
		{name: "auth after the broker option", opts: []Option{
			WithEmbeddedBroker(BrokerConfig{Port: 1999}),
			WithAuth(AuthConfig{ValidateCredentials: func(string, string) bool { return true }}),
		}, check: func(t *testing.T, h *Handler) { require.True(t, h.config.Broker.EnableAuth) }},
		{name: "no auth without the option", opts: []Option{WithEmbeddedBroker(BrokerConfig{Port: 1999})},
			check: func(t *testing.T, h *Handler) { require.False(t, h.config.Broker.EnableAuth) }},
		{name: "auth with an external broker refused", opts: []Option{
			WithAuth(AuthConfig{ValidateCredentials: func(string, string) bool { return true }}),
			WithExternalBroker(ExternalBrokerConfig{BrokerURL: "tcp://127.0.0.1:1"}),
		}, wantErr: "WithAuth"},
		{name: "two brokers refused", opts: []Option{
			WithEmbeddedBroker(BrokerConfig{}), WithExternalBroker(ExternalBrokerConfig{BrokerURL: "tcp://127.0.0.1:1"}),
		}, wantErr: "choose one broker"},
		{name: "limits default", opts: nil, check: func(t *testing.T, h *Handler) {
			l := h.config.Limits
			require.Equal(t, DefaultMaxPacketSize, l.MaxPacketSize)
			require.Equal(t, DefaultSessionExpiry, l.SessionExpiry)
			require.Equal(t, DefaultDedupWindow, l.DedupWindow)
			require.Equal(t, DefaultMaxConnections, h.config.Broker.MaxConnections)
		}},
		{name: "hooks", opts: []Option{WithHooks(NewHookRegistry())}},
		{name: "nil hooks refused", opts: []Option{WithHooks(nil)}, wantErr: "nil"},
		{name: "logger", opts: []Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}},
		{name: "limits clamp default page", opts: []Option{WithLimits(LimitConfig{DefaultPageSize: 500, MaxPageSize: 50})},
			check: func(t *testing.T, h *Handler) { require.Equal(t, 50, h.config.Limits.DefaultPageSize) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewHandlerWithDatabase(fakeDB{}, nil, tc.opts...)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			if tc.check != nil {
				tc.check(t, h)
			}
		})
	}
	_, err := NewHandlerWithDatabase(nil, nil)
	require.ErrorIs(t, err, ErrNoDatabase)
}

func TestRequestTopicParsing(t *testing.T) {
	h, err := NewHandlerWithDatabase(fakeDB{}, nil, WithTopicPrefix("app/v1"))
	require.NoError(t, err)
	cases := map[string]string{
		"app/v1/dev-1/request":   "dev-1",
		"app/v1/a/b/request":     "",
		"app/v1//request":        "",
		"app/v1/dev-1/response":  "",
		"other/dev-1/request":    "",
		"app/v1/dev-1/request/x": "",
	}
	for topic, want := range cases {
		got, ok := h.clientIDFromRequestTopic(topic)
		require.Equal(t, want != "", ok, topic)
		require.Equal(t, want, got, topic)
	}
}

// TestWebSocketPortBesideTCPPort: an unset WSPort is the port after Port,
// so the reference README's custom port 1884 does not collide with the
// WebSocket listener; an explicit clash is refused at construction.
func TestWebSocketPortBesideTCPPort(t *testing.T) {
	fromDefaults := DefaultConfig()
	fromDefaults.Broker.Port, fromDefaults.Broker.EnableWebSocket = 1884, true
	for _, tc := range []struct {
		name    string
		build   func() (*Handler, error)
		wsPort  int
		wantErr string
	}{
		{"default port", func() (*Handler, error) {
			return NewHandlerWithDatabase(fakeDB{}, nil, WithEmbeddedBroker(BrokerConfig{EnableWebSocket: true}))
		}, 1884, ""},
		{"custom port 1884", func() (*Handler, error) {
			return NewHandlerWithDatabase(fakeDB{}, nil, WithEmbeddedBroker(BrokerConfig{Port: 1884, EnableWebSocket: true}))
		}, 1885, ""},
		{"DefaultConfig with port 1884", func() (*Handler, error) { return NewHandler(fakeDB{}, nil, fromDefaults) }, 1885, ""},
		{"free port", func() (*Handler, error) {
			return NewHandlerWithDatabase(fakeDB{}, nil, WithEmbeddedBroker(BrokerConfig{Port: -1, EnableWebSocket: true}))
		}, -1, ""},
		{"explicit", func() (*Handler, error) {
			return NewHandlerWithDatabase(fakeDB{}, nil, WithEmbeddedBroker(BrokerConfig{Port: 1884, EnableWebSocket: true, WSPort: 9001}))
		}, 9001, ""},
		{"explicit clash", func() (*Handler, error) {
			return NewHandlerWithDatabase(fakeDB{}, nil, WithEmbeddedBroker(BrokerConfig{Port: 2000, EnableWebSocket: true, WSPort: 2000}))
		}, 0, "needs a port of its own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := tc.build()
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wsPort, h.Config().Broker.WSPort)
		})
	}
}
