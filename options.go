package mqttspec

import (
	"fmt"
	"log/slog"
	"strings"
)

// Option configures a Handler. Options run in order after the defaults are
// set; one that returns an error makes the constructor fail.
type Option func(*Handler) error

// WithEmbeddedBroker runs the embedded Mochi broker with config; zero fields
// take their defaults (localhost:1883). It cannot be combined with
// WithExternalBroker.
func WithEmbeddedBroker(config BrokerConfig) Option {
	return func(h *Handler) error {
		h.config.BrokerMode = BrokerModeEmbedded
		h.config.Broker = config
		h.chosen.embedded = true
		return nil
	}
}

// WithExternalBroker connects to the broker described by config instead of
// running one. BrokerURL is required.
func WithExternalBroker(config ExternalBrokerConfig) Option {
	return func(h *Handler) error {
		if config.BrokerURL == "" {
			return fmt.Errorf("mqttspec: WithExternalBroker: BrokerURL is required")
		}
		h.config.BrokerMode = BrokerModeExternal
		h.config.ExternalBroker = config
		h.chosen.external = true
		return nil
	}
}

// WithHooks uses hooks (for example one shared by several handlers) as the
// handler's hook registry.
func WithHooks(hooks *HookRegistry) Option {
	return func(h *Handler) error {
		if hooks == nil {
			return fmt.Errorf("mqttspec: WithHooks: nil registry")
		}
		h.hooks = hooks
		return nil
	}
}

// WithQoS sets the QoS of requests (the handler's subscription), responses
// and notifications. Each must be 0, 1 or 2.
func WithQoS(request, response, notification byte) Option {
	return func(h *Handler) error {
		for _, q := range []byte{request, response, notification} {
			if q > 2 {
				return fmt.Errorf("mqttspec: WithQoS: %d is not a QoS level", q)
			}
		}
		h.config.QoS = QoSConfig{Request: request, Response: response, Notification: notification}
		return nil
	}
}

// WithTopicPrefix sets the first topic level(s) (default "spec"). It may
// contain "/" but no wildcard and must not be empty.
func WithTopicPrefix(prefix string) Option {
	return func(h *Handler) error {
		if err := validatePrefix(prefix); err != nil {
			return fmt.Errorf("mqttspec: WithTopicPrefix: %w", err)
		}
		h.config.Topics.Prefix = prefix
		return nil
	}
}

// WithAuth sets the MQTT-level credential check of the embedded broker and
// turns it on (BrokerConfig.EnableAuth), whatever the order of the options.
// An external broker authenticates its own clients: WithAuth with
// WithExternalBroker is an error.
func WithAuth(auth AuthConfig) Option {
	return func(h *Handler) error {
		h.config.Auth = auth
		h.chosen.auth = true
		return nil
	}
}

// chosenOptions records which broker options a handler was given, so that
// their order does not matter and contradictions are refused.
type chosenOptions struct{ embedded, external, auth bool }

// apply settles the broker options after all options ran.
func (c chosenOptions) apply(cfg *Config) error {
	switch {
	case c.embedded && c.external:
		return fmt.Errorf("mqttspec: WithEmbeddedBroker and WithExternalBroker: choose one broker")
	case c.auth && c.external:
		return fmt.Errorf("mqttspec: WithAuth checks credentials at the embedded broker; an external broker authenticates its clients itself")
	case c.auth:
		cfg.Broker.EnableAuth = true
	}
	return nil
}

// WithLimits sets page-size, subscription and concurrency limits; zero
// fields keep their defaults.
func WithLimits(limits LimitConfig) Option {
	return func(h *Handler) error {
		h.config.Limits = limits
		return nil
	}
}

// WithTimeouts sets the handler's timeouts; zero fields keep their
// defaults.
func WithTimeouts(timeouts TimeoutConfig) Option {
	return func(h *Handler) error {
		h.config.Timeouts = timeouts
		return nil
	}
}

// WithChangeFeed notifies subscriptions from the database's own record of
// changes (PostgreSQL triggers; see ChangeFeedConfig): writes made outside
// mqttspec reach subscribers too. Zero fields keep their defaults; Enabled
// is set.
func WithChangeFeed(feed ChangeFeedConfig) Option {
	return func(h *Handler) error {
		feed.Enabled = true
		h.config.ChangeFeed = feed
		return nil
	}
}

// WithLogger sends the handler's logs to logger. Without it, warnings and
// errors (a refused connection and why, a dropped answer, a failed hook) go
// to slog.Default() and the rest is dropped.
func WithLogger(logger *slog.Logger) Option {
	return func(h *Handler) error {
		if logger == nil {
			return fmt.Errorf("mqttspec: WithLogger: nil logger")
		}
		h.logger = logger
		return nil
	}
}

func validatePrefix(prefix string) error {
	switch {
	case prefix == "":
		return fmt.Errorf("empty topic prefix")
	case strings.ContainsAny(prefix, "+#\x00"):
		return fmt.Errorf("topic prefix %q contains a wildcard", prefix)
	case strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/") || strings.HasPrefix(prefix, "$"):
		return fmt.Errorf("topic prefix %q must not start or end with '/' or start with '$'", prefix)
	}
	return nil
}

// validate checks a filled Config.
func (c *Config) validate() error {
	if err := validatePrefix(c.Topics.Prefix); err != nil {
		return fmt.Errorf("mqttspec: config: %w", err)
	}
	if c.QoS.Request > 2 || c.QoS.Response > 2 || c.QoS.Notification > 2 {
		return fmt.Errorf("mqttspec: config: QoS levels must be 0, 1 or 2")
	}
	switch c.BrokerMode {
	case BrokerModeEmbedded:
		if c.Broker.Port < -1 || c.Broker.Port > 65535 {
			return fmt.Errorf("mqttspec: config: port %d out of range", c.Broker.Port)
		}
		if c.Broker.EnableWebSocket && c.Broker.WSPort == c.Broker.Port && c.Broker.Port > 0 {
			return fmt.Errorf("mqttspec: config: WSPort and Port are both %d: the WebSocket listener needs a port of its own", c.Broker.Port)
		}
		if c.Broker.EnableAuth && c.Auth.ValidateCredentials == nil {
			return fmt.Errorf("mqttspec: config: EnableAuth needs Auth.ValidateCredentials")
		}
	case BrokerModeExternal:
		if c.ExternalBroker.BrokerURL == "" {
			return fmt.Errorf("mqttspec: config: external broker needs BrokerURL")
		}
		if c.Broker.EnableAuth {
			return fmt.Errorf("mqttspec: config: EnableAuth is for the embedded broker; an external broker authenticates its clients itself")
		}
		if g := c.ExternalBroker.Group; g != "" {
			if !validClientID(g) || strings.HasPrefix(g, "$") {
				return fmt.Errorf("mqttspec: config: group %q must be one topic level without wildcards", g)
			}
			if !validClientID(c.ExternalBroker.ClientID) {
				return fmt.Errorf("mqttspec: config: a member of group %q needs a ClientID of its own (one topic level)", g)
			}
		}
	default:
		return fmt.Errorf("mqttspec: config: unknown broker mode %q", c.BrokerMode)
	}
	return nil
}
