package meta

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Config says where a volume's metadata is.
type Config struct {
	// Device holds the metadata: the backing device itself when Internal,
	// otherwise the separate metadata file. The caller opens and closes it.
	Device Device
	// Internal puts the metadata at the end of the backing device.
	Internal bool
	// BackingSize is the size of the backing (data) device in bytes; see
	// BackingSize for open files and block devices.
	BackingSize int64
	// Now stamps superblock writes; nil means time.Now.
	Now func() time.Time
}

// CreateOptions are the parameters of new metadata.
type CreateOptions struct {
	NodeID     uint32
	NodeName   string // up to 63 bytes, shown by Dump and in errors
	VolumeName string // up to 63 bytes
	ALExtents  int    // activity-log capacity; 0 means DefaultALExtents
	// Force overwrites existing metadata. Without it Create refuses with
	// an *ExistsError saying what it found.
	Force bool
	// Rand is the source of the volume UUID; nil means crypto/rand.
	Rand io.Reader
}

// Meta is a volume's open metadata: superblock, dirty bitmap and activity
// log on one Device. Opening writes nothing; every update is explicit and
// returns once durable. After a failed write or sync every later update
// fails with ErrFailed: what reached the disk is then unknown, and the
// engine must stop using the disk (DRBD detaches on a metadata I/O error)
// until it is opened again. Meta is safe for concurrent use.
type Meta struct {
	dev    Device
	layout Layout
	uuid   VolumeUUID
	now    func() time.Time

	superMu sync.Mutex
	sb      Superblock // newest durable copy
	slot    int        // which copy holds sb
	copies  [superCopies]string

	bm *Bitmap
	al *ActivityLog

	failMu sync.Mutex
	failed error
}

func (m *Meta) fail(err error) {
	m.failMu.Lock()
	defer m.failMu.Unlock()
	if m.failed == nil {
		m.failed = err
	}
}

func (m *Meta) failedErr() error {
	m.failMu.Lock()
	defer m.failMu.Unlock()
	if m.failed != nil {
		return fmt.Errorf("meta: %w: earlier: %v", ErrFailed, m.failed)
	}
	return nil
}

// Err returns the failure that stopped updates, or nil.
func (m *Meta) Err() error { return m.failedErr() }

// Layout is where everything is, and DataSize the end of the data.
func (m *Meta) Layout() Layout { return m.layout }

// Super returns the current (durable) superblock.
func (m *Meta) Super() Superblock {
	m.superMu.Lock()
	defer m.superMu.Unlock()
	return m.sb
}

// Bitmap is the dirty bitmap.
func (m *Meta) Bitmap() *Bitmap { return m.bm }

// AL is the activity log.
func (m *Meta) AL() *ActivityLog { return m.al }

// superCopy is one superblock copy as read from disk.
type superCopy struct {
	off int64
	sb  Superblock
	err error
}

// readSupers reads and decodes both superblock copies. Only I/O errors
// are returned; decode errors are in the copies.
func readSupers(c Config) ([superCopies]superCopy, error) {
	var cs [superCopies]superCopy
	offs, err := superblockOffsets(c.BackingSize, c.Internal)
	if err != nil {
		return cs, err
	}
	buf := alignedBuf(superSize)
	for i := range cs {
		cs[i].off = offs[i]
		if _, err := readAt(c.Device, buf, offs[i]); err != nil {
			return cs, fmt.Errorf("meta: superblock %d: %w", i, err)
		}
		// A short read (an external file shorter than 8 KiB) leaves
		// zeros, which decode as "no metadata".
		cs[i].sb, cs[i].err = decodeSuperblock(buf)
	}
	return cs, nil
}

// pickSuper chooses the newest valid copy. A copy of a newer format wins
// over everything: falling back to an older valid copy would silently
// undo what the newer hactl wrote.
func pickSuper(cs [superCopies]superCopy) (int, error) {
	best := -1
	for i, c := range cs {
		if errors.Is(c.err, ErrVersion) {
			return -1, fmt.Errorf("meta: superblock %d at offset %d: %w", i, c.off, c.err)
		}
		if c.err == nil && (best < 0 || c.sb.Seq > cs[best].sb.Seq) {
			best = i
		}
	}
	if best >= 0 {
		return best, nil
	}
	if errors.Is(cs[0].err, ErrNoMetadata) && errors.Is(cs[1].err, ErrNoMetadata) {
		return -1, fmt.Errorf("meta: %w at offsets %d and %d (%v; %v): not initialised with create-md, or the device was resized",
			ErrNoMetadata, cs[0].off, cs[1].off, trimSentinel(cs[0].err, ErrNoMetadata), trimSentinel(cs[1].err, ErrNoMetadata))
	}
	return -1, fmt.Errorf("meta: %w: both superblock copies are invalid: copy 0 at offset %d: %v; copy 1 at offset %d: %v",
		ErrCorrupt, cs[0].off, cs[0].err, cs[1].off, cs[1].err)
}

