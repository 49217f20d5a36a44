package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttspec/mqttspec/internal/mqttwire"
)

// conn is a lean MQTT 3.1.1 client for the load: one goroutine drives it,
// packets are encoded with Mochi's codec and written through a buffer.
// It is cheaper than a full client library, so that the load generator
// takes as little of the machine's CPU as it can.
type conn struct {
	id     string
	prefix string // the first topic level of the protocol
	nc     net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	buf    bytes.Buffer
	pid    uint16
}

// dial connects a client with id to addr ("host:port") that speaks the
// protocol under prefix, with buffers for a load.
func dial(addr, prefix, id string) (*conn, error) { return dialSized(addr, prefix, id, 64<<10) }

// dialSized is dial with read and write buffers of size bytes.
func dialSized(addr, prefix, id string, size int) (*conn, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c := &conn{id: id, prefix: prefix, nc: nc, r: bufio.NewReaderSize(nc, size), w: bufio.NewWriterSize(nc, size)}
	if err := c.write(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect:     packets.ConnectParams{ClientIdentifier: id, Clean: true, Keepalive: 60},
	}); err != nil {
		nc.Close()
		return nil, err
	}
	if err := c.flush(); err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	pk, err := c.read()
	if err != nil || pk.FixedHeader.Type != packets.Connack || pk.ReasonCode != 0 {
		nc.Close()
		return nil, fmt.Errorf("connect %s: %v (packet %d, code %d)", id, err, pk.FixedHeader.Type, pk.ReasonCode)
	}
	_ = nc.SetReadDeadline(time.Time{})
	return c, nil
}

// topic returns the client's topic {prefix}/{id}/{kind}.
func (c *conn) topic(kind string) string { return c.prefix + "/" + c.id + "/" + kind }

// close ends the connection.
func (c *conn) close() { _ = c.nc.Close() }

// subscribe subscribes to filters at qos and waits for the SUBACK.
func (c *conn) subscribe(qos byte, filters ...string) error {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: c.nextID()}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: qos})
	}
	if err := c.write(pk); err != nil {
		return err
	}
	if err := c.flush(); err != nil {
		return err
	}
	for {
		ack, err := c.read()
		if err != nil {
			return err
		}
		if ack.FixedHeader.Type == packets.Suback {
			for _, code := range ack.ReasonCodes {
				if code > 2 {
					return fmt.Errorf("subscribe %v refused (code %#x)", filters, code)
				}
			}
			return nil
		}
	}
}

// publish queues a PUBLISH of payload on topic (flush sends it).
func (c *conn) publish(topic string, qos byte, payload []byte) error {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: topic, Payload: payload}
	if qos > 0 {
		pk.PacketID = c.nextID()
	}
	return c.write(pk)
}

// ack queues the PUBACK of a QoS 1 publish received.
func (c *conn) ack(pk packets.Packet) error {
	if pk.FixedHeader.Qos != 1 {
		return nil
	}
	return c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
}

func (c *conn) nextID() uint16 {
	c.pid++
	if c.pid == 0 {
		c.pid = 1
	}
	return c.pid
}

func (c *conn) write(pk packets.Packet) error {
	c.buf.Reset()
	if err := mqttwire.Encode(&c.buf, pk); err != nil {
		return err
	}
	_, err := c.w.Write(c.buf.Bytes())
	return err
}

// flush sends what is queued.
func (c *conn) flush() error { return c.w.Flush() }

// read reads the next packet.
func (c *conn) read() (packets.Packet, error) { return mqttwire.Read(c.r) }
