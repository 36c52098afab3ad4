package wire

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// metaReader is the engine's meta loop, reduced to pings: it answers the
// peer's Pings while answer holds and hands PingAcks to p.
func metaReader(c *Conn, p *Pinger, answer *atomic.Bool, acks *atomic.Int64) {
	for {
		m, err := c.Recv()
		if err != nil {
			return
		}
		switch m := m.(type) {
		case *Ping:
			if answer.Load() {
				c.Send(&PingAck{Nonce: m.Nonce})
			}
		case *PingAck:
			acks.Add(1)
			if p != nil {
				p.Acked(m)
			}
		}
	}
}

// TestPinger: pings keep a link that answers alive, and fail once the
// peer stops answering. No timing is asserted, only outcomes.
func TestPinger(t *testing.T) {
	a, b := pipeLink(t, testConfig("a"), testConfig("b"))
	// The timeout is generous: an answered ping must never miss it, and
	// the test waits it out once, at the end.
	p := NewPinger(a.Meta, time.Millisecond, 2*time.Second)
	var answer atomic.Bool
	answer.Store(true)
	var acks, unused atomic.Int64
	go metaReader(a.Meta, p, &answer, &acks)
	go metaReader(b.Meta, nil, &answer, &unused)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "10 answered pings", func() bool { return acks.Load() >= 10 })
	select {
	case err := <-done:
		t.Fatalf("Run ended while the peer answers: %v", err)
	default:
	}

	answer.Store(false)
	if err := <-done; !errors.Is(err, ErrPingTimeout) {
		t.Fatalf("Run = %v, want ErrPingTimeout", err)
	}
}

// TestPingerStops: Run returns ctx's error when ctx ends.
func TestPingerStops(t *testing.T) {
	a, b := pipeLink(t, testConfig("a"), testConfig("b"))
	var answer atomic.Bool
	answer.Store(true)
	var acks atomic.Int64
	p := NewPinger(a.Meta, time.Hour, time.Hour)
	go metaReader(a.Meta, p, &answer, &acks)
	go metaReader(b.Meta, nil, &answer, &acks)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "the first ping's answer", func() bool { return acks.Load() >= 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s. Tests
// wait for conditions, never for durations: machines are noisy.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPingerProbe: with hour-long intervals and timeouts, a probe sends a
// ping at once and a silent peer fails it by the probe's deadline; an
// answering peer passes it.
func TestPingerProbe(t *testing.T) {
	a, b := pipeLink(t, testConfig("a"), testConfig("b"))
	var answer atomic.Bool
	answer.Store(true)
	var acks, unused atomic.Int64
	p := NewPinger(a.Meta, time.Hour, time.Hour)
	go metaReader(a.Meta, p, &answer, &acks)
	go metaReader(b.Meta, nil, &answer, &unused)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waitFor(t, "the first ping's answer", func() bool { return acks.Load() >= 1 })
	p.Probe(time.Hour)
	waitFor(t, "the probe's answer", func() bool { return acks.Load() >= 2 })

	answer.Store(false)
	p.Probe(50 * time.Millisecond)
	select {
	case err := <-done:
		if !errors.Is(err, ErrPingTimeout) {
			t.Fatalf("Run = %v, want ErrPingTimeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a probe of a silent peer did not fail the link (the regular timeout is an hour)")
	}
}
