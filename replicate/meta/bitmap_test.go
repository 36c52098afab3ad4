package meta

import (
	"fmt"
	"testing"
)

// model is the naive bitmap the real one is checked against.
type model []bool

func (m model) apply(first, n uint64, v bool) uint64 {
	var changed uint64
	for i := first; i < first+n && i < uint64(len(m)); i++ {
		if m[i] != v {
			m[i] = v
			changed++
		}
	}
	return changed
}

func (m model) count() uint64 {
	var c uint64
	for _, v := range m {
		if v {
			c++
		}
	}
	return c
}

// ranges lists the runs of set bits, in order.
func (m model) ranges() [][2]uint64 {
	var out [][2]uint64
	for i := 0; i < len(m); {
		if !m[i] {
			i++
			continue
		}
		j := i
		for j < len(m) && m[j] {
			j++
		}
		out = append(out, [2]uint64{uint64(i), uint64(j)})
		i = j
	}
	return out
}

func bitmapRanges(b *Bitmap) [][2]uint64 {
	var out [][2]uint64
	for from := uint64(0); ; {
		s, e, ok := b.NextRange(from)
		if !ok {
			return out
		}
		out = append(out, [2]uint64{s, e})
		from = e
	}
}

// TestBitmapAgainstModel runs random Set/Clear operations (fixed seed) on
// bitmaps of awkward sizes and compares every answer with the model.
func TestBitmapAgainstModel(t *testing.T) {
	for _, nbits := range []uint64{1, 63, 64, 65, 1000, bitsPerPage - 1, bitsPerPage, bitsPerPage + 1, 3*bitsPerPage + 77} {
		t.Run(fmt.Sprint(nbits), func(t *testing.T) {
			r := seeded(nbits)
			b := newBitmap(nbits)
			m := make(model, nbits)
			for op := range 3000 {
				// Mostly short ranges, some long ones, some past the end.
				first := r.Uint64() % (nbits + 10)
				var n uint64
				switch r.Uint64() % 4 {
				case 0:
					n = 1
				case 1:
					n = r.Uint64() % 130
				case 2:
					n = r.Uint64() % (2 * bitsPerPage)
				default:
					n = r.Uint64() % (nbits + 100)
				}
				set := r.Uint64()%3 != 0
				var got, want uint64
				if set {
					got, want = b.Set(first, n), m.apply(first, n, true)
				} else {
					got, want = b.Clear(first, n), m.apply(first, n, false)
				}
				if got != want {
					t.Fatalf("op %d: set=%v(%d, %d) changed %d, want %d", op, set, first, n, got, want)
				}
				if b.Count() != m.count() {
					t.Fatalf("op %d: Count %d, want %d", op, b.Count(), m.count())
				}
				if op%50 == 0 {
					checkBitmap(t, b, m)
				}
			}
			checkBitmap(t, b, m)
			if added := b.SetAll(); added != nbits-m.count() || b.Count() != nbits {
				t.Fatalf("SetAll added %d, count %d", added, b.Count())
			}
			if s, e, ok := b.NextRange(0); !ok || s != 0 || e != nbits {
				t.Fatalf("NextRange after SetAll = %d, %d, %v", s, e, ok)
			}
		})
	}
}

func checkBitmap(t *testing.T, b *Bitmap, m model) {
	t.Helper()
	for i := range uint64(len(m)) + 3 {
		want := i < uint64(len(m)) && m[i]
		if b.Test(i) != want {
			t.Fatalf("Test(%d) = %v, want %v", i, !want, want)
		}
	}
	got, want := bitmapRanges(b), m.ranges()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ranges\n got %v\nwant %v", got, want)
	}
	for _, from := range []uint64{0, 1, uint64(len(m)) / 2, uint64(len(m)) - 1, uint64(len(m))} {
		i, ok := b.NextSet(from)
		wi, wok := uint64(0), false
		for j := from; j < uint64(len(m)); j++ {
			if m[j] {
				wi, wok = j, true
				break
			}
		}
		if i != wi || ok != wok {
			t.Fatalf("NextSet(%d) = %d, %v; want %d, %v", from, i, ok, wi, wok)
		}
	}
}

