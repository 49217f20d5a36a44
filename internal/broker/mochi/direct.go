package mochi

import (
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// An outbox's messages are on its client's own topics,
// {prefix}/{client id}/..., which no other client may read (aclAllowsRead;
// Mochi ORs the answers of hooks, and ours allows the owner). Handed to
// Mochi's Publish, each would be routed through the topic index only to
// find that one client, copied, and queued for the client's write loop
// (another goroutine switch). writeDirect delivers it to the client the
// way Mochi's publishToClient does for an MQTT 3.1.1 connection: the QoS
// is the lower of the message's and the highest of the client's matching
// subscriptions, a QoS 1/2 message is held in the session (resent when the
// session resumes) under a packet id taken from Mochi, and the packet is
// written with Mochi's own Client.WritePacket (its hooks see it sent).

// writeDirect delivers m to the connection of client id and reports
// whether it took m: written, or dropped where Mochi would drop it (no
// matching subscription, the session's limits). It leaves m to Mochi
// (false) when Mochi's way differs or must keep the order:
//   - MQTT 5 clients (topic aliases, receive maximum, subscription
//     identifiers and message expiry are Mochi's to apply);
//   - a client without a connection (the message goes to its session),
//     or whose CONNACK and resent messages are not all out yet;
//   - while Mochi's write queue for the client holds messages published
//     through Mochi (they must go out first).
//
// Inline subscriptions a program adds to Mochi and other hooks' OnPublish
// and OnQosPublish do not see these messages (Mochi runs its hooks from
// unexported fields; documented on EmbeddedBroker.Server).
func (b *Broker) writeDirect(id string, m outMsg) bool {
	cl, ok := b.server.Clients.Get(id)
	if !ok || cl.Net.Inline || cl.Net.Conn == nil || cl.Closed() || !plainV311(cl) {
		return false
	}
	v, ok := b.conns.Load(cl)
	if !ok || !v.(*conn).established.Load() || unsent(cl) > 0 {
		return false
	}
	c := v.(*conn)
	qos, ok := b.privateGrants(c).grantFor(m.topic)
	if !ok {
		return true // no subscription of the client matches: Mochi would deliver it to nobody
	}
	if !b.deliverable(c, cl, m.topic) {
		return true // dropped and reported, as our OnACLCheck makes Mochi drop it
	}
	now := time.Now().Unix()
	out := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: min(m.qos, qos, b.server.Options.Capabilities.MaximumQos)},
		TopicName:   m.topic,
		Payload:     m.payload,
		Created:     now,
		Origin:      mqtt.InlineClientId,
	}
	if expiry := b.server.Options.Capabilities.MaximumMessageExpiryInterval; expiry > 0 {
		out.Expiry = now + expiry
	}
	if out.FixedHeader.Qos > 0 {
		pid, err := cl.NextPacketID()
		if err != nil {
			b.events.Dropped(id, m.topic, "the session has no packet id left")
			return true
		}
		out.PacketID = uint16(pid)
		if cl.State.Inflight.Set(out) {
			atomic.AddInt64(&b.server.Info.Inflight, 1)
			b.queued(cl, out, 0)
		}
	}
	b.written.Add(1)
	// A write that fails ends the connection; a QoS 1/2 message stays held
	// for a resumed session, as when Mochi's write loop fails to write it.
	if err := cl.WritePacket(out); err != nil {
		b.logger.Debug("direct write failed", "client", id, "topic", m.topic, "error", err)
	}
	return true
}

// plainV311 reports whether cl speaks MQTT 3.1 or 3.1.1, where a delivery
// carries no properties and has no flow control beyond the session's.
func plainV311(cl *mqtt.Client) bool {
	return cl.Properties.ProtocolVersion < 5 && cl.Properties.Props.ReceiveMaximum == 0 && cl.Properties.Props.TopicAliasMaximum == 0
}
