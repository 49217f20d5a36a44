package mochi

import (
	"math"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttspec/mqttspec/internal/broker"
)

// hook is the broker's Mochi hook: authentication, topic ACL, the core's
// subscriptions, connection events and the accounting of what each
// session holds.
type hook struct {
	mqtt.HookBase
	b *Broker
}

// ID identifies the hook in Mochi's logs.
func (h *hook) ID() string { return hookID }

// Provides reports the Mochi events the hook handles.
func (h *hook) Provides(event byte) bool {
	switch event {
	case mqtt.OnPacketRead, mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnSessionEstablished,
		mqtt.OnSubscribe, mqtt.OnSubscribed, mqtt.OnUnsubscribed, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnWill,
		mqtt.OnPacketSent, mqtt.OnQosPublish, mqtt.OnQosComplete, mqtt.OnQosDropped,
		mqtt.OnDisconnect, mqtt.OnClientExpired, mqtt.OnPublishDropped:
		return true
	}
	return false
}

// OnPacketRead accepts a CONNECT whose password flag is set with an empty
// password (MQTT allows it; MQTT.js with an empty password option and
// Python paho's username_pw_set(u, "") send it, and Mochi's validation
// would refuse it):
// the password is read as absent. A CONNECT that Mochi will refuse anyway
// is logged with its reason, which Mochi does not do.
func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type != packets.Connect {
		return pk, nil
	}
	if pk.Connect.PasswordFlag && len(pk.Connect.Password) == 0 {
		pk.Connect.PasswordFlag = false
	}
	if code := pk.ConnectValidate(); code != packets.CodeSuccess {
		h.b.logger.Warn("connection refused: invalid CONNECT", "client", pk.Connect.ClientIdentifier,
			"remote", cl.Net.Remote, "reason", code.Reason)
	}
	return pk, nil
}

// OnConnect caps the keep-alive of MQTT 5 clients at Config.KeepAlive.
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
// (ParseConnect runs before this hook), so cl.ID is final. When the core
// says the newcomer may not resume the session kept under its id, that
// session is discarded before Mochi would hand it over.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	b := h.b
	if cl.Net.Inline {
		return true
	}
	if cl.ID == mqtt.InlineClientId {
		// The id would take over Mochi's inline client session.
		b.logger.Warn("connection refused: reserved client id", "client", cl.ID, "remote", cl.Net.Remote)
		return false
	}
	if pk.Connect.WillFlag && !willAllowed(b.config.Prefix, cl.ID, pk) {
		// Mochi publishes wills without an ACL check: a will on another
		// client's topic would forge a request or response.
		b.logger.Warn("connection refused: will message on a private topic", "client", cl.ID,
			"remote", cl.Net.Remote, "topic", pk.Connect.WillTopic)
		return false
	}
	adm, err := b.events.Authenticate(broker.ConnectInfo{
		ClientID:        cl.ID,
		Username:        string(pk.Connect.Username),
		Password:        pk.Connect.Password,
		CleanSession:    pk.Connect.Clean,
		RemoteAddr:      cl.Net.Remote,
		ProtocolVersion: cl.Properties.ProtocolVersion,
	})
	if err != nil {
		b.logger.Warn("connection refused", "client", cl.ID, "remote", cl.Net.Remote, "error", err)
		return false
	}
	if adm.Session == nil {
		b.logger.Error("connection refused: authenticate returned no session", "client", cl.ID)
		return false
	}
	if adm.Fresh {
		b.discardSession(cl.ID)
	}
	c := &conn{session: adm.Session, cl: cl}
	b.resumeSession(cl.ID, c, !adm.Fresh && !pk.Connect.Clean)
	b.conns.Store(cl, c)
	if tc, ok := cl.Net.Conn.(*trackedConn); ok {
		tc.onClose(func() { b.aborted(cl) })
	}
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

// OnSessionEstablished reports the accepted connection to the core, and
// closes it when the core refuses it after all.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	c, ok := h.b.connOf(cl)
	if !ok {
		return
	}
	c.established.Store(true)
	c.subsChanged.Add(1) // a resumed session brings subscriptions
	if err := h.b.events.Connected(c.session); err != nil {
		h.b.logger.Warn("connection closed after it was established", "client", cl.ID, "remote", cl.Net.Remote, "reason", err)
		_ = h.b.server.DisconnectClient(cl, packets.ErrNotAuthorized)
	}
}

// OnSubscribe notes the filters a SUBSCRIBE asks for, so that OnACLCheck
// can tell them from deliveries (Mochi asks both the same way).
func (h *hook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if c, ok := h.b.connOf(cl); ok {
		c.mu.Lock()
		c.subscribing = map[string]bool{}
		for _, f := range pk.Filters {
			c.subscribing[f.Filter] = true
		}
		c.mu.Unlock()
	}
	return pk
}

// OnSubscribed forgets the filters of a SUBSCRIBE once Mochi answered it.
func (h *hook) OnSubscribed(cl *mqtt.Client, _ packets.Packet, _ []byte) {
	if c, ok := h.b.connOf(cl); ok {
		c.mu.Lock()
		c.subscribing = nil
		c.mu.Unlock()
		c.subsChanged.Add(1)
	}
}

