package txlog

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// waitLen spins until f holds n writes: it lets a test know a goroutine's
// Acquire has registered, without sleeping.
func waitLen(t *testing.T, f *InFlight, n int) {
	t.Helper()
	for f.Len() != n {
		runtime.Gosched()
	}
}

func mustAcquire(t *testing.T, f *InFlight, off, n uint64) func() {
	t.Helper()
	rel, err := f.Acquire(context.Background(), off, n)
	if err != nil {
		t.Fatalf("Acquire(%d, %d): %v", off, n, err)
	}
	return rel
}

// acquireAsync starts an Acquire in a goroutine and returns a channel
// that yields its error once it returns (and the release func, if any).
type result struct {
	release func()
	err     error
}

func acquireAsync(ctx context.Context, f *InFlight, off, n uint64) <-chan result {
	ch := make(chan result, 1)
	go func() {
		rel, err := f.Acquire(ctx, off, n)
		ch <- result{rel, err}
	}()
	return ch
}

func notYet(t *testing.T, ch <-chan result, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s admitted early (err %v)", what, r.err)
	default:
	}
}

func TestInFlightRanges(t *testing.T) {
	var f InFlight
	for _, tc := range []struct {
		name    string
		off, n  uint64
		wantErr bool
	}{
		{"empty", 10, 0, true},
		{"overflow", math.MaxUint64 - 1, 3, true},
		{"up to the end", math.MaxUint64 - 1, 1, false},
		{"ordinary", 0, 4096, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rel, err := f.Acquire(context.Background(), tc.off, tc.n)
			if tc.wantErr {
				if !errors.Is(err, ErrRange) {
					t.Fatalf("err = %v, want ErrRange", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rel()
			rel() // harmless
		})
	}
	if f.Len() != 0 {
		t.Fatalf("Len = %d after all released", f.Len())
	}
}

// TestInFlightOverlap: with [100, 200) held, which new ranges must wait.
func TestInFlightOverlap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		off, n uint64
		waits  bool
	}{
		{"before, touching", 0, 100, false},
		{"after, touching", 200, 50, false},
		{"same", 100, 100, true},
		{"first byte", 100, 1, true},
		{"last byte", 199, 1, true},
		{"straddles start", 50, 51, true},
		{"straddles end", 199, 10, true},
		{"covers", 0, 1000, true},
		{"inside", 150, 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f InFlight
			held := mustAcquire(t, &f, 100, 100)
			if !tc.waits {
				// Must not block: a hang here is the failure.
				mustAcquire(t, &f, tc.off, tc.n)()
				held()
				return
			}
			ch := acquireAsync(context.Background(), &f, tc.off, tc.n)
			waitLen(t, &f, 2)
			notYet(t, ch, "overlapping write")
			held()
			r := <-ch
			if r.err != nil {
				t.Fatal(r.err)
			}
			r.release()
		})
	}
}

// TestInFlightFIFO: writes to the same blocks are admitted in arrival
// order, and a disjoint write is not held up by them.
func TestInFlightFIFO(t *testing.T) {
	var f InFlight
	held := mustAcquire(t, &f, 0, 8)
	const n = 20
	order := make(chan int, n)
	done := make(chan struct{})
	for i := range n {
		go func() {
			// Alternate exact and partial overlaps of [0, 8).
			off, l := uint64(0), uint64(8)
			if i%2 == 1 {
				off, l = uint64(i%8), 1
			}
			rel, err := f.Acquire(context.Background(), off, l)
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			rel()
			done <- struct{}{}
		}()
		waitLen(t, &f, i+2) // registered before the next one starts
	}
	mustAcquire(t, &f, 8, 8)() // disjoint: must not wait
	if len(order) != 0 {
		t.Fatal("a waiter ran before the held write was released")
	}
	held()
	for want := range n {
		if got := <-order; got != want {
			t.Fatalf("admitted %d, want %d", got, want)
		}
		<-done
	}
	if f.Len() != 0 {
		t.Fatalf("Len = %d", f.Len())
	}
}

