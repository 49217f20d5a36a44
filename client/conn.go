package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// openConn opens the network connection of a (re)connect. It wraps the
// connection to read the session-present flag of the broker's CONNACK,
// which paho does not report after a reconnect.
func (c *Client) openConn(uri *url.URL, opts paho.ClientOptions) (net.Conn, error) {
	var (
		conn net.Conn
		err  error
	)
	ctx, cancel := context.WithTimeout(context.Background(), opts.ConnectTimeout)
	defer cancel()
	dial := c.cfg.dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	switch uri.Scheme {
	case "tcp", "mqtt":
		conn, err = dial(ctx, "tcp", uri.Host)
	case "ssl", "tls", "mqtts", "tcps":
		if conn, err = dial(ctx, "tcp", uri.Host); err == nil {
			cfg := opts.TLSConfig
			if cfg == nil {
				cfg = &tls.Config{}
			}
			if cfg.ServerName == "" {
				cfg = cfg.Clone()
				cfg.ServerName = uri.Hostname()
			}
			tc := tls.Client(conn, cfg)
			if err = tc.HandshakeContext(ctx); err != nil {
				_ = conn.Close()
			}
			conn = tc
		}
	case "ws", "wss":
		conn, err = paho.NewWebsocket(uri.String(), opts.TLSConfig, opts.ConnectTimeout, opts.HTTPHeaders, opts.WebsocketOptions)
	default:
		return nil, fmt.Errorf("mqttspec client: unsupported URL scheme %q", uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	sc := &sniffConn{Conn: conn, client: c}
	return sc, nil
}

// sniffConn reads the session-present flag from the first packet the
// broker sends (CONNACK: type 2, remaining length 2, flags, return code).
type sniffConn struct {
	net.Conn
	client *Client
	head   [4]byte
	n      int
}

// Read reads from the connection, noting the CONNACK's flags on the way.
func (s *sniffConn) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	for i := 0; i < n && s.n < len(s.head); i++ {
		s.head[s.n] = p[i]
		s.n++
		if s.n == len(s.head) && s.head[0]>>4 == 2 {
			s.client.present.Store(s.head[2]&1 == 1)
		}
	}
	return n, err
}
