package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// scenario is what one run of the load sends.
type scenario struct {
	Name     string // read, read-light, list, create, update, mix, fanout
	Clients  int    // connections that send requests
	InFlight int    // requests each keeps outstanding
	Fanout   int    // subscribers (fanout only)
}

// scenarios are the loads the command knows, by name.
var scenarios = map[string]scenario{
	"read":       {Name: "read", Clients: 10, InFlight: 8},
	"read-light": {Name: "read-light", Clients: 10, InFlight: 1},
	"list":       {Name: "list", Clients: 10, InFlight: 8},
	"create":     {Name: "create", Clients: 10, InFlight: 8},
	"update":     {Name: "update", Clients: 10, InFlight: 8},
	"mix":        {Name: "mix", Clients: 10, InFlight: 8},
	"fanout":     {Name: "fanout", Clients: 2, InFlight: 8, Fanout: 100},
}

// request returns the payload of the n-th request of client in sc.
func (sc scenario) request(client string, n int, rows int, rng *rand.Rand) []byte {
	op := sc.Name
	if op == "mix" { // eight reads, one update, one create in ten
		switch n % 10 {
		case 3:
			op = "update"
		case 7:
			op = "create"
		default:
			op = "read"
		}
	}
	id := strconv.Itoa(n)
	switch op {
	case "read", "read-light":
		return fmt.Appendf(nil, `{"id":"%s","type":"request","operation":"read","schema":"public","entity":"users","record_id":"%d"}`, id, 1+rng.IntN(rows))
	case "list":
		return fmt.Appendf(nil, `{"id":"%s","type":"request","operation":"read","schema":"public","entity":"users","options":{"filters":[{"column":"status","operator":"eq","value":"active"}],"limit":10}}`, id)
	case "update":
		return fmt.Appendf(nil, `{"id":"%s","type":"request","operation":"update","schema":"public","entity":"users","record_id":"%d","data":{"email":"%s-%s@example.com"}}`, id, 1+rng.IntN(rows), client, id)
	default: // create, fanout
		return fmt.Appendf(nil, `{"id":"%s","type":"request","operation":"create","schema":"public","entity":"users","data":{"name":"%s-%s","email":"%s-%s@example.com","status":"active"}}`, id, client, id, client, id)
	}
}

// window is the measured part of a run: answers received inside it count.
type window struct {
	open atomic.Bool
}

// stats is what one connection observed inside the window.
type stats struct {
	answers, failures, notes int
	latencies                []time.Duration
}

// load runs sc against the broker at addr at qos: warm-up, then measure
// for d, calling mark at the window's start and end (to read CPU clocks).
func load(ctx context.Context, addr, prefix string, sc scenario, qos byte, rows int, warm, d time.Duration, subscribers func([]*conn) error, mark func()) (stats, time.Duration, error) {
	var w window
	tag := fmt.Sprintf("%s-q%d-%d", sc.Name, qos, time.Now().UnixNano()%1e6)
	var subs []*conn
	for i := 0; i < sc.Fanout; i++ {
		c, err := dial(addr, prefix, fmt.Sprintf("fan-%d", i))
		if err != nil {
			return stats{}, 0, err
		}
		defer c.close()
		if err := c.subscribe(qos, c.topic("response"), c.topic("notify/+")); err != nil {
			return stats{}, 0, err
		}
		subs = append(subs, c)
	}
	if len(subs) > 0 && subscribers != nil {
		if err := subscribers(subs); err != nil {
			return stats{}, 0, err
		}
	}
	senders := make([]*conn, sc.Clients)
	for i := range senders {
		c, err := dial(addr, prefix, fmt.Sprintf("%s-%d", tag, i))
		if err != nil {
			return stats{}, 0, err
		}
		defer c.close()
		if err := c.subscribe(qos, c.topic("response")); err != nil {
			return stats{}, 0, err
		}
		senders[i] = c
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	results := make(chan stats, len(senders)+len(subs))
	errs := make(chan error, len(senders)+len(subs))
	var wg sync.WaitGroup
	for i, c := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := drive(runCtx, c, sc, qos, rows, uint64(i), &w)
			results <- st
			errs <- err
		}()
	}
	for _, c := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := listen(runCtx, c, &w)
			results <- st
			errs <- err
		}()
	}
	select {
	case <-time.After(warm):
	case <-ctx.Done():
	}
	mark()
	start := time.Now()
	w.open.Store(true)
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	w.open.Store(false)
	elapsed := time.Since(start)
	mark()
	stop()
	for _, c := range append(senders, subs...) {
		_ = c.nc.SetReadDeadline(time.Now().Add(2 * time.Second)) // ends drive and listen
	}
	wg.Wait()
	close(results)
	close(errs)
	var total stats
	for st := range results {
		total.answers += st.answers
		total.failures += st.failures
		total.notes += st.notes
		total.latencies = append(total.latencies, st.latencies...)
	}
	for err := range errs {
		if err != nil {
			return total, elapsed, err
		}
	}
	slices.Sort(total.latencies)
	return total, elapsed, nil
}

