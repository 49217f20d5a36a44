package mqttspec

import (
	"sync"
	"time"
)

// dispatcher runs jobs in per-key FIFO order: jobs of one client run one
// after another in arrival order, jobs of different clients run in
// parallel, and at most `workers` jobs run at once overall. A goroutine
// exists only while a client has queued work. Before each job takes one
// of the workers' places, ready (if set) may hold its client back, e.g.
// until the client has room for the job's answer: a client that does not
// read waits without taking a place from the others.
type dispatcher struct {
	mu       sync.Mutex
	space    *sync.Cond // signalled when a queue shrinks
	queues   map[string]*jobQueue
	slots    chan struct{}
	maxQueue int
	ready    func(key string)
	wg       sync.WaitGroup
	closed   bool
}

type jobQueue struct {
	jobs []func()
	// idle is set while the queue's goroutine lingers with nothing to do;
	// wake (capacity 1) tells it that jobs came.
	idle bool
	wake chan struct{}
}

// linger is how long a client's goroutine waits for its next job before it
// ends. Starting a goroutine afresh for every request of a client that
// sends one at a time costs more than the request's own work (the stack
// grows again each time), and a goroutine that waits costs only its stack.
const linger = 100 * time.Millisecond

func newDispatcher(workers, maxQueue int, ready func(key string)) *dispatcher {
	d := &dispatcher{
		queues:   map[string]*jobQueue{},
		slots:    make(chan struct{}, workers),
		maxQueue: maxQueue,
		ready:    ready,
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
			q = &jobQueue{wake: make(chan struct{}, 1)}
			d.queues[key] = q
			q.jobs = append(q.jobs, job)
			d.wg.Add(1)
			go d.drain(key, q)
			return true
		}
		if len(q.jobs) < d.maxQueue {
			q.jobs = append(q.jobs, job)
			if q.idle {
				q.idle = false
				q.wake <- struct{}{}
			}
			return true
		}
		if !wait {
			return false
		}
		d.space.Wait()
	}
}

// drain runs key's jobs until its queue has stayed empty for linger, then
// removes the queue. The job being run stays at the head of the queue
// until it finishes, so a queue that exists is a queue with a drainer.
func (d *dispatcher) drain(key string, q *jobQueue) {
	defer d.wg.Done()
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for {
		d.mu.Lock()
		if len(q.jobs) == 0 { // woken by close
			delete(d.queues, key)
			d.mu.Unlock()
			return
		}
		job := q.jobs[0]
		d.mu.Unlock()

		if d.ready != nil {
			d.ready(key)
		}
		d.slots <- struct{}{}
		job()
		<-d.slots

		d.mu.Lock()
		q.jobs[0] = nil
		q.jobs = q.jobs[1:]
		d.space.Broadcast()
		if len(q.jobs) > 0 {
			d.mu.Unlock()
			continue
		}
		if d.closed {
			delete(d.queues, key)
			d.mu.Unlock()
			return
		}
		q.idle = true
		d.mu.Unlock()
		timer.Reset(linger)
		select {
		case <-q.wake:
			if !timer.Stop() {
				<-timer.C
			}
			continue
		case <-timer.C:
		}
		d.mu.Lock()
		if q.idle { // still nothing to do
			delete(d.queues, key)
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		<-q.wake // a job came as the timer fired
	}
}

// close refuses new jobs, wakes waiting submitters and waits until every
// queued job has run.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.space.Broadcast()
	for _, q := range d.queues {
		if q.idle {
			q.idle = false
			q.wake <- struct{}{} // ends its linger: it finds the queue empty and closed
		}
	}
	d.mu.Unlock()
	d.wg.Wait()
}
