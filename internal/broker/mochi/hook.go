package mochi

import (
	"math"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttspec/mqttspec/internal/broker"
)

// hook is the broker's Mochi hook: authentication, topic ACL and
// connection events.
type hook struct {
	mqtt.HookBase
	b *Broker
}

// ID identifies the hook in Mochi's logs.
func (h *hook) ID() string { return hookID }

// Provides reports the Mochi events the hook handles.
func (h *hook) Provides(event byte) bool {
	switch event {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish,
		mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnClientExpired, mqtt.OnPublishDropped:
		return true
	}
	return false
}

// OnConnect caps the keep-alive of MQTT 5 clients at BrokerConfig.KeepAlive.
func (h *hook) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	limit := h.b.config.KeepAlive
	if limit <= 0 || cl.Properties.ProtocolVersion < 5 {
		return nil
	}
	secs := uint16(min(max(limit/time.Second, 1), math.MaxUint16))
	if cl.State.Keepalive == 0 || cl.State.Keepalive > secs {
		cl.State.Keepalive = secs
		cl.State.ServerKeepalive = true // sent to the client in CONNACK
	}
	return nil
}

// OnConnectAuthenticate asks the core whether the CONNECT is accepted.
// Mochi has already assigned an id to a client that sent an empty one
// (ParseConnect runs before this hook), so cl.ID is final.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	b := h.b
	if cl.Net.Inline {
		return true
	}
	if cl.ID == mqtt.InlineClientId {
		// The id would take over Mochi's inline client session.
		b.logger.Info("connection refused: reserved client id", "client", cl.ID, "remote", cl.Net.Remote)
		return false
	}
	if pk.Connect.WillFlag && !willAllowed(b.config.Prefix, cl.ID, pk) {
		// Mochi publishes wills without an ACL check: a will on another
		// client's topic would forge a request or response.
		b.logger.Info("connection refused: will message on a private topic", "client", cl.ID,
			"remote", cl.Net.Remote, "topic", pk.Connect.WillTopic)
		return false
	}
	session, err := b.events.Authenticate(broker.ConnectInfo{
		ClientID:        cl.ID,
		Username:        string(pk.Connect.Username),
		Password:        pk.Connect.Password,
		CleanSession:    pk.Connect.Clean,
		RemoteAddr:      cl.Net.Remote,
		ProtocolVersion: cl.Properties.ProtocolVersion,
	})
	if err != nil {
		b.logger.Info("connection refused", "client", cl.ID, "remote", cl.Net.Remote, "error", err)
		return false
	}
	if session == nil {
		b.logger.Error("connection refused: authenticate returned no session", "client", cl.ID)
		return false
	}
	b.conns.Store(cl, session)
	return true
}

// willAllowed reports whether a CONNECT's will may be published by
// clientID: like any publish, and never retained under the prefix.
func willAllowed(prefix, clientID string, pk packets.Packet) bool {
	topic := pk.Connect.WillTopic
	if !aclAllowsPublish(prefix, clientID, topic) {
		return false
	}
	return !pk.Connect.WillRetain || !aclUnderPrefix(splitTopic(prefix), splitTopic(topic))
}

// OnACLCheck applies the private-topic rules: write checks a publish,
// !write a SUBSCRIBE filter (processSubscribe) or a delivery of a topic to
// this client (publishToClient). The inline client may do anything.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	if write {
		return aclAllowsPublish(h.b.config.Prefix, cl.ID, topic)
	}
	return aclAllowsRead(h.b.config.Prefix, cl.ID, topic)
}

// OnPublish strips the retain flag of publishes under the prefix, so that
// no request is replayed to a later subscriber, and hands a client's
// message to the core's subscriptions. It runs on the publisher's
// goroutine after the ACL check and before the acknowledgement. (The ACL
// check runs before MQTT 5 topic-alias resolution, but an alias can only
// name a topic that passed it.)
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	if pk.FixedHeader.Retain && aclUnderPrefix(splitTopic(h.b.config.Prefix), splitTopic(pk.TopicName)) {
		pk.FixedHeader.Retain = false
	}
	h.b.route(cl, pk.TopicName, pk.Payload)
	return pk, nil
}

// OnSessionEstablished reports the accepted connection to the core, and
// closes it when the core refuses it after all.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	s, ok := h.b.conns.Load(cl)
	if !ok {
		return
	}
	if err := h.b.events.Connected(s); err != nil {
		h.b.logger.Info("connection closed after it was established", "client", cl.ID, "remote", cl.Net.Remote, "reason", err)
		_ = h.b.server.DisconnectClient(cl, packets.ErrNotAuthorized)
	}
}

// OnDisconnect reports the end of a connection with the Session that its
// CONNECT created, so that a session takeover (a new connection with the
// same id, whose old connection ends after the new one is accepted) cannot
// make the handler forget the new connection. Mochi's expire is true when
// the session is discarded now (MQTT 3.1.1 clean session, or MQTT 5 with
// session expiry 0), so the session is kept exactly when expire is false.
func (h *hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if s, ok := h.b.conns.LoadAndDelete(cl); ok {
		h.b.events.Disconnected(s, err, !expire)
	}
}

// OnClientExpired reports a kept session that Mochi discarded.
func (h *hook) OnClientExpired(cl *mqtt.Client) {
	if cur, ok := h.b.server.Clients.Get(cl.ID); ok && cur != cl {
		return // a new connection already uses the id
	}
	h.b.events.SessionExpired(cl.ID)
}

// OnPublishDropped reports a message Mochi dropped because the client's
// outbound queue was full.
func (h *hook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.b.events.Dropped(cl.ID, pk.TopicName)
}
