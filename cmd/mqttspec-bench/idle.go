package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// memory is what a server process holds, as its "mem" command reports it
// after a full collection: live heap, goroutine stacks, resident set and
// goroutines.
type memory struct {
	heap, stacks, rss, goroutines int64
}

// memReport is the answer of a server process to "mem".
func memReport() string {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("MEM %d %d %d %d", ms.HeapAlloc, ms.StackInuse, residentBytes(), runtime.NumGoroutine())
}

// residentBytes is this process's resident set size (VmRSS), or 0.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// mem asks the server process for its memory.
func (s *server) mem() (memory, error) {
	v, err := s.command("mem", "MEM ")
	if err != nil {
		return memory{}, err
	}
	var m memory
	if _, err := fmt.Sscanf(v, "%d %d %d %d", &m.heap, &m.stacks, &m.rss, &m.goroutines); err != nil {
		return memory{}, fmt.Errorf("%s: mem answer %q: %w", s.name, v, err)
	}
	return m, nil
}

// idleDialers is how many connections the idle load opens at once.
const idleDialers = 16

// measureIdle opens n connections to t that each subscribe to their
// response and notify topics, as a protocol client does, and then stay
// silent; it reports what the server process holds per connection, from
// its memory before and after, and closes them.
func measureIdle(ctx context.Context, n int, t *target) (result, error) {
	before, err := t.srv.mem()
	if err != nil {
		return result{}, err
	}
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	deadline := time.Now().Add(5 * time.Minute)
	for range idleDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if ctx.Err() != nil || time.Now().After(deadline) {
					return
				}
				c, err := dialIdle(t.addr, t.prefix, fmt.Sprint("idle-", i))
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				conns[i] = c
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return result{}, fmt.Errorf("%s: idle connection: %w", t.name, first)
	}
	for i, c := range conns {
		if c == nil {
			return result{}, fmt.Errorf("%s: idle connection %d not opened in time", t.name, i)
		}
	}
	after, err := t.srv.mem()
	if err != nil {
		return result{}, err
	}
	per := func(a, b int64) float64 { return float64(b-a) / float64(n) }
	r := result{
		Scenario: "idle", Target: t.name, IdleConns: n,
		HeapPerConn: per(before.heap, after.heap), StacksPerConn: per(before.stacks, after.stacks),
		RSSPerConn: per(before.rss, after.rss), GoroutinesPerConn: per(before.goroutines, after.goroutines),
	}
	fmt.Printf("%-10s    %-11s %6d connections: %6.0f B heap, %6.0f B stacks, %6.0f B resident, %.1f goroutines each\n",
		r.Scenario, r.Target, n, r.HeapPerConn, r.StacksPerConn, r.RSSPerConn, r.GoroutinesPerConn)
	return r, nil
}

// dialIdle connects a client with id and subscribes it at QoS 1 to its
// response and notify topics, with buffers just large enough for that.
func dialIdle(addr, prefix, id string) (net.Conn, error) {
	c, err := dialSized(addr, prefix, id, 256)
	if err != nil {
		return nil, err
	}
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.subscribe(1, c.topic("response"), c.topic("notify/+")); err != nil {
		c.close()
		return nil, fmt.Errorf("subscribe %s: %w", id, err)
	}
	_ = c.nc.SetDeadline(time.Time{})
	return c.nc, nil
}
