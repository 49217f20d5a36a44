package mqttspec

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Client is one MQTT client known to the handler. Hooks reach it through
// HookContext.Metadata["mqtt_client"]. Its metadata and subscription set are
// safe for concurrent use.
type Client struct {
	// ID is the MQTT client id (unique among connected clients).
	ID string
	// Username is the username of the MQTT CONNECT packet.
	Username string
	// ConnectedAt is when the client's current connection was accepted.
	ConnectedAt time.Time

	password []byte
	handler  *Handler
	// principal is who the client is, for deciding whether a connection
	// that takes over its client id may resume its session (see Principal).
	principal string
	// persistent is true when the client connected with clean session false.
	persistent bool
	// lastSeen is when the client last sent a request (Unix nanoseconds).
	lastSeen atomic.Int64

	mu            sync.RWMutex
	metadata      map[string]any
	subscriptions map[string]*Subscription
}

// NewClient returns a client with empty metadata.
func NewClient(id, username string, handler *Handler) *Client {
	return &Client{
		ID:            id,
		Username:      username,
		principal:     username,
		ConnectedAt:   time.Now(),
		handler:       handler,
		metadata:      map[string]any{},
		subscriptions: map[string]*Subscription{},
	}
}

// Password returns the password of the client's CONNECT packet (embedded
// broker only; empty for the external broker). Hooks use it to check
// credentials; it is never logged or sent anywhere.
func (c *Client) Password() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return string(c.password)
}

// Principal returns who the client is: by default its Username. A
// connection that takes over a client id resumes the earlier session
// (subscriptions, queued messages) only when it is the same principal;
// otherwise the session is discarded and the newcomer starts clean.
func (c *Client) Principal() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.principal
}

// SetPrincipal sets who the client is, for BeforeConnect hooks that know
// better than the username (e.g. "tenant/user" taken from a verified
// token).
func (c *Client) SetPrincipal(p string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.principal = p
}

// SetMetadata stores value under key for the lifetime of the client's
// session. Values set in BeforeConnect are visible to every later hook.
func (c *Client) SetMetadata(key string, value any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.metadata[key] = value
}

// GetMetadata returns the value stored under key.
func (c *Client) GetMetadata(key string) (any, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.metadata[key]
	return v, ok
}

// AddSubscription records sub as owned by this client.
func (c *Client) AddSubscription(sub *Subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subscriptions[sub.ID] = sub
}

// RemoveSubscription forgets the subscription with id subID.
func (c *Client) RemoveSubscription(subID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.subscriptions, subID)
}

// GetSubscription returns the client's subscription with id subID.
func (c *Client) GetSubscription(subID string) (*Subscription, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.subscriptions[subID]
	return s, ok
}

// SubscriptionCount returns how many subscriptions the client owns.
func (c *Client) SubscriptionCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.subscriptions)
}

// subscriptionIDs returns the ids of the client's subscriptions.
func (c *Client) subscriptionIDs() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ids := make([]string, 0, len(c.subscriptions))
	for id := range c.subscriptions {
		ids = append(ids, id)
	}
	return ids
}

// Close forgets the client's subscriptions (it does not disconnect it).
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subscriptions = map[string]*Subscription{}
}

// ClientManager tracks the MQTT clients the handler knows. It is safe for
// concurrent use.
type ClientManager struct {
	ctx     context.Context
	mu      sync.RWMutex
	clients map[string]*Client
}

// NewClientManager returns an empty manager.
func NewClientManager(ctx context.Context) *ClientManager {
	return &ClientManager{ctx: ctx, clients: map[string]*Client{}}
}

// Register creates (or replaces) the client with id clientID.
func (cm *ClientManager) Register(clientID, username string, handler *Handler) *Client {
	c := NewClient(clientID, username, handler)
	cm.mu.Lock()
	defer cm.mu.Unlock()
	cm.clients[clientID] = c
	return c
}

// add stores an already built client, replacing any with the same id.
func (cm *ClientManager) add(c *Client) {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	cm.clients[c.ID] = c
}

// GetClient returns the client with id clientID.
func (cm *ClientManager) GetClient(clientID string) (*Client, bool) {
	cm.mu.RLock()
	defer cm.mu.RUnlock()
	c, ok := cm.clients[clientID]
	return c, ok
}

// Unregister forgets the client with id clientID.
func (cm *ClientManager) Unregister(clientID string) {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	delete(cm.clients, clientID)
}

// Count returns how many clients are known.
func (cm *ClientManager) Count() int {
	cm.mu.RLock()
	defer cm.mu.RUnlock()
	return len(cm.clients)
}

// forgetIdle forgets the clients without subscriptions that have sent
// nothing since cutoff, and returns how many it forgot.
func (cm *ClientManager) forgetIdle(cutoff time.Time) int {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	n := 0
	for id, c := range cm.clients {
		if c.SubscriptionCount() == 0 && c.lastSeen.Load() < cutoff.UnixNano() {
			delete(cm.clients, id)
			n++
		}
	}
	return n
}

// all returns every known client.
func (cm *ClientManager) all() []*Client {
	cm.mu.RLock()
	defer cm.mu.RUnlock()
	return slices.Collect(maps.Values(cm.clients))
}

// Shutdown forgets every client.
func (cm *ClientManager) Shutdown() {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	for _, c := range cm.clients {
		c.Close()
	}
	cm.clients = map[string]*Client{}
}
