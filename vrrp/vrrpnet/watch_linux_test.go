package vrrpnet

import (
	"context"
	"testing"
	"time"
)

func watchIn(t *testing.T, ns string, names ...string) (<-chan LinkState, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var (
		ch  <-chan LinkState
		err error
	)
	inNS(t, ns, func() { ch, err = WatchLinks(ctx, names) })
	if err != nil {
		t.Fatalf("WatchLinks: %v", err)
	}
	return ch, cancel
}

// await reads states until want arrives, skipping intermediate ones of
// any interface (bringing a veth up may pass through "no carrier").
func await(t *testing.T, ch <-chan LinkState, want LinkState) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	var seen []LinkState
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed waiting for %+v; saw %+v", want, seen)
			}
			if s == want {
				return
			}
			seen = append(seen, s)
		case <-timeout:
			t.Fatalf("no %+v within 5 s; saw %+v", want, seen)
		}
	}
}

func up(name string) LinkState        { return LinkState{name, true, DetailUp} }
func adminDown(name string) LinkState { return LinkState{name, false, DetailAdminDown} }
func noCarrier(name string) LinkState { return LinkState{name, false, DetailNoCarrier} }
func missing(name string) LinkState   { return LinkState{name, false, DetailMissing} }

func TestWatchLinks(t *testing.T) {
	requireNetRoot(t)
	p := newPair(t)
	ch, cancel := watchIn(t, p.A, "a0", "x0", "a0")

	// The initial states, once each, in the order asked.
	for _, want := range []LinkState{up("a0"), missing("x0")} {
		select {
		case s := <-ch:
			if s != want {
				t.Fatalf("initial state %+v, want %+v", s, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("no initial state for %s", want.Name)
		}
	}

	ipCmd(t, "-n", p.A, "link", "set", "a0", "down")
	await(t, ch, adminDown("a0"))
	ipCmd(t, "-n", p.A, "link", "set", "a0", "up")
	await(t, ch, up("a0"))
	// Carrier loss: the far end of the veth goes down.
	ipCmd(t, "-n", p.B, "link", "set", "b0", "down")
	await(t, ch, noCarrier("a0"))
	ipCmd(t, "-n", p.B, "link", "set", "b0", "up")
	await(t, ch, up("a0"))

	// An interface that appears, comes up, is renamed away, comes back
	// and is deleted.
	ipCmd(t, "-n", p.A, "link", "add", "x0", "type", "veth", "peer", "name", "x1")
	await(t, ch, adminDown("x0"))
	ipCmd(t, "-n", p.A, "link", "set", "x1", "up")
	ipCmd(t, "-n", p.A, "link", "set", "x0", "up")
	await(t, ch, up("x0"))
	ipCmd(t, "-n", p.A, "link", "set", "x0", "down")
	await(t, ch, adminDown("x0"))
	ipCmd(t, "-n", p.A, "link", "set", "x0", "name", "y0")
	await(t, ch, missing("x0"))
	ipCmd(t, "-n", p.A, "link", "set", "y0", "name", "x0")
	await(t, ch, adminDown("x0"))
	ipCmd(t, "-n", p.A, "link", "del", "x0")
	await(t, ch, missing("x0"))

	// A consumer that does not read gets the latest state, once: the
	// three changes below coalesce into one.
	ipCmd(t, "-n", p.A, "link", "set", "a0", "down")
	ipCmd(t, "-n", p.A, "link", "set", "a0", "up")
	ipCmd(t, "-n", p.A, "link", "set", "a0", "down")
	time.Sleep(300 * time.Millisecond)
	var got []LinkState
	for quiet := time.After(500 * time.Millisecond); ; {
		select {
		case s := <-ch:
			got = append(got, s)
			continue
		case <-quiet:
		}
		break
	}
	if len(got) != 1 || got[0] != adminDown("a0") {
		t.Errorf("after three quick changes the slow consumer got %+v, want only %+v", got, adminDown("a0"))
	}

	cancel()
	select {
	case s, ok := <-ch:
		if ok {
			t.Fatalf("state %+v after cancel", s)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

func TestWatchLinksNone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := WatchLinks(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case s, ok := <-ch:
		if ok {
			t.Fatalf("state %+v with nothing tracked", s)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

// TestWatchLinksResubscribes drops the netlink subscription, as the kernel
// does when its receive buffer overflows: the watch subscribes again and
// re-reads the state, catching the change made while it was deaf.
func TestWatchLinksResubscribes(t *testing.T) {
	requireNetRoot(t)
	p := newPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	subs := make(chan *subscription, 4)
	w := newWatcher([]string{"a0"})
	w.onSubscribe = func(s *subscription) { subs <- s }
	var err error
	inNS(t, p.A, func() { err = w.start(ctx) })
	if err != nil {
		t.Fatal(err)
	}
	await(t, w.out, up("a0"))

	(<-subs).close()
	ipCmd(t, "-n", p.A, "link", "set", "a0", "down")
	await(t, w.out, adminDown("a0"))
	select {
	case <-subs:
	case <-time.After(2 * time.Second):
		t.Fatal("no new subscription")
	}
	ipCmd(t, "-n", p.A, "link", "set", "a0", "up")
	await(t, w.out, up("a0"))
}
