package mqttspec_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/internal/mqtttest"
)

// soakDuration is how long TestSoak attacks: $MQTTSPEC_SOAK (a Go
// duration; make soak sets minutes) or a short default for make test.
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("MQTTSPEC_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "MQTTSPEC_SOAK")
		return d
	}
	return 12 * time.Second
}

// memory is the process's live heap after a collection and its resident
// set, in bytes.
func memory(t *testing.T) (heap, rss int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc), residentBytes(t)
}

// connectAs connects a raw client with id to addr, or returns nil (the
// attackers of TestSoak try again).
func connectAs(addr, id string) *mqtttest.Raw {
	r, err := mqtttest.TryDialRawTCP(addr)
	if err != nil {
		return nil
	}
	if code, err := r.Connect(mqtttest.ConnectPacket(id)); err != nil || code != 0 {
		r.Reset()
		return nil
	}
	return r
}

// legitimate is a well-behaved client's record of what it was told.
type legitimate struct {
	c         *mqtttest.Client
	stored    []string // names of the records it was told were created
	latencies []time.Duration
}

// work runs create, read-by-id, update and, every tenth time, the same
// create again with the same request id until ctx ends.
func (l *legitimate) work(t *testing.T, ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		name := fmt.Sprintf("%s-%d", l.c.ID, i)
		req := mqtttest.Req("create", "users", map[string]any{"data": map[string]any{"name": name, "status": "soak"}})
		start := time.Now()
		rec := mqtttest.OK(t, l.c.Request(req)).(map[string]any)
		l.latencies = append(l.latencies, time.Since(start))
		l.stored = append(l.stored, name)
		id := fmt.Sprint(rec["id"])
		if i%10 == 0 { // a retry of the same request: answered again, applied once
			again := mqtttest.OK(t, l.c.Request(req)).(map[string]any)
			require.Equal(t, id, fmt.Sprint(again["id"]), "a repeated create is answered with the first answer")
		}
		start = time.Now()
		got := mqtttest.OK(t, l.c.Request(mqtttest.Req("read", "users", map[string]any{"record_id": id}))).(map[string]any)
		l.latencies = append(l.latencies, time.Since(start))
		require.Equal(t, name, got["name"])
		mqtttest.OK(t, l.c.Request(mqtttest.Req("update", "users", map[string]any{"record_id": id, "data": map[string]any{"age": i}})))
	}
}

