package mqttspec

import (
	"math/rand"
	"sync"
	"testing"
	"time"
)

// TestLanePublishesInPlaceOrder: places deposited in any order, from many
// goroutines, run in the order they were taken, one at a time.
func TestLanePublishesInPlaceOrder(t *testing.T) {
	var l lane
	const n = 500
	places := make([]uint64, n)
	for i := range places {
		places[i] = l.take()
	}
	rand.New(rand.NewSource(1)).Shuffle(n, func(i, j int) { places[i], places[j] = places[j], places[i] })
	var (
		mu      sync.Mutex
		order   []uint64
		running int
		wg      sync.WaitGroup
	)
	for _, p := range places {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.deposit(p, func() {
				mu.Lock()
				running++
				if running > 1 {
					t.Errorf("two publications ran at once")
				}
				order = append(order, p)
				running--
				mu.Unlock()
			})
		}()
	}
	wg.Wait()
	l.drain()
	if len(order) != n {
		t.Fatalf("%d of %d publications ran", len(order), n)
	}
	for i, p := range order {
		if p != uint64(i) {
			t.Fatalf("publication %d ran in position %d", p, i)
		}
	}
}

// TestLaneDoesNotWaitForEarlierPlaces: depositing a place that is not yet
// due returns at once; the place before it runs it.
func TestLaneDoesNotWaitForEarlierPlaces(t *testing.T) {
	var l lane
	first, second := l.take(), l.take()
	ran := make(chan uint64, 2)
	l.deposit(second, func() { ran <- second }) // returns although first is not deposited
	select {
	case <-ran:
		t.Fatal("the second place ran before the first")
	default:
	}
	drained := make(chan struct{})
	go func() { l.drain(); close(drained) }()
	select {
	case <-drained:
		t.Fatal("drain returned with a place outstanding")
	case <-time.After(20 * time.Millisecond):
	}
	l.deposit(first, func() { ran <- first })
	if a, b := <-ran, <-ran; a != first || b != second {
		t.Fatalf("ran %d then %d", a, b)
	}
	<-drained
}

// TestLaneBoundsWhatItHolds: with an earlier place outstanding, depositors
// beyond maxReady wait until it is published.
func TestLaneBoundsWhatItHolds(t *testing.T) {
	var l lane
	first := l.take()
	for i := 0; i < maxReady; i++ {
		l.deposit(l.take(), func() {})
	}
	blocked := make(chan struct{})
	go func() {
		l.deposit(l.take(), func() {})
		close(blocked)
	}()
	select {
	case <-blocked:
		t.Fatal("a deposit beyond maxReady did not wait")
	case <-time.After(20 * time.Millisecond):
	}
	l.deposit(first, func() {})
	<-blocked
	l.drain()
}
