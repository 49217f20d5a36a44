package mqttspec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/internal/broker"
	"github.com/mqttspec/mqttspec/internal/broker/paho"
	"github.com/mqttspec/mqttspec/internal/group"
	"github.com/mqttspec/mqttspec/query"
)

// A group (ExternalBrokerConfig.Group) is several handler instances on one
// topic prefix. Every member subscribes to {prefix}/+/request and serves
// only the clients it owns (package internal/group: every member computes
// the same owner from the same member list), so one client's requests are
// run by one member, in the order the broker delivers them. Members learn
// of each other through retained presence messages on
// {prefix}/$group/{group}/members/{member}, cleared by the member's will
// when it dies and by the member itself when it stops. What must outlive a
// member lives in the shared database: the answers of writes (a write sent
// again to the member that took over is answered, not run, again), the
// subscriptions (the new owner of a client serves them) and the changes
// (the change feed, feed.go, which every member follows).

// seqBlock is how many notification numbers a member reserves for a
// subscription at a time. A member that takes a subscription over starts
// past everything its earlier owner could have used, so the subscriber sees
// a gap (and takes a fresh snapshot) rather than a number used twice.
const seqBlock = 1024

// errHandledElsewhere reports a write another member has run (and
// answered) already: this member neither commits nor answers it.
var errHandledElsewhere = errors.New("mqttspec: write handled by another member of the group")

// groupTablesSQL creates the tables a group keeps in the database (run by
// feed.install inside its DO block).
const groupTablesSQL = `
IF to_regclass('mqttspec_requests') IS NULL THEN
  CREATE TABLE mqttspec_requests (
    client_id text NOT NULL, principal text NOT NULL, request_id text NOT NULL,
    payload_sum text NOT NULL, answer text NOT NULL, at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, principal, request_id));
  CREATE INDEX mqttspec_requests_at ON mqttspec_requests (at);
END IF;
IF to_regclass('mqttspec_subscriptions') IS NULL THEN
  CREATE TABLE mqttspec_subscriptions (
    id text PRIMARY KEY, client_id text NOT NULL, principal text NOT NULL,
    schema_name text NOT NULL, entity text NOT NULL, options text NOT NULL,
    seq_reserved bigint NOT NULL, at timestamptz NOT NULL DEFAULT now());
  CREATE INDEX mqttspec_subscriptions_client ON mqttspec_subscriptions (client_id);
END IF;
`

// groupMember is this handler's part in its group.
type groupMember struct {
	h       *Handler
	name    string
	members *group.Members
	base    string // {prefix}/$group/{name}
	db      adapters.RawSQL

	// readyAt is when this member starts serving (unix ns; it joined, or
	// came back, GroupSettle before).
	readyAt atomic.Int64
	kick    chan struct{}
	// heard is closed when this member first receives its own presence:
	// the broker lets it publish and read the group's topics.
	heard     chan struct{}
	heardOnce sync.Once
	// started is set once start has announced this member: connects
	// before that (the first) announce nothing themselves.
	started atomic.Bool
	mu      sync.Mutex // serialises rebalance
}

func newGroupMember(h *Handler) *groupMember {
	c := h.config.ExternalBroker
	g := &groupMember{h: h, name: c.Group, members: group.New(c.ClientID),
		base: h.config.Topics.Prefix + "/$group/" + c.Group, kick: make(chan struct{}, 1), heard: make(chan struct{})}
	g.db, _ = h.db.(adapters.RawSQL)
	g.readyAt.Store(math.MaxInt64) // not serving before start
	return g
}

func (g *groupMember) presenceTopic(member string) string { return g.base + "/members/" + member }
func (g *groupMember) changesTopic() string               { return g.base + "/changes" }

// will clears this member's presence when its connection dies.
func (g *groupMember) will() *paho.Will {
	return &paho.Will{Topic: g.presenceTopic(g.members.Self()), QoS: 1, Retained: true}
}

