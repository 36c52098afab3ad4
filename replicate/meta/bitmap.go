package meta

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"
)

// Bitmap is the dirty bitmap: one bit per BlockSize of data, set when the
// block may differ from the peer. Bits are set by the write path and
// cleared only by an explicit Clear (a finished resync of those blocks);
// nothing here clears a bit by rule, because a dropped bit is silently
// lost data on the peer.
//
// In memory it is a flat []uint64 (32 MiB for 1 TiB of data) plus one
// population count per 4 KiB page, which makes Count O(1) and lets the
// resync scan skip clean 128 MiB stretches at once. Pages changed since
// the last flush are remembered and Flush writes only those. It is safe
// for concurrent use.
//
// On disk, bit i is bit i%8 of byte i/8 (least significant first), so the
// words are stored little-endian. A torn bitmap page needs no checksum: a
// bit set in memory belongs to an extent in the activity log until its
// page is flushed (see ActivityLog.Commit), and after a crash ApplyAL sets
// the bits of every such extent again.
type Bitmap struct {
	dev    Device
	offset int64 // of the bitmap area on dev
	m      *Meta // for the sticky failure; nil in tests of the bitmap alone

	flushMu sync.Mutex // one Flush at a time

	mu        sync.Mutex
	nbits     uint64
	words     []uint64 // whole pages; bits at and beyond nbits are always 0
	pageCount []uint32 // set bits per page
	count     uint64
	dirty     []uint64 // one bit per page changed since it was last written
}

const wordsPerPage = BlockSize / 8

func newBitmap(nbits uint64) *Bitmap {
	pages := (nbits + bitsPerPage - 1) / bitsPerPage
	return &Bitmap{
		nbits:     nbits,
		words:     make([]uint64, pages*wordsPerPage),
		pageCount: make([]uint32, pages),
		dirty:     make([]uint64, (pages+63)/64),
	}
}

// Len is the number of bits: the number of BlockSize blocks of data.
func (b *Bitmap) Len() uint64 { return b.nbits }

// Count is the number of set bits.
func (b *Bitmap) Count() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count
}

// Test reports whether bit i is set.
func (b *Bitmap) Test(i uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i >= b.nbits {
		return false
	}
	return b.words[i/64]&(1<<(i%64)) != 0
}

// Set sets the n bits from first (clipped to Len) and returns how many
// were clear before.
func (b *Bitmap) Set(first, n uint64) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.apply(first, n, true)
}

// Clear clears the n bits from first (clipped to Len) and returns how many
// were set before. Only a completed resync of those blocks may call it.
func (b *Bitmap) Clear(first, n uint64) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.apply(first, n, false)
}

// SetAll sets every bit (a full sync) and returns how many were clear.
func (b *Bitmap) SetAll() uint64 { return b.Set(0, b.nbits) }

// apply sets or clears a range word by word, keeping the counts and
// dirty marks current. Caller holds mu.
func (b *Bitmap) apply(first, n uint64, set bool) uint64 {
	if first >= b.nbits || n == 0 {
		return 0
	}
	end := b.nbits
	if n < end-first {
		end = first + n
	}
	var changed uint64
	for i := first; i < end; {
		w := i / 64
		lo := i % 64
		hi := uint64(64)
		if end-w*64 < 64 {
			hi = end - w*64
		}
		mask := ^uint64(0) >> (64 - (hi - lo)) << lo
		old := b.words[w]
		nw := old &^ mask
		if set {
			nw = old | mask
		}
		if nw != old {
			b.words[w] = nw
			page := w / wordsPerPage
			oc, nc := bits.OnesCount64(old), bits.OnesCount64(nw)
			b.pageCount[page] = uint32(int(b.pageCount[page]) + nc - oc)
			if set {
				changed += uint64(nc - oc)
			} else {
				changed += uint64(oc - nc)
			}
			b.dirty[page/64] |= 1 << (page % 64)
		}
		i = (w + 1) * 64
	}
	if set {
		b.count += changed
	} else {
		b.count -= changed
	}
	return changed
}

// NextSet returns the first set bit at or after from.
func (b *Bitmap) NextSet(from uint64) (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nextSet(from)
}

func (b *Bitmap) nextSet(from uint64) (uint64, bool) {
	for from < b.nbits {
		w := from / 64
		page := w / wordsPerPage
		if b.pageCount[page] == 0 {
			from = (page + 1) * bitsPerPage
			continue
		}
		if x := b.words[w] >> (from % 64); x != 0 {
			i := from + uint64(bits.TrailingZeros64(x))
			return i, i < b.nbits
		}
		from = (w + 1) * 64
	}
	return 0, false
}

