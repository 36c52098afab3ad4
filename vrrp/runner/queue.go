package runner

import "sync"

// queue delivers changes to one subscriber in order without ever blocking
// the instance's loop: push appends, a goroutine drains into out.
type queue struct {
	out chan Change

	mu      sync.Mutex
	pending []Change
	closed  bool
	ready   chan struct{} // signalled when pending grows or closed is set
}

func newQueue() *queue {
	q := &queue{out: make(chan Change), ready: make(chan struct{}, 1)}
	go q.drain()
	return q
}

func (q *queue) push(c Change) {
	q.mu.Lock()
	if !q.closed {
		q.pending = append(q.pending, c)
	}
	q.mu.Unlock()
	q.signal()
}

// close delivers what is pending, then closes out.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) drain() {
	for {
		q.mu.Lock()
		batch, closed := q.pending, q.closed
		q.pending = nil
		q.mu.Unlock()
		for _, c := range batch {
			q.out <- c
		}
		if closed && len(batch) == 0 {
			close(q.out)
			return
		}
		if len(batch) == 0 {
			<-q.ready
		}
	}
}
