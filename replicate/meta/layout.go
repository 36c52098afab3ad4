package meta

import (
	"fmt"
)

const (
	// BlockSize is the unit of the dirty bitmap (one bit per block) and of
	// every metadata read and write: offsets, lengths and buffers are all
	// multiples of it, so the metadata device may be opened with O_DIRECT.
	BlockSize = 4096
	// ExtentSize is the unit of the activity log. 4 MiB as in DRBD: large
	// enough that a sequential writer commits one transaction per 4 MiB,
	// small enough that resyncing the whole log after a crash stays short.
	ExtentSize = 4 << 20
	// BlocksPerExtent is the number of bitmap bits of one extent.
	BlocksPerExtent = ExtentSize / BlockSize

	// DefaultALExtents is the activity log's default capacity: 1237
	// extents, about 4.8 GiB that a crashed primary has to resync. It is
	// DRBD's default al-extents, so operators coming from DRBD get the
	// trade-off they know: more extents mean fewer synchronous AL writes
	// under a scattered write load and a longer resync after a crash.
	DefaultALExtents = 1237
	// MinALExtents and MaxALExtents bound the capacity (DRBD's limits).
	MinALExtents = 7
	MaxALExtents = 65534

	// MinDataSize is the smallest usable data area Create accepts.
	MinDataSize = 1 << 20
	// MaxDataSize is the largest: 1 PiB, DRBD's limit on 64-bit hosts.
	// Its bitmap is 32 GiB of memory, so this is a sanity bound, not an
	// invitation.
	MaxDataSize = 1 << 50

	superSize   = BlockSize // one superblock copy
	superCopies = 2
	bitsPerPage = BlockSize * 8 // bitmap bits in one 4 KiB page: 128 MiB of data
	alMinSlots  = 8             // smallest ring, 32 KiB (DRBD's default ring size)
)

// Layout says where everything lives. Offsets are bytes in the metadata
// device: the backing device itself when Internal, the metadata file
// otherwise. The data area is always [0, DataSize) of the backing device;
// the engine must never read or write at or beyond DataSize.
//
// Internal metadata sits at the end of the backing device, data first:
//
//	[0, DataSize)  data | bitmap | (slack) | activity log | superblock 0 | superblock 1 |
//
// so the superblocks are always the last 8 KiB of the (4 KiB-aligned)
// device and can be found from the device size alone. An external file
// holds the same parts in the opposite order, superblocks at offset 0:
//
//	superblock 0 | superblock 1 | activity log | bitmap
//
// A Layout is a pure function of (BackingSize, Internal, ALExtents); see
// NewLayout. The superblock records it and Open recomputes and compares it.
type Layout struct {
	Internal    bool
	BackingSize int64 // size of the backing (data) device in bytes, as given
	DataSize    int64 // usable bytes, a multiple of BlockSize
	MetaOffset  int64 // start of the metadata area (internal: == DataSize; external: 0)
	MetaSize    int64 // length of the metadata area (external: the file size)

	SuperOffset [superCopies]int64 // the two superblock copies, BlockSize each

	ALOffset  int64 // the activity-log ring, ALSlots transactions of BlockSize
	ALSlots   int   // ring length in transactions
	ALExtents int   // capacity of the active set, in extents

	BitmapOffset int64 // the dirty bitmap, whole pages
	BitmapSize   int64 // bytes, a multiple of BlockSize
}

// Bits is the number of bitmap bits: one per BlockSize of data.
func (l Layout) Bits() uint64 { return uint64(l.DataSize) / BlockSize }

// Extents is the number of activity-log extents covering the data (the
// last one may be partial).
func (l Layout) Extents() uint64 {
	return (uint64(l.DataSize) + ExtentSize - 1) / ExtentSize
}

// ALSize is the length of the activity-log ring in bytes.
func (l Layout) ALSize() int64 { return int64(l.ALSlots) * BlockSize }

// alSlotsFor is the ring length for a capacity: enough transactions that
// the newest run, minus one torn transaction, carries a context window
// for every slot (see al.go), and never fewer than alMinSlots.
func alSlotsFor(alExtents int) int {
	per := alContextFor(alExtents)
	n := (alExtents+per-1)/per + 1
	return max(n, alMinSlots)
}

