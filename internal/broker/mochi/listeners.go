package mochi

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Mochi's own listeners do not fit: its WebSocket listener binds only when
// serving (so a port in use is merely logged), and neither closes a
// connection that has not sent CONNECT yet, on which Server.Close then
// waits forever. These listeners bind in Init, admit connections within
// the broker's limits (gate), give new connections handshakeTimeout to send
// CONNECT, close every connection they accepted when closed, and log why a
// connection was refused.

// connLimits are the connection limits the listeners of one broker share.
type connLimits struct {
	max, perAddress int
	writeTimeout    time.Duration // > 0: the longest one write may wait
	logger          *slog.Logger
	gate            *gate
}

// gate counts the connections of all listeners of a broker, those that
// have not sent CONNECT yet included, and refuses those beyond the limits.
type gate struct {
	mu     sync.Mutex
	total  int
	byAddr map[string]int
}

// admit counts a new connection from addr, or refuses it (false).
func (l connLimits) admit(addr string) bool {
	g := l.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case l.max > 0 && g.total >= l.max:
		l.logger.Info("connection refused: too many connections", "remote", addr, "limit", l.max)
		return false
	case l.perAddress > 0 && g.byAddr[addr] >= l.perAddress:
		l.logger.Info("connection refused: MaxConnectionsPerAddress reached", "remote", addr, "limit", l.perAddress)
		return false
	}
	g.total++
	g.byAddr[addr]++
	return true
}

// leave uncounts a connection from addr.
func (l connLimits) leave(addr string) {
	g := l.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.byAddr[addr]--; g.byAddr[addr] <= 0 {
		delete(g.byAddr, addr)
	}
}

// remoteIP is the IP part of a connection's remote address.
func remoteIP(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// connSet tracks the connections a listener accepted.
type connSet struct {
	limits connLimits
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

// trackedConn removes itself from its set and the gate when closed, and
// then runs what was registered with onClose.
type trackedConn struct {
	net.Conn
	set     *connSet
	addr    string
	once    sync.Once
	mu      sync.Mutex
	closers []func()
}

// track wraps c and adds it to the set; it returns nil (and closes c) once
// the set is closed or when the limits refuse c.
func (s *connSet) track(c net.Conn) *trackedConn {
	addr := remoteIP(c)
	if !s.limits.admit(addr) {
		_ = c.Close()
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.limits.leave(addr)
		_ = c.Close()
		return nil
	}
	if s.conns == nil {
		s.conns = map[*trackedConn]struct{}{}
	}
	tc := &trackedConn{Conn: c, set: s, addr: addr}
	s.conns[tc] = struct{}{}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout)) // Mochi replaces it after CONNECT
	return tc
}

// onClose registers fn to run once the connection is closed.
func (c *trackedConn) onClose(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closers = append(c.closers, fn)
}

// closeAll closes every tracked connection and refuses new ones.
func (s *connSet) closeAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns, s.closed = nil, true
	s.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// Write writes b within the write timeout, and closes the connection when
// it cannot: Mochi never bounds a write (nor ends a connection whose write
// failed), so a client that stops reading would hold its connection's
// writer, and the lock Mochi holds while it writes, for as long as the
// keep-alive allows, or for ever without one.
func (c *trackedConn) Write(b []byte) (int, error) {
	t := c.set.limits.writeTimeout
	if t <= 0 {
		return c.Conn.Write(b)
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(t))
	n, err := c.Conn.Write(b)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.set.limits.logger.Info("closed a connection that took nothing for the write timeout", "remote", c.Conn.RemoteAddr(), "timeout", t)
		_ = c.Close()
	}
	return n, err
}

// SetDeadline sets the read deadline only, when writes have their own
// timeout: Mochi sets both at every packet it reads (keep-alive), which
// would move, or with no keep-alive clear, the deadline of a write that is
// waiting.
func (c *trackedConn) SetDeadline(t time.Time) error {
	if c.set.limits.writeTimeout > 0 {
		return c.Conn.SetReadDeadline(t)
	}
	return c.Conn.SetDeadline(t)
}

// Close closes the connection, forgets it and runs the onClose functions
// (once, however often it is called).
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.set.mu.Lock()
		delete(c.set.conns, c)
		c.set.mu.Unlock()
		c.set.limits.leave(c.addr)
		c.mu.Lock()
		closers := c.closers
		c.mu.Unlock()
		for _, fn := range closers {
			fn()
		}
	})
	return err
}

// logEnd logs why a connection ended: at Warn when the broker refused it
// (a CONNACK with a refusal), else at Debug. Refusals by authentication are
// logged with their reason where they are decided.
func logEnd(log *slog.Logger, err error, remote string) {
	var code packets.Code
	switch {
	case err == nil:
	case errors.As(err, &code) && code.Code >= packets.ErrUnspecifiedError.Code && code != packets.ErrBadUsernameOrPassword:
		log.Warn("connection refused", "remote", remote, "reason", code.Reason)
	default:
		log.Debug("client connection ended", "error", err, "remote", remote)
	}
}

