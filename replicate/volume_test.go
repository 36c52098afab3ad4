package replicate

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hactl/hactl/replicate/meta"
	"github.com/hactl/hactl/replicate/txlog"
	"github.com/hactl/hactl/replicate/wire"
)

func TestFreshVolumeNeedsForceThenSyncsPeerInFull(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	waitConnected(t, a, b)
	if got := a.status().Disk; got != wire.DiskInconsistent.String() {
		t.Fatalf("fresh disk is %s, want Inconsistent", got)
	}
	err := a.vol.Promote(context.Background(), false)
	if !errors.Is(err, ErrNoUpToDateData) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("promote without force on fresh data: %v, want ErrNoUpToDateData naming --force", err)
	}
	// Something on alpha's disk that the full sync must carry over.
	pattern := bytes.Repeat([]byte("hactl"), 1000)
	if _, err := a.dev.WriteAt(pattern, 5<<20); err != nil {
		t.Fatal(err)
	}
	promoteFresh(t, a, b)
	if st := b.status(); st.OutOfSync != 0 || st.Role != "Secondary" || st.PeerRole != "Primary" {
		t.Fatalf("bravo after sync: %+v", st)
	}
	if st := a.status(); st.OutOfSync != 0 || st.PeerDisk != wire.DiskUpToDate.String() {
		t.Fatalf("alpha after sync: %+v", st)
	}
	sameData(t, a, b)
	if !meta.Same(a.vol.m.Super().GI.Current, b.vol.m.Super().GI.Current) {
		t.Fatalf("generations differ after the sync: %v / %v", a.vol.m.Super().GI, b.vol.m.Super().GI)
	}
}

func TestWritesReplicatePerProtocol(t *testing.T) {
	for _, proto := range []txlog.Protocol{txlog.ProtocolA, txlog.ProtocolB, txlog.ProtocolC} {
		t.Run(proto.String(), func(t *testing.T) {
			a, b := newPair(t, pairOpts{proto: proto})
			promoteFresh(t, a, b)
			r := rand.New(rand.NewPCG(1, uint64(proto)))
			size := a.vol.Size()
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(w), 7))
					for range 50 {
						n := 1 + r.IntN(300<<10)
						off := r.Int64N(size - int64(n))
						switch r.IntN(10) {
						case 0:
							if err := a.vol.WriteZeroes(off, int64(n), false); err != nil {
								t.Error(err)
							}
						case 1:
							if err := a.vol.Trim(off, int64(n)); err != nil {
								t.Error(err)
							}
						default:
							if _, err := a.vol.WriteAt(randBytes(r, n), off, r.IntN(8) == 0); err != nil {
								t.Error(err)
							}
						}
					}
				}()
			}
			// A big write, split into several frames.
			if _, err := a.vol.WriteAt(randBytes(r, 3<<20+512), 1<<20, false); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if err := a.vol.Flush(); err != nil {
				t.Fatal(err)
			}
			if st := a.status(); st.OutOfSync != 0 || st.Unacked != 0 || st.Writes == 0 {
				t.Fatalf("after flush: %+v", st)
			}
			sameData(t, a, b)
		})
	}
}

func TestSecondaryRefusesIO(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	promoteFresh(t, a, b)
	p := make([]byte, 4096)
	if _, err := b.vol.ReadAt(p, 0); !errors.Is(err, ErrNotPrimary) || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("read on Secondary: %v, want ErrNotPrimary (EPERM)", err)
	}
	if _, err := b.vol.WriteAt(p, 0, false); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("write on Secondary: %v", err)
	}
	if err := b.vol.Flush(); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("flush on Secondary: %v", err)
	}
}

