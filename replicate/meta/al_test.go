package meta

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

func TestALActivateCommit(t *testing.T) {
	_, c := testDev(t, 256*mib, true, MinALExtents)
	m := create(t, c, MinALExtents)
	a := m.AL()
	if a.Capacity() != MinALExtents || a.Seq() != 0 || len(a.Active()) != 0 {
		t.Fatalf("fresh log: capacity %d, seq %d, active %v", a.Capacity(), a.Seq(), a.Active())
	}
	if !a.Activate(3) {
		t.Fatal("Activate of a cold extent needs no commit")
	}
	if a.IsActive(3) || a.Pending() != 1 {
		t.Fatalf("before Commit: active %v, pending %d", a.IsActive(3), a.Pending())
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if !a.IsActive(3) || a.Pending() != 0 || a.Seq() != 1 {
		t.Fatalf("after Commit: active %v, pending %d, seq %d", a.IsActive(3), a.Pending(), a.Seq())
	}
	if a.Activate(3) {
		t.Fatal("Activate of a hot extent asks for a commit")
	}
	if err := a.Commit(); err != nil || a.Seq() != 1 {
		t.Fatalf("Commit with nothing queued: %v, seq %d", err, a.Seq())
	}
	a.Release(3)
	a.Release(3)
	if got := reopen(t, c).AL().Active(); !slices.Equal(got, []uint32{3}) {
		t.Fatalf("reopened log has %v, want [3]", got)
	}

	// An extent activated and released before any commit is dropped.
	a.Activate(5)
	a.Release(5)
	if err := a.Commit(); err != nil || a.IsActive(5) || a.Seq() != 1 {
		t.Fatalf("abandoned activation: %v, active %v, seq %d", err, a.IsActive(5), a.Seq())
	}

	mustPanic(t, "Release without Activate", func() { a.Release(9) })
	mustPanic(t, "Activate beyond the volume", func() { a.Activate(uint32(m.Layout().Extents())) })
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

// TestALLRU walks a capacity-7 log through a script of writes and checks
// which extent each new one evicts: the least recently used one without
// references.
func TestALLRU(t *testing.T) {
	type step struct {
		hold   []uint32 // activate and keep a reference
		write  []uint32 // activate and release at once
		drop   []uint32 // release a held reference
		active []uint32 // expected afterwards
	}
	steps := []step{
		{write: []uint32{0, 1, 2, 3, 4, 5, 6}, active: []uint32{0, 1, 2, 3, 4, 5, 6}},
		{write: []uint32{7}, active: []uint32{1, 2, 3, 4, 5, 6, 7}},                          // 0 was the LRU
		{write: []uint32{1}, active: []uint32{1, 2, 3, 4, 5, 6, 7}},                          // hot: touched, nothing evicted
		{write: []uint32{8}, active: []uint32{1, 3, 4, 5, 6, 7, 8}},                          // 2 is now the LRU
		{hold: []uint32{3}, active: []uint32{1, 3, 4, 5, 6, 7, 8}},                           // 3 busy and most recent
		{hold: []uint32{4}, active: []uint32{1, 3, 4, 5, 6, 7, 8}},                           // 4 busy
		{write: []uint32{9}, active: []uint32{1, 3, 4, 6, 7, 8, 9}},                          // 5 evicted
		{write: []uint32{10, 11}, active: []uint32{1, 3, 4, 8, 9, 10, 11}},                   // 6, 7: one transaction
		{write: []uint32{12}, active: []uint32{3, 4, 8, 9, 10, 11, 12}},                      // 1
		{write: []uint32{13}, active: []uint32{3, 4, 9, 10, 11, 12, 13}},                     // 8: busy 3, 4 skipped
		{drop: []uint32{3}, write: []uint32{14}, active: []uint32{4, 9, 10, 11, 12, 13, 14}}, // 3 was LRU once released
	}
	_, c := testDev(t, 256*mib, true, MinALExtents)
	m := create(t, c, MinALExtents)
	a := m.AL()
	for i, s := range steps {
		for _, e := range s.drop {
			a.Release(e)
		}
		for _, e := range s.hold {
			activate(t, a, e)
		}
		if len(s.write) > 1 {
			// Queue them all, then one Commit writes one transaction.
			for _, e := range s.write {
				a.Activate(e)
			}
			seq := a.Seq()
			if err := a.Commit(); err != nil {
				t.Fatal(err)
			}
			if a.Seq() != seq+1 {
				t.Fatalf("step %d: %d transactions for one Commit", i, a.Seq()-seq)
			}
			for _, e := range s.write {
				a.Release(e)
			}
		} else {
			for _, e := range s.write {
				activate(t, a, e)
				a.Release(e)
			}
		}
		if got := a.Active(); !slices.Equal(got, s.active) {
			t.Fatalf("step %d: active %v, want %v", i, got, s.active)
		}
		if got := reopen(t, c).AL().Active(); !slices.Equal(got, s.active) {
			t.Fatalf("step %d: reopened log has %v, want %v", i, got, s.active)
		}
	}
}

func TestALFull(t *testing.T) {
	_, c := testDev(t, 256*mib, true, MinALExtents)
	a := create(t, c, MinALExtents).AL()
	for e := range uint32(MinALExtents) {
		activate(t, a, e)
	}
	if !a.Activate(20) {
		t.Fatal("cold extent needs no commit")
	}
	if err := a.Commit(); !errors.Is(err, ErrALFull) {
		t.Fatalf("Commit with every extent busy = %v, want ErrALFull", err)
	}
	if a.Pending() != 1 {
		t.Fatalf("pending %d after ErrALFull, want the extent still queued", a.Pending())
	}
	a.Release(4)
	if err := a.Commit(); err != nil || !a.IsActive(20) || a.IsActive(4) {
		t.Fatalf("after Release(4): %v, active %v", err, a.Active())
	}
}

// TestALBatch checks that one Commit takes at most 64 extents.
func TestALBatch(t *testing.T) {
	_, c := testDev(t, gib, false, 200)
	a := create(t, c, 200).AL()
	for e := range uint32(100) {
		a.Activate(e)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := len(a.Active()); n != alMaxUpdates || a.Pending() != 100-alMaxUpdates {
		t.Fatalf("after one Commit: %d active, %d pending", n, a.Pending())
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := len(a.Active()); n != 100 || a.Seq() != 2 {
		t.Fatalf("after two Commits: %d active, seq %d", n, a.Seq())
	}
}

// TestALReplayRandom runs random writes through logs of several
// capacities, some larger than one context window so that replay must
// combine windows from several transactions, and reopens the metadata
// regularly: the reloaded set must equal the one in memory.
func TestALReplayRandom(t *testing.T) {
	for _, capacity := range []int{MinALExtents, 64, alContextMax, alContextMax + 1, 2000, 5000} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			extents := uint32(capacity * 3)
			_, c := testDev(t, int64(extents)*ExtentSize, false, capacity)
			m := create(t, c, capacity)
			a := m.AL()
			r := seeded(uint64(capacity))
			var held []uint32
			for op := range 4000 {
				e := uint32(r.Uint64() % uint64(extents))
				activate(t, a, e)
				if r.Uint64()%4 == 0 && len(held) < capacity/2 {
					held = append(held, e)
				} else {
					a.Release(e)
				}
				if len(held) > 0 && r.Uint64()%3 == 0 {
					i := int(r.Uint64() % uint64(len(held)))
					a.Release(held[i])
					held = slices.Delete(held, i, i+1)
				}
				if op%97 == 0 || op == 3999 {
					m2 := reopen(t, c)
					if lost := m2.AL().Lost(); lost != "" {
						t.Fatalf("op %d: log lost: %s", op, lost)
					}
					if got, want := m2.AL().Active(), a.Active(); !slices.Equal(got, want) {
						t.Fatalf("op %d (seq %d): reopened %d extents, in memory %d", op, a.Seq(), len(got), len(want))
					}
				}
			}
			if a.Seq() <= uint64(m.Layout().ALSlots) {
				t.Fatalf("only %d transactions: the ring never wrapped", a.Seq())
			}
		})
	}
}

// TestALTornTransaction tears the write of an AL transaction after every
// byte: the log must load as before the transaction unless all of it
// arrived.
func TestALTornTransaction(t *testing.T) {
	for _, capacity := range []int{MinALExtents, 2000} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			extents := uint32(capacity * 2)
			d, c := testDev(t, int64(extents)*ExtentSize, false, capacity)
			a := create(t, c, capacity).AL()
			// Enough transactions to wrap the ring, with evictions.
			for i := range uint32(capacity + 30*alMaxUpdates) {
				activate(t, a, i%extents)
				a.Release(i % extents)
			}
			before := a.Active()
			beforeSeq := a.Seq()

			// What the transaction leads to when it completes.
			var after []uint32
			{
				probe := d.Clone()
				cp := c
				cp.Device = probe
				ap := reopen(t, cp).AL()
				ap.Activate(extents - 1)
				ap.Activate(extents - 2)
				if err := ap.Commit(); err != nil {
					t.Fatal(err)
				}
				after = ap.Active()
			}
			if slices.Equal(after, before) {
				t.Fatal("the transaction changes nothing")
			}

			// The whole path (commit, failed sync, power cut, Open) for
			// every tear point of the small log, a few of the large one ...
			var tx memWrite
			points := []int{0, 1, 8, 47, 48, 2048, alCRC, alCRC + 3, BlockSize}
			if capacity == MinALExtents {
				points = points[:0]
				for k := range BlockSize + 1 {
					points = append(points, k)
				}
			}
			for _, k := range points {
				dk := d.Clone()
				ck := c
				ck.Device = dk
				ak := reopen(t, ck).AL()
				ak.Activate(extents - 1)
				ak.Activate(extents - 2)
				dk.FailSync(0, errInjected)
				if err := ak.Commit(); !errors.Is(err, errInjected) {
					t.Fatalf("Commit with failing sync = %v", err)
				}
				if dk.Pending() != 1 {
					t.Fatalf("%d writes pending, want only the transaction", dk.Pending())
				}
				tx = dk.pending[0]
				dk.CrashAfter(0, k)
				got := reopen(t, ck).AL()
				checkTorn(t, k, got, before, after, beforeSeq)
			}

			// ... and the replay of the ring for every tear point of both.
			l := reopen(t, c).Layout()
			ring := make([]byte, l.ALSize())
			if _, err := d.ReadAt(ring, l.ALOffset); err != nil {
				t.Fatal(err)
			}
			slot := tx.off - l.ALOffset
			m := reopen(t, c)
			for k := 0; k <= BlockSize; k++ {
				rk := append([]byte(nil), ring...)
				copy(rk[slot:], tx.data[:k])
				got := newActivityLog(m, capacity)
				got.load(rk, m.uuid, l.Extents())
				checkTorn(t, k, got, before, after, beforeSeq)
			}
		})
	}
}