// TestSoak: while clients connect and reset, flood the server with
// pipelined and malformed requests without reading their answers,
// subscribe and never read, and send oversized packets, well-behaved
// clients are served: every answer arrives, every write they were told
// happened is stored exactly once (retries included), their subscriber
// sees every change in order, and once the attackers are gone the memory
// the server holds returns near where it started.
func TestSoak(t *testing.T) {
	d := soakDuration(t)
	srv := startServer(t, nil, mqttspec.WithLimits(mqttspec.LimitConfig{MaxDedupBytes: 4 << 20}))
	addr := strings.TrimPrefix(srv.url, "tcp://")

	watcher := mqtttest.Connect(t, srv.url, "watcher")
	subscribe(t, watcher, map[string]any{"column": "status", "operator": "eq", "value": "soak"})
	legit := make([]*legitimate, 3)
	for i := range legit {
		legit[i] = &legitimate{c: mqtttest.Connect(t, srv.url, fmt.Sprint("legit-", i))}
		mqtttest.OK(t, legit[i].c.Request(map[string]any{"type": "ping"}))
	}
	heap0, rss0 := memory(t)

	ctx, stop := context.WithTimeout(context.Background(), d)
	defer stop()
	var attackers sync.WaitGroup
	var resets, floods, oversized atomic.Int64
	attack := func(fn func()) {
		attackers.Add(1)
		go func() {
			defer attackers.Done()
			for ctx.Err() == nil {
				fn()
			}
		}()
	}
	// Connections that send CONNECT and reset, with and without waiting for CONNACK.
	attack(func() {
		r, err := mqtttest.TryDialRawTCP(addr)
		if err != nil {
			return
		}
		n := resets.Add(1)
		_ = r.Write(mqtttest.ConnectPacket(fmt.Sprint("aborter-", n)))
		if n%2 == 0 {
			_, _ = r.Read()
		}
		r.Reset()
	})
	// A flooder: pipelined creates and junk at QoS 0 and 1, read slowly,
	// reconnecting with a reset now and then.
	flooded := map[string]string{} // request id -> "ok" or error code, from its answers
	var floodMu sync.Mutex
	attack(func() {
		r := connectAs(addr, "flooder")
		if r == nil {
			return
		}
		defer r.Reset()
		if r.Write(mqtttest.SubscribePacket(1, "spec/flooder/response")) != nil {
			return
		}
		done := make(chan struct{})
		go func() { // the slow reader
			defer close(done)
			for i := 0; ; i++ {
				pk, err := r.Read()
				if err != nil {
					return
				}
				if pk.FixedHeader.Type != packets.Publish {
					continue
				}
				if pk.FixedHeader.Qos == 1 {
					_ = r.Write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
				}
				var a answer
				if json.Unmarshal(pk.Payload, &a) == nil && strings.HasPrefix(a.ID, "flood-") {
					outcome := "ok"
					if !a.Success {
						outcome = a.Error.Code
					}
					floodMu.Lock()
					flooded[a.ID] = outcome
					floodMu.Unlock()
				}
				if i%200 == 0 {
					time.Sleep(20 * time.Millisecond) // the flooder's own pace
				}
			}
		}()
		for i := 0; i < 4000 && ctx.Err() == nil; i++ {
			n := floods.Add(1)
			payload := fmt.Appendf(nil, `{"id":"flood-%d","type":"request","operation":"create","schema":"public","entity":"users","data":{"name":"flood-%d"}}`, n, n)
			switch i % 5 {
			case 3:
				payload = []byte(`{"id":"junk","type":"request","operation":"read","schema":"public","entity":"users","options":{"filters":[{"column":"nope"`)
			case 4:
				payload = fmt.Appendf(nil, `{"id":"junk-%d","type":"request","operation":"read","schema":"public","entity":"users","options":{"filters":[{"column":"name","operator":"like","value":"%%%s%%"}]}}`, n, strings.Repeat("x", 1500))
			}
			if r.Write(mqtttest.PublishPacket("spec/flooder/request", byte(i%2), uint16(i%60000+1), false, payload)) != nil {
				break
			}
		}
		select { // reads what it is sent for a while, then resets
		case <-done:
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		r.Reset()
		<-done
	})
	// A subscriber that never reads its notifications.
	attack(func() {
		r := connectAs(addr, "hoarder")
		if r == nil {
			return
		}
		defer r.Reset()
		_ = r.Write(mqtttest.SubscribePacket(1, "spec/hoarder/notify/+"))
		_ = r.Write(mqtttest.PublishPacket("spec/hoarder/request", 1, 2, false,
			[]byte(`{"id":"s","type":"subscription","operation":"subscribe","schema":"public","entity":"users"}`)))
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second): // holds its session a while, then starts again
		}
	})
	// Oversized packets, refused at the broker's packet size limit.
	big := strings.Repeat("x", 2<<20)
	attack(func() {
		r := connectAs(addr, "giant")
		if r == nil {
			return
		}
		defer r.Reset()
		oversized.Add(1)
		_ = r.Write(mqtttest.PublishPacket("spec/giant/request", 0, 0, false, []byte(big)))
		if _, err := r.Read(); err == nil { // the broker closes the connection
			t.Errorf("an oversized packet was taken")
		}
	})

	// The watcher reads its notifications as they come: each record is
	// created and updated once, and seq numbers them without a gap.
	var (
		watchMu sync.Mutex
		seen    int
		created []string
	)
	watchDone := make(chan struct{})
	stopWatch := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			select {
			case n := <-watcher.Notes:
				watchMu.Lock()
				seen++
				if n["seq"] != float64(seen) {
					t.Errorf("notification %d has seq %v", seen, n["seq"])
				}
				if n["operation"] == "create" {
					created = append(created, n["data"].(map[string]any)["name"].(string))
				}
				watchMu.Unlock()
			case <-stopWatch:
				return
			}
		}
	}()

	var workers sync.WaitGroup
	for _, l := range legit {
		workers.Add(1)
		go func() {
			defer workers.Done()
			l.work(t, ctx)
		}()
	}
	workers.Wait()
	attackers.Wait()

	// What the well-behaved clients were told is what the database holds.
	var all []time.Duration
	var names []string
	for _, l := range legit {
		all = append(all, l.latencies...)
		names = append(names, l.stored...)
	}
	var stored []string
	require.NoError(t, srv.db.Model(&User{}).Where("status = ?", "soak").Order("id").Pluck("name", &stored).Error)
	require.ElementsMatch(t, names, stored, "every create answered is stored, once")
	mqtttest.Eventually(t, func() bool {
		watchMu.Lock()
		defer watchMu.Unlock()
		return seen >= 2*len(names)
	}, "the watcher's notifications")
	close(stopWatch)
	<-watchDone
	require.Equal(t, 2*len(names), seen, "a create and an update notified per record")
	require.ElementsMatch(t, names, created, "the watcher saw every create")
	var dup int64
	require.NoError(t, srv.db.Raw("SELECT count(*) FROM (SELECT name FROM users GROUP BY name HAVING count(*) > 1)").Scan(&dup).Error)
	require.Zero(t, dup, "no record stored twice")
	var floodNames []string
	require.NoError(t, srv.db.Model(&User{}).Where("name LIKE ?", "flood-%").Pluck("name", &floodNames).Error)
	floodStored := map[string]bool{}
	for _, n := range floodNames {
		floodStored[n] = true
	}
	floodMu.Lock()
	for id, outcome := range flooded {
		switch outcome {
		case "ok":
			require.True(t, floodStored[id], "%s was answered as stored", id)
		case "overloaded":
			require.False(t, floodStored[id], "%s was answered overloaded: not run", id)
		}
	}
	floodMu.Unlock()

	// The attackers' connections are gone; their memory is too.
	mqtttest.Eventually(t, func() bool { return srv.h.Clients().Count() == len(legit)+1 }, "the attackers' sessions end")
	heap1, rss1 := memory(t)
	slices.Sort(all)
	st := srv.h.Stats()
	t.Logf("%v: %d resets, %d flood requests (%d answered), %d oversized packets; well-behaved: %d requests, p50 %v, p99 %v, max %v; heap %d -> %d KiB, RSS %d -> %d KiB; stats %+v",
		d, resets.Load(), floods.Load(), len(flooded), oversized.Load(), len(all), all[len(all)/2], all[len(all)*99/100], all[len(all)-1],
		heap0>>10, heap1>>10, rss0>>10, rss1>>10, st)
	require.Greater(t, resets.Load(), int64(100), "the aborters ran")
	require.NotEmpty(t, flooded, "the flooder was answered")
	require.Less(t, heap1, heap0+24<<20, "live heap after the attack")
	require.Less(t, rss1, rss0+96<<20, "resident memory after the attack")
}