// start subscribes to the group's topics, announces this member, checks
// that its own presence comes back (a broker whose ACL does not let it use
// the group's topics would leave it alone, serving every client next to
// the others), and begins serving once GroupSettle has passed.
func (g *groupMember) start(ctx context.Context, t transport) error {
	if err := t.Subscribe(g.base+"/members/+", 1, g.onPresence); err != nil {
		return fmt.Errorf("subscribe to group %s: %w", g.name, err)
	}
	if err := t.Subscribe(g.changesTopic(), 0, func(broker.Message) bool {
		if f := g.h.feed; f != nil {
			f.nudge()
		}
		return true
	}); err != nil {
		return fmt.Errorf("subscribe to group %s: %w", g.name, err)
	}
	// Settling starts now, not when the handler was made.
	g.readyAt.Store(time.Now().Add(g.h.config.ExternalBroker.GroupSettle).UnixNano())
	if err := g.announce(); err != nil {
		return fmt.Errorf("join group %s: %w", g.name, err)
	}
	g.started.Store(true)
	select {
	case <-g.heard:
	case <-ctx.Done():
		return fmt.Errorf("join group %s: this member's presence on %s did not come back: "+
			"the broker must let the handlers publish and subscribe to %s/# (with retained messages)",
			g.name, g.presenceTopic(g.members.Self()), g.base)
	}
	go g.rebalancer()
	g.settleThenRebalance()
	g.h.logger.Info("joined group", "group", g.name, "member", g.members.Self(), "settle", g.h.config.ExternalBroker.GroupSettle)
	return nil
}

// announce publishes this member's retained presence.
func (g *groupMember) announce() error {
	live := g.h.live.Load()
	if live == nil {
		return nil
	}
	p, ok := live.t.(interface {
		PublishRetained(topic string, qos byte, payload []byte) error
	})
	if !ok {
		return errors.New("the broker edge cannot publish retained messages")
	}
	// QoS 0: start waits until it comes back, and every reconnect sends it
	// again. (A QoS 1 publish in flight when a connection drops is resent
	// by paho's reconnect while its old writer may still be sending it, a
	// data race in paho: eclipse-paho/paho.mqtt.golang#703.)
	return p.PublishRetained(g.presenceTopic(g.members.Self()), 0, []byte(`{"member":`+jsonString(g.members.Self())+`}`))
}

// leave clears this member's presence (Shutdown, once its requests are
// answered): the others take its clients over at once.
func (g *groupMember) leave() {
	live := g.h.live.Load()
	if p, ok := live.t.(interface {
		PublishRetained(topic string, qos byte, payload []byte) error
	}); ok {
		if err := p.PublishRetained(g.presenceTopic(g.members.Self()), 1, nil); err != nil {
			g.h.logger.Warn("could not leave the group; the others notice when the connection ends", "group", g.name, "error", err)
		}
	}
}

// reconnected runs after every connect of the edge: a member back from a
// lost connection was given up by the others (its will) and joins again.
func (g *groupMember) reconnected() {
	if !g.started.Load() { // the first connect: start announces
		return
	}
	g.readyAt.Store(time.Now().Add(g.h.config.ExternalBroker.GroupSettle).UnixNano())
	g.members.Reset()
	g.h.logger.Info("rejoining group after reconnecting", "group", g.name, "member", g.members.Self())
	if err := g.announce(); err != nil {
		g.h.logger.Warn("could not announce this member after reconnecting", "group", g.name, "error", err)
	}
	g.settleThenRebalance()
}

func (g *groupMember) settleThenRebalance() {
	g.rebalanceNow()
	time.AfterFunc(time.Until(time.Unix(0, g.readyAt.Load())), g.rebalanceNow)
}