// checkTorn checks the log after a transaction was torn after k bytes: as
// before unless the whole transaction arrived.
func checkTorn(t *testing.T, k int, got *ActivityLog, before, after []uint32, beforeSeq uint64) {
	t.Helper()
	want, wantSeq := before, beforeSeq
	if k == BlockSize {
		want, wantSeq = after, beforeSeq+1
	}
	if !slices.Equal(got.Active(), want) || got.Seq() != wantSeq || got.Lost() != "" {
		t.Fatalf("torn after %d bytes: seq %d, lost %q, %d active (%s); want seq %d, %d active (%s)",
			k, got.Seq(), got.Lost(), len(got.Active()), short(got.Active()), wantSeq, len(want), short(want))
	}
}

// TestALEvictionFlushesBitmap checks the invariant the log exists for:
// an extent's dirty bits are on disk before a transaction evicting it is,
// so after a crash every dirty block is in the bitmap or in a hot extent.
func TestALEvictionFlushesBitmap(t *testing.T) {
	// One extent per bitmap page (32 extents apart), so flushing one
	// extent's page writes no other extent's bits.
	const apart = bitsPerPage / BlocksPerExtent
	setup := func(t *testing.T) (*MemDevice, Config, *Meta) {
		d, c := testDev(t, 8*apart*ExtentSize, true, MinALExtents)
		m := create(t, c, MinALExtents)
		for e := range uint32(MinALExtents) {
			activate(t, m.AL(), e*apart)
			m.Bitmap().Set(uint64(e*apart)*BlocksPerExtent+7, 3) // a write the peer missed
			m.AL().Release(e * apart)
		}
		m.AL().Activate(7*apart + 1) // evicts extent 0
		return d, c, m
	}

	t.Run("commit", func(t *testing.T) {
		d, c, m := setup(t)
		if err := m.AL().Commit(); err != nil {
			t.Fatal(err)
		}
		d.Crash()
		m2 := reopen(t, c)
		other := uint64(apart)*BlocksPerExtent + 7
		if m2.AL().IsActive(0) || !m2.Bitmap().Test(7) || m2.Bitmap().Test(other) {
			t.Fatalf("extent 0 evicted: active %v; bit 7 %v (want on disk); extent %d bit %v (want only in the log)",
				m2.AL().Active(), m2.Bitmap().Test(7), apart, m2.Bitmap().Test(other))
		}
	})

	// A crash at every point of the commit: after ApplyAL every bit set
	// before is set again.
	for keep := 0; keep <= 2; keep++ {
		for _, failSync := range []int{0, 1} {
			t.Run(fmt.Sprintf("crash keep=%d sync-ok=%d", keep, failSync), func(t *testing.T) {
				d, c, m := setup(t)
				d.FailSync(failSync, errInjected)
				if err := m.AL().Commit(); err == nil {
					t.Fatal("Commit succeeded with a failing sync")
				}
				d.CrashAfter(keep, 100)
				m2 := reopen(t, c)
				if _, err := m2.ApplyAL(); err != nil {
					t.Fatal(err)
				}
				for e := range uint64(MinALExtents) {
					if !m2.Bitmap().Test(e*apart*BlocksPerExtent + 8) {
						t.Errorf("extent %d lost its dirty bit (active after crash: %v)", e, m2.AL().Active())
					}
				}
			})
		}
	}
}

