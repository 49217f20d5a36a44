// Package client is a Go client of the mqttspec protocol: typed requests
// (Read, ReadOne, Create, Update, Delete, Meta, Ping) and live views
// (Subscribe) over one MQTT connection, on paho.
//
// A Client correlates each request with its answer by request id, bounds
// each call by its context (or the client's request timeout when the
// context has none) and returns a failed answer as a *mqttspec.Error that
// carries the protocol's error code. An "overloaded" answer (the server
// did not run the request) is retried after a growing pause while the
// context allows. It is safe for concurrent use.
//
// A Client keeps a persistent MQTT session (clean session false) and
// reconnects by itself. Requests sent while the connection is down are
// sent again when it is back (the server applies a write once), and
// answers and notifications queued by the broker meanwhile are delivered.
// A View checks the seq of its notifications: a duplicate is dropped, a
// notification that arrives early waits for the ones before it, and a gap
// that stays open (a message the broker dropped, or a session the broker
// forgot) makes the view subscribe again with a fresh snapshot, delivered
// as a Change whose Operation is OperationSnapshot. A view is never
// silently wrong.
package client