func TestNeverTwoPrimariesWhileConnected(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	promoteFresh(t, a, b)
	err := b.vol.Promote(context.Background(), false)
	if !errors.Is(err, ErrPeerPrimary) {
		t.Fatalf("promoting bravo while alpha is Primary: %v, want ErrPeerPrimary", err)
	}
	if err := a.vol.Demote(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bravo sees alpha Secondary", func() bool { return b.status().PeerRole == "Secondary" })

	// Both at once, many times: exactly one wins each round.
	for round := range 10 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, n := range []*node{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = n.vol.Promote(context.Background(), false) }()
		}
		wg.Wait()
		ra, rb := a.vol.Role(), b.vol.Role()
		if ra == Primary && rb == Primary {
			t.Fatalf("round %d: both Primary (errors %v, %v)", round, errs[0], errs[1])
		}
		if ra != Primary && rb != Primary {
			t.Fatalf("round %d: neither Primary (errors %v, %v)", round, errs[0], errs[1])
		}
		winner, loser := a, b
		if rb == Primary {
			winner, loser = b, a
		}
		waitFor(t, "loser sees the winner Primary", func() bool { return loser.status().PeerRole == "Primary" })
		if err := winner.vol.Demote(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "peer sees the winner Secondary", func() bool { return loser.status().PeerRole == "Secondary" })
	}
}

func TestDisconnectedWritesResyncByBitmap(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	promoteFresh(t, a, b)
	genBefore := a.vol.m.Super().GI
	b.stop()
	waitFor(t, "alpha notices", func() bool { return a.status().Connection == string(Connecting) })
	// Losing the peer changes nothing by itself: a Primary that writes
	// nothing more has not diverged. The first write alone starts the
	// new generation, before it completes.
	if gi := a.vol.m.Super().GI; gi != genBefore {
		t.Fatalf("Primary lost its peer and changed generations %v → %v before writing", genBefore, gi)
	}
	r := rand.New(rand.NewPCG(3, 3))
	if _, err := a.vol.WriteAt(randBytes(r, 4096), 0, false); err != nil {
		t.Fatal(err)
	}
	if gi := a.vol.m.Super().GI; meta.Same(gi.Current, genBefore.Current) || !meta.Same(gi.Bitmap, genBefore.Current) {
		t.Fatalf("first write alone: generations %v → %v, want a new current with the old one as bitmap", genBefore, gi)
	}
	written := 4096
	for range 20 {
		n := 4096 * (1 + r.IntN(16))
		off := int64(r.IntN(int(a.vol.Size())-n)) &^ 4095
		if _, err := a.vol.WriteAt(randBytes(r, n), off, false); err != nil {
			t.Fatal(err)
		}
		written += n
	}
	dirty := a.status().OutOfSync
	if dirty == 0 || dirty > uint64(written) {
		t.Fatalf("out of sync after %d bytes written disconnected: %d", written, dirty)
	}
	resyncedBefore := a.vol.stats.resyncedBytes
	b.start()
	waitConnected(t, a, b)
	waitFor(t, "bravo UpToDate", func() bool { return b.status().Disk == wire.DiskUpToDate.String() })
	if got := a.vol.stats.resyncedBytes - resyncedBefore; got != dirty {
		t.Fatalf("resynced %d bytes, want exactly the %d out of sync", got, dirty)
	}
	if a.status().OutOfSync != 0 || b.status().OutOfSync != 0 {
		t.Fatalf("bits left after resync: %d / %d", a.status().OutOfSync, b.status().OutOfSync)
	}
	sameData(t, a, b)
}

func TestWrongSecretIsRefusedOnBothSides(t *testing.T) {
	a, b := newPair(t, pairOpts{secretA: "right", secretB: "wrong"})
	for _, n := range []*node{a, b} {
		waitFor(t, n.name+" reports the refusal", func() bool {
			return strings.Contains(n.status().LastError, wire.ErrAuth.Error())
		})
	}
	if a.status().Connection == string(Connected) || b.status().Connection == string(Connected) {
		t.Fatal("connected with a wrong secret")
	}
	// Nothing of alpha's reached bravo.
	if err := a.vol.Promote(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.vol.WriteAt(bytes.Repeat([]byte{0xab}, 8192), 0, true); err != nil {
		t.Fatal(err)
	}
	if got := b.dataOf(8192); !bytes.Equal(got, make([]byte, 8192)) {
		t.Fatal("bravo's disk changed although the link was refused")
	}
}

func TestFlushMakesWritesDurableOnThePeer(t *testing.T) {
	a, b := newPair(t, pairOpts{proto: txlog.ProtocolA})
	promoteFresh(t, a, b)
	data := bytes.Repeat([]byte{0x5a}, 64<<10)
	if _, err := a.vol.WriteAt(data, 8<<20, false); err != nil {
		t.Fatal(err)
	}
	if err := a.vol.Flush(); err != nil {
		t.Fatal(err)
	}
	// Flush returned: bravo has it on stable storage even if it loses
	// power now.
	b.crash()
	got := make([]byte, len(data))
	if _, err := b.dev.ReadAt(got, 8<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("a flushed write did not survive the peer's power loss")
	}
}

func TestFUAWriteIsDurableOnBothNodes(t *testing.T) {
	a, b := newPair(t, pairOpts{proto: txlog.ProtocolA})
	promoteFresh(t, a, b)
	data := bytes.Repeat([]byte{0xc3}, 16<<10)
	if _, err := a.vol.WriteAt(data, 2<<20, true); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{b, a} {
		n.crash()
		got := make([]byte, len(data))
		if _, err := n.dev.ReadAt(got, 2<<20); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s lost a FUA write in a power loss", n.name)
		}
	}
}