// onPresence follows the members' presence messages.
func (g *groupMember) onPresence(m broker.Message) bool {
	id := m.Topic[strings.LastIndexByte(m.Topic, '/')+1:]
	if id == g.members.Self() {
		if len(m.Payload) > 0 {
			g.heardOnce.Do(func() { close(g.heard) })
		}
		if len(m.Payload) == 0 && g.h.ctx.Err() == nil && !g.h.draining.Load() {
			// An earlier connection's will, arriving after this one announced.
			go func() { _ = g.announce() }()
		}
		return true
	}
	var changed bool
	if len(m.Payload) == 0 {
		changed = g.members.Leave(id)
	} else if changed = g.members.Join(id); changed && g.started.Load() {
		// Say hello back: the newcomer may have subscribed after this
		// member announced, and a broker may not have its retained
		// presence at hand yet (a NATS node learns retained messages
		// from the others asynchronously). One answer per new member.
		go func() { _ = g.announce() }()
	}
	if changed {
		g.h.logger.Info("group membership changed", "group", g.name, "members", g.members.List())
		g.rebalanceNow()
	}
	return true
}

// serves reports whether this member runs the requests of clientID. The
// members' own ids are nobody's clients: their start-up self-checks are
// answered by themselves only.
func (g *groupMember) serves(clientID string) bool {
	return time.Now().UnixNano() >= g.readyAt.Load() && g.members.Owns(clientID) && !g.members.Has(clientID)
}

func (g *groupMember) rebalanceNow() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// recheckEvery is how often a member looks again, between changes of
// membership, for subscriptions it should serve or let go: one made on
// the member that served a client just before it moved, while the move
// happened, is in the database a moment after the move.
const recheckEvery = 5 * time.Second

// recentSQL selects the subscriptions stored lately (what recheckEvery
// looks at; a transaction's now() is when it began).
const recentSQL = " WHERE at > now() - interval '1 minute'"

// rebalancer lets go of the clients this member no longer owns and takes
// over the stored subscriptions of those it now owns, after every change
// of membership (all of them) and every recheckEvery (the recent ones),
// until the handler stops.
func (g *groupMember) rebalancer() {
	tick := time.NewTicker(recheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-g.h.ctx.Done():
			return
		case <-g.kick:
			g.rebalance("")
		case <-tick.C:
			g.rebalance(recentSQL)
		}
	}
}

// rebalance does the work of rebalancer over the stored subscriptions that
// where (a WHERE clause, or "" for all) selects.
func (g *groupMember) rebalance(where string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	// Clients served elsewhere now (not gone: their stored subscriptions
	// stay) are let go, and so are their subscriptions, even one that a
	// request already running here registered after the move.
	for _, sub := range g.h.subs.all() {
		if !g.members.Owns(sub.ConnectionID) {
			g.h.subs.Unsubscribe(sub.ID)
			if c, ok := g.h.clients.GetClient(sub.ConnectionID); ok {
				c.RemoveSubscription(sub.ID)
			}
		}
	}
	for _, c := range g.h.clients.all() {
		if !g.members.Owns(c.ID) {
			g.h.clients.Unregister(c.ID)
		}
	}
	if time.Now().UnixNano() < g.readyAt.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(g.h.ctx, g.h.config.Timeouts.Request)
	defer cancel()
	var rows []storedSubscription
	if err := g.db.Scan(ctx, &rows, "SELECT id, client_id, principal, schema_name, entity, options FROM mqttspec_subscriptions"+where); err != nil {
		if g.h.ctx.Err() == nil {
			g.h.logger.Warn("group: cannot read the stored subscriptions", "error", err)
		}
		return
	}
	taken := 0
	for _, row := range rows {
		if !g.members.Owns(row.ClientID) {
			continue
		}
		if c, ok := g.h.clients.GetClient(row.ClientID); ok {
			if _, has := c.GetSubscription(row.ID); has {
				continue
			}
		}
		if err := g.restore(ctx, row); err != nil {
			g.h.logger.Warn("group: cannot take over a subscription", "subscription", row.ID, "client", row.ClientID, "error", err)
			continue
		}
		taken++
	}
	if taken > 0 {
		g.h.logger.Info("group: took over subscriptions", "group", g.name, "count", taken)
	}
}