// drive keeps sc.InFlight requests of c outstanding until ctx ends.
func drive(ctx context.Context, c *conn, sc scenario, qos byte, rows int, seed uint64, w *window) (stats, error) {
	var st stats
	rng := rand.New(rand.NewPCG(seed, 42))
	topic := c.topic("request")
	sent := make(map[int]time.Time, sc.InFlight)
	n := 0
	send := func() error {
		n++
		sent[n] = time.Now()
		return c.publish(topic, qos, sc.request(c.id, n, rows, rng))
	}
	for i := 0; i < sc.InFlight; i++ {
		if err := send(); err != nil {
			return st, err
		}
	}
	if err := c.flush(); err != nil {
		return st, err
	}
	for {
		pk, err := c.read()
		if err != nil {
			if ctx.Err() != nil {
				return st, nil // the run is over: the read deadline ended it
			}
			return st, fmt.Errorf("%s: %w", c.id, err)
		}
		if pk.FixedHeader.Type != packets.Publish {
			continue // PUBACKs of our requests
		}
		if err := c.ack(pk); err != nil {
			return st, err
		}
		id, ok := answerID(pk.Payload)
		began, known := sent[id]
		if !ok || !known {
			return st, fmt.Errorf("%s: an answer to no request of ours: %.200s", c.id, pk.Payload)
		}
		delete(sent, id)
		if w.open.Load() {
			st.answers++
			st.latencies = append(st.latencies, time.Since(began))
			if !bytes.Contains(pk.Payload, []byte(`"success":true`)) {
				st.failures++
				if st.failures == 1 {
					fmt.Printf("    a failed answer: %.300s\n", pk.Payload)
				}
			}
		}
		if ctx.Err() == nil {
			if err := send(); err != nil {
				return st, err
			}
		} else if len(sent) == 0 {
			return st, c.flush()
		}
		if err := c.flush(); err != nil {
			return st, err
		}
	}
}

// listen counts the notifications c receives until ctx ends.
func listen(ctx context.Context, c *conn, w *window) (stats, error) {
	var st stats
	for {
		pk, err := c.read()
		if err != nil {
			if ctx.Err() != nil {
				return st, nil
			}
			return st, fmt.Errorf("%s: %w", c.id, err)
		}
		if pk.FixedHeader.Type != packets.Publish {
			continue
		}
		if err := c.ack(pk); err != nil {
			return st, err
		}
		if pk.FixedHeader.Qos == 1 {
			if err := c.flush(); err != nil {
				return st, err
			}
		}
		if w.open.Load() {
			st.notes++
		}
	}
}

// answerID reads the request id at the start of an answer, {"id":"N",...}.
func answerID(payload []byte) (int, bool) {
	const key = `"id":"`
	i := bytes.Index(payload, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := payload[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest[:j]))
	return n, err == nil
}

// percentile returns the p-th percentile (0..100) of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}
