package paho

import (
	"bufio"
	"net"
	"net/url"
	"os"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// paho reads each packet from the connection in three reads or more (the
// first byte, each byte of the length, the rest), every one a system call
// on a bare TCP connection. Over plain TCP the handler gives paho the
// connection behind a read buffer: packets that arrived together are read
// with one call. Other schemes (TLS, WebSocket, Unix sockets) and
// connections through a proxy from the environment are left to paho's own
// dialing.

// connReadBuffer is the size of the read buffer of a plain TCP connection.
const connReadBuffer = 16 << 10

// bufferedConn is a net.Conn whose reads go through a buffer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

// Read reads from the buffer, filling it from the connection when empty.
func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// bufferedDialer returns the function paho opens connections to brokerURL
// with, or nil to leave them to paho: only plain TCP (tcp://, mqtt://)
// without a proxy set in the environment (all_proxy, which paho honours)
// is dialed here.
func bufferedDialer(brokerURL string) mqtt.OpenConnectionFunc {
	u, err := url.Parse(brokerURL)
	if err != nil || (u.Scheme != "tcp" && u.Scheme != "mqtt") {
		return nil
	}
	for _, v := range []string{"all_proxy", "ALL_PROXY"} {
		if os.Getenv(v) != "" {
			return nil
		}
	}
	return func(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
		d := o.Dialer
		if d == nil {
			d = &net.Dialer{Timeout: o.ConnectTimeout}
		}
		nc, err := d.Dial("tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		return &bufferedConn{Conn: nc, r: bufio.NewReaderSize(nc, connReadBuffer)}, nil
	}
}
