package runner

import (
	"testing"
	"time"
)

func TestQueueKeepsOrderAndClosesAfterDelivering(t *testing.T) {
	q := newQueue()
	const n = 1000
	// Nobody reads while pushing: push must not block.
	for i := range n {
		q.push(Change{Reason: string(rune('a' + i%26)), At: time.Unix(int64(i), 0)})
	}
	q.close()
	q.push(Change{Reason: "after close"}) // dropped
	i := 0
	for c := range q.out {
		if c.At.Unix() != int64(i) {
			t.Fatalf("change %d arrived as %d", i, c.At.Unix())
		}
		i++
	}
	if i != n {
		t.Fatalf("got %d changes, want %d", i, n)
	}
}
