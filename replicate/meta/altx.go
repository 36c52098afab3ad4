package meta

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// An activity-log transaction is one BlockSize block in the ring. The
// active set is an array of ALExtents slots, each empty or holding one
// extent. A transaction records
//
//   - its updates: up to alMaxUpdates (slot, extent) pairs, the extents it
//     makes hot; an extent put in an occupied slot evicts the previous one
//     (the least recently used extent without writes in flight);
//   - a context window: the contents, after the updates, of the next
//     alContextFor(ALExtents) slots in rotation.
//
// Replaying the newest run of transactions in sequence order rebuilds the
// whole array: every slot is either written by a transaction of the run or
// covered by one of its windows. The ring is sized for that (alSlotsFor)
// even when its oldest transaction was being overwritten by a torn write.
// A transaction also carries the sequence number its log started at
// (base); replay never reaches below it, which is how a log that had to be
// abandoned (see ActivityLog.Lost) is restarted without its old entries
// leaking into the new one.
//
// Layout (big-endian):
//
//	0     4  magic "hAL1"
//	4     2  number of updates n (0..64)
//	6     2  number of context entries m (= min(ALExtents, 883))
//	8     8  sequence number (1, 2, ...; the ring slot is seq mod ALSlots)
//	16    8  base: the sequence number this log started at
//	24   16  volume UUID (must match the superblock's)
//	40    4  ALExtents (must match the superblock's)
//	44    4  first slot of the context window
//	48  8*n  updates: slot (4), extent (4)
//	    4*m  context: extent per slot, 0xFFFFFFFF for an empty slot
//	     ..  zero
//	4092  4  CRC32C of bytes 0..4091
const (
	alMagic      = 0x68414c31 // "hAL1"
	alHeaderSize = 48
	alMaxUpdates = 64
	alContextMax = (BlockSize - alHeaderSize - 4 - alMaxUpdates*8) / 4 // 883
	alCRC        = BlockSize - 4

	// alEmpty marks an empty slot. It is never a valid extent number:
	// MaxDataSize has 2^28 extents.
	alEmpty = ^uint32(0)
)

// alContextFor is the context window length for a capacity.
func alContextFor(alExtents int) int { return min(alExtents, alContextMax) }

type alUpdate struct {
	slot   uint32
	extent uint32
}

type alTx struct {
	seq      uint64
	base     uint64
	uuid     VolumeUUID
	capacity uint32
	updates  []alUpdate
	ctxStart uint32
	context  []uint32
}

// encodeTo writes the transaction into b (BlockSize bytes).
func (t *alTx) encodeTo(b []byte) {
	be := binary.BigEndian
	clear(b[:BlockSize])
	be.PutUint32(b[0:], alMagic)
	be.PutUint16(b[4:], uint16(len(t.updates)))
	be.PutUint16(b[6:], uint16(len(t.context)))
	be.PutUint64(b[8:], t.seq)
	be.PutUint64(b[16:], t.base)
	copy(b[24:40], t.uuid[:])
	be.PutUint32(b[40:], t.capacity)
	be.PutUint32(b[44:], t.ctxStart)
	off := alHeaderSize
	for _, u := range t.updates {
		be.PutUint32(b[off:], u.slot)
		be.PutUint32(b[off+4:], u.extent)
		off += 8
	}
	for _, e := range t.context {
		be.PutUint32(b[off:], e)
		off += 4
	}
	be.PutUint32(b[alCRC:], crc32.Checksum(b[:alCRC], crcTable))
}

// decodeALTx parses one ring slot. Every error wraps ErrCorrupt; an
// all-zero slot (never written) is an error too, which the caller tells
// apart with allZero.
func decodeALTx(b []byte) (alTx, error) {
	var t alTx
	be := binary.BigEndian
	if len(b) != BlockSize {
		return t, fmt.Errorf("%w: AL transaction is %d bytes, want %d", ErrCorrupt, len(b), BlockSize)
	}
	if m := be.Uint32(b[0:]); m != alMagic {
		return t, fmt.Errorf("%w: AL transaction magic %08x, want %08x", ErrCorrupt, m, alMagic)
	}
	if got, want := be.Uint32(b[alCRC:]), crc32.Checksum(b[:alCRC], crcTable); got != want {
		return t, fmt.Errorf("%w: AL transaction checksum %08x, computed %08x (torn or damaged write)", ErrCorrupt, got, want)
	}
	n := int(be.Uint16(b[4:]))
	m := int(be.Uint16(b[6:]))
	t.seq = be.Uint64(b[8:])
	t.base = be.Uint64(b[16:])
	copy(t.uuid[:], b[24:40])
	t.capacity = be.Uint32(b[40:])
	t.ctxStart = be.Uint32(b[44:])
	switch {
	case n > alMaxUpdates:
		return t, fmt.Errorf("%w: AL transaction %d has %d updates, at most %d", ErrCorrupt, t.seq, n, alMaxUpdates)
	case t.capacity < MinALExtents || t.capacity > MaxALExtents:
		return t, fmt.Errorf("%w: AL transaction %d for %d extents, want %d..%d", ErrCorrupt, t.seq, t.capacity, MinALExtents, MaxALExtents)
	case m != alContextFor(int(t.capacity)):
		return t, fmt.Errorf("%w: AL transaction %d has %d context entries, want %d", ErrCorrupt, t.seq, m, alContextFor(int(t.capacity)))
	case t.ctxStart >= t.capacity:
		return t, fmt.Errorf("%w: AL transaction %d context starts at slot %d of %d", ErrCorrupt, t.seq, t.ctxStart, t.capacity)
	case t.base == 0 || t.seq < t.base:
		return t, fmt.Errorf("%w: AL transaction %d has base %d", ErrCorrupt, t.seq, t.base)
	}
	off := alHeaderSize
	t.updates = make([]alUpdate, n)
	seen := make(map[uint32]bool, n)
	for i := range t.updates {
		u := alUpdate{slot: be.Uint32(b[off:]), extent: be.Uint32(b[off+4:])}
		if u.slot >= t.capacity || seen[u.slot] {
			return t, fmt.Errorf("%w: AL transaction %d updates slot %d twice or out of %d", ErrCorrupt, t.seq, u.slot, t.capacity)
		}
		seen[u.slot] = true
		t.updates[i] = u
		off += 8
	}
	t.context = make([]uint32, m)
	for i := range t.context {
		t.context[i] = be.Uint32(b[off:])
		off += 4
	}
	if !allZero(b[off:alCRC]) {
		return t, fmt.Errorf("%w: AL transaction %d has data after its entries", ErrCorrupt, t.seq)
	}
	return t, nil
}