// TestInFlightChain: C overlaps only B, B overlaps A: C waits for B, which
// waits for A; D, disjoint from all, goes at once.
func TestInFlightChain(t *testing.T) {
	var f InFlight
	a := mustAcquire(t, &f, 0, 10)
	b := acquireAsync(context.Background(), &f, 5, 10)
	waitLen(t, &f, 2)
	c := acquireAsync(context.Background(), &f, 12, 8)
	waitLen(t, &f, 3)
	mustAcquire(t, &f, 20, 10)()
	notYet(t, b, "B")
	notYet(t, c, "C")
	a()
	rb := <-b
	notYet(t, c, "C")
	rb.release()
	(<-c).release()
}

// TestInFlightCancel: a cancelled waiter leaves no trace, and those behind
// it still wait for what they overlap.
func TestInFlightCancel(t *testing.T) {
	var f InFlight
	a := mustAcquire(t, &f, 0, 10)
	ctx, cancel := context.WithCancel(context.Background())
	b := acquireAsync(ctx, &f, 0, 20)
	waitLen(t, &f, 2)
	c := acquireAsync(context.Background(), &f, 5, 10) // overlaps A and B
	waitLen(t, &f, 3)
	cancel()
	if r := <-b; !errors.Is(r.err, context.Canceled) || r.release != nil {
		t.Fatalf("cancelled Acquire = %v, %v", r.release != nil, r.err)
	}
	waitLen(t, &f, 2)
	notYet(t, c, "C after B's cancellation")
	a()
	(<-c).release()
	if f.Len() != 0 {
		t.Fatalf("Len = %d", f.Len())
	}
	// An already cancelled context does not register at all.
	if _, err := f.Acquire(ctx, 0, 1); !errors.Is(err, context.Canceled) || f.Len() != 0 {
		t.Fatalf("Acquire with a done ctx: %v, Len %d", err, f.Len())
	}
}

// TestInFlightModel drives random Acquire, release and cancel against a
// model: a write is admitted exactly when no earlier write that is still
// in the set overlaps it.
func TestInFlightModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	type entry struct {
		off, end uint64
		ch       <-chan result
		cancel   context.CancelFunc
		release  func()
		admitted bool
	}
	var (
		f    InFlight
		live []*entry // arrival order
	)
	shouldRun := func(i int) bool {
		for _, o := range live[:i] {
			if o.off < live[i].end && live[i].off < o.end {
				return false
			}
		}
		return true
	}
	// settle collects every admission the model predicts and checks that
	// nothing else was admitted.
	settle := func() {
		for i, e := range live {
			if e.admitted {
				continue
			}
			if shouldRun(i) {
				r := <-e.ch
				if r.err != nil {
					t.Fatal(r.err)
				}
				e.release, e.admitted = r.release, true
			} else {
				notYet(t, e.ch, "write")
			}
		}
	}
	drop := func(i int) { live = append(live[:i], live[i+1:]...) }
	for step := 0; step < 3000; step++ {
		switch op := rng.IntN(10); {
		case op < 5 && len(live) < 40: // new write in a 64-block space
			off := rng.Uint64N(64)
			n := 1 + rng.Uint64N(8)
			ctx, cancel := context.WithCancel(context.Background())
			e := &entry{off: off, end: off + n, cancel: cancel}
			e.ch = acquireAsync(ctx, &f, off, n)
			live = append(live, e)
			waitLen(t, &f, len(live))
		case op < 8 && len(live) > 0: // release an admitted write
			i := rng.IntN(len(live))
			if !live[i].admitted {
				continue
			}
			live[i].release()
			live[i].cancel()
			drop(i)
		case len(live) > 0: // cancel a waiting write
			i := rng.IntN(len(live))
			e := live[i]
			if e.admitted {
				continue
			}
			e.cancel()
			if r := <-e.ch; !errors.Is(r.err, context.Canceled) {
				t.Fatalf("step %d: cancelled waiter returned %v", step, r.err)
			}
			drop(i)
		}
		waitLen(t, &f, len(live))
		settle()
	}
	for len(live) > 0 {
		for i, e := range live {
			if e.admitted {
				e.release()
				e.cancel()
				drop(i)
				break
			}
		}
		settle()
	}
	if f.Len() != 0 {
		t.Fatalf("Len = %d", f.Len())
	}
}