// nextClear returns the first clear bit at or after from, or nbits.
func (b *Bitmap) nextClear(from uint64) uint64 {
	for from < b.nbits {
		w := from / 64
		page := w / wordsPerPage
		if b.pageCount[page] == bitsPerPage {
			from = (page + 1) * bitsPerPage
			continue
		}
		if x := ^b.words[w] >> (from % 64); x != 0 {
			return min(from+uint64(bits.TrailingZeros64(x)), b.nbits)
		}
		from = (w + 1) * 64
	}
	return b.nbits
}

// NextRange returns the first run of set bits at or after from, as
// [start, end): the resync walks the device in order with it, calling
// Clear for what it copied and asking again from end. Runs are not
// limited in length; the caller cuts them to its request size.
func (b *Bitmap) NextRange(from uint64) (start, end uint64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	start, ok = b.nextSet(from)
	if !ok {
		return 0, 0, false
	}
	return start, b.nextClear(start), true
}

// Flush writes every page changed since it was last written and syncs
// the device; it returns once they are durable.
func (b *Bitmap) Flush() error {
	return b.flush(nil)
}

// flushExtents writes the changed pages holding the given extents'
// bits and syncs, if there are any. The activity log calls it before it
// evicts those extents.
func (b *Bitmap) flushExtents(exts []uint32) error {
	if len(exts) == 0 {
		return nil
	}
	pages := make(map[uint64]bool, len(exts))
	for _, e := range exts {
		first := uint64(e) * BlocksPerExtent
		pages[first/bitsPerPage] = true // an extent never spans two pages
	}
	return b.flush(pages)
}

// flush writes the dirty pages (only those in only, when not nil) as runs
// of adjacent pages, then syncs. The pages are copied and marked clean
// under mu, so writers are not held up by the I/O; a page changed during
// the write is marked dirty again and goes out with the next flush.
func (b *Bitmap) flush(only map[uint64]bool) error {
	if b.m != nil {
		if err := b.m.failedErr(); err != nil {
			return err
		}
	}
	b.flushMu.Lock()
	defer b.flushMu.Unlock()

	type run struct {
		first uint64
		buf   []byte
	}
	var runs []run
	var pages []uint64
	b.mu.Lock()
	for i, d := range b.dirty {
		for d != 0 {
			page := uint64(i)*64 + uint64(bits.TrailingZeros64(d))
			d &= d - 1
			if only == nil || only[page] {
				pages = append(pages, page)
			}
		}
	}
	const maxRun = 256 // pages per write: 1 MiB
	for k := 0; k < len(pages); {
		j := k + 1
		for j < len(pages) && pages[j] == pages[j-1]+1 && j-k < maxRun {
			j++
		}
		buf := alignedBuf((j - k) * BlockSize)
		for x, page := range pages[k:j] {
			b.encodePage(page, buf[x*BlockSize:(x+1)*BlockSize])
			b.dirty[page/64] &^= 1 << (page % 64)
		}
		runs = append(runs, run{pages[k], buf})
		k = j
	}
	b.mu.Unlock()
	if len(runs) == 0 {
		return nil
	}

	err := func() error {
		for _, r := range runs {
			if err := writeAt(b.dev, r.buf, b.offset+int64(r.first)*BlockSize); err != nil {
				return err
			}
		}
		return b.dev.Sync()
	}()
	if err != nil {
		b.mu.Lock()
		for _, page := range pages {
			b.dirty[page/64] |= 1 << (page % 64)
		}
		b.mu.Unlock()
		err = fmt.Errorf("meta: flush %d bitmap pages: %w", len(pages), err)
		if b.m != nil {
			b.m.fail(err)
		}
		return err
	}
	return nil
}

// encodePage writes page's words little-endian into dst. Caller holds mu.
func (b *Bitmap) encodePage(page uint64, dst []byte) {
	ws := b.words[page*wordsPerPage : (page+1)*wordsPerPage]
	for i, w := range ws {
		binary.LittleEndian.PutUint64(dst[i*8:], w)
	}
}

// loadWords decodes on-disk bytes into the words from index first.
func (b *Bitmap) loadWords(first uint64, src []byte) {
	for i := range uint64(len(src) / 8) {
		b.words[first+i] = binary.LittleEndian.Uint64(src[i*8:])
	}
}

// loaded finishes loading: bits beyond the data end are dropped (they
// are never written as 1 and mean nothing) and the counts computed.
func (b *Bitmap) loaded() {
	if tail := b.nbits % 64; tail != 0 {
		b.words[b.nbits/64] &= 1<<tail - 1
	}
	for i := (b.nbits + 63) / 64; i < uint64(len(b.words)); i++ {
		b.words[i] = 0
	}
	b.count = 0
	for p := range b.pageCount {
		var c int
		for _, w := range b.words[p*wordsPerPage : (p+1)*wordsPerPage] {
			c += bits.OnesCount64(w)
		}
		b.pageCount[p] = uint32(c)
		b.count += uint64(c)
	}
}
