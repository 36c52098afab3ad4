package meta

import (
	"fmt"
	"testing"
)

// TestCrashInvariant runs random workloads of writes (activate, mark dirty
// bits, release), bitmap flushes, superblock updates and resync clears,
// makes a sync fail at a random point and cuts the power at a random
// point of the unsynced writes, tearing one. After Open and ApplyAL:
//
//   - every bit set (and not cleared) before the crash is set: it was in
//     the bitmap on disk or its extent was in the activity log on disk;
//   - the superblock is the last one whose update returned, or the one
//     being written when the power went.
//
// This is the guarantee the replication engine builds on.
func TestCrashInvariant(t *testing.T) {
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := seeded(seed + 1000)
			internal := seed%2 == 0
			d, c := testDev(t, 4*gib, internal, MinALExtents)
			m := create(t, c, MinALExtents)
			extents := uint32(m.Layout().Extents())
			dirty := map[uint64]bool{}
			var held []uint32
			durableID, tryingID := uint32(1), uint32(1)

			failAt := int(r.Uint64() % 150)
			ok := true
			for op := 0; ok && op < 200; op++ {
				if op == failAt {
					d.FailSync(int(r.Uint64()%3), errInjected)
				}
				switch x := r.Uint64() % 10; {
				case x < 5: // a write
					// Mostly a small working set, sometimes anywhere.
					e := uint32(r.Uint64() % 12)
					if r.Uint64()%4 == 0 {
						e = uint32(r.Uint64() % uint64(extents))
					}
					if m.AL().Activate(e) {
						for !m.AL().IsActive(e) && ok {
							ok = m.AL().Commit() == nil
						}
					}
					if !ok {
						break
					}
					first := uint64(e)*BlocksPerExtent + r.Uint64()%BlocksPerExtent
					n := 1 + r.Uint64()%8
					m.Bitmap().Set(first, n)
					for b := first; b < first+n && b < m.Bitmap().Len(); b++ {
						dirty[b] = true
					}
					if len(held) < 4 && r.Uint64()%3 == 0 {
						held = append(held, e)
					} else {
						m.AL().Release(e)
					}
				case x < 6 && len(held) > 0:
					m.AL().Release(held[0])
					held = held[1:]
				case x < 7:
					ok = m.Bitmap().Flush() == nil
				case x < 8:
					tryingID++
					ok = m.Update(func(s *Superblock) error { s.NodeID = tryingID; return nil }) == nil
					if ok {
						durableID = tryingID
					}
				default: // the resync copied some blocks
					b := r.Uint64() % m.Bitmap().Len()
					if s, e, found := m.Bitmap().NextRange(b); found {
						e = min(e, s+1+r.Uint64()%16)
						m.Bitmap().Clear(s, e-s)
						for i := s; i < e; i++ {
							delete(dirty, i)
						}
					}
				}
			}
			pending := d.Pending()
			keep := 0
			if pending > 0 {
				keep = int(r.Uint64() % uint64(pending))
			}
			d.CrashAfter(keep, int(r.Uint64()%(BlockSize+1)))

			m2 := reopen(t, c)
			if id := m2.Super().NodeID; id != durableID && id != tryingID {
				t.Fatalf("superblock node id %d, want %d (durable) or %d (being written)", id, durableID, tryingID)
			}
			if lost := m2.AL().Lost(); lost != "" {
				t.Fatalf("activity log lost: %s", lost)
			}
			if _, err := m2.ApplyAL(); err != nil {
				t.Fatal(err)
			}
			for b := range dirty {
				if !m2.Bitmap().Test(b) {
					t.Fatalf("dirty block %d (extent %d) lost: not in the bitmap, extent not in the log %v",
						b, b/BlocksPerExtent, m2.AL().Active())
				}
			}
		})
	}
}