// OnUnsubscribed notes that the client's subscriptions changed.
func (h *hook) OnUnsubscribed(cl *mqtt.Client, _ packets.Packet) {
	if c, ok := h.b.connOf(cl); ok {
		c.subsChanged.Add(1)
	}
}

// OnACLCheck applies the topic rules. write checks a publish; !write a
// SUBSCRIBE filter or a delivery of a topic to this client. Every valid
// filter is granted (except $SYS ones when closed); what a client may not
// read is withheld from it at delivery: another client's private topics,
// $SYS topics when closed, and anything once its session holds as much as
// the limits allow. The inline client may do anything.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	b := h.b
	if cl.Net.Inline {
		return true
	}
	if write {
		return aclAllowsPublish(b.config.Prefix, cl.ID, topic)
	}
	c, ok := b.connOf(cl)
	if ok && c.subscribingTo(topic) {
		return aclAllowsSubscribe(topic, b.config.EnableSysTopics)
	}
	if !aclAllowsRead(b.config.Prefix, cl.ID, topic, b.config.EnableSysTopics) {
		return false
	}
	return !ok || b.deliverable(c, cl, topic)
}

// OnPublish strips the retain flag of publishes under the prefix, so that
// no request is replayed to a later subscriber, and hands a client's
// message to the core's subscriptions. It runs on the publisher's
// goroutine after the ACL check and before the acknowledgement: a message
// the core does not take is rejected, so the client keeps it and sends it
// again. (The ACL check runs before MQTT 5 topic-alias resolution, but an
// alias can only name a topic that passed it.)
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	if pk.FixedHeader.Retain && aclUnderPrefix(splitTopic(h.b.config.Prefix), splitTopic(pk.TopicName)) {
		pk.FixedHeader.Retain = false
	}
	switch h.b.route(cl, pk.TopicName, pk.Payload) {
	case refused:
		return pk, packets.ErrRejectPacket
	case taken:
		// A request is the core's: acknowledged, and not delivered to MQTT
		// subscribers (only its sender could read it anyway).
		return pk, packets.CodeSuccessIgnore
	}
	return pk, nil
}

// OnWill hands a will on the client's own request topic to the core, as a
// request of the connection that is ending (never of a newcomer with the
// same id). Mochi publishes whatever will the hook returns, so the routed
// will is sent to a topic no client can read instead (reservedTopic).
func (h *hook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	if !aclUnderPrefix(splitTopic(h.b.config.Prefix), splitTopic(will.TopicName)) {
		return will, nil
	}
	_ = h.b.route(cl, will.TopicName, will.Payload)
	will.TopicName, will.Retain = reservedTopic+"/routed-will", false
	return will, nil
}

// OnPacketSent notes that the CONNACK went out, and wakes whoever waits
// for room in the client's queues.
func (h *hook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if c, ok := h.b.connOf(cl); ok {
		if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode == packets.CodeSuccess.Code {
			c.connacked.Store(true)
		}
		c.progress()
	}
}

// OnQosPublish counts a QoS 1/2 message now held for the client.
func (h *hook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, resends int) {
	h.b.queued(cl, pk, resends)
}

// OnQosComplete uncounts an acknowledged message.
func (h *hook) OnQosComplete(cl *mqtt.Client, pk packets.Packet) { h.b.done(cl, pk) }

// OnQosDropped uncounts a message dropped from the session.
func (h *hook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) { h.b.done(cl, pk) }

// OnDisconnect reports the end of a connection with the Session that its
// CONNECT created, so that a session takeover (a new connection with the
// same id, whose old connection ends after the new one is accepted) cannot
// make the core forget the new connection. Mochi's expire is true when the
// session is discarded now (MQTT 3.1.1 clean session, or MQTT 5 with
// session expiry 0), so the session is kept exactly when expire is false.
func (h *hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if v, ok := h.b.conns.LoadAndDelete(cl); ok {
		c := v.(*conn)
		c.progress() // whoever waits for room: the connection has gone
		if !expire {
			h.b.keepSession(c)
		}
		h.b.events.Disconnected(c.session, err, !expire)
	}
}

// OnClientExpired reports a kept session that Mochi discarded.
func (h *hook) OnClientExpired(cl *mqtt.Client) {
	if cur, ok := h.b.server.Clients.Get(cl.ID); ok && cur != cl {
		return // a new connection already uses the id
	}
	if v, ok := h.b.kept.Load(cl.ID); ok && v.(*conn).cl == cl {
		h.b.kept.CompareAndDelete(cl.ID, v)
	}
	h.b.events.SessionExpired(cl.ID)
}

// OnPublishDropped reports a message Mochi dropped because the client's
// write queue was full.
func (h *hook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.b.events.Dropped(cl.ID, pk.TopicName, "the client's write queue is full")
	if c, ok := h.b.connOf(cl); ok {
		c.progress()
	}
}