func TestCrashedPrimaryResyncsItsActivityLog(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	promoteFresh(t, a, b)
	r := rand.New(rand.NewPCG(9, 9))
	for range 10 {
		if _, err := a.vol.WriteAt(randBytes(r, 64<<10), int64(r.IntN(300))*64<<10, false); err != nil {
			t.Fatal(err)
		}
	}
	a.crash()
	waitFor(t, "bravo notices", func() bool { return b.status().Connection == string(Connecting) })
	a.start()
	if f := a.vol.m.Super().Flags; !f.Has(meta.FlagCrashedPrimary) {
		t.Fatalf("flags after the crash: %v, want crashed-primary", f)
	}
	if a.status().OutOfSync == 0 {
		t.Fatal("no activity-log extents marked out of sync after a crash")
	}
	waitConnected(t, a, b)
	waitFor(t, "both UpToDate", func() bool {
		return a.status().Disk == wire.DiskUpToDate.String() && b.status().Disk == wire.DiskUpToDate.String()
	})
	if a.vol.m.Super().Flags.Has(meta.FlagCrashedPrimary) {
		t.Fatal("crashed-primary still set after the resync")
	}
	sameData(t, a, b)
}

func TestBothPrimaryLinkRefused(t *testing.T) {
	a, b := newPair(t, pairOpts{noStartBravo: true})
	if err := a.vol.Promote(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	b.start()
	if err := b.vol.Promote(context.Background(), true); err != nil {
		// bravo may have connected first; then the refusal is the promotion's.
		if !errors.Is(err, ErrPeerPrimary) && !errors.Is(err, ErrNoUpToDateData) {
			t.Fatal(err)
		}
		return
	}
	waitFor(t, "the refusal", func() bool {
		return a.status().Connection != string(Connected) && b.status().LastError != ""
	})
	if a.status().PeerRole != "" || b.status().PeerRole != "" {
		t.Fatal("two Primaries connected")
	}
}

func TestDemoteWaitsForWritesInFlight(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	promoteFresh(t, a, b)
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for range 200 {
				_, err := a.vol.WriteAt(randBytes(r, 16<<10), int64(r.IntN(1000))*16<<10, false)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrNotPrimary):
					refused.Add(1)
					return
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	for ok.Load() < 50 {
		runtime.Gosched()
	}
	if err := a.vol.Demote(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Demote returned: nothing of the Primary's is still in flight.
	if st := a.status(); st.InFlight != 0 || st.Role != "Secondary" {
		t.Fatalf("after Demote: %d writes in flight, role %s", st.InFlight, st.Role)
	}
	wg.Wait()
	if refused.Load() == 0 {
		t.Fatal("no write was refused after the demotion started")
	}
	waitFor(t, "bravo sees alpha Secondary", func() bool { return b.status().PeerRole == "Secondary" })
	sameData(t, a, b)
}

func TestLinkLossDuringWritesLosesNothing(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	promoteFresh(t, a, b)
	var wg sync.WaitGroup
	var done atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 13))
			for range 300 {
				if _, err := a.vol.WriteAt(randBytes(r, 4096*(1+r.IntN(8))), int64(r.IntN(4000))*4096, false); err != nil {
					t.Error(err)
					return
				}
				done.Add(1)
			}
		}()
	}
	for done.Load() < 100 {
		runtime.Gosched()
	}
	b.stop() // the link goes away with writes in flight
	wg.Wait()
	if err := a.vol.Flush(); err != nil {
		t.Fatal(err)
	}
	if a.status().OutOfSync == 0 {
		t.Fatal("writes after the link loss left no trace in the bitmap")
	}
	b.start()
	waitConnected(t, a, b)
	waitFor(t, "bravo UpToDate", func() bool { return b.status().Disk == wire.DiskUpToDate.String() })
	sameData(t, a, b)
}

