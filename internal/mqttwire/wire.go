// Package mqttwire writes and reads single MQTT 3.1.1 (or 5) packets with Mochi's
// codec, for the raw clients of the tests (internal/mqtttest) and of the
// load command (cmd/mqttspec-bench), which send what a client library
// would not and cost less than one.
package mqttwire

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Encode appends pk, as MQTT 3.1.1, to buf. CONNECT, PUBLISH, PUBACK,
// SUBSCRIBE, UNSUBSCRIBE, DISCONNECT and PINGREQ are supported.
func Encode(buf *bytes.Buffer, pk packets.Packet) error { return EncodeVersion(buf, pk, 4) }

// EncodeVersion is Encode for protocol version v (4 for MQTT 3.1.1, 5 for
// MQTT 5, whose packets carry pk.Properties).
func EncodeVersion(buf *bytes.Buffer, pk packets.Packet, v byte) error {
	pk.ProtocolVersion = v
	switch pk.FixedHeader.Type {
	case packets.Connect:
		pk.Connect.ProtocolName = []byte("MQTT")
		return pk.ConnectEncode(buf)
	case packets.Publish:
		return pk.PublishEncode(buf)
	case packets.Puback:
		return pk.PubackEncode(buf)
	case packets.Subscribe:
		return pk.SubscribeEncode(buf)
	case packets.Unsubscribe:
		return pk.UnsubscribeEncode(buf)
	case packets.Disconnect:
		return pk.DisconnectEncode(buf)
	case packets.Pingreq:
		return pk.PingreqEncode(buf)
	}
	return fmt.Errorf("mqttwire: cannot encode packet type %d", pk.FixedHeader.Type)
}

// Read reads the next MQTT 3.1.1 packet from r: CONNACK, PUBLISH, PUBACK,
// SUBACK, UNSUBACK and PINGRESP are decoded; any other type is an error.
func Read(r *bufio.Reader) (packets.Packet, error) { return ReadVersion(r, 4) }

// ReadVersion is Read for protocol version v.
func ReadVersion(r *bufio.Reader, v byte) (packets.Packet, error) {
	var pk packets.Packet
	pk.ProtocolVersion = v
	b, err := r.ReadByte()
	if err != nil {
		return pk, err
	}
	if err := pk.FixedHeader.Decode(b); err != nil {
		return pk, err
	}
	n, _, err := packets.DecodeLength(r)
	if err != nil {
		return pk, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return pk, err
	}
	pk.FixedHeader.Remaining = n
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Unsuback:
		err = pk.UnsubackDecode(body)
	case packets.Pingresp:
	default:
		err = fmt.Errorf("mqttwire: unexpected packet type %d", pk.FixedHeader.Type)
	}
	return pk, err
}