// tcpListener serves MQTT over TCP.
type tcpListener struct {
	id      string
	address string
	ln      net.Listener
	log     *slog.Logger
	conns   connSet
	closed  atomic.Bool
	// disconnect disconnects the MQTT clients of a listener (see Close).
	disconnect listeners.CloseFn
}

func newTCPListener(id, address string, limits connLimits, disconnect listeners.CloseFn) *tcpListener {
	return &tcpListener{id: id, address: address, conns: connSet{limits: limits}, disconnect: disconnect}
}

// Init binds the listening socket.
func (l *tcpListener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

// Serve accepts connections until Close.
func (l *tcpListener) Serve(establish listeners.EstablishFn) {
	backoff := time.Duration(0)
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.closed.Load() {
				return
			}
			// E.g. out of file descriptors: wait and retry, like net/http.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Error("accept failed", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		tc := l.conns.track(conn)
		if tc == nil {
			continue // closing
		}
		go func() { logEnd(l.log, establish(l.id, tc), conn.RemoteAddr().String()) }()
	}
}

// ID returns the listener id.
func (l *tcpListener) ID() string { return l.id }

// Address returns the bound address (the configured one before Init).
func (l *tcpListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

// Protocol names the listener's protocol.
func (l *tcpListener) Protocol() string { return "tcp" }

// Close stops accepting, disconnects the listener's MQTT clients (with the
// broker's disconnect, not Mochi's closeClients: see disconnectListener)
// and closes the connections still waiting for CONNECT.
func (l *tcpListener) Close(listeners.CloseFn) {
	if l.closed.CompareAndSwap(false, true) && l.ln != nil {
		_ = l.ln.Close()
	}
	l.disconnect(l.id)
	l.conns.closeAll()
}

// wsListener serves MQTT over WebSocket.
type wsListener struct {
	id        string
	address   string
	ln        net.Listener
	srv       *http.Server
	upgrader  websocket.Upgrader
	log       *slog.Logger
	establish listeners.EstablishFn // set by Serve before it accepts
	conns     connSet
	closed    atomic.Bool
	// disconnect disconnects the MQTT clients of a listener (see Close).
	disconnect listeners.CloseFn
}

func newWSListener(id, address string, limits connLimits, disconnect listeners.CloseFn) *wsListener {
	return &wsListener{
		id:         id,
		address:    address,
		conns:      connSet{limits: limits},
		disconnect: disconnect,
		upgrader: websocket.Upgrader{
			Subprotocols: []string{"mqtt"},
			CheckOrigin:  func(*http.Request) bool { return true },
		},
	}
}

// Init binds the listening socket.
func (l *wsListener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	l.ln = ln
	l.srv = &http.Server{Handler: http.HandlerFunc(l.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// serveHTTP upgrades a request and runs the MQTT connection over it.
func (l *wsListener) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the request
	}
	conn := l.conns.track(&wsNetConn{Conn: ws.NetConn(), ws: ws})
	if conn == nil {
		return // closing
	}
	defer conn.Close()
	logEnd(l.log, l.establish(l.id, conn), r.RemoteAddr)
}

// Serve accepts WebSocket connections until Close.
func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.establish = establish
	if err := l.srv.Serve(l.ln); err != nil && !l.closed.Load() && !errors.Is(err, http.ErrServerClosed) {
		l.log.Error("websocket listener stopped", "error", err)
	}
}

// ID returns the listener id.
func (l *wsListener) ID() string { return l.id }

// Address returns the bound address (the configured one before Init).
func (l *wsListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

// Protocol names the listener's protocol.
func (l *wsListener) Protocol() string { return "ws" }

// Close stops accepting and disconnects the listener's clients. Upgraded
// connections are hijacked, so the HTTP server leaves them to disconnect.
func (l *wsListener) Close(listeners.CloseFn) {
	if l.closed.CompareAndSwap(false, true) && l.ln != nil {
		_ = l.srv.Close()
		_ = l.ln.Close() // in case Serve has not started yet
	}
	l.disconnect(l.id)
	l.conns.closeAll()
}

// wsNetConn carries the MQTT byte stream in binary WebSocket messages. The
// embedded net.Conn is the underlying connection, for addresses and
// deadlines.
type wsNetConn struct {
	net.Conn
	ws  *websocket.Conn
	cur io.Reader // the message being read, nil between messages
}

// Read reads the stream across message boundaries.
func (c *wsNetConn) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			kind, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if kind != websocket.BinaryMessage {
				return 0, errors.New("mqttspec: websocket: MQTT needs binary messages")
			}
			c.cur = r
		}
		n, err := c.cur.Read(p)
		if errors.Is(err, io.EOF) {
			c.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// Write sends p as one binary message. Mochi serialises writes per client.
func (c *wsNetConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the underlying connection.
func (c *wsNetConn) Close() error { return c.ws.Close() }
