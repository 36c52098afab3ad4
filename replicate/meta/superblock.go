package meta

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// FormatVersion is the on-disk format this package reads and writes.
const FormatVersion = 1

// superMagic starts every superblock copy.
var superMagic = [8]byte{'h', 'a', 'c', 't', 'l', '-', 'm', 'd'}

// crcTable is CRC32C (Castagnoli), as DRBD and ext4 use for metadata; most
// CPUs compute it in hardware.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// maxNameLen is the longest node or volume name the superblock stores.
const maxNameLen = 63

// Superblock field offsets (big-endian); docs/metadata.md has the table.
const (
	sbMagic        = 0
	sbVersion      = 8
	sbBlockSize    = 12
	sbSeq          = 16
	sbWrittenAt    = 24
	sbVolumeUUID   = 32
	sbNodeID       = 48
	sbExtentSize   = 52
	sbFlags        = 56
	sbGICurrent    = 64
	sbGIBitmap     = 72
	sbGIHistory    = 80 // two entries
	sbBackingSize  = 128
	sbDataSize     = 136
	sbMetaOffset   = 144
	sbMetaSize     = 152
	sbSuperOffset  = 160 // two entries
	sbALOffset     = 176
	sbALSlots      = 184
	sbALExtents    = 188
	sbBitmapOffset = 192
	sbBitmapSize   = 200
	sbInternal     = 208
	sbNodeName     = 256
	sbVolumeName   = 320
	sbEnd          = 384 // everything from here to the checksum is zero
	sbCRC          = superSize - 4
)

// reserved byte ranges of a version 1 superblock: must be zero.
var sbReserved = [][2]int{{96, 128}, {209, 256}, {sbEnd, sbCRC}}

// Flags are the superblock's state bits. Unknown bits are kept as they
// are, so a newer hactl's additions survive an older one's updates.
type Flags uint64

const (
	// FlagConsistent: the local data is a consistent image of some
	// generation (clear while a resync target, or before the first sync).
	FlagConsistent Flags = 1 << iota
	// FlagWasUpToDate: the data was UpToDate when last connected, i.e.
	// it is not known to be behind. Cleared when the peer outdates us.
	FlagWasUpToDate
	// FlagPrimary: the node is Primary. Found set on attach without
	// FlagCleanShutdown, it means the node crashed as Primary.
	FlagPrimary
	// FlagCrashedPrimary: the node crashed while Primary and has not yet
	// resynced its activity-log extents with the peer.
	FlagCrashedPrimary
	// FlagPeerOutdated: the peer acknowledged being Outdated (resource
	// fencing), so this node may promote without it.
	FlagPeerOutdated
	// FlagCleanShutdown: the bitmap on disk is complete and the activity
	// log needs no applying. Cleared on attach, set on clean detach.
	FlagCleanShutdown
	// FlagOutdated: this node's data is known to be behind the peer's; it
	// must not be promoted until it has resynced.
	FlagOutdated
	// FlagConnected: the node was connected to its peer when this was
	// written.
	FlagConnected
	// FlagFullSync: a full sync is pending; every bit is to be set on
	// attach. Persisted before the bitmap is filled so a crash in between
	// cannot lose the intent.
	FlagFullSync
)

var flagNames = []struct {
	f    Flags
	name string
}{
	{FlagConsistent, "consistent"},
	{FlagWasUpToDate, "was-up-to-date"},
	{FlagPrimary, "primary"},
	{FlagCrashedPrimary, "crashed-primary"},
	{FlagPeerOutdated, "peer-outdated"},
	{FlagCleanShutdown, "clean-shutdown"},
	{FlagOutdated, "outdated"},
	{FlagConnected, "connected"},
	{FlagFullSync, "full-sync"},
}

// String lists the set flags by name, unknown ones in hex, or "none".
// Has reports whether every bit of g is set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

func (f Flags) String() string {
	var parts []string
	rest := f
	for _, n := range flagNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
			rest &^= n.f
		}
	}
	if rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint64(rest)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// VolumeUUID identifies one Create of a volume's metadata on one node.
// Activity-log transactions carry it so a ring left by an earlier Create
// is never replayed.
type VolumeUUID [16]byte

