package meta

import (
	"fmt"
	"io"
	"sync"
)

// MemDevice is an in-memory Device for tests, modelled on a disk with a
// volatile write cache: reads see every write, but only writes followed
// by a Sync survive a Crash. A crash can also tear the first lost write
// after any byte, the worst a real disk can do to it. Storage is sparse
// (4 KiB pages allocated on first write), so a large device costs only
// what is written. It is safe for concurrent use. The replication
// engine's tests can use it for the backing store too.
type MemDevice struct {
	mu       sync.Mutex
	size     int64
	cur      pages // what reads see
	durable  pages // what survives a crash
	pending  []memWrite
	syncOK   int   // syncs that still succeed before syncErr applies (-1: forever)
	syncErr  error // returned once syncOK is used up
	writeErr error // returned by every WriteAt while set
	writes   int
	syncs    int
}

type memWrite struct {
	off  int64
	data []byte
}

// pages is a sparse byte array: absent pages read as zeros.
type pages map[int64][]byte

func (p pages) read(b []byte, off int64) {
	for len(b) > 0 {
		idx, in := off/BlockSize, off%BlockSize
		n := min(int64(len(b)), BlockSize-in)
		if pg, ok := p[idx]; ok {
			copy(b[:n], pg[in:])
		} else {
			clear(b[:n])
		}
		b, off = b[n:], off+n
	}
}

func (p pages) write(b []byte, off int64) {
	for len(b) > 0 {
		idx, in := off/BlockSize, off%BlockSize
		n := min(int64(len(b)), BlockSize-in)
		pg, ok := p[idx]
		if !ok {
			if allZero(b[:n]) {
				// Still zero: stay sparse.
				b, off = b[n:], off+n
				continue
			}
			pg = make([]byte, BlockSize)
			p[idx] = pg
		}
		copy(pg[in:], b[:n])
		b, off = b[n:], off+n
	}
}

func (p pages) clone() pages {
	c := make(pages, len(p))
	for i, pg := range p {
		c[i] = append([]byte(nil), pg...)
	}
	return c
}

// NewMemDevice returns a zero-filled device of size bytes.
func NewMemDevice(size int64) *MemDevice {
	return &MemDevice{size: size, cur: pages{}, durable: pages{}, syncOK: -1}
}

// Size is the device size in bytes.
func (d *MemDevice) Size() int64 { return d.size }

// ReadAt reads from what was written, synced or not. Past the end it
// returns io.EOF like a file.
func (d *MemDevice) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off < 0 {
		return 0, fmt.Errorf("memdevice: negative offset %d", off)
	}
	if off >= d.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), d.size-off))
	d.cur.read(p[:n], off)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt writes p at off, volatile until the next Sync. Writing past the
// end fails, as on a block device.
func (d *MemDevice) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.writeErr != nil {
		return 0, d.writeErr
	}
	if off < 0 || off+int64(len(p)) > d.size {
		return 0, fmt.Errorf("memdevice: write of %d bytes at %d is outside the %d-byte device", len(p), off, d.size)
	}
	d.cur.write(p, off)
	d.pending = append(d.pending, memWrite{off: off, data: append([]byte(nil), p...)})
	d.writes++
	return len(p), nil
}

// Sync makes every write so far durable, unless FailSync says otherwise.
func (d *MemDevice) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.syncOK == 0 {
		return d.syncErr
	}
	if d.syncOK > 0 {
		d.syncOK--
	}
	for _, w := range d.pending {
		d.durable.write(w.data, w.off)
	}
	d.pending = nil
	d.syncs++
	return nil
}

// FailSync makes the syncs after the next ok ones fail with err, leaving
// their writes volatile. FailSync(0, nil) restores normal syncs.
func (d *MemDevice) FailSync(ok int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		d.syncOK, d.syncErr = -1, nil
		return
	}
	d.syncOK, d.syncErr = ok, err
}

// FailWrites makes every WriteAt fail with err; nil restores them.
func (d *MemDevice) FailWrites(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writeErr = err
}

// Counts returns how many writes and successful syncs the device has
// seen, for tests that check how much I/O an operation costs.
func (d *MemDevice) Counts() (writes, syncs int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes, d.syncs
}

// Pending returns the number of writes since the last successful Sync.
func (d *MemDevice) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

// Crash simulates a power cut: every write since the last Sync is lost.
func (d *MemDevice) Crash() { d.CrashAfter(0, 0) }

// CrashAfter simulates a power cut in which the first keep unsynced
// writes reached the disk whole, the next one only its first torn bytes,
// and the rest nothing. Afterwards reads see the durable state and the
// injected failures are cleared, as after a reboot.
func (d *MemDevice) CrashAfter(keep, torn int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, w := range d.pending {
		switch {
		case i < keep:
			d.durable.write(w.data, w.off)
		case i == keep:
			d.durable.write(w.data[:min(torn, len(w.data))], w.off)
		}
	}
	d.cur = d.durable.clone()
	d.pending = nil
	d.syncOK, d.syncErr, d.writeErr = -1, nil, nil
}

// Clone returns an independent copy, unsynced writes and all, so a test
// can crash the same state in many ways.
func (d *MemDevice) Clone() *MemDevice {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := &MemDevice{
		size:     d.size,
		cur:      d.cur.clone(),
		durable:  d.durable.clone(),
		syncOK:   d.syncOK,
		syncErr:  d.syncErr,
		writeErr: d.writeErr,
	}
	for _, w := range d.pending {
		c.pending = append(c.pending, memWrite{off: w.off, data: append([]byte(nil), w.data...)})
	}
	return c
}
