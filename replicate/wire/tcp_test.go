package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hactl/hactl/internal/netnstest"
)

// tcpLink sets up a link over TCP on testAddr, client dialing the
// server's listener, and returns both sides' outcomes.
func tcpLink(t *testing.T, client, server Config) (c, s result) {
	t.Helper()
	l, err := Listen(net.JoinHostPort(testAddr, "0"), server)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := acceptAsync(l, ctx)
	c.link, c.err = Dial(ctx, l.Addr().String(), client)
	s = <-accepted
	for _, r := range []result{c, s} {
		if r.link != nil {
			t.Cleanup(func() { r.link.Close() })
		}
	}
	return c, s
}

func mustTCPLink(t *testing.T, client, server Config) (*Link, *Link) {
	t.Helper()
	c, s := tcpLink(t, client, server)
	if c.err != nil || s.err != nil {
		t.Fatalf("Dial: %v; Accept: %v", c.err, s.err)
	}
	return c.link, s.link
}

// TestTCPLink: a link over real sockets carries a burst of writes of
// every size in order, with their acks coming back on the meta connection
// between pings in both directions.
func TestTCPLink(t *testing.T) {
	netnstest.Require(t)
	a, b := mustTCPLink(t, testConfig("a"), testConfig("b"))
	for _, c := range []*Conn{a.Data, a.Meta, b.Data, b.Meta} {
		if addr, ok := c.RemoteAddr().(*net.TCPAddr); !ok || addr.IP.String() != testAddr {
			t.Fatalf("connection to %v, want TCP to %s", c.RemoteAddr(), testAddr)
		}
	}
	if a.Data.LocalAddr().String() == a.Meta.LocalAddr().String() {
		t.Fatal("data and meta are the same connection")
	}

	// The writes: random sizes up to 1 MiB, cut from one random pool so
	// the receiver can check every byte.
	const writes, epochLen = 10000, 1000
	rnd := rand.New(rand.NewPCG(1, 2))
	pool := make([]byte, 2*MaxData)
	for i := range pool {
		pool[i] = byte(rnd.Uint32())
	}
	type write struct{ start, n int }
	plan := make([]write, writes)
	var total int64
	for i := range plan {
		n := SectorSize * (1 + rnd.IntN(MaxData/SectorSize))
		plan[i] = write{start: rnd.IntN(MaxData), n: n}
		total += int64(n)
	}
	offset := func(i int) uint64 { return uint64(i%1024) * MaxData }

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pa := NewPinger(a.Meta, 2*time.Millisecond, 10*time.Second)
	pb := NewPinger(b.Meta, 2*time.Millisecond, 10*time.Second)
	var pingsA, pingsB atomic.Int64
	errs := make(chan error, 8)
	run := func(name string, f func() error) {
		go func() {
			if err := f(); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}

	// A: send the writes, a Barrier after each epoch.
	run("sender", func() error {
		for i, w := range plan {
			m := &Data{BlockID: uint64(i), Epoch: uint64(i / epochLen), Offset: offset(i), Flags: WriteAckWrite, Payload: pool[w.start : w.start+w.n]}
			if err := a.Data.Send(m); err != nil {
				return err
			}
			if (i+1)%epochLen == 0 {
				if err := a.Data.Send(&Barrier{Epoch: uint64(i / epochLen)}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	// B: check each write and ack it on meta, and the barriers.
	run("receiver", func() error {
		for i, w := range plan {
			m, err := b.Data.Recv()
			if err != nil {
				return err
			}
			d, ok := m.(*Data)
			if !ok || d.BlockID != uint64(i) || d.Offset != offset(i) || d.Epoch != uint64(i/epochLen) {
				return fmt.Errorf("write %d: got %v %+v", i, m.Type(), m)
			}
			if !bytes.Equal(d.Payload, pool[w.start:w.start+w.n]) {
				return fmt.Errorf("write %d: payload differs", i)
			}
			ack := &WriteAck{BlockID: d.BlockID, Offset: d.Offset, Length: uint32(len(d.Payload))}
			Release(d)
			if err := b.Meta.Send(ack); err != nil {
				return err
			}
			if (i+1)%epochLen == 0 {
				m, err := b.Data.Recv()
				if err != nil {
					return err
				}
				br, ok := m.(*Barrier)
				if !ok || br.Epoch != uint64(i/epochLen) {
					return fmt.Errorf("after write %d: got %v %+v, want the barrier", i, m.Type(), m)
				}
				if err := b.Meta.Send(&BarrierAck{Epoch: br.Epoch, Writes: epochLen}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	// B's meta reader: pings only.
	run("B meta", func() error {
		for {
			m, err := b.Meta.Recv()
			if err != nil {
				return err
			}
			switch m := m.(type) {
			case *Ping:
				if err := b.Meta.Send(&PingAck{Nonce: m.Nonce}); err != nil {
					return err
				}
			case *PingAck:
				pingsB.Add(1)
				pb.Acked(m)
			default:
				return fmt.Errorf("unexpected %v", m.Type())
			}
		}
	})
	run("A pinger", func() error { return pa.Run(ctx) })
	run("B pinger", func() error { return pb.Run(ctx) })

	// A's meta reader: every ack in order, pings between them.
	start := time.Now()
	next, epochs := 0, 0
	for next < writes || epochs < writes/epochLen {
		m, err := a.Meta.Recv()
		if err != nil {
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			t.Fatalf("after %d acks: %v", next, err)
		}
		switch m := m.(type) {
		case *WriteAck:
			if m.BlockID != uint64(next) || m.Length != uint32(plan[next].n) {
				t.Fatalf("ack %+v, want write %d", m, next)
			}
			next++
		case *BarrierAck:
			if m.Epoch != uint64(epochs) || next != (epochs+1)*epochLen || m.Writes != epochLen {
				t.Fatalf("barrier ack %+v after %d acks, want epoch %d", m, next, epochs)
			}
			epochs++
		case *Ping:
			if err := a.Meta.Send(&PingAck{Nonce: m.Nonce}); err != nil {
				t.Fatal(err)
			}
		case *PingAck:
			pingsA.Add(1)
			pa.Acked(m)
		}
	}
	elapsed := time.Since(start)
	t.Logf("%d writes, %d MiB in %v (%.0f MiB/s); pings answered: A %d, B %d",
		writes, total>>20, elapsed.Round(time.Millisecond), float64(total)/(1<<20)/elapsed.Seconds(), pingsA.Load(), pingsB.Load())
	if pingsA.Load() == 0 || pingsB.Load() == 0 {
		t.Errorf("no pings answered during the burst: A %d, B %d", pingsA.Load(), pingsB.Load())
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// TestTCPPingTimeout: a peer that stops reading its meta connection is
// found by the pinger. Only the outcome is checked, not when.
func TestTCPPingTimeout(t *testing.T) {
	netnstest.Require(t)
	a, b := mustTCPLink(t, testConfig("a"), testConfig("b"))
	const answered = 20
	// B answers 20 pings, then reads nothing more.
	go func() {
		for n := 0; n < answered; {
			m, err := b.Meta.Recv()
			if err != nil {
				return
			}
			if p, ok := m.(*Ping); ok {
				b.Meta.Send(&PingAck{Nonce: p.Nonce})
				n++
			}
		}
	}()
	// Generous: an answered ping never takes this long on loopback.
	p := NewPinger(a.Meta, time.Millisecond, 2*time.Second)
	var acks atomic.Int64
	go func() {
		for {
			m, err := a.Meta.Recv()
			if err != nil {
				return
			}
			if ack, ok := m.(*PingAck); ok {
				acks.Add(1)
				p.Acked(ack)
			}
		}
	}()
	err := p.Run(context.Background())
	if !errors.Is(err, ErrPingTimeout) {
		t.Fatalf("Run = %v, want ErrPingTimeout", err)
	}
	if got := acks.Load(); got != answered {
		t.Fatalf("%d pings answered before the timeout, want %d", got, answered)
	}
}

// TestTCPWrongSecret: over real sockets too, a wrong secret is refused on
// both sides.
func TestTCPWrongSecret(t *testing.T) {
	netnstest.Require(t)
	client := testConfig("a")
	client.Secret = []byte("not the cluster secret")
	c, s := tcpLink(t, client, testConfig("b"))
	if !errors.Is(c.err, ErrAuth) || !errors.Is(s.err, ErrAuth) {
		t.Fatalf("Dial: %v; Accept: %v; want both ErrAuth", c.err, s.err)
	}
}

// BenchmarkTCPData streams 1 MiB writes over a link on loopback.
func BenchmarkTCPData(b *testing.B) {
	netnstest.Require(b)
	l, err := Listen(net.JoinHostPort(testAddr, "0"), testConfig("b"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	accepted := acceptAsync(l, b.Context())
	a, err := Dial(b.Context(), l.Addr().String(), testConfig("a"))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	r := <-accepted
	if r.err != nil {
		b.Fatal(r.err)
	}
	defer r.link.Close()
	done := make(chan error, 1)
	go func() {
		for range b.N {
			m, err := r.link.Data.Recv()
			if err != nil {
				done <- err
				return
			}
			Release(m)
		}
		done <- nil
	}()
	p := make([]byte, MaxData)
	b.SetBytes(MaxData)
	for range b.N {
		if err := a.Data.Send(&Data{Payload: p}); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
