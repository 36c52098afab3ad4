package wire

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Defaults for NewPinger, DRBD's ping-int and ping-timeout.
const (
	DefaultPingInterval = 10 * time.Second
	DefaultPingTimeout  = 500 * time.Millisecond
)

// Pinger checks that the peer is alive: it sends a Ping on the meta
// connection every interval and fails when the PingAck is not back within
// timeout. Reading the meta connection stays the engine's job: its reader
// answers the peer's Ping with a PingAck of the same nonce and hands each
// PingAck it reads to Acked.
type Pinger struct {
	conn              *Conn
	interval, timeout time.Duration
	acked             atomic.Uint64 // nonce of the latest PingAck
	wake              chan struct{}
	probe             chan time.Duration
}

// NewPinger returns a pinger for c, a link's Meta connection. Zero
// durations mean the defaults.
func NewPinger(c *Conn, interval, timeout time.Duration) *Pinger {
	if interval <= 0 {
		interval = DefaultPingInterval
	}
	if timeout <= 0 {
		timeout = DefaultPingTimeout
	}
	return &Pinger{conn: c, interval: interval, timeout: timeout, wake: make(chan struct{}, 1), probe: make(chan time.Duration, 1)}
}

// Probe asks for an answer within timeout now, sooner than the next
// regular ping would give one: a caller that suspects the peer (its VRRP
// adverts stopped) learns quickly whether the link still works. A ping in
// flight gets the shorter deadline; otherwise one goes out at once. It
// never blocks; a probe already pending wins.
func (p *Pinger) Probe(timeout time.Duration) {
	select {
	case p.probe <- timeout:
	default:
	}
}

// Acked records a PingAck read from the meta connection. It never blocks.
func (p *Pinger) Acked(m *PingAck) {
	p.acked.Store(m.Nonce)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run pings until ctx ends (returning its error), a ping goes unanswered
// (an error matching ErrPingTimeout) or sending fails. The first ping goes
// out at once, so a dead link shows right after it came up.
func (p *Pinger) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for nonce := uint64(1); ; nonce++ {
		timeout := p.timeout
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		case t := <-p.probe:
			timeout = min(timeout, t)
		}
		sent := time.Now()
		if err := p.conn.Send(&Ping{Nonce: nonce}); err != nil {
			return err
		}
		timer.Reset(timeout)
		for p.acked.Load() != nonce {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
				return fmt.Errorf("wire: %w: no answer to ping %d within %v", ErrPingTimeout, nonce, timeout)
			case <-p.wake:
			case t := <-p.probe:
				if left := timeout - time.Since(sent); t < left {
					timeout = time.Since(sent) + t
					timer.Reset(t)
				}
			}
		}
		// The next ping an interval after this one went out. (Since Go
		// 1.23 Reset leaves no stale expiry in the channel.)
		timer.Reset(max(p.interval-time.Since(sent), 0))
	}
}