// TestALLost damages the ring so the log cannot be rebuilt: the metadata
// still opens, the loss is reported, Commit refuses until ApplyAL has set
// every bit, and afterwards a new log starts that replays on its own.
func TestALLost(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, d *MemDevice, l Layout, seq uint64)
	}{
		{"short run", func(t *testing.T, d *MemDevice, l Layout, seq uint64) {
			// Without transaction seq-1 the newest alone covers 883 + 64
			// of 2000 slots.
			writeGarbage(t, d, l.ALOffset+int64((seq-1)%uint64(l.ALSlots))*BlockSize)
		}},
		{"no valid transaction", func(t *testing.T, d *MemDevice, l Layout, seq uint64) {
			for i := range l.ALSlots {
				writeGarbage(t, d, l.ALOffset+int64(i)*BlockSize)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, c := testDev(t, 4000*ExtentSize, false, 2000)
			m := create(t, c, 2000)
			a := m.AL()
			for e := range uint32(2000 + 20*alMaxUpdates) {
				activate(t, a, e%4000)
				a.Release(e % 4000)
			}
			tt.damage(t, d, m.Layout(), a.Seq())

			m2 := reopen(t, c)
			a2 := m2.AL()
			if a2.Lost() == "" || len(a2.Active()) != 0 {
				t.Fatalf("damaged ring: lost %q, %d active", a2.Lost(), len(a2.Active()))
			}
			a2.Activate(1)
			if err := a2.Commit(); !errors.Is(err, ErrALNotApplied) {
				t.Fatalf("Commit before ApplyAL = %v, want ErrALNotApplied", err)
			}
			if n, err := m2.ApplyAL(); err != nil || n != 4000 || m2.Bitmap().Count() != m2.Bitmap().Len() {
				t.Fatalf("ApplyAL = %d, %v; %d of %d bits set", n, err, m2.Bitmap().Count(), m2.Bitmap().Len())
			}
			if err := a2.Commit(); err != nil || !a2.IsActive(1) {
				t.Fatalf("Commit after ApplyAL: %v", err)
			}
			m3 := reopen(t, c)
			if m3.AL().Lost() != "" || !slices.Equal(m3.AL().Active(), []uint32{1}) || m3.Bitmap().Count() != m3.Bitmap().Len() {
				t.Fatalf("restarted log: lost %q, active %v, %d bits", m3.AL().Lost(), m3.AL().Active(), m3.Bitmap().Count())
			}
		})
	}
}