// TestBitmapFlushWritesChangedPages checks that Flush writes only the
// pages changed since the last flush, coalesced, and syncs once.
func TestBitmapFlushWritesChangedPages(t *testing.T) {
	d, c := testDev(t, 2*tib/1024, false, 0) // 2 GiB: 16 pages
	m := create(t, c, 0)
	b := m.Bitmap()
	if b.Len() != uint64(2*gib/BlockSize) {
		t.Fatalf("Len = %d", b.Len())
	}
	w0, s0 := d.Counts()
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if w, s := d.Counts(); w != w0 || s != s0 {
		t.Fatalf("clean Flush wrote %d and synced %d times", w-w0, s-s0)
	}
	b.Set(0, 1)                   // page 0
	b.Set(bitsPerPage*3-1, 2)     // pages 2 and 3
	b.Set(bitsPerPage*10+5, 1)    // page 10
	b.Clear(bitsPerPage*12, 1000) // page 12, already clear: no change
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if w, s := d.Counts(); w-w0 != 3 || s-s0 != 1 {
		t.Fatalf("Flush wrote %d runs and synced %d times, want 3 runs (0, 2-3, 10) and 1 sync", w-w0, s-s0)
	}
	m2 := reopen(t, c)
	if got := bitmapRanges(m2.Bitmap()); fmt.Sprint(got) != fmt.Sprint([][2]uint64{{0, 1}, {bitsPerPage*3 - 1, bitsPerPage*3 + 1}, {bitsPerPage*10 + 5, bitsPerPage*10 + 6}}) {
		t.Fatalf("reloaded ranges %v", got)
	}
}

// TestBitmapFlushFailureKeepsPagesDirty checks that a failed flush leaves
// the pages to be written again and fails the metadata.
func TestBitmapFlushFailureKeepsPagesDirty(t *testing.T) {
	d, c := testDev(t, 64*mib, true, 0)
	m := create(t, c, 0)
	m.Bitmap().Set(100, 10)
	d.FailSync(0, errInjected)
	if err := m.Bitmap().Flush(); err == nil {
		t.Fatal("Flush with a failing sync succeeded")
	}
	if err := m.Bitmap().Flush(); err == nil || m.Err() == nil {
		t.Fatalf("second Flush = %v, Err = %v; want the sticky failure", err, m.Err())
	}
	d.Crash()
	if got := reopen(t, c).Bitmap().Count(); got != 0 {
		t.Fatalf("unsynced bits survived the crash: %d", got)
	}
	// A fresh Meta on the healed device writes the page again.
	d.FailSync(0, nil)
	m = reopen(t, c)
	m.Bitmap().Set(100, 10)
	if err := m.Bitmap().Flush(); err != nil {
		t.Fatal(err)
	}
	d.Crash()
	if got := reopen(t, c).Bitmap().Count(); got != 10 {
		t.Fatalf("after a synced flush and a crash: %d bits, want 10", got)
	}
}

// TestBitmapOneTiB checks that a 1 TiB bitmap (2^28 bits, 32 MiB) is
// cheap to scan when sparse and when full.
func TestBitmapOneTiB(t *testing.T) {
	b := newBitmap(1 << 28)
	if len(b.words)*8 != 32<<20 {
		t.Fatalf("%d bytes of words, want 32 MiB", len(b.words)*8)
	}
	b.Set(5, 1)
	b.Set(1<<27, 1000)
	b.Set(1<<28-1, 1)
	want := [][2]uint64{{5, 6}, {1 << 27, 1<<27 + 1000}, {1<<28 - 1, 1 << 28}}
	if got := bitmapRanges(b); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ranges %v, want %v", got, want)
	}
	b.SetAll()
	b.Clear(1<<20, 1)
	if got := bitmapRanges(b); len(got) != 2 || b.Count() != 1<<28-1 {
		t.Fatalf("after SetAll and one Clear: %d ranges, count %d", len(got), b.Count())
	}
}

func BenchmarkBitmapSet4K(b *testing.B) {
	bm := newBitmap(1 << 28)
	r := seeded(1)
	for b.Loop() {
		bm.Set(r.Uint64()%(1<<28), 1)
	}
}

func BenchmarkBitmapScanSparse1TiB(b *testing.B) {
	bm := newBitmap(1 << 28)
	for i := range uint64(100) {
		bm.Set(i*(1<<28)/100, 8)
	}
	for b.Loop() {
		n := len(bitmapRanges(bm))
		if n != 100 {
			b.Fatal(n)
		}
	}
}
