package mqttspec

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mqttspec/mqttspec/adapters"
	"github.com/mqttspec/mqttspec/query"
)

// noDB implements adapters.Database for tests that never reach a database.
type noDB struct{}

func (noDB) Find(context.Context, *query.Query) ([]any, error)  { return nil, nil }
func (noDB) Count(context.Context, *query.Query) (int64, error) { return 0, nil }
func (noDB) Insert(context.Context, *query.Model, any, []*query.Column) error {
	return nil
}
func (noDB) Update(context.Context, *query.Model, []query.Group, map[*query.Column]any) (int64, error) {
	return 0, nil
}
func (noDB) Delete(context.Context, *query.Model, []query.Group) (int64, error) {
	return 0, nil
}
func (noDB) Begin(context.Context) (adapters.Tx, error) { return nil, nil }
func (noDB) Describe(name string, model any) (*query.Model, error) {
	return query.ParseModel(name, model)
}

func TestDispatcherKeepsPerKeyOrder(t *testing.T) {
	d := newDispatcher(4, 1000, nil)
	var mu sync.Mutex
	got := map[string][]int{}
	for i := 0; i < 200; i++ {
		for _, k := range []string{"a", "b", "c"} {
			k, i := k, i
			require.True(t, d.submit(k, func() {
				mu.Lock()
				got[k] = append(got[k], i)
				mu.Unlock()
			}, true))
		}
	}
	d.close()
	for _, k := range []string{"a", "b", "c"} {
		require.Len(t, got[k], 200)
		for i, v := range got[k] {
			require.Equal(t, i, v, "key %s out of order", k)
		}
	}
}

func TestDispatcherRunsKeysInParallelWithinBound(t *testing.T) {
	const workers = 3
	d := newDispatcher(workers, 10, nil)
	var running, peak atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		d.submit(k, func() {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			started <- struct{}{}
			<-release
			running.Add(-1)
		}, true)
	}
	for i := 0; i < workers; i++ {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("jobs of different keys did not run in parallel")
		}
	}
	close(release)
	d.close()
	require.Equal(t, int32(workers), peak.Load())
}

func TestDispatcherQueueBound(t *testing.T) {
	d := newDispatcher(1, 2, nil)
	release := make(chan struct{})
	require.True(t, d.submit("k", func() { <-release }, false))
	require.True(t, d.submit("k", func() {}, false))
	require.False(t, d.submit("k", func() {}, false), "third job exceeds the per-key bound")
	require.True(t, d.submit("other", func() {}, false), "other keys are unaffected")
	waited := make(chan bool)
	go func() { waited <- d.submit("k", func() {}, true) }()
	select {
	case <-waited:
		t.Fatal("a waiting submit must block while the queue is full")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	require.True(t, <-waited)
	d.close()
	require.False(t, d.submit("k", func() {}, true), "closed dispatcher refuses jobs")
}
