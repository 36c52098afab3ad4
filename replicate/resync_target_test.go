package replicate

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hactl/hactl/replicate/wire"
)

// slowWrites delays every write of more than one block (the resync's,
// in the test below), so the target's resync workers fall behind its
// receiver and the queue of resync ranges stays full while replicated
// writes arrive behind them.
type slowWrites struct {
	Disk
	slow atomic.Bool
}

func (d *slowWrites) WriteAt(p []byte, off int64) (int, error) {
	if d.slow.Load() && len(p) > 4096 {
		time.Sleep(5 * time.Millisecond)
	}
	return d.Disk.WriteAt(p, off)
}

// The target applies resync ranges on several goroutines; a replicated
// write that arrives after a resync range of the same blocks must still
// land after it, or the target keeps the older data. The Primary writes
// the blocks being resynced, over and over, while the resync runs on a
// target whose resync writes are slow; the replicas must end identical.
func TestApplicationWritesRacingParallelResync(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	promoteFresh(t, a, b)
	b.stop()
	waitFor(t, "alpha notices", func() bool { return a.status().Connection == string(Connecting) })
	// 8 KiB out of every 64 KiB: runs too far apart to be coalesced, so
	// the resync sends many small ranges.
	const span, stride, dirty = 16 << 20, 64 << 10, 8 << 10
	r := rand.New(rand.NewPCG(11, 11))
	for off := int64(0); off < span; off += stride {
		if _, err := a.vol.WriteAt(randBytes(r, dirty), off, false); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := a.status().OutOfSync, uint64(span/stride*dirty); got != want {
		t.Fatalf("out of sync before the resync: %d, want %d", got, want)
	}
	slow := &slowWrites{Disk: b.dev}
	slow.slow.Store(true)
	b.cfg.Disk = slow

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	resyncing := func() bool { return b.vol != nil && b.status().Connection == string(SyncTarget) }
	b.start()
	waitFor(t, "bravo resyncing", resyncing)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for {
				select {
				case <-stop:
					return
				default:
				}
				// One block of those the resync has sent and the
				// target not yet acknowledged, or is about to send.
				const n = 4096
				next := 0
				if rs := a.status().Resync; rs != nil {
					next = int(rs.Done / dirty)
				}
				k := min(next+r.IntN(24), span/stride-1)
				off := int64(k)*stride + int64(r.IntN(2))*4096
				if _, err := a.vol.WriteAt(randBytes(r, n), off, false); err != nil {
					t.Error(err)
					return
				}
				if resyncing() {
					writes.Add(1)
				}
			}
		}()
	}
	waitFor(t, "bravo UpToDate", func() bool { return b.status().Disk == wire.DiskUpToDate.String() })
	close(stop)
	wg.Wait()
	slow.slow.Store(false)
	if writes.Load() == 0 {
		t.Fatal("no application writes ran during the resync")
	}
	// Protocol C: every completed write is on both disks.
	waitFor(t, "nothing out of sync", func() bool { return a.status().OutOfSync == 0 && b.status().OutOfSync == 0 })
	t.Logf("%d application writes during the resync", writes.Load())
	sameData(t, a, b)
}
