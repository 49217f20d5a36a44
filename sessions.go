package mqttspec

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mqttspec/mqttspec/internal/broker"
)

// The core's side of the broker's connection events: which clients exist,
// what their hooks decided, and what happens to their subscriptions when
// they leave.

// sessionEvents is how an edge with connection events reaches the core;
// the Session of a connection is its *Client.
type sessionEvents struct{ h *Handler }

// Authenticate checks the credentials (EnableAuth) of a CONNECT, then
// admits the client. The broker discards the session it keeps under the
// client id when the newcomer is another principal (Admission.Fresh).
func (e sessionEvents) Authenticate(info broker.ConnectInfo) (broker.Admission, error) {
	h := e.h
	if h.config.Broker.EnableAuth {
		if fn := h.config.Auth.ValidateCredentials; fn == nil || !fn(info.Username, string(info.Password)) {
			return broker.Admission{}, fmt.Errorf("mqttspec: bad credentials for client %q", info.ClientID)
		}
	}
	c, fresh, err := h.admit(info)
	if err != nil {
		return broker.Admission{}, err
	}
	return broker.Admission{Session: c, Fresh: fresh}, nil
}

// Connected runs the AfterConnect hooks; an error closes the connection.
func (e sessionEvents) Connected(s broker.Session) error { return e.h.connected(s.(*Client)) }

// Disconnected runs the disconnect hooks and drops what the session leaves.
func (e sessionEvents) Disconnected(s broker.Session, cause error, sessionKept bool) {
	e.h.disconnected(s.(*Client), cause, sessionKept)
}

// SessionExpired forgets a kept session that the broker discarded.
func (e sessionEvents) SessionExpired(clientID string) { e.h.sessionExpired(clientID) }

// Dropped counts and logs a message the broker could not deliver.
func (e sessionEvents) Dropped(clientID, topic, reason string) { e.h.dropped(clientID, topic, reason) }

// admit checks the client id and the BeforeConnect hooks, and registers
// the client in place of any earlier session under its id.
//
// The newcomer resumes the earlier session (its subscriptions; the broker
// keeps its queued messages) only when it is the same principal and both
// connections asked to keep the session. A different principal starts
// fresh (fresh is true): the earlier session's subscriptions end, the
// broker discards what it queued, and requests the earlier connection
// still has queued are dropped rather than run or answered (see serve).
func (h *Handler) admit(info broker.ConnectInfo) (c *Client, fresh bool, err error) {
	if !validClientID(info.ClientID) {
		return nil, false, fmt.Errorf("mqttspec: client id %q must be non-empty and contain no '/', '+' or '#'", info.ClientID)
	}
	c = NewClient(info.ClientID, info.Username, h)
	c.password = append([]byte(nil), info.Password...)
	c.persistent = !info.CleanSession
	if err := h.hooks.Execute(BeforeConnect, h.connHookContext(c)); err != nil {
		h.logger.Debug("connection refused by BeforeConnect", "client", info.ClientID, "reason", err)
		return nil, false, fmt.Errorf("mqttspec: connection refused: %w", err)
	}
	if old, ok := h.clients.GetClient(info.ClientID); ok {
		same := old.Principal() == c.Principal()
		switch {
		case !same:
			h.logger.Info("client id taken over by another principal: the earlier session is discarded",
				"client", info.ClientID, "remote", info.RemoteAddr)
			h.dropSubscriptions(old)
			fresh = true
		case info.CleanSession || !old.persistent:
			h.dropSubscriptions(old)
		default:
			for _, id := range old.subscriptionIDs() {
				if s, ok := old.GetSubscription(id); ok {
					c.AddSubscription(s)
				}
			}
		}
	}
	h.clients.add(c)
	return c, fresh, nil
}

// superseded reports whether the session of sender has been taken over
// by another principal, whose connection must not see what sender asked.
func (h *Handler) superseded(sender *Client) bool {
	cur, ok := h.clients.GetClient(sender.ID)
	return ok && cur != sender && cur.Principal() != sender.Principal()
}

// connected runs the AfterConnect hooks: the session of c is established.
// A hook that refuses undoes the connect: the client is forgotten (its
// connection is closed by the edge, or its request refused).
func (h *Handler) connected(c *Client) error {
	if err := h.hooks.Execute(AfterConnect, h.connHookContext(c)); err != nil {
		h.logger.Debug("connection refused by AfterConnect", "client", c.ID, "reason", err)
		if cur, ok := h.clients.GetClient(c.ID); ok && cur == c {
			h.dropSubscriptions(c)
			h.clients.Unregister(c.ID)
		}
		return fmt.Errorf("mqttspec: connection refused: %w", err)
	}
	return nil
}

// disconnected runs the disconnect hooks. A client whose session the broker
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

// sessionExpired drops the subscriptions of a discarded session.
func (h *Handler) sessionExpired(clientID string) {
	if c, ok := h.clients.GetClient(clientID); ok {
		h.dropSubscriptions(c)
		h.clients.Unregister(clientID)
	}
}

func (h *Handler) connHookContext(c *Client) *HookContext {
	return &HookContext{Context: h.ctx, Handler: h, Client: c, Metadata: map[string]any{"mqtt_client": c}}
}

// dropSubscriptions removes every subscription of c (in a group, from the
// database too: c has gone).
func (h *Handler) dropSubscriptions(c *Client) {
	ids := c.subscriptionIDs()
	for _, id := range ids {
		h.subs.Unsubscribe(id)
		c.RemoveSubscription(id)
	}
	if g := h.group; g != nil {
		g.forgetClient(c.ID)
	}
}

// clientFor returns the registered client of a request on an edge that
// reports no connections (the external broker): a client is first seen
// through its requests and registered then, after the BeforeConnect hooks
// accept it.
func (h *Handler) clientFor(clientID string) (*Client, error) {
	if c, ok := h.clients.GetClient(clientID); ok {
		c.lastSeen.Store(time.Now().UnixNano())
		return c, nil
	}
	info := broker.ConnectInfo{ClientID: clientID, CleanSession: true}
	if h.config.ExternalBroker.ClientIDIsUsername {
		info.Username = clientID // the broker made the client id the login
	}
	c, _, err := h.admit(info)
	if err != nil {
		return nil, NewError(CodeForbidden, "client refused")
	}
	c.lastSeen.Store(time.Now().UnixNano())
	if err := h.connected(c); err != nil {
		return nil, NewError(CodeForbidden, "client refused")
	}
	return c, nil
}

// runDisconnect ends the session of a client that says it has gone (its
// will): with an edge that reports no disconnects, the disconnect hooks
// run and its subscriptions end as if the broker had told. An edge that
// reports disconnects does so itself; the message changes nothing there.
func (h *Handler) runDisconnect(r *request) (*result, error) {
	if !h.live.Load().features.ConnectEvents {
		h.disconnected(r.client, nil, false)
	}
	return &result{}, nil
}

// isDisconnect reports whether payload is a message of type "disconnect".
func isDisconnect(payload []byte) bool {
	var m struct {
		Type MessageType `json:"type"`
	}
	return json.Unmarshal(payload, &m) == nil && m.Type == MessageTypeDisconnect
}

// forgetIdleClients keeps the client registry bounded when the edge
// reports no disconnects (external mode): clients without subscriptions
// are forgotten after LimitConfig.ExternalClientIdle, until Shutdown.
func (h *Handler) forgetIdleClients() {
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