// NewLayout computes the layout for a backing device of backingSize bytes
// with an activity log of alExtents (0 means DefaultALExtents).
//
// A trailing partial block of the backing device is never used. For
// internal metadata the data size is the largest multiple of BlockSize
// whose bitmap still fits next to it.
func NewLayout(backingSize int64, internal bool, alExtents int) (Layout, error) {
	if alExtents == 0 {
		alExtents = DefaultALExtents
	}
	if alExtents < MinALExtents || alExtents > MaxALExtents {
		return Layout{}, fmt.Errorf("meta: activity log of %d extents, want %d..%d", alExtents, MinALExtents, MaxALExtents)
	}
	if backingSize < 0 {
		return Layout{}, fmt.Errorf("meta: negative backing size %d", backingSize)
	}
	l := Layout{
		Internal:    internal,
		BackingSize: backingSize,
		ALExtents:   alExtents,
		ALSlots:     alSlotsFor(alExtents),
	}
	blocks := backingSize / BlockSize // whole blocks of the backing device
	fixed := int64(superCopies) + int64(l.ALSlots)

	if !internal {
		data := blocks
		if err := checkDataSize(data*BlockSize, backingSize, internal); err != nil {
			return Layout{}, err
		}
		pages := (data + bitsPerPage - 1) / bitsPerPage
		l.DataSize = data * BlockSize
		l.SuperOffset = [superCopies]int64{0, superSize}
		l.ALOffset = superCopies * superSize
		l.BitmapOffset = l.ALOffset + l.ALSize()
		l.BitmapSize = pages * BlockSize
		l.MetaOffset = 0
		l.MetaSize = l.BitmapOffset + l.BitmapSize
		return l, nil
	}

	// Internal: avail blocks are shared between data (d) and bitmap pages
	// (p), with d + p <= avail and p >= ceil(d / bitsPerPage). Taking
	// p = ceil(avail / (bitsPerPage+1)) and d = avail - p is the largest
	// such d: one more data block would need p-1 pages to fit, and p-1
	// pages cover fewer than avail-p+1 blocks by the choice of p. When d
	// lands exactly on a page boundary one page is left unused (slack).
	avail := blocks - fixed
	if avail <= 0 {
		return Layout{}, fmt.Errorf("meta: %w: a %d-byte device cannot hold the %d bytes of internal metadata", ErrTooSmall, backingSize, fixed*BlockSize)
	}
	p := (avail + bitsPerPage) / (bitsPerPage + 1)
	d := avail - p
	if err := checkDataSize(d*BlockSize, backingSize, internal); err != nil {
		return Layout{}, err
	}
	pages := (d + bitsPerPage - 1) / bitsPerPage
	end := blocks * BlockSize
	l.DataSize = d * BlockSize
	l.BitmapOffset = l.DataSize
	l.BitmapSize = pages * BlockSize
	l.SuperOffset = [superCopies]int64{end - 2*superSize, end - superSize}
	l.ALOffset = l.SuperOffset[0] - l.ALSize()
	l.MetaOffset = l.DataSize
	l.MetaSize = end - l.DataSize
	return l, nil
}

func checkDataSize(data, backing int64, internal bool) error {
	where := "external"
	if internal {
		where = "internal"
	}
	if data < MinDataSize {
		return fmt.Errorf("meta: %w: a %d-byte backing device leaves %d bytes of data with %s metadata, want at least %d",
			ErrTooSmall, backing, data, where, MinDataSize)
	}
	if data > MaxDataSize {
		return fmt.Errorf("meta: %w: a %d-byte backing device gives %d bytes of data, at most %d (1 PiB) are supported",
			ErrTooLarge, backing, data, int64(MaxDataSize))
	}
	return nil
}

// superblockOffsets is where the two superblock copies of a device of
// backingSize bytes are. It does not depend on the activity log or bitmap,
// which is what lets Open find the superblock before it knows them.
func superblockOffsets(backingSize int64, internal bool) ([superCopies]int64, error) {
	if !internal {
		return [superCopies]int64{0, superSize}, nil
	}
	end := backingSize / BlockSize * BlockSize
	if end < superCopies*superSize {
		return [superCopies]int64{}, fmt.Errorf("meta: %w: a %d-byte device cannot hold a superblock", ErrTooSmall, backingSize)
	}
	return [superCopies]int64{end - 2*superSize, end - superSize}, nil
}

// ExtentOf returns the activity-log extent holding byte offset off.
func ExtentOf(off int64) uint32 { return uint32(off / ExtentSize) }

// Extents returns the first and last extent touched by the byte range
// [off, off+n). n must be positive.
func Extents(off, n int64) (first, last uint32) {
	return ExtentOf(off), ExtentOf(off + n - 1)
}

// Blocks returns the bitmap bits covering the byte range [off, off+n),
// rounded outwards: every block the range touches. This is the range to
// Set when a write may have changed it.
func Blocks(off, n int64) (first, count uint64) {
	if n <= 0 {
		return uint64(off) / BlockSize, 0
	}
	first = uint64(off) / BlockSize
	end := (uint64(off+n) + BlockSize - 1) / BlockSize
	return first, end - first
}
