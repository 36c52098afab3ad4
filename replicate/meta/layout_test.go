package meta

import (
	"errors"
	"fmt"
	"testing"
)

func TestNewLayout(t *testing.T) {
	tests := []struct {
		name     string
		size     int64
		internal bool
		al       int
		want     Layout // checked field by field where set
		err      error
	}{
		{name: "zero internal", size: 0, internal: true, err: ErrTooSmall},
		{name: "zero external", size: 0, err: ErrTooSmall},
		{name: "one block internal", size: BlockSize, internal: true, err: ErrTooSmall},
		{name: "just metadata internal", size: 10 * BlockSize, internal: true, err: ErrTooSmall},
		{name: "below minimum external", size: MinDataSize - 1, err: ErrTooSmall},
		{name: "minimum external", size: MinDataSize, want: Layout{
			DataSize: MinDataSize, MetaOffset: 0, MetaSize: (2 + 8 + 1) * BlockSize,
			SuperOffset: [2]int64{0, BlockSize}, ALOffset: 2 * BlockSize, ALSlots: 8, ALExtents: DefaultALExtents,
			BitmapOffset: 10 * BlockSize, BitmapSize: BlockSize,
		}},
		{name: "minimum internal", size: MinDataSize + 11*BlockSize, internal: true, want: Layout{
			DataSize: MinDataSize, MetaOffset: MinDataSize, MetaSize: 11 * BlockSize,
			SuperOffset: [2]int64{MinDataSize + 9*BlockSize, MinDataSize + 10*BlockSize},
			ALOffset:    MinDataSize + BlockSize, ALSlots: 8, ALExtents: DefaultALExtents,
			BitmapOffset: MinDataSize, BitmapSize: BlockSize,
		}},
		{name: "one block short of minimum internal", size: MinDataSize + 11*BlockSize - 1, internal: true, err: ErrTooSmall},
		{name: "not a multiple of 4 KiB external", size: 64*mib + 1000, want: Layout{
			BackingSize: 64*mib + 1000, DataSize: 64 * mib, BitmapSize: BlockSize,
		}},
		{name: "not a multiple of 4 KiB internal", size: 64*mib + 1000, internal: true, want: Layout{
			BackingSize: 64*mib + 1000, DataSize: 64*mib - 11*BlockSize, MetaOffset: 64*mib - 11*BlockSize, MetaSize: 11 * BlockSize,
			SuperOffset: [2]int64{64*mib - 2*BlockSize, 64*mib - BlockSize},
		}},
		{name: "1 GiB internal", size: gib, internal: true, want: Layout{
			// 8 bitmap pages cover 1 GiB; data loses 18 blocks.
			DataSize: gib - 18*BlockSize, BitmapSize: 8 * BlockSize, MetaSize: 18 * BlockSize,
		}},
		{name: "1 TiB external", size: tib, want: Layout{
			DataSize: tib, BitmapSize: 32 * mib, MetaSize: 10*BlockSize + 32*mib,
		}},
		{name: "1 TiB internal", size: tib, internal: true, want: Layout{
			// 8192 pages would cover the whole TiB; the data gives them
			// up plus 10 metadata blocks, so 8192 pages still suffice.
			DataSize: tib - (8192+10)*BlockSize, BitmapSize: 32 * mib,
		}},
		{name: "1 PiB external", size: pib, want: Layout{DataSize: pib, BitmapSize: 32 << 30}},
		{name: "1 PiB + 4 KiB external", size: pib + BlockSize, err: ErrTooLarge},
		{name: "1 PiB internal", size: pib, internal: true},
		{name: "max int64 external", size: 1<<63 - 1, err: ErrTooLarge},
		{name: "max int64 internal", size: 1<<63 - 1, internal: true, err: ErrTooLarge},
		{name: "negative", size: -1, internal: true, err: errAny},
		{name: "max AL", size: gib, al: MaxALExtents, want: Layout{ALExtents: MaxALExtents, ALSlots: 76}},
		{name: "AL above 883 needs 3 windows", size: gib, al: 1800, want: Layout{ALExtents: 1800, ALSlots: 8}},
		{name: "min AL", size: gib, al: MinALExtents, want: Layout{ALExtents: MinALExtents, ALSlots: 8}},
		{name: "AL too small", size: gib, al: MinALExtents - 1, err: errAny},
		{name: "AL too large", size: gib, al: MaxALExtents + 1, err: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := NewLayout(tt.size, tt.internal, tt.al)
			if tt.err != nil {
				if err == nil || (tt.err != errAny && !errors.Is(err, tt.err)) {
					t.Fatalf("NewLayout(%d, %v, %d) = %+v, %v; want error %v", tt.size, tt.internal, tt.al, l, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewLayout(%d, %v, %d): %v", tt.size, tt.internal, tt.al, err)
			}
			checkLayout(t, l)
			w := tt.want
			check := func(field string, got, want int64) {
				if want != 0 && got != want {
					t.Errorf("%s = %d, want %d (layout %+v)", field, got, want, l)
				}
			}
			check("BackingSize", l.BackingSize, w.BackingSize)
			check("DataSize", l.DataSize, w.DataSize)
			check("MetaOffset", l.MetaOffset, w.MetaOffset)
			check("MetaSize", l.MetaSize, w.MetaSize)
			check("SuperOffset[0]", l.SuperOffset[0], w.SuperOffset[0])
			check("SuperOffset[1]", l.SuperOffset[1], w.SuperOffset[1])
			check("ALOffset", l.ALOffset, w.ALOffset)
			check("ALSlots", int64(l.ALSlots), int64(w.ALSlots))
			check("ALExtents", int64(l.ALExtents), int64(w.ALExtents))
			check("BitmapOffset", l.BitmapOffset, w.BitmapOffset)
			check("BitmapSize", l.BitmapSize, w.BitmapSize)
		})
	}
}

var errAny = errors.New("any error")

// checkLayout verifies the invariants every layout must have: aligned,
// disjoint regions inside the device, a bitmap large enough for the data,
// a ring long enough for replay, and data never overlapping metadata.
func checkLayout(t *testing.T, l Layout) {
	t.Helper()
	type region struct {
		name     string
		off, len int64
	}
	regions := []region{
		{"superblock 0", l.SuperOffset[0], superSize},
		{"superblock 1", l.SuperOffset[1], superSize},
		{"activity log", l.ALOffset, l.ALSize()},
		{"bitmap", l.BitmapOffset, l.BitmapSize},
	}
	metaEnd := l.MetaOffset + l.MetaSize
	if l.Internal {
		regions = append(regions, region{"data", 0, l.DataSize})
		if metaEnd != l.BackingSize/BlockSize*BlockSize {
			t.Errorf("internal metadata ends at %d, want the aligned device end %d", metaEnd, l.BackingSize/BlockSize*BlockSize)
		}
		if l.MetaOffset != l.DataSize {
			t.Errorf("MetaOffset %d != DataSize %d", l.MetaOffset, l.DataSize)
		}
	} else if l.DataSize != l.BackingSize/BlockSize*BlockSize {
		t.Errorf("external DataSize %d, want the aligned backing size", l.DataSize)
	}
	for i, r := range regions {
		if r.off%BlockSize != 0 || r.len%BlockSize != 0 || r.len <= 0 {
			t.Errorf("%s [%d,+%d) not aligned or empty", r.name, r.off, r.len)
		}
		if r.name != "data" && (r.off < l.MetaOffset || r.off+r.len > metaEnd) {
			t.Errorf("%s [%d,+%d) outside the metadata area [%d,%d)", r.name, r.off, r.len, l.MetaOffset, metaEnd)
		}
		for _, o := range regions[i+1:] {
			if r.off < o.off+o.len && o.off < r.off+r.len {
				t.Errorf("%s [%d,+%d) overlaps %s [%d,+%d)", r.name, r.off, r.len, o.name, o.off, o.len)
			}
		}
	}
	if need := (int64(l.Bits()) + bitsPerPage - 1) / bitsPerPage * BlockSize; l.BitmapSize != need {
		t.Errorf("bitmap %d bytes, %d bits need %d", l.BitmapSize, l.Bits(), need)
	}
	if per := alContextFor(l.ALExtents); (l.ALSlots-1)*per < l.ALExtents {
		t.Errorf("ring of %d slots with windows of %d cannot cover %d extents with one torn slot", l.ALSlots, per, l.ALExtents)
	}
	if l.DataSize < MinDataSize || l.DataSize > MaxDataSize || l.DataSize%BlockSize != 0 {
		t.Errorf("DataSize %d out of range or unaligned", l.DataSize)
	}
}

// TestInternalLayoutOptimal compares the data size with a brute-force
// search around every bitmap page boundary: no larger data area fits.
func TestInternalLayoutOptimal(t *testing.T) {
	fixed := int64(2 + 8) // superblocks + default ring, in blocks
	for _, pages := range []int64{1, 2, 3, 8, 100} {
		for delta := int64(-3); delta <= 3; delta++ {
			for _, extra := range []int64{0, 1, 4095} {
				avail := pages*(bitsPerPage+1) + delta // blocks for data + bitmap
				if avail*BlockSize < MinDataSize+BlockSize {
					continue
				}
				size := (avail+fixed)*BlockSize + extra
				t.Run(fmt.Sprintf("avail=%d,extra=%d", avail, extra), func(t *testing.T) {
					l, err := NewLayout(size, true, 0)
					if err != nil {
						t.Fatal(err)
					}
					checkLayout(t, l)
					best := int64(0)
					for d := avail; d > 0; d-- {
						if d+(d+bitsPerPage-1)/bitsPerPage <= avail {
							best = d
							break
						}
					}
					if got := l.DataSize / BlockSize; got != best {
						t.Errorf("data %d blocks, brute force finds %d", got, best)
					}
				})
			}
		}
	}
}

// TestLayoutSweep checks the invariants for many sizes of both kinds.
func TestLayoutSweep(t *testing.T) {
	r := seeded(7)
	var sizes []int64
	for s := int64(MinDataSize); s < 8*MinDataSize; s += 4093 {
		sizes = append(sizes, s)
	}
	for range 2000 {
		sizes = append(sizes, int64(r.Uint64()%uint64(pib)))
	}
	for _, size := range sizes {
		for _, internal := range []bool{false, true} {
			for _, al := range []int{MinALExtents, 0, 5000} {
				l, err := NewLayout(size, internal, al)
				if errors.Is(err, ErrTooSmall) {
					continue
				}
				if err != nil {
					t.Fatalf("NewLayout(%d, %v, %d): %v", size, internal, al, err)
				}
				checkLayout(t, l)
				if t.Failed() {
					t.Fatalf("layout %+v", l)
				}
			}
		}
	}
}

func TestBlocksAndExtents(t *testing.T) {
	tests := []struct {
		off, n        int64
		first, cnt    uint64
		efirst, elast uint32
	}{
		{0, 1, 0, 1, 0, 0},
		{0, BlockSize, 0, 1, 0, 0},
		{1, BlockSize, 0, 2, 0, 0},
		{BlockSize - 1, 2, 0, 2, 0, 0},
		{ExtentSize - BlockSize, 2 * BlockSize, BlocksPerExtent - 1, 2, 0, 1},
		{3 * ExtentSize, 1 << 20, 3 * BlocksPerExtent, 256, 3, 3},
		{10 * BlockSize, 0, 10, 0, 0, 0},
	}
	for _, tt := range tests {
		first, cnt := Blocks(tt.off, tt.n)
		if first != tt.first || cnt != tt.cnt {
			t.Errorf("Blocks(%d, %d) = %d, %d; want %d, %d", tt.off, tt.n, first, cnt, tt.first, tt.cnt)
		}
		if tt.n > 0 {
			ef, el := Extents(tt.off, tt.n)
			if ef != tt.efirst || el != tt.elast {
				t.Errorf("Extents(%d, %d) = %d, %d; want %d, %d", tt.off, tt.n, ef, el, tt.efirst, tt.elast)
			}
		}
	}
}
