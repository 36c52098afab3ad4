package txlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrRange: a write range is empty or runs past the end of the uint64
// byte space.
var ErrRange = errors.New("txlog: bad write range")

// InFlight is the set of writes in flight on the Primary, by byte range.
// A write must not start while an earlier write to any of its bytes is
// still in flight: the local disk and the peer could otherwise apply the
// two in different orders and diverge (DRBD's complete_conflicting_writes;
// Longhorn lacks it). Writes to disjoint ranges never wait for each other,
// except through a chain: if B waits for A and C overlaps B, C waits for B
// even when it does not overlap A, because C must not overtake B.
//
// It is a plain slice scanned on every Acquire. The set is bounded by the
// NBD queue depth (hundreds of writes at most), so a scan costs a few
// microseconds at worst, less than the syscalls of the write itself; an
// interval tree would only pay off at thousands of writes in flight.
//
// The zero value is ready to use; it is safe for concurrent use.
type InFlight struct {
	mu    sync.Mutex
	items []*flight // admitted and waiting writes; order does not matter
}

type flight struct {
	off, end uint64        // [off, end)
	gone     chan struct{} // closed when released, or when its wait was cancelled
}

// Acquire registers a write to [off, off+length) and waits until every
// write registered before it that overlaps the range has been released.
// It then returns release, which the caller calls (once is enough; more is
// harmless) when the write is complete. If ctx is done first Acquire
// returns ctx's error and the write is gone from the set as if it had
// never come; later writes that were waiting behind it stop doing so.
func (f *InFlight) Acquire(ctx context.Context, off, length uint64) (release func(), err error) {
	if length == 0 || off+length < off {
		return nil, fmt.Errorf("%w: %d bytes at %d", ErrRange, length, off)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	me := &flight{off: off, end: off + length, gone: make(chan struct{})}
	f.mu.Lock()
	// Everything in the set came earlier, so we wait for each overlapping
	// one. Waiting on all of them (not only the newest) keeps ordering
	// intact when one in the middle of a chain is cancelled.
	var wait []chan struct{}
	for _, o := range f.items {
		if o.off < me.end && me.off < o.end {
			wait = append(wait, o.gone)
		}
	}
	f.items = append(f.items, me)
	f.mu.Unlock()

	for _, ch := range wait {
		select {
		case <-ch:
		case <-ctx.Done():
			f.remove(me)
			return nil, ctx.Err()
		}
	}
	var once sync.Once
	return func() { once.Do(func() { f.remove(me) }) }, nil
}

// Len is the number of writes in the set, admitted or waiting.
func (f *InFlight) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.items)
}

func (f *InFlight) remove(me *flight) {
	f.mu.Lock()
	for i, o := range f.items {
		if o == me {
			last := len(f.items) - 1
			f.items[i] = f.items[last]
			f.items[last] = nil // let the GC have it
			f.items = f.items[:last]
			break
		}
	}
	f.mu.Unlock()
	close(me.gone)
}