func writeGarbage(t *testing.T, d *MemDevice, off int64) {
	t.Helper()
	b := make([]byte, BlockSize)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	if _, err := d.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestALConcurrent runs writers on many goroutines (meaningful with
// -race): each activates, waits for its extent, marks bits, releases.
func TestALConcurrent(t *testing.T) {
	_, c := testDev(t, 256*mib, true, 16)
	m := create(t, c, 16)
	a := m.AL()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := seeded(uint64(g) + 100)
			for range 300 {
				e := uint32(r.Uint64() % 40)
				if a.Activate(e) {
					for !a.IsActive(e) {
						if err := a.Commit(); err != nil {
							errs <- err
							a.Release(e)
							return
						}
					}
				}
				m.Bitmap().Set(uint64(e)*BlocksPerExtent+r.Uint64()%BlocksPerExtent, 1)
				a.Release(e)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := m.Bitmap().Flush(); err != nil {
		t.Fatal(err)
	}
	m2 := reopen(t, c)
	if got, want := m2.AL().Active(), a.Active(); !slices.Equal(got, want) {
		t.Fatalf("reopened %v, in memory %v", got, want)
	}
	if m2.Bitmap().Count() != m.Bitmap().Count() {
		t.Fatalf("bitmap %d bits on disk, %d in memory", m2.Bitmap().Count(), m.Bitmap().Count())
	}
}

// short prints at most a few extents of a list.
func short(xs []uint32) string {
	if len(xs) > 12 {
		return fmt.Sprintf("%v ... %v", xs[:6], xs[len(xs)-6:])
	}
	return fmt.Sprint(xs)
}
