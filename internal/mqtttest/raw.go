package mqtttest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/internal/mqttwire"
)

// Raw is an MQTT 3.1.1 connection driven packet by packet, for the cases a
// client library will not produce: an empty password with the flag set, a
// PUBLISH re-sent with DUP and the same packet id, a will, a reset right
// after CONNECT, an oversized packet.
type Raw struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// DialRawTCP opens a TCP connection to addr ("host:port"); it is closed
// when the test ends.
func DialRawTCP(t testing.TB, addr string) *Raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, Wait)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &Raw{t: t, conn: c, r: bufio.NewReader(c)}
}

// TryDialRawTCP opens a TCP connection to addr without a test, for use
// from goroutines: it reports errors instead of failing, and the caller
// closes it. Only Write, Read, Connect and Reset may be used on it.
func TryDialRawTCP(addr string) (*Raw, error) {
	c, err := net.DialTimeout("tcp", addr, Wait)
	if err != nil {
		return nil, err
	}
	return &Raw{conn: c, r: bufio.NewReader(c)}, nil
}

// Conn returns the underlying connection.
func (r *Raw) Conn() net.Conn { return r.conn }

// Write sends pk.
func (r *Raw) Write(pk packets.Packet) error {
	var buf bytes.Buffer
	if err := mqttwire.Encode(&buf, pk); err != nil {
		return err
	}
	_ = r.conn.SetWriteDeadline(time.Now().Add(Wait))
	_, err := r.conn.Write(buf.Bytes())
	return err
}

// Read reads the next packet (at most Wait).
func (r *Raw) Read() (packets.Packet, error) {
	_ = r.conn.SetReadDeadline(time.Now().Add(Wait))
	return mqttwire.Read(r.r)
}

// Expect reads packets until one of type typ arrives (acknowledging QoS 1
// publishes on the way) and returns it; other packets are returned in
// skipped.
func (r *Raw) Expect(typ byte) (pk packets.Packet, skipped []packets.Packet) {
	r.t.Helper()
	for {
		pk, err := r.Read()
		require.NoError(r.t, err, "reading for packet type %d", typ)
		if pk.FixedHeader.Type == typ {
			return pk, skipped
		}
		r.ackPublish(pk)
		skipped = append(skipped, pk)
	}
}

func (r *Raw) ackPublish(pk packets.Packet) {
	if pk.FixedHeader.Type == packets.Publish && pk.FixedHeader.Qos == 1 {
		_ = r.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
	}
}

// ConnectPacket returns a CONNECT for clientID (clean session, keep-alive 30s).
func ConnectPacket(clientID string) packets.Packet {
	return packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect:     packets.ConnectParams{ClientIdentifier: clientID, Clean: true, Keepalive: 30},
	}
}

// Connect sends pk (a CONNECT) and returns the CONNACK's return code, or
// an error when the connection ends first.
func (r *Raw) Connect(pk packets.Packet) (byte, error) {
	if err := r.Write(pk); err != nil {
		return 0, err
	}
	ack, err := r.Read()
	if err != nil {
		return 0, err
	}
	if ack.FixedHeader.Type != packets.Connack {
		return 0, fmt.Errorf("mqtttest: got packet type %d, want CONNACK", ack.FixedHeader.Type)
	}
	return ack.ReasonCode, nil
}

// MustConnect connects with pk and fails the test unless it is accepted.
func (r *Raw) MustConnect(pk packets.Packet) {
	r.t.Helper()
	code, err := r.Connect(pk)
	require.NoError(r.t, err)
	require.Zero(r.t, code, "CONNACK return code")
}

// SubscribePacket returns a SUBSCRIBE of filters at QoS 1.
func SubscribePacket(packetID uint16, filters ...string) packets.Packet {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: packetID}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: 1})
	}
	return pk
}

// Subscribe subscribes to filter at QoS 1 and returns the SUBACK code.
func (r *Raw) Subscribe(filter string, packetID uint16) byte {
	r.t.Helper()
	require.NoError(r.t, r.Write(SubscribePacket(packetID, filter)))
	ack, _ := r.Expect(packets.Suback)
	require.Len(r.t, ack.ReasonCodes, 1)
	return ack.ReasonCodes[0]
}

// PublishPacket returns a PUBLISH of payload on topic; qos 1 needs a
// packet id, dup marks a redelivery.
func PublishPacket(topic string, qos byte, packetID uint16, dup bool, payload []byte) packets.Packet {
	return packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos, Dup: dup},
		TopicName:   topic, PacketID: packetID, Payload: payload,
	}
}

// Reset closes the connection with a TCP reset (no FIN, no DISCONNECT).
func (r *Raw) Reset() {
	if tc, ok := r.conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = r.conn.Close()
}

// Subscriber connects a raw client with id to addr (clean session), with
// its will set to {"type":"disconnect"} on its request topic when will is
// true, subscribes it to its response topic and subscribes it to
// public.users through the protocol, failing the test unless that
// succeeds.
func Subscriber(t testing.TB, addr, id string, will bool) *Raw {
	t.Helper()
	c := DialRawTCP(t, addr)
	pk := ConnectPacket(id)
	if will {
		pk.Connect.WillFlag, pk.Connect.WillQos = true, 1
		pk.Connect.WillTopic, pk.Connect.WillPayload = Prefix+"/"+id+"/request", []byte(`{"type":"disconnect"}`)
	}
	c.MustConnect(pk)
	require.Equal(t, byte(1), c.Subscribe(Prefix+"/"+id+"/response", 1))
	require.NoError(t, c.Write(PublishPacket(Prefix+"/"+id+"/request", 1, 7, false,
		[]byte(`{"id":"s","type":"subscription","operation":"subscribe","schema":"public","entity":"users"}`))))
	for {
		pk, _ := c.Expect(packets.Publish)
		if pk.TopicName == Prefix+"/"+id+"/response" {
			require.Contains(t, string(pk.Payload), `"success":true`)
			return c
		}
	}
}
