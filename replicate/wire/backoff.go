package wire

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff spaces out reconnection attempts: the delay doubles from Min to
// Max, and each is drawn from its upper half so that two nodes that lost
// the link together do not keep dialing in lockstep. Reset it once a link
// is up. The zero value is ready to use.
type Backoff struct {
	Min time.Duration // first delay; zero: 100 ms
	Max time.Duration // cap; zero: 10 s (DRBD's connect-int)
	// Rand returns a uniform number in [0, 1); nil: math/rand/v2.
	Rand func() float64
	// After is time.After; tests replace it.
	After func(time.Duration) <-chan time.Time

	attempt int
}

// Next returns the delay before the next attempt and counts the attempt.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi <= 0 {
		hi = 10 * time.Second
	}
	d := min(lo, hi)
	for i := 0; i < b.attempt && d < hi; i++ {
		d = min(d, hi/2) * 2 // without overflowing near the largest Duration
	}
	d = min(d, hi)
	if d < hi {
		b.attempt++
	}
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return d/2 + time.Duration(r()*float64(d/2))
}

// Wait sleeps for Next, or until ctx ends (returning its error).
func (b *Backoff) Wait(ctx context.Context) error {
	after := time.After
	if b.After != nil {
		after = b.After
	}
	select {
	case <-after(b.Next()):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reset starts again from Min.
func (b *Backoff) Reset() { b.attempt = 0 }