// storedSubscription is a row of mqttspec_subscriptions.
type storedSubscription struct {
	ID         string `gorm:"column:id" bun:"id"`
	ClientID   string `gorm:"column:client_id" bun:"client_id"`
	Principal  string `gorm:"column:principal" bun:"principal"`
	SchemaName string `gorm:"column:schema_name" bun:"schema_name"`
	Entity     string `gorm:"column:entity" bun:"entity"`
	Options    string `gorm:"column:options" bun:"options"`
}

// restore registers a stored subscription with this member, numbering its
// notifications past everything its earlier owner could have sent.
func (g *groupMember) restore(ctx context.Context, row storedSubscription) error {
	m, err := g.h.catalog.resolve(row.SchemaName, row.Entity)
	if err != nil {
		return err
	}
	opts := &RequestOptions{}
	if err := json.Unmarshal([]byte(row.Options), opts); err != nil {
		return fmt.Errorf("options: %w", err)
	}
	where, err := query.BuildWhere(m, opts.Filters, g.h.limits())
	if err != nil {
		return err
	}
	client, err := g.h.clientFor(row.ClientID)
	if err != nil {
		return err
	}
	var reserved []int64
	if err := g.db.Scan(ctx, &reserved, "UPDATE mqttspec_subscriptions SET seq_reserved = seq_reserved + ? WHERE id = ? RETURNING seq_reserved",
		seqBlock, row.ID); err != nil || len(reserved) != 1 {
		return fmt.Errorf("reserve numbers: %w", errOr(err, "subscription gone"))
	}
	sub := &Subscription{ID: row.ID, ConnectionID: row.ClientID, Schema: m.Schema, Entity: m.Entity,
		Options: opts, model: m, where: where}
	// Skip one number: the earlier owner may have used all it reserved.
	sub.seq.Store(uint64(reserved[0] - seqBlock + 1))
	sub.seqLimit = uint64(reserved[0])
	o := g.h.order(m)
	o.mu.Lock()
	g.h.subs.add(sub)
	client.AddSubscription(sub)
	o.mu.Unlock()
	return nil
}

// saveSubscription stores a new subscription of client.
func (g *groupMember) saveSubscription(ctx context.Context, sub *Subscription, client *Client) error {
	opts, err := json.Marshal(sub.Options)
	if err != nil {
		return fmt.Errorf("store subscription: %w", err)
	}
	if _, err := g.db.Exec(ctx, "INSERT INTO mqttspec_subscriptions (id, client_id, principal, schema_name, entity, options, seq_reserved) VALUES (?, ?, ?, ?, ?, ?, ?)",
		sub.ID, client.ID, client.Principal(), sub.model.Schema, sub.model.Entity, string(opts), seqBlock); err != nil {
		return fmt.Errorf("store subscription: %w", err)
	}
	sub.seqLimit = seqBlock
	return nil
}

// deleteSubscriptions removes stored subscriptions by id.
func (g *groupMember) deleteSubscriptions(ids ...string) {
	ctx, cancel := context.WithTimeout(g.h.ctx, g.h.config.Timeouts.Request)
	defer cancel()
	for _, id := range ids {
		if _, err := g.db.Exec(ctx, "DELETE FROM mqttspec_subscriptions WHERE id = ?", id); err != nil && g.h.ctx.Err() == nil {
			g.h.logger.Warn("group: cannot delete a stored subscription", "subscription", id, "error", err)
		}
	}
}

// forgetClient removes the stored subscriptions of a client that has gone.
func (g *groupMember) forgetClient(clientID string) {
	ctx, cancel := context.WithTimeout(g.h.ctx, g.h.config.Timeouts.Request)
	defer cancel()
	if _, err := g.db.Exec(ctx, "DELETE FROM mqttspec_subscriptions WHERE client_id = ?", clientID); err != nil && g.h.ctx.Err() == nil {
		g.h.logger.Warn("group: cannot delete the stored subscriptions of a client", "client", clientID, "error", err)
	}
}

