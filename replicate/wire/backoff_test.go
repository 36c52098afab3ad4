package wire

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name     string
		b        Backoff
		rand     float64
		attempts []time.Duration // delays of successive Next calls
	}{
		{"lowest draws", Backoff{Min: 100 * ms, Max: time.Second}, 0,
			[]time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 500 * ms, 500 * ms}},
		{"highest draws", Backoff{Min: 100 * ms, Max: time.Second}, 0.999999,
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second}},
		{"middle draws", Backoff{Min: 100 * ms, Max: time.Second}, 0.5,
			[]time.Duration{75 * ms, 150 * ms, 300 * ms, 600 * ms, 750 * ms}},
		{"max not a power of two of min", Backoff{Min: 300 * ms, Max: time.Second}, 0,
			[]time.Duration{150 * ms, 300 * ms, 500 * ms, 500 * ms}},
		{"defaults", Backoff{}, 0,
			[]time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5 * time.Second, 5 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			b.Rand = func() float64 { return tc.rand }
			for i, want := range tc.attempts {
				if got := b.Next(); (got - want).Abs() > time.Microsecond {
					t.Fatalf("attempt %d: %v, want %v", i+1, got, want)
				}
			}
			b.Reset()
			if got, want := b.Next(), tc.attempts[0]; (got - want).Abs() > time.Microsecond {
				t.Fatalf("after Reset: %v, want %v", got, want)
			}
		})
	}
}

// TestBackoffNoOverflow: the delay stays at Max however long the peer is
// away.
func TestBackoffNoOverflow(t *testing.T) {
	b := Backoff{Min: time.Microsecond, Max: time.Duration(1<<63 - 1), Rand: func() float64 { return 0.999 }}
	prev := time.Duration(0)
	for i := range 200 {
		d := b.Next()
		if d <= 0 || d < prev/2 {
			t.Fatalf("attempt %d: %v after %v", i+1, d, prev)
		}
		prev = d
	}
}

func TestBackoffWait(t *testing.T) {
	fired := make(chan time.Time)
	var asked []time.Duration
	b := Backoff{Min: time.Second, Max: time.Minute, Rand: func() float64 { return 0 },
		After: func(d time.Duration) <-chan time.Time { asked = append(asked, d); return fired }}

	done := make(chan error)
	go func() { done <- b.Wait(context.Background()) }()
	fired <- time.Time{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- b.Wait(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if want := []time.Duration{500 * time.Millisecond, time.Second}; len(asked) != 2 || asked[0] != want[0] || asked[1] != want[1] {
		t.Fatalf("waited %v, want %v", asked, want)
	}
}