// NewVolumeUUID returns a random (version 4) UUID from r, crypto/rand when
// nil.
func NewVolumeUUID(r io.Reader) (VolumeUUID, error) {
	if r == nil {
		r = rand.Reader
	}
	var u VolumeUUID
	if _, err := io.ReadFull(r, u[:]); err != nil {
		return u, fmt.Errorf("meta: new volume UUID: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u, nil
}

func (u VolumeUUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// Superblock is the decoded superblock: identity, state and geometry.
type Superblock struct {
	Version    uint32    // FormatVersion on everything written here
	Seq        uint64    // update sequence number, one more per write
	WrittenAt  time.Time // when this copy was written; zero if unknown
	VolumeUUID VolumeUUID
	NodeID     uint32
	NodeName   string // up to 63 bytes of UTF-8, for humans
	VolumeName string // up to 63 bytes of UTF-8, for humans
	Flags      Flags
	GI         GI
	Layout     Layout
}

// encode returns the superblock's BlockSize bytes with its checksum.
func (s *Superblock) encode() ([]byte, error) {
	b := alignedBuf(superSize)
	if err := s.encodeTo(b); err != nil {
		return nil, err
	}
	return b, nil
}

func (s *Superblock) encodeTo(b []byte) error {
	if err := checkName("node", s.NodeName); err != nil {
		return err
	}
	if err := checkName("volume", s.VolumeName); err != nil {
		return err
	}
	be := binary.BigEndian
	clear(b[:superSize])
	copy(b[sbMagic:], superMagic[:])
	be.PutUint32(b[sbVersion:], s.Version)
	be.PutUint32(b[sbBlockSize:], BlockSize)
	be.PutUint64(b[sbSeq:], s.Seq)
	var ns int64
	if !s.WrittenAt.IsZero() {
		ns = s.WrittenAt.UnixNano()
	}
	be.PutUint64(b[sbWrittenAt:], uint64(ns))
	copy(b[sbVolumeUUID:], s.VolumeUUID[:])
	be.PutUint32(b[sbNodeID:], s.NodeID)
	be.PutUint32(b[sbExtentSize:], ExtentSize)
	be.PutUint64(b[sbFlags:], uint64(s.Flags))
	be.PutUint64(b[sbGICurrent:], s.GI.Current)
	be.PutUint64(b[sbGIBitmap:], s.GI.Bitmap)
	be.PutUint64(b[sbGIHistory:], s.GI.History[0])
	be.PutUint64(b[sbGIHistory+8:], s.GI.History[1])
	l := &s.Layout
	be.PutUint64(b[sbBackingSize:], uint64(l.BackingSize))
	be.PutUint64(b[sbDataSize:], uint64(l.DataSize))
	be.PutUint64(b[sbMetaOffset:], uint64(l.MetaOffset))
	be.PutUint64(b[sbMetaSize:], uint64(l.MetaSize))
	be.PutUint64(b[sbSuperOffset:], uint64(l.SuperOffset[0]))
	be.PutUint64(b[sbSuperOffset+8:], uint64(l.SuperOffset[1]))
	be.PutUint64(b[sbALOffset:], uint64(l.ALOffset))
	be.PutUint32(b[sbALSlots:], uint32(l.ALSlots))
	be.PutUint32(b[sbALExtents:], uint32(l.ALExtents))
	be.PutUint64(b[sbBitmapOffset:], uint64(l.BitmapOffset))
	be.PutUint64(b[sbBitmapSize:], uint64(l.BitmapSize))
	if l.Internal {
		b[sbInternal] = 1
	}
	copy(b[sbNodeName:sbNodeName+maxNameLen], s.NodeName)
	copy(b[sbVolumeName:sbVolumeName+maxNameLen], s.VolumeName)
	be.PutUint32(b[sbCRC:], crc32.Checksum(b[:sbCRC], crcTable))
	return nil
}

func checkName(what, name string) error {
	if len(name) > maxNameLen {
		return fmt.Errorf("meta: %s name %q is %d bytes, at most %d fit", what, name, len(name), maxNameLen)
	}
	if strings.IndexByte(name, 0) >= 0 || !utf8.ValidString(name) {
		return fmt.Errorf("meta: %s name %q is not NUL-free UTF-8", what, name)
	}
	return nil
}

// decodeSuperblock parses one superblock copy. Errors wrap ErrNoMetadata
// (wrong magic), ErrVersion (a newer format) or ErrCorrupt (anything
// else), with what was found.
func decodeSuperblock(b []byte) (Superblock, error) {
	var s Superblock
	if len(b) != superSize {
		return s, fmt.Errorf("%w: superblock is %d bytes, want %d", ErrCorrupt, len(b), superSize)
	}
	if !bytes.Equal(b[sbMagic:sbMagic+8], superMagic[:]) {
		if allZero(b) {
			return s, fmt.Errorf("%w: all zeros", ErrNoMetadata)
		}
		return s, fmt.Errorf("%w: wrong magic %q", ErrNoMetadata, b[sbMagic:sbMagic+8])
	}
	be := binary.BigEndian
	// The version is checked before the checksum: a newer format may
	// checksum differently, and it must be reported as newer, not as
	// damaged.
	s.Version = be.Uint32(b[sbVersion:])
	if s.Version > FormatVersion {
		return s, fmt.Errorf("%w: format version %d, this hactl reads version %d; upgrade hactl", ErrVersion, s.Version, FormatVersion)
	}
	if s.Version == 0 {
		return s, fmt.Errorf("%w: format version 0", ErrCorrupt)
	}
	if got, want := be.Uint32(b[sbCRC:]), crc32.Checksum(b[:sbCRC], crcTable); got != want {
		return s, fmt.Errorf("%w: checksum %08x, computed %08x (torn or damaged write)", ErrCorrupt, got, want)
	}
	if v := be.Uint32(b[sbBlockSize:]); v != BlockSize {
		return s, fmt.Errorf("%w: block size %d, want %d", ErrCorrupt, v, BlockSize)
	}
	if v := be.Uint32(b[sbExtentSize:]); v != ExtentSize {
		return s, fmt.Errorf("%w: extent size %d, want %d", ErrCorrupt, v, ExtentSize)
	}
	for _, r := range sbReserved {
		if !allZero(b[r[0]:r[1]]) {
			return s, fmt.Errorf("%w: reserved bytes %d..%d are not zero", ErrCorrupt, r[0], r[1]-1)
		}
	}
	s.Seq = be.Uint64(b[sbSeq:])
	if ns := int64(be.Uint64(b[sbWrittenAt:])); ns != 0 {
		s.WrittenAt = time.Unix(0, ns).UTC()
	}
	copy(s.VolumeUUID[:], b[sbVolumeUUID:])
	s.NodeID = be.Uint32(b[sbNodeID:])
	s.Flags = Flags(be.Uint64(b[sbFlags:]))
	s.GI.Current = be.Uint64(b[sbGICurrent:])
	s.GI.Bitmap = be.Uint64(b[sbGIBitmap:])
	s.GI.History[0] = be.Uint64(b[sbGIHistory:])
	s.GI.History[1] = be.Uint64(b[sbGIHistory+8:])

	var err error
	if s.NodeName, err = decodeName(b[sbNodeName : sbNodeName+64]); err != nil {
		return s, fmt.Errorf("%w: node name: %v", ErrCorrupt, err)
	}
	if s.VolumeName, err = decodeName(b[sbVolumeName : sbVolumeName+64]); err != nil {
		return s, fmt.Errorf("%w: volume name: %v", ErrCorrupt, err)
	}

	internal := b[sbInternal]
	if internal > 1 {
		return s, fmt.Errorf("%w: internal flag %d, want 0 or 1", ErrCorrupt, internal)
	}
	backing := int64(be.Uint64(b[sbBackingSize:]))
	alExtents := be.Uint32(b[sbALExtents:])
	if alExtents < MinALExtents || alExtents > MaxALExtents {
		return s, fmt.Errorf("%w: activity log of %d extents, want %d..%d", ErrCorrupt, alExtents, MinALExtents, MaxALExtents)
	}
	// The geometry is a pure function of three of its fields; the rest
	// is stored so dump-md can show it and so it can be checked here.
	want, err := NewLayout(backing, internal == 1, int(alExtents))
	if err != nil {
		return s, fmt.Errorf("%w: geometry: %v", ErrCorrupt, err)
	}
	got := Layout{
		Internal:     internal == 1,
		BackingSize:  backing,
		DataSize:     int64(be.Uint64(b[sbDataSize:])),
		MetaOffset:   int64(be.Uint64(b[sbMetaOffset:])),
		MetaSize:     int64(be.Uint64(b[sbMetaSize:])),
		SuperOffset:  [2]int64{int64(be.Uint64(b[sbSuperOffset:])), int64(be.Uint64(b[sbSuperOffset+8:]))},
		ALOffset:     int64(be.Uint64(b[sbALOffset:])),
		ALSlots:      int(be.Uint32(b[sbALSlots:])),
		ALExtents:    int(alExtents),
		BitmapOffset: int64(be.Uint64(b[sbBitmapOffset:])),
		BitmapSize:   int64(be.Uint64(b[sbBitmapSize:])),
	}
	if got != want {
		return s, fmt.Errorf("%w: stored geometry %+v differs from the one computed from its sizes %+v", ErrCorrupt, got, want)
	}
	s.Layout = got
	return s, nil
}

// decodeName reads a NUL-padded name field.
func decodeName(b []byte) (string, error) {
	n := bytes.IndexByte(b, 0)
	if n < 0 || n > maxNameLen {
		return "", fmt.Errorf("not NUL-terminated within %d bytes", maxNameLen)
	}
	if !allZero(b[n:]) {
		return "", fmt.Errorf("bytes after the terminating NUL")
	}
	if !utf8.Valid(b[:n]) {
		return "", fmt.Errorf("not UTF-8")
	}
	return string(b[:n]), nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