// splitBrain makes both nodes write while apart: alpha at 1 MiB, bravo at
// 2 MiB (bravo more), and returns what each wrote.
func splitBrain(t *testing.T, a, b *node) (fromA, fromB []byte) {
	t.Helper()
	promoteFresh(t, a, b)
	if err := a.vol.Demote(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.stop()
	fromA = bytes.Repeat([]byte{0xaa}, 64<<10)
	fromB = bytes.Repeat([]byte{0xbb}, 128<<10)
	write := func(n *node, p []byte, off int64) {
		if err := n.vol.Promote(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		if _, err := n.vol.WriteAt(p, off, true); err != nil {
			t.Fatal(err)
		}
		if err := n.vol.Demote(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	write(a, fromA, 1<<20)
	a.stop()
	b.start()
	write(b, fromB, 2<<20)
	a.start()
	return fromA, fromB
}

func TestSplitBrainIsNeverMergedAndResolvesFromEitherNode(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	fromA, fromB := splitBrain(t, a, b)
	for _, n := range []*node{a, b} {
		waitFor(t, n.name+" reports split brain", func() bool { return n.status().SplitBrain != nil })
	}
	st := a.status()
	if st.Connection == string(Connected) || len(st.SplitBrain.Resolve) != 2 ||
		st.SplitBrain.Resolve[1] != "hactl volume resolve data --discard bravo" {
		t.Fatalf("alpha's split-brain status: %+v", st)
	}
	if st.SplitBrainChanged["alpha"] != 64<<10 || st.SplitBrainChanged["bravo"] != 128<<10 {
		t.Fatalf("changed bytes reported: %v", st.SplitBrainChanged)
	}
	// Nothing overwritten on either side.
	for _, c := range []struct {
		n   *node
		p   []byte
		off int64
	}{{a, fromA, 1 << 20}, {b, fromB, 2 << 20}} {
		got := make([]byte, len(c.p))
		if _, err := c.n.dev.ReadAt(got, c.off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.p) {
			t.Fatalf("%s's own changes were overwritten during a split brain", c.n.name)
		}
	}
	// Resolved on bravo, the listening side: bravo's changes go.
	if err := b.vol.Resolve("bravo"); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, a, b)
	waitFor(t, "bravo UpToDate", func() bool { return b.status().Disk == wire.DiskUpToDate.String() })
	sameData(t, a, b)
	got := make([]byte, len(fromA))
	if _, err := b.dev.ReadAt(got, 1<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fromA) {
		t.Fatal("alpha's changes did not reach bravo")
	}
	if st := b.status(); st.SplitBrain != nil || st.Discard != "" {
		t.Fatalf("split brain still reported after the resolution: %+v", st)
	}
}

func TestSplitBrainPolicyDiscardLeastChanges(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	for _, n := range []*node{a, b} {
		n.cfg.Policy.After0Pri = "discard-least-changes"
	}
	_, fromB := splitBrain(t, a, b)
	waitConnected(t, a, b)
	waitFor(t, "alpha UpToDate", func() bool { return a.status().Disk == wire.DiskUpToDate.String() })
	sameData(t, a, b)
	got := make([]byte, len(fromB))
	if _, err := a.dev.ReadAt(got, 2<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fromB) {
		t.Fatal("bravo changed more but its changes were discarded")
	}
}

func TestResolveRefusesUnknownNodeAndPrimary(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	promoteFresh(t, a, b)
	if err := a.vol.Resolve("charlie"); err == nil || !strings.Contains(err.Error(), "charlie") {
		t.Fatalf("resolve naming a stranger: %v", err)
	}
	if err := a.vol.Resolve("alpha"); err == nil || !strings.Contains(err.Error(), "Primary") {
		t.Fatalf("discarding a Primary's own data: %v", err)
	}
}

func TestInterruptedResyncResumesFromWhatIsLeft(t *testing.T) {
	a, b := newPair(t, pairOpts{tune: func(c *Config) {
		c.ResyncRate = 8 << 20 // slow enough to crash the target half-way
		c.ResyncCheckpoint = 50 * time.Millisecond
	}})
	waitConnected(t, a, b)
	if err := a.vol.Promote(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	full := uint64(a.vol.Size())
	waitFor(t, "a third of the full sync done and checkpointed", func() bool {
		st := b.status()
		return st.Resync != nil && st.Resync.Done > full/3 && st.OutOfSync < full*3/4
	})
	b.crash()
	b.start()
	if got := b.status().Disk; got != wire.DiskInconsistent.String() {
		t.Fatalf("target after a crash mid-resync: %s, want Inconsistent", got)
	}
	if err := b.vol.Promote(context.Background(), false); !errors.Is(err, ErrNoUpToDateData) {
		t.Fatalf("promoting an interrupted resync target: %v, want ErrNoUpToDateData", err)
	}
	left := b.status().OutOfSync
	if left == 0 || left >= full*3/4 {
		t.Fatalf("after the crash the target has %d of %d bytes to resync; want what was left, not everything", left, full)
	}
	waitConnected(t, a, b)
	waitFor(t, "bravo UpToDate", func() bool { return b.status().Disk == wire.DiskUpToDate.String() })
	sameData(t, a, b)
}

func TestChecksumResyncSendsOnlyWhatDiffers(t *testing.T) {
	a, b := newPair(t, pairOpts{tune: func(c *Config) { c.ResyncChecksum = true }})
	waitConnected(t, a, b)
	// Fresh disks are equal (zeroes) except this one range of alpha's.
	if _, err := a.dev.WriteAt(bytes.Repeat([]byte("differs"), 9000), 5<<20); err != nil {
		t.Fatal(err)
	}
	promoteFresh(t, a, b)
	st := a.status()
	if st.Resynced != uint64(a.vol.Size()) {
		t.Fatalf("full sync covered %d bytes, want %d", st.Resynced, a.vol.Size())
	}
	if sent := st.Resynced - st.ResyncSame; sent != wire.MaxData {
		t.Fatalf("checksum resync sent %d bytes, want only the one 1 MiB range that differs", sent)
	}
	sameData(t, a, b)
}

func TestOnlineVerifyFindsAndRepairsDifferences(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	promoteFresh(t, a, b)
	r := rand.New(rand.NewPCG(5, 5))
	if _, err := a.vol.WriteAt(randBytes(r, 4<<20), 2<<20, false); err != nil {
		t.Fatal(err)
	}
	if err := a.vol.Flush(); err != nil {
		t.Fatal(err)
	}
	// Bit rot on bravo, behind the engine's back.
	if _, err := b.dev.WriteAt([]byte("rot"), 3<<20+100); err != nil {
		t.Fatal(err)
	}
	if err := a.vol.Verify(); err != nil {
		t.Fatal(err)
	}
	var vs VerifyStatus
	waitFor(t, "the verify to finish", func() bool {
		st := a.status()
		if st.Verify != nil {
			vs = *st.Verify
		}
		return st.Verify != nil && !st.Verify.Running
	})
	if vs.Error != "" || vs.Done != uint64(a.vol.Size()) || vs.OutOfSync != wire.MaxData {
		t.Fatalf("verify result %+v; want the whole volume checked and the one 1 MiB range found", vs)
	}
	// The difference is resynced from the Primary right away.
	waitConnected(t, a, b)
	waitFor(t, "the repair", func() bool {
		return a.status().OutOfSync == 0 && b.status().OutOfSync == 0 && b.status().Disk == wire.DiskUpToDate.String()
	})
	sameData(t, a, b)

	if err := a.vol.Verify(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second verify", func() bool { st := a.status(); return st.Verify != nil && !st.Verify.Running })
	if vs := *a.status().Verify; vs.OutOfSync != 0 || vs.Error != "" {
		t.Fatalf("second verify: %+v, want no differences", vs)
	}
	b.stop()
	waitFor(t, "alpha disconnected", func() bool { return a.status().Connection != string(Connected) })
	if err := a.vol.Verify(); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("verify without a peer: %v", err)
	}
}

// editMeta changes a stopped node's superblock, as a crash at the right
// moment would have left it.
func (n *node) editMeta(t *testing.T, fn func(*meta.Superblock)) {
	t.Helper()
	m, err := meta.Open(n.metaConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Update(func(s *meta.Superblock) error { fn(s); return nil }); err != nil {
		t.Fatal(err)
	}
}

// research §10 #7: the source rotated its generations for a resync and
// crashed before the target heard the sync UUID. The reconnect undoes the
// rotation and resyncs by bitmap: no split brain, no full sync.
func TestCrashAtResyncStartResumesByBitmap(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	promoteFresh(t, a, b)
	b.stop()
	r := rand.New(rand.NewPCG(7, 7))
	if _, err := a.vol.WriteAt(randBytes(r, 256<<10), 4<<20, true); err != nil {
		t.Fatal(err)
	}
	dirty := a.status().OutOfSync
	a.stop()
	uuid, err := meta.NewUUID(nil)
	if err != nil {
		t.Fatal(err)
	}
	a.editMeta(t, func(s *meta.Superblock) { s.GI, _ = s.GI.StartSyncSource(uuid) })
	before := uint64(0)
	a.start()
	b.start()
	waitConnected(t, a, b)
	waitFor(t, "bravo UpToDate", func() bool { return b.status().Disk == wire.DiskUpToDate.String() })
	if got := a.vol.stats.resyncedBytes - before; got != dirty {
		t.Fatalf("resynced %d bytes, want the %d out of sync (a bitmap resync, not full)", got, dirty)
	}
	if a.status().SplitBrain != nil {
		t.Fatal("split brain after an interrupted resync start")
	}
	sameData(t, a, b)
}

// research §10 #9: the resync finished but the source never recorded it.
// The reconnect finds the same generation with a leftover bitmap UUID,
// fixes it up, and both end UpToDate with identical generations.
func TestMissedResyncFinishedFixesUp(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	promoteFresh(t, a, b)
	if err := a.vol.Demote(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.stop()
	b.stop()
	// alpha as if its "finished" update never reached the disk.
	a.editMeta(t, func(s *meta.Superblock) { s.GI.Bitmap = s.GI.History[0] + meta.UUIDNewBitmapOffset })
	a.start()
	b.start()
	waitConnected(t, a, b)
	waitFor(t, "both UpToDate", func() bool {
		return a.status().Disk == wire.DiskUpToDate.String() && b.status().Disk == wire.DiskUpToDate.String()
	})
	ga, gb := a.vol.m.Super().GI, b.vol.m.Super().GI
	if ga.Masked() != gb.Masked() {
		t.Fatalf("generations differ after the fix-up: %v / %v", ga, gb)
	}
	if a.status().OutOfSync != 0 || b.status().OutOfSync != 0 {
		t.Fatal("bits left after the fix-up")
	}
	sameData(t, a, b)
}

// research §10 #6 (engine side; the decision table has the full matrix):
// with one Primary at reconnect, discard-secondary discards the
// Secondary's changes and keeps the Primary's.
func TestSplitBrainPolicyDiscardSecondary(t *testing.T) {
	a, b := newPair(t, pairOpts{})
	for _, n := range []*node{a, b} {
		n.cfg.Policy.After1Pri = "discard-secondary"
	}
	fromA, _ := splitBrain(t, a, b)
	// alpha Primary again (it is disconnected: its own generation).
	waitFor(t, "split brain seen", func() bool { return a.status().SplitBrain != nil })
	if err := a.vol.Promote(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, a, b)
	waitFor(t, "bravo UpToDate", func() bool { return b.status().Disk == wire.DiskUpToDate.String() })
	if a.vol.Role() != Primary {
		t.Fatal("the Primary lost its role to a split-brain policy")
	}
	sameData(t, a, b)
	got := make([]byte, len(fromA))
	if _, err := b.dev.ReadAt(got, 1<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fromA) {
		t.Fatal("the Primary's changes did not win")
	}
}
