package mqttspec

import (
	"sync"
)

// dispatcher runs jobs in per-key FIFO order: jobs of one client run one
// after another in arrival order, jobs of different clients run in
// parallel, and at most `workers` jobs run at once overall. A goroutine
// exists only while a client has queued work.
type dispatcher struct {
	mu       sync.Mutex
	space    *sync.Cond // signalled when a queue shrinks
	queues   map[string]*jobQueue
	slots    chan struct{}
	maxQueue int
	wg       sync.WaitGroup
	closed   bool
}

type jobQueue struct {
	jobs []func()
}

func newDispatcher(workers, maxQueue int) *dispatcher {
	d := &dispatcher{
		queues:   map[string]*jobQueue{},
		slots:    make(chan struct{}, workers),
		maxQueue: maxQueue,
	}
	d.space = sync.NewCond(&d.mu)
	return d
}

// submit queues job for key. When key already has maxQueue jobs waiting,
// submit waits for room if wait is true and otherwise returns false without
// queueing. It also returns false after close.
func (d *dispatcher) submit(key string, job func(), wait bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		if d.closed {
			return false
		}
		q := d.queues[key]
		if q == nil {
			q = &jobQueue{}
			d.queues[key] = q
			q.jobs = append(q.jobs, job)
			d.wg.Add(1)
			go d.drain(key, q)
			return true
		}
		if len(q.jobs) < d.maxQueue {
			q.jobs = append(q.jobs, job)
			return true
		}
		if !wait {
			return false
		}
		d.space.Wait()
	}
}

// drain runs key's jobs until its queue is empty, then removes the queue.
// The job being run stays at the head of the queue until it finishes, so a
// queue that exists is a queue with a drainer.
func (d *dispatcher) drain(key string, q *jobQueue) {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		job := q.jobs[0]
		d.mu.Unlock()

		d.slots <- struct{}{}
		job()
		<-d.slots

		d.mu.Lock()
		q.jobs[0] = nil
		q.jobs = q.jobs[1:]
		d.space.Broadcast()
		if len(q.jobs) == 0 {
			delete(d.queues, key)
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
	}
}

// close refuses new jobs, wakes waiting submitters and waits until every
// queued job has run.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.space.Broadcast()
	d.mu.Unlock()
	d.wg.Wait()
}
