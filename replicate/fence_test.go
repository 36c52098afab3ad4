package replicate

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hactl/hactl/replicate/wire"
)

// A Primary whose peer is gone may not complete a write that Fence
// refuses (no quorum): the write fails, the generation does not move, and
// the reconnect resyncs the blocks it touched from the Primary, with no
// split brain.
func TestFenceRefusesWritesAlone(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	var asked atomic.Int32
	a, b := newPair(t, pairOpts{tune: func(c *Config) {
		c.Fence = func(context.Context) error {
			asked.Add(1)
			if refuse.Load() {
				return errors.New("no quorum")
			}
			return nil
		}
	}})
	promoteFresh(t, a, b)
	r := rand.New(rand.NewPCG(7, 7))
	if _, err := a.vol.WriteAt(randBytes(r, 8192), 1<<20, false); err != nil {
		t.Fatalf("connected write: %v", err)
	}
	if asked.Load() != 0 {
		t.Fatal("Fence asked for a write the peer got")
	}
	genBefore := a.vol.m.Super().GI
	b.stop()
	waitFor(t, "alpha notices", func() bool { return a.status().Connection == string(Connecting) })
	_, err := a.vol.WriteAt(randBytes(r, 4096), 2<<20, false)
	if !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("write alone with Fence refusing = %v, want ErrNoQuorum", err)
	}
	if gi := a.vol.m.Super().GI; gi != genBefore {
		t.Fatalf("a refused write moved the generations %v → %v", genBefore, gi)
	}
	if a.status().OutOfSync == 0 {
		t.Fatal("the refused write's blocks are not marked out of sync")
	}
	b.start()
	waitConnected(t, a, b)
	waitFor(t, "bravo UpToDate", func() bool {
		s := b.status()
		return s.Disk == wire.DiskUpToDate.String() && s.OutOfSync == 0 && a.status().OutOfSync == 0
	})
	if a.status().SplitBrain != nil || b.status().SplitBrain != nil {
		t.Fatal("split brain after a refused write alone")
	}
	sameData(t, a, b)

	// Once Fence says yes, writes complete alone, it is asked once per
	// disconnection, and the first such write starts a new generation.
	refuse.Store(false)
	b.stop()
	waitFor(t, "alpha notices again", func() bool { return a.status().Connection == string(Connecting) })
	before := asked.Load()
	for i := range 3 {
		if _, err := a.vol.WriteAt(randBytes(r, 4096), int64(3+i)<<20, false); err != nil {
			t.Fatalf("write alone with Fence agreeing: %v", err)
		}
	}
	if got := asked.Load() - before; got != 1 {
		t.Fatalf("Fence asked %d times for one disconnection", got)
	}
	if a.vol.m.Super().GI.Current == genBefore.Current {
		t.Fatal("writes completed alone without a new generation")
	}
}

// A write alone waits while Fence is outdating the peer, and completes
// when it returns.
func TestFenceWriteWaitsForOutdate(t *testing.T) {
	release := make(chan struct{})
	a, b := newPair(t, pairOpts{tune: func(c *Config) {
		c.Fence = func(ctx context.Context) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}})
	promoteFresh(t, a, b)
	b.stop()
	waitFor(t, "alpha notices", func() bool { return a.status().Connection == string(Connecting) })
	done := make(chan error, 1)
	go func() {
		_, err := a.vol.WriteAt(make([]byte, 4096), 0, false)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the write completed (%v) before the peer was outdated", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the write did not complete after the fence returned")
	}
}

// Outdate persists on a disconnected Secondary: it refuses promotion until
// it has resynced, and a Primary refuses to be outdated.
func TestOutdate(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	promoteFresh(t, a, b)
	if err := a.vol.Outdate(); err == nil {
		t.Fatal("a connected Primary accepted being outdated")
	}
	a.stop()
	waitFor(t, "bravo notices", func() bool { return b.status().Connection == string(Connecting) })
	if err := b.vol.Outdate(); err != nil {
		t.Fatal(err)
	}
	b.stop()
	b.start()
	if got := b.status().Disk; got != wire.DiskOutdated.String() {
		t.Fatalf("after a restart bravo's disk is %s, want Outdated", got)
	}
	if err := b.vol.Promote(context.Background(), false); !errors.Is(err, ErrNoUpToDateData) {
		t.Fatalf("promoting an Outdated node = %v, want ErrNoUpToDateData", err)
	}
	a.start()
	waitConnected(t, a, b)
	waitFor(t, "bravo UpToDate again", func() bool { return b.status().Disk == wire.DiskUpToDate.String() })
}
