package mqttspec

import (
	"fmt"
	"time"
)

// The core's side of the broker's connection events: which clients exist,
// what their hooks decided, and what happens to their subscriptions when
// they leave.

// authenticate implements brokerEvents: it checks the client id, the
// credentials (EnableAuth) and the BeforeConnect hooks, and registers the
// client. A client that reconnects with a kept session (clean session
// false on both connections) takes over the previous connection's
// subscriptions.
func (h *Handler) authenticate(info ConnectInfo) (*Client, error) {
	if !validClientID(info.ClientID) {
		return nil, fmt.Errorf("mqttspec: client id %q must be non-empty and contain no '/', '+' or '#'", info.ClientID)
	}
	if h.config.Broker.EnableAuth && h.config.BrokerMode == BrokerModeEmbedded {
		if fn := h.config.Auth.ValidateCredentials; fn == nil || !fn(info.Username, string(info.Password)) {
			return nil, fmt.Errorf("mqttspec: bad credentials for client %q", info.ClientID)
		}
	}
	c := NewClient(info.ClientID, info.Username, h)
	c.password = append([]byte(nil), info.Password...)
	c.persistent = !info.CleanSession
	if err := h.hooks.Execute(BeforeConnect, h.connHookContext(c)); err != nil {
		h.logger.Info("connection refused by BeforeConnect", "client", info.ClientID, "reason", err)
		return nil, fmt.Errorf("mqttspec: connection refused: %w", err)
	}
	if old, ok := h.clients.GetClient(info.ClientID); ok {
		if info.CleanSession || !old.persistent {
			h.dropSubscriptions(old)
		} else {
			for _, id := range old.subscriptionIDs() {
				if s, ok := old.GetSubscription(id); ok {
					c.AddSubscription(s)
				}
			}
		}
	}
	h.clients.add(c)
	return c, nil
}

// connected implements brokerEvents: the session of c is established.
func (h *Handler) connected(c *Client) {
	if err := h.hooks.Execute(AfterConnect, h.connHookContext(c)); err != nil {
		h.logger.Warn("AfterConnect hook failed", "client", c.ID, "error", err)
	}
}

// disconnected implements brokerEvents. A client whose session the broker
// keeps (clean session false) keeps its subscriptions; notifications for
// it are queued by the broker until it returns or the session expires.
func (h *Handler) disconnected(c *Client, cause error, sessionKept bool) {
	hctx := h.connHookContext(c)
	hctx.Error = cause
	if err := h.hooks.Execute(BeforeDisconnect, hctx); err != nil {
		h.logger.Warn("BeforeDisconnect hook failed", "client", c.ID, "error", err)
	}
	if cur, ok := h.clients.GetClient(c.ID); ok && cur == c && !sessionKept {
		h.dropSubscriptions(c)
		h.clients.Unregister(c.ID)
	}
	if err := h.hooks.Execute(AfterDisconnect, hctx); err != nil {
		h.logger.Warn("AfterDisconnect hook failed", "client", c.ID, "error", err)
	}
}

// sessionExpired implements brokerEvents.
func (h *Handler) sessionExpired(clientID string) {
	if c, ok := h.clients.GetClient(clientID); ok {
		h.dropSubscriptions(c)
		h.clients.Unregister(clientID)
	}
}

// publishDropped implements brokerEvents.
func (h *Handler) publishDropped(clientID, topic string) {
	h.logger.Warn("broker dropped a message for a slow client", "client", clientID, "topic", topic)
}

func (h *Handler) connHookContext(c *Client) *HookContext {
	return &HookContext{Context: h.ctx, Handler: h, Client: c, Metadata: map[string]any{"mqtt_client": c}}
}

// dropSubscriptions removes every subscription of c.
func (h *Handler) dropSubscriptions(c *Client) {
	for _, id := range c.subscriptionIDs() {
		h.subs.Unsubscribe(id)
		c.RemoveSubscription(id)
	}
}

// clientFor returns the registered client of a request. With the external
// broker a client is first seen through its requests: it is registered
// then, after the BeforeConnect hooks accept it.
func (h *Handler) clientFor(clientID string) (*Client, error) {
	if c, ok := h.clients.GetClient(clientID); ok {
		c.lastSeen.Store(time.Now().UnixNano())
		return c, nil
	}
	if h.config.BrokerMode == BrokerModeEmbedded {
		// Every embedded connection is registered at CONNECT; a missing client
		// was dropped by a concurrent disconnect.
		return nil, NewError(CodeForbidden, "client is not connected")
	}
	c, err := h.authenticate(ConnectInfo{ClientID: clientID, CleanSession: true})
	if err != nil {
		return nil, NewError(CodeForbidden, "client refused")
	}
	c.lastSeen.Store(time.Now().UnixNano())
	h.connected(c)
	return c, nil
}

// startSessionKeeping starts what keeps the client registry bounded when
// the broker reports no disconnects (external mode): clients without
// subscriptions are forgotten after LimitConfig.ExternalClientIdle.
func (h *Handler) startSessionKeeping() {
	if h.config.BrokerMode != BrokerModeExternal {
		return
	}
	idle := h.config.Limits.ExternalClientIdle
	go func() {
		t := time.NewTicker(max(idle/4, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-h.ctx.Done():
				return
			case now := <-t.C:
				if n := h.clients.forgetIdle(now.Add(-idle)); n > 0 {
					h.logger.Debug("forgot idle external clients", "count", n)
				}
			}
		}
	}()
}