// trimSentinel drops the "sentinel: " prefix from a detail message that
// is about to be wrapped in the same sentinel again.
func trimSentinel(err, sentinel error) string {
	s := err.Error()
	p := sentinel.Error() + ": "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

func copyState(c superCopy) string {
	if c.err != nil {
		return "invalid: " + c.err.Error()
	}
	return fmt.Sprintf("seq %d, valid", c.sb.Seq)
}

// Open loads the metadata: the newest valid superblock copy, the bitmap
// and the activity log. It writes nothing. Errors wrap ErrNoMetadata,
// ErrVersion, ErrCorrupt or ErrSizeMismatch with what was found.
func Open(c Config) (*Meta, error) {
	cs, err := readSupers(c)
	if err != nil {
		return nil, err
	}
	best, err := pickSuper(cs)
	if err != nil {
		return nil, err
	}
	sb := cs[best].sb
	want, err := NewLayout(c.BackingSize, c.Internal, sb.Layout.ALExtents)
	if err != nil || want != sb.Layout {
		return nil, sizeMismatch(c, sb.Layout, err)
	}
	m := newMeta(c, sb, best)
	for i := range cs {
		m.copies[i] = copyState(cs[i])
	}

	l := m.layout
	ring := alignedBuf(int(l.ALSize()))
	if short, err := readAt(c.Device, ring, l.ALOffset); err != nil {
		return nil, fmt.Errorf("meta: activity log: %w", err)
	} else if short {
		return nil, fmt.Errorf("meta: %w: activity log at offset %d: the metadata device ends early", ErrCorrupt, l.ALOffset)
	}
	m.al.load(ring, sb.VolumeUUID, l.Extents())

	if err := m.readBitmap(); err != nil {
		return nil, err
	}
	return m, nil
}

func sizeMismatch(c Config, got Layout, err error) error {
	kind := func(internal bool) string {
		if internal {
			return "internal"
		}
		return "external"
	}
	if got.Internal != c.Internal {
		return fmt.Errorf("meta: %w: the metadata was created as %s, it is opened as %s", ErrSizeMismatch, kind(got.Internal), kind(c.Internal))
	}
	detail := ""
	if err != nil {
		detail = " (" + err.Error() + ")"
	}
	return fmt.Errorf("meta: %w: the metadata was created for a %d-byte backing device (%d bytes of data), this one is %d bytes%s",
		ErrSizeMismatch, got.BackingSize, got.DataSize, c.BackingSize, detail)
}

// readBitmap loads the bitmap in chunks, so a large one is not held twice.
func (m *Meta) readBitmap() error {
	l := m.layout
	chunk := min(1<<20, l.BitmapSize)
	buf := alignedBuf(int(chunk))
	for off := int64(0); off < l.BitmapSize; off += chunk {
		n := min(chunk, l.BitmapSize-off)
		short, err := readAt(m.dev, buf[:n], l.BitmapOffset+off)
		if err != nil {
			return fmt.Errorf("meta: bitmap: %w", err)
		}
		if short {
			return fmt.Errorf("meta: %w: bitmap at offset %d: the metadata device ends early", ErrCorrupt, l.BitmapOffset+off)
		}
		m.bm.loadWords(uint64(off/8), buf[:n])
	}
	m.bm.loaded()
	return nil
}

func newMeta(c Config, sb Superblock, slot int) *Meta {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	m := &Meta{dev: c.Device, layout: sb.Layout, uuid: sb.VolumeUUID, now: now, sb: sb, slot: slot}
	m.bm = newBitmap(sb.Layout.Bits())
	m.bm.dev, m.bm.offset, m.bm.m = c.Device, sb.Layout.BitmapOffset, m
	m.al = newActivityLog(m, sb.Layout.ALExtents)
	return m
}

// Create initialises metadata: a new volume UUID, Current =
// UUIDJustCreated, an all-clean bitmap, an empty activity log and the
// clean-shutdown flag (the data is not Consistent until a first sync or a
// forced promotion says so). It refuses, with an *ExistsError, when the
// device already holds hactl metadata, valid or not, unless o.Force.
//
// The old superblocks are invalidated first, then the bitmap and log are
// zeroed, then the new superblocks written: a crash at any point leaves
// either the old metadata or none, never a mix.
func Create(c Config, o CreateOptions) (*Meta, error) {
	cs, err := readSupers(c)
	if err != nil {
		return nil, err
	}
	if !o.Force {
		if _, err := pickSuper(cs); err == nil || !errors.Is(err, ErrNoMetadata) {
			return nil, existsError(cs)
		}
	}
	l, err := NewLayout(c.BackingSize, c.Internal, o.ALExtents)
	if err != nil {
		return nil, err
	}
	uuid, err := NewVolumeUUID(o.Rand)
	if err != nil {
		return nil, err
	}
	sb := Superblock{
		Version:    FormatVersion,
		Seq:        1,
		VolumeUUID: uuid,
		NodeID:     o.NodeID,
		NodeName:   o.NodeName,
		VolumeName: o.VolumeName,
		Flags:      FlagCleanShutdown,
		GI:         GI{Current: UUIDJustCreated},
		Layout:     l,
	}
	m := newMeta(c, sb, 0)
	sb.WrittenAt = m.now()
	img, err := sb.encode()
	if err != nil {
		return nil, err
	}

	zero := alignedBuf(int(min(1<<20, max(l.BitmapSize, l.ALSize()))))
	steps := []struct {
		what string
		do   func() error
	}{
		{"invalidate old superblocks", func() error {
			for _, off := range l.SuperOffset {
				if err := writeAt(c.Device, zero[:superSize], off); err != nil {
					return err
				}
			}
			return c.Device.Sync()
		}},
		{"zero activity log and bitmap", func() error {
			if err := writeZeros(c.Device, zero, l.ALOffset, l.ALSize()); err != nil {
				return err
			}
			if err := writeZeros(c.Device, zero, l.BitmapOffset, l.BitmapSize); err != nil {
				return err
			}
			return c.Device.Sync()
		}},
		{"write superblocks", func() error {
			for _, off := range l.SuperOffset {
				if err := writeAt(c.Device, img, off); err != nil {
					return err
				}
			}
			return c.Device.Sync()
		}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return nil, fmt.Errorf("meta: create: %s: %w", s.what, err)
		}
	}
	m.sb = sb
	for i := range m.copies {
		m.copies[i] = copyState(superCopy{sb: sb})
	}
	return m, nil
}

func existsError(cs [superCopies]superCopy) error {
	best, err := pickSuper(cs)
	if err == nil {
		return &ExistsError{Found: cs[best].sb, Valid: true}
	}
	return &ExistsError{Detail: err.Error()}
}

func writeZeros(d Device, zero []byte, off, n int64) error {
	for done := int64(0); done < n; {
		k := min(int64(len(zero)), n-done)
		if err := writeAt(d, zero[:k], off+done); err != nil {
			return err
		}
		done += k
	}
	return nil
}

// Update changes the superblock durably: fn edits a copy, which is written
// with the next sequence number over the older of the two copies and
// synced. It returns once the new state is durable; until then Super
// returns the old one, and if it fails the old one stays current in
// memory (and, thanks to the other copy, on disk). fn may return an error
// to abandon the update. The volume UUID, format version and layout
// cannot change; Seq and WrittenAt are set here.
func (m *Meta) Update(fn func(*Superblock) error) error {
	if err := m.failedErr(); err != nil {
		return err
	}
	m.superMu.Lock()
	defer m.superMu.Unlock()
	next := m.sb
	if err := fn(&next); err != nil {
		return err
	}
	switch {
	case next.VolumeUUID != m.sb.VolumeUUID:
		return errors.New("meta: update: the volume UUID cannot change")
	case next.Version != m.sb.Version:
		return errors.New("meta: update: the format version cannot change")
	case next.Layout != m.sb.Layout:
		return errors.New("meta: update: the layout cannot change")
	}
	next.Seq = m.sb.Seq + 1
	next.WrittenAt = m.now()
	img, err := next.encode()
	if err != nil {
		return fmt.Errorf("meta: update: %w", err)
	}
	slot := 1 - m.slot
	off := m.layout.SuperOffset[slot]
	if err := writeAt(m.dev, img, off); err != nil {
		err = fmt.Errorf("meta: update superblock %d: %w", slot, err)
		m.fail(err)
		return err
	}
	if err := m.dev.Sync(); err != nil {
		err = fmt.Errorf("meta: update superblock %d: sync: %w", slot, err)
		m.fail(err)
		return err
	}
	m.sb, m.slot = next, slot
	m.copies[slot] = copyState(superCopy{sb: next})
	return nil
}

// ApplyAL marks every block of every extent in the activity log dirty and
// flushes the bitmap: what a node does on attach after an unclean
// shutdown, since those extents may hold writes the peer never got (or,
// for a crashed secondary, lack writes the primary completed). If the log
// was lost (see ActivityLog.Lost) every bit is set instead: a full sync.
// It returns the number of extents applied (all of them when lost) and
// allows Commit again after a lost log.
func (m *Meta) ApplyAL() (int, error) {
	a := m.al
	a.mu.Lock()
	lost := a.lost != ""
	exts := make([]uint32, 0, len(a.where))
	for e := range a.where {
		exts = append(exts, e)
	}
	a.mu.Unlock()

	n := len(exts)
	if lost {
		m.bm.SetAll()
		n = int(m.layout.Extents())
	} else {
		for _, e := range exts {
			m.bm.Set(uint64(e)*BlocksPerExtent, BlocksPerExtent)
		}
	}
	if err := m.bm.Flush(); err != nil {
		return 0, fmt.Errorf("meta: apply activity log: %w", err)
	}
	if lost {
		a.mu.Lock()
		a.lost = ""
		a.mu.Unlock()
	}
	return n, nil
}
