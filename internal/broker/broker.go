// Package broker is the contract between the mqttspec core and its MQTT
// edges (package mochi: the embedded broker; package paho: a client of an
// external broker). The core owns the interface it calls; an edge reports
// connection events through Events and delivers messages to a Handler,
// and states with Features what its transport can tell and do.
package broker

// ConnectInfo is what a broker knows about a client at CONNECT time.
type ConnectInfo struct {
	ClientID     string
	Username     string
	Password     []byte
	CleanSession bool
	RemoteAddr   string
	// ProtocolVersion is 3 (MQTT 3.1), 4 (3.1.1) or 5.
	ProtocolVersion byte
}

// Session is the core's value for one accepted connection. An edge keeps
// it from Events.Authenticate to Events.Disconnected and hands it back with
// every message the connection publishes; it never looks inside.
type Session any

// Admission is the core's answer to an accepted CONNECT.
type Admission struct {
	// Session is the new connection's Session.
	Session Session
	// Fresh asks the broker to discard what it keeps for the client id (its
	// subscriptions and queued messages): the newcomer may not resume that
	// session, because it is not the same principal.
	Fresh bool
}

// Events is what an edge that sees connections reports to the core.
type Events interface {
	// Authenticate decides whether a CONNECT is accepted; an error refuses
	// it. A reconnect with the same client id yields a new Session.
	Authenticate(info ConnectInfo) (Admission, error)
	// Connected runs once the session of s is established; an error closes
	// the connection.
	Connected(s Session) error
	// Disconnected runs when the connection of s ends, however it ends.
	// sessionKept is true when the broker keeps the session for a reconnect.
	Disconnected(s Session, cause error, sessionKept bool)
	// SessionExpired runs when a kept session is discarded.
	SessionExpired(clientID string)
	// Dropped reports a message the broker could not deliver to clientID,
	// and why.
	Dropped(clientID, topic, reason string)
}

// Message is one message routed to a subscription of the core.
type Message struct {
	Topic   string
	Payload []byte
	// Sender is the Session of the connection that published the message,
	// when the transport knows it (Features.VerifiedSender); else nil.
	Sender Session
}

// Handler receives the messages of a subscription and reports whether it
// took the message. It runs on the edge's delivery goroutine: with
// Features.Backpressure it may block (the sender's further messages wait),
// otherwise it must not. With Features.Refusable a message it does not take
// is not acknowledged (the client keeps it and sends it again); otherwise
// the result is ignored.
type Handler func(Message) bool

// Features states what a transport provides.
type Features struct {
	// ConnectEvents: connects and disconnects are reported through Events.
	ConnectEvents bool
	// VerifiedSender: Message.Sender is the publishing connection, and a
	// message on another client's {prefix}/{id}/request topic never arrives.
	VerifiedSender bool
	// Backpressure: a Handler may block; the sender's reads pause meanwhile.
	Backpressure bool
	// Refusable: a message a Handler does not take is not acknowledged.
	Refusable bool
}