// reserveSeq reserves more numbers for s once seq passes what it holds.
// Notifications of one subscription are numbered one at a time (in their
// entity's lane), so this needs no lock.
func (g *groupMember) reserveSeq(s *Subscription, seq uint64) {
	if seq <= s.seqLimit {
		return
	}
	ctx, cancel := context.WithTimeout(g.h.ctx, g.h.config.Timeouts.Request)
	defer cancel()
	limit := seq + seqBlock
	if _, err := g.db.Exec(ctx, "UPDATE mqttspec_subscriptions SET seq_reserved = GREATEST(seq_reserved, ?) WHERE id = ?", limit, s.ID); err != nil {
		g.h.logger.Warn("group: cannot reserve notification numbers", "subscription", s.ID, "error", err)
		return
	}
	s.seqLimit = limit
}

// replay returns the answer another member (or this one, earlier) gave to
// the write key with this payload.
func (g *groupMember) replay(ctx context.Context, key dedupKey, payload []byte) ([]byte, bool) {
	if key.request == "" {
		return nil, false
	}
	var rows []struct {
		PayloadSum string `gorm:"column:payload_sum" bun:"payload_sum"`
		Answer     string `gorm:"column:answer" bun:"answer"`
	}
	if err := g.db.Scan(ctx, &rows, "SELECT payload_sum, answer FROM mqttspec_requests WHERE client_id = ? AND principal = ? AND request_id = ?",
		key.client, key.principal, key.request); err != nil || len(rows) == 0 || rows[0].PayloadSum != payloadSum(payload) {
		return nil, false
	}
	return []byte(rows[0].Answer), true
}

// record keeps the answer of a write in the write's own transaction: it is
// stored if and only if the write commits. A second member running the
// same write (both thought they owned the client, for a moment) finds the
// key taken and backs out.
func (g *groupMember) record(r *request, answer *ResponseMessage, payload []byte) error {
	if r.msg.ID == "" {
		return nil
	}
	tx, ok := r.tx.(adapters.RawSQL)
	if !ok {
		return errors.New("the transaction cannot run statements")
	}
	b, err := answer.ToJSON()
	if err != nil {
		return err
	}
	_, err = tx.Exec(r.ctx, "INSERT INTO mqttspec_requests (client_id, principal, request_id, payload_sum, answer) VALUES (?, ?, ?, ?, ?)",
		r.client.ID, r.client.Principal(), r.msg.ID, payloadSum(payload), string(b))
	if errors.Is(err, adapters.ErrConstraint) {
		return errHandledElsewhere
	}
	if err != nil {
		return fmt.Errorf("record the answer: %w", err)
	}
	return nil
}

// clean deletes kept answers older than the feed's retention (at least
// the deduplication window).
func (g *groupMember) clean(ctx context.Context) {
	keep := max(g.h.config.ChangeFeed.Retention, g.h.config.Limits.DedupWindow)
	if _, err := g.db.Exec(ctx, "DELETE FROM mqttspec_requests WHERE at < ?", time.Now().Add(-keep)); err != nil && g.h.ctx.Err() == nil {
		g.h.logger.Warn("group: clean-up failed", "error", err)
	}
}

// signal tells the other members that the feed has a new change.
func (g *groupMember) signal() { g.h.send(g.changesTopic(), 0, []byte("1")) }

func payloadSum(p []byte) string {
	s := sha256.Sum256(p)
	return hex.EncodeToString(s[:])
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// GroupMembers returns the members of this handler's group as it sees
// them, itself included, sorted; nil when it is not in a group.
func (h *Handler) GroupMembers() []string {
	if h.group == nil {
		return nil
	}
	return h.group.members.List()
}
