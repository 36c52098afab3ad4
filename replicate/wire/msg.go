package wire

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Msg is one frame's payload. The concrete types are the pointer types
// below (*Data, *WriteAck, ...); Recv returns them and a type switch
// dispatches on them.
type Msg interface {
	Type() Type
	// appendTo appends the payload, except the bulk bytes, to b.
	appendTo(b []byte) []byte
	// bulk returns the bytes that follow appendTo's, so Send can write
	// them from the caller's buffer without a copy.
	bulk() []byte
	// check validates the fields. size is the volume size in bytes, for
	// range checks, or 0 when not known yet (before the Hello).
	check(size uint64) error
}

// Role is a node's role for the volume.
type Role uint8

const (
	RoleSecondary Role = 1
	RolePrimary   Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleSecondary:
		return "Secondary"
	case RolePrimary:
		return "Primary"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// DiskState is the state of a node's backing disk, from worst to best.
type DiskState uint8

const (
	DiskDiskless     DiskState = 1 // no backing disk attached
	DiskFailed       DiskState = 2 // I/O errors; detaching
	DiskInconsistent DiskState = 3 // mid-resync target: unusable alone
	DiskOutdated     DiskState = 4 // consistent but known to be behind
	DiskConsistent   DiskState = 5 // consistent, freshness not known yet
	DiskUpToDate     DiskState = 6 // consistent and current
)

var diskNames = [...]string{"", "Diskless", "Failed", "Inconsistent", "Outdated", "Consistent", "UpToDate"}

func (d DiskState) String() string {
	if d >= DiskDiskless && d <= DiskUpToDate {
		return diskNames[d]
	}
	return fmt.Sprintf("disk(%d)", uint8(d))
}

// StateFlags carry facts from the metadata that the connect-time decision
// needs (research/replication.md §2). They are the wire's own bits: the
// engine maps meta.Flags to them.
type StateFlags uint64

const (
	FlagConsistent     StateFlags = 1 << 0
	FlagWasUpToDate    StateFlags = 1 << 1
	FlagCrashedPrimary StateFlags = 1 << 2 // was Primary when it went down uncleanly
	FlagPeerOutdated   StateFlags = 1 << 3 // we marked the peer outdated
	// FlagDiscardMyData and FlagDiscardPeer carry an operator's split-brain
	// resolution (hactl volume resolve --discard NODE, run on either node):
	// this node's changes, or the peer's, are to be discarded.
	FlagDiscardMyData StateFlags = 1 << 4
	FlagDiscardPeer   StateFlags = 1 << 5
	knownStateFlags              = FlagConsistent | FlagWasUpToDate | FlagCrashedPrimary | FlagPeerOutdated | FlagDiscardMyData | FlagDiscardPeer
)

// WriteFlags go with a write (Data, Trim, WriteZeroes).
type WriteFlags uint32

const (
	// WriteFUA: the write is durable on the peer's disk before it is
	// acknowledged (Linux REQ_FUA, NBD_CMD_FLAG_FUA).
	WriteFUA WriteFlags = 1 << 0
	// WriteFlush: every write the peer completed before this one is
	// durable before this one is written (Linux REQ_PREFLUSH).
	WriteFlush WriteFlags = 1 << 1
	// WriteAckRecv asks for a RecvAck on receipt (protocol B).
	WriteAckRecv WriteFlags = 1 << 2
	// WriteAckWrite asks for a WriteAck once written (protocol C).
	WriteAckWrite   WriteFlags = 1 << 3
	knownWriteFlags            = WriteFUA | WriteFlush | WriteAckRecv | WriteAckWrite
)

// Status is the outcome an ack reports.
type Status uint32

const (
	StatusOK      Status = 0 // written
	StatusInSync  Status = 1 // resync: the hashes matched, nothing to copy
	StatusIOError Status = 2 // the peer's disk failed the write
	StatusNoDisk  Status = 3 // the peer has no usable disk
	// StatusOutOfSync: online verify found the ranges differ (VerifyAck
	// only).
	StatusOutOfSync Status = 4
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusInSync:
		return "in sync"
	case StatusIOError:
		return "I/O error"
	case StatusOutOfSync:
		return "out of sync"
	case StatusNoDisk:
		return "no disk"
	}
	return fmt.Sprintf("status(%d)", uint32(s))
}

// Generations are the generation identifiers of a node's data
// (research/replication.md §2.1).
type Generations struct {
	Current uint64
	Bitmap  uint64
	History [2]uint64
}

// SessionID ties a link's meta connection to its data connection. Both
// sides derive it from the data connection's handshake.
type SessionID [16]byte

func (s SessionID) String() string { return hex.EncodeToString(s[:]) }

// noBulk is embedded by the messages that carry no bulk bytes.
type noBulk struct{}

func (noBulk) bulk() []byte { return nil }

// Hello is what a node announces about itself and its volume when a link
// is set up; the peer's is Link.Peer.
//
// Hello is the one message a newer version may extend: a decoder ignores
// bytes after the names and state flag bits it does not know, so a newer
// peer can still be told which versions we speak.
type Hello struct {
	// MinVersion and MaxVersion are the protocol versions spoken; the
	// link uses the highest both speak. Zero in Config.Local means this
	// package's range.
	MinVersion, MaxVersion uint16

	Node   string // node name, 1..MaxName bytes of printable UTF-8
	Volume string // volume name, likewise

	// VolumeUUID is an identity both nodes share for the volume,
	// compared when both are set; zero: none. (Not meta.VolumeUUID,
	// which differs from node to node by design.)
	VolumeUUID [16]byte

	Size  uint64 // bytes of data, a positive multiple of SectorSize
	Gen   Generations
	Dirty uint64 // bitmap bits set: blocks out of sync with the peer
	Flags StateFlags
	Role  Role
	Disk  DiskState
	noBulk
}

func (*Hello) Type() Type { return TypeHello }

func (m *Hello) appendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, m.MinVersion)
	b = binary.BigEndian.AppendUint16(b, m.MaxVersion)
	b = append(b, byte(m.Role), byte(m.Disk))
	b = append(b, m.VolumeUUID[:]...)
	b = binary.BigEndian.AppendUint64(b, m.Size)
	b = appendGen(b, m.Gen)
	b = binary.BigEndian.AppendUint64(b, m.Dirty)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Flags))
	b = append(b, byte(len(m.Node)))
	b = append(b, m.Node...)
	b = append(b, byte(len(m.Volume)))
	return append(b, m.Volume...)
}

func (m *Hello) check(uint64) error {
	if m.MinVersion == 0 || m.MinVersion > m.MaxVersion {
		return malformed(TypeHello, "version range %d..%d", m.MinVersion, m.MaxVersion)
	}
	if err := checkName(TypeHello, "node", m.Node); err != nil {
		return err
	}
	if err := checkName(TypeHello, "volume", m.Volume); err != nil {
		return err
	}
	if m.Size == 0 || m.Size%SectorSize != 0 {
		return malformed(TypeHello, "size %d is not a positive multiple of %d", m.Size, SectorSize)
	}
	return checkState(TypeHello, m.Role, m.Disk)
}

// Data is a write of Payload at Offset.
type Data struct {
	BlockID uint64 // the sender's handle for the write, echoed in its ack
	Epoch   uint64 // the epoch the write belongs to (see Barrier)
	Offset  uint64 // bytes, a multiple of SectorSize
	Flags   WriteFlags
	Payload []byte // 1..MaxData bytes, a multiple of SectorSize

	buf *[]byte // Payload's pooled buffer (see Release)
}

func (*Data) Type() Type { return TypeData }

func (m *Data) appendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, m.BlockID)
	b = binary.BigEndian.AppendUint64(b, m.Epoch)
	b = binary.BigEndian.AppendUint64(b, m.Offset)
	return binary.BigEndian.AppendUint32(b, uint32(m.Flags))
}

func (m *Data) bulk() []byte { return m.Payload }

func (m *Data) check(size uint64) error {
	if err := checkWriteFlags(TypeData, m.Flags); err != nil {
		return err
	}
	if len(m.Payload) > MaxData {
		return malformed(TypeData, "%d bytes, at most %d", len(m.Payload), MaxData)
	}
	return checkSpan(TypeData, m.Offset, uint64(len(m.Payload)), size)
}

// Trim discards Length bytes at Offset; the range then reads as zeroes
// or as anything, as the backing store does it (NBD_CMD_TRIM).
type Trim struct {
	BlockID uint64
	Epoch   uint64
	Offset  uint64
	Length  uint32
	Flags   WriteFlags
	noBulk
}

func (*Trim) Type() Type { return TypeTrim }
func (m *Trim) appendTo(b []byte) []byte {
	return appendRange(b, m.BlockID, m.Epoch, m.Offset, m.Length, m.Flags)
}
func (m *Trim) check(size uint64) error {
	return checkRange(TypeTrim, m.Offset, m.Length, m.Flags, size)
}

// WriteZeroes writes zeroes to Length bytes at Offset
// (NBD_CMD_WRITE_ZEROES).
type WriteZeroes struct {
	BlockID uint64
	Epoch   uint64
	Offset  uint64
	Length  uint32
	Flags   WriteFlags
	noBulk
}

func (*WriteZeroes) Type() Type { return TypeWriteZeroes }
func (m *WriteZeroes) appendTo(b []byte) []byte {
	return appendRange(b, m.BlockID, m.Epoch, m.Offset, m.Length, m.Flags)
}
func (m *WriteZeroes) check(size uint64) error {
	return checkRange(TypeWriteZeroes, m.Offset, m.Length, m.Flags, size)
}

func appendRange(b []byte, id, epoch, off uint64, n uint32, f WriteFlags) []byte {
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, uint32(f))
	return binary.BigEndian.AppendUint32(b, n)
}

func checkRange(t Type, off uint64, n uint32, f WriteFlags, size uint64) error {
	if err := checkWriteFlags(t, f); err != nil {
		return err
	}
	return checkSpan(t, off, uint64(n), size)
}

// Barrier closes epoch Epoch: the peer acks it with a BarrierAck once
// every write of the epoch is complete and flushed to stable storage.
type Barrier struct {
	Epoch uint64
	noBulk
}

func (*Barrier) Type() Type                 { return TypeBarrier }
func (m *Barrier) appendTo(b []byte) []byte { return binary.BigEndian.AppendUint64(b, m.Epoch) }
func (*Barrier) check(uint64) error         { return nil }

// StateChange tells the peer our state changed.
type StateChange struct {
	Role  Role
	Disk  DiskState
	Flags StateFlags
	Gen   Generations
	Dirty uint64
	noBulk
}

func (*StateChange) Type() Type { return TypeStateChange }

func (m *StateChange) appendTo(b []byte) []byte {
	b = append(b, byte(m.Role), byte(m.Disk))
	b = binary.BigEndian.AppendUint64(b, uint64(m.Flags))
	b = appendGen(b, m.Gen)
	return binary.BigEndian.AppendUint64(b, m.Dirty)
}

func (m *StateChange) check(uint64) error {
	// Unlike Hello's, these flags come after version negotiation: a bit
	// we do not know is a bug, not a newer peer.
	if m.Flags&^knownStateFlags != 0 {
		return malformed(TypeStateChange, "unknown state flags %#x", uint64(m.Flags&^knownStateFlags))
	}
	return checkState(TypeStateChange, m.Role, m.Disk)
}

// RecvAck acknowledges receipt of a write (protocol B).
type RecvAck struct {
	BlockID uint64
	Offset  uint64
	Length  uint32
	noBulk
}

func (*RecvAck) Type() Type { return TypeRecvAck }
func (m *RecvAck) appendTo(b []byte) []byte {
	return appendAck(b, m.BlockID, m.Offset, m.Length, StatusOK)
}
func (m *RecvAck) check(size uint64) error {
	return checkSpan(TypeRecvAck, m.Offset, uint64(m.Length), size)
}

// WriteAck acknowledges a write that is on the peer's disk (protocol C).
// Status is StatusOK; it is there for outcomes a later version adds.
type WriteAck struct {
	BlockID uint64
	Offset  uint64
	Length  uint32
	Status  Status
	noBulk
}

func (*WriteAck) Type() Type { return TypeWriteAck }
func (m *WriteAck) appendTo(b []byte) []byte {
	return appendAck(b, m.BlockID, m.Offset, m.Length, m.Status)
}
func (m *WriteAck) check(size uint64) error {
	if m.Status != StatusOK {
		return malformed(TypeWriteAck, "status %v", m.Status)
	}
	return checkSpan(TypeWriteAck, m.Offset, uint64(m.Length), size)
}

// NegAck reports a write the peer could not do: the range is out of sync.
type NegAck struct {
	BlockID uint64
	Offset  uint64
	Length  uint32
	Status  Status // StatusIOError or StatusNoDisk
	noBulk
}

func (*NegAck) Type() Type { return TypeNegAck }
func (m *NegAck) appendTo(b []byte) []byte {
	return appendAck(b, m.BlockID, m.Offset, m.Length, m.Status)
}
func (m *NegAck) check(size uint64) error {
	if m.Status != StatusIOError && m.Status != StatusNoDisk {
		return malformed(TypeNegAck, "status %v", m.Status)
	}
	return checkSpan(TypeNegAck, m.Offset, uint64(m.Length), size)
}

func appendAck(b []byte, id, off uint64, n uint32, s Status) []byte {
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, n)
	return binary.BigEndian.AppendUint32(b, uint32(s))
}

// BarrierAck completes epoch Epoch, which held Writes writes (the sender
// checks the count against its own, as DRBD does).
type BarrierAck struct {
	Epoch  uint64
	Writes uint32
	noBulk
}

func (*BarrierAck) Type() Type { return TypeBarrierAck }
func (m *BarrierAck) appendTo(b []byte) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(b, m.Epoch), m.Writes)
}
func (*BarrierAck) check(uint64) error { return nil }

// Ping asks the peer for a PingAck with the same Nonce.
type Ping struct {
	Nonce uint64
	noBulk
}

func (*Ping) Type() Type                 { return TypePing }
func (m *Ping) appendTo(b []byte) []byte { return binary.BigEndian.AppendUint64(b, m.Nonce) }
func (*Ping) check(uint64) error         { return nil }

// PingAck answers a Ping.
type PingAck struct {
	Nonce uint64
	noBulk
}

func (*PingAck) Type() Type                 { return TypePingAck }
func (m *PingAck) appendTo(b []byte) []byte { return binary.BigEndian.AppendUint64(b, m.Nonce) }
func (*PingAck) check(uint64) error         { return nil }

// ResyncRequest asks the sync source for Length bytes at Offset.
type ResyncRequest struct {
	Offset uint64
	Length uint32 // at most MaxData
	noBulk
}

func (*ResyncRequest) Type() Type { return TypeResyncRequest }
func (m *ResyncRequest) appendTo(b []byte) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(b, m.Offset), m.Length)
}
func (m *ResyncRequest) check(size uint64) error {
	return checkResyncSpan(TypeResyncRequest, m.Offset, m.Length, size)
}

// ResyncData carries a range from the sync source to the sync target.
type ResyncData struct {
	Offset  uint64
	Payload []byte // 1..MaxData bytes, a multiple of SectorSize

	buf *[]byte
}

func (*ResyncData) Type() Type                 { return TypeResyncData }
func (m *ResyncData) appendTo(b []byte) []byte { return binary.BigEndian.AppendUint64(b, m.Offset) }
func (m *ResyncData) bulk() []byte             { return m.Payload }
func (m *ResyncData) check(size uint64) error {
	if len(m.Payload) > MaxData {
		return malformed(TypeResyncData, "%d bytes, at most %d", len(m.Payload), MaxData)
	}
	return checkSpan(TypeResyncData, m.Offset, uint64(len(m.Payload)), size)
}

// ResyncHash is the sync source's hash of a range (SHA-256), sent instead
// of the data in a checksum resync: the target answers with a ResyncAck of
// StatusInSync when its own copy hashes the same, else with a
// ResyncRequest for the range, which the source answers with ResyncData.
type ResyncHash struct {
	Offset uint64
	Length uint32 // at most MaxData
	Hash   [32]byte
	noBulk
}

func (*ResyncHash) Type() Type { return TypeResyncHash }
func (m *ResyncHash) appendTo(b []byte) []byte {
	return appendHashedSpan(b, m.Offset, m.Length, m.Hash)
}
func (m *ResyncHash) check(size uint64) error {
	return checkResyncSpan(TypeResyncHash, m.Offset, m.Length, size)
}

// ResyncAck tells the sync source a range is done on the target: written
// (StatusOK), found equal (StatusInSync), or failed.
type ResyncAck struct {
	Offset uint64
	Length uint32 // at most MaxData
	Status Status
	noBulk
}

func (*ResyncAck) Type() Type { return TypeResyncAck }
func (m *ResyncAck) appendTo(b []byte) []byte {
	return appendStatusSpan(b, m.Offset, m.Length, m.Status)
}
func (m *ResyncAck) check(size uint64) error {
	if m.Status > StatusNoDisk {
		return malformed(TypeResyncAck, "status %v", m.Status)
	}
	return checkResyncSpan(TypeResyncAck, m.Offset, m.Length, size)
}

// VerifyHash is online verify: the verifying node's hash (SHA-256) of a
// range. The peer hashes its own copy and answers with a VerifyAck.
type VerifyHash struct {
	Offset uint64
	Length uint32 // at most MaxData
	Hash   [32]byte
	noBulk
}

func (*VerifyHash) Type() Type { return TypeVerifyHash }
func (m *VerifyHash) appendTo(b []byte) []byte {
	return appendHashedSpan(b, m.Offset, m.Length, m.Hash)
}
func (m *VerifyHash) check(size uint64) error {
	return checkResyncSpan(TypeVerifyHash, m.Offset, m.Length, size)
}

// VerifyAck answers a VerifyHash: StatusInSync when the copies hash the
// same, StatusOutOfSync when they differ (both sides then mark the range
// out of sync), or an error status.
type VerifyAck struct {
	Offset uint64
	Length uint32 // at most MaxData
	Status Status
	noBulk
}

func (*VerifyAck) Type() Type { return TypeVerifyAck }
func (m *VerifyAck) appendTo(b []byte) []byte {
	return appendStatusSpan(b, m.Offset, m.Length, m.Status)
}
func (m *VerifyAck) check(size uint64) error {
	switch m.Status {
	case StatusInSync, StatusOutOfSync, StatusIOError, StatusNoDisk:
	default:
		return malformed(TypeVerifyAck, "status %v", m.Status)
	}
	return checkResyncSpan(TypeVerifyAck, m.Offset, m.Length, size)
}

// BitmapChunk carries part of a dirty bitmap: bit i of Bits (byte i/8,
// least significant bit first) stands for the BitmapBlock bytes at
// (Start+i)*BitmapBlock. Last marks the final chunk.
type BitmapChunk struct {
	Start uint64 // first bit, a multiple of 64
	Last  bool
	Bits  []byte // 8..MaxData bytes, a multiple of 8

	buf *[]byte
}

const bitmapLast = 1

func (*BitmapChunk) Type() Type { return TypeBitmapChunk }
func (m *BitmapChunk) appendTo(b []byte) []byte {
	var f uint32
	if m.Last {
		f = bitmapLast
	}
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(b, m.Start), f)
}
func (m *BitmapChunk) bulk() []byte { return m.Bits }
func (m *BitmapChunk) check(size uint64) error {
	n := uint64(len(m.Bits))
	if m.Start%64 != 0 || n == 0 || n%8 != 0 || n > MaxData {
		return malformed(TypeBitmapChunk, "start bit %d, %d bytes: want a multiple of 64 and 8..%d bytes in whole words", m.Start, n, MaxData)
	}
	if size == 0 {
		return nil
	}
	// The bitmap of a volume of size bytes, in whole 64-bit words.
	bits := (size + BitmapBlock - 1) / BitmapBlock
	bits = (bits + 63) &^ 63
	if m.Start > bits || n*8 > bits-m.Start {
		return malformed(TypeBitmapChunk, "bits %d..%d beyond the %d of the volume", m.Start, m.Start+n*8, bits)
	}
	return nil
}

// Disconnect says why the sender closes the link; it is the last frame it
// sends.
type Disconnect struct {
	Reason Reason
	Text   string // at most MaxText bytes of printable UTF-8; empty for ReasonAuth
	noBulk
}

func (*Disconnect) Type() Type { return TypeDisconnect }
func (m *Disconnect) appendTo(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(m.Reason)), m.Text...)
}
func (m *Disconnect) check(uint64) error {
	if m.Reason < 1 || m.Reason > maxReason {
		return malformed(TypeDisconnect, "unknown reason %d", uint16(m.Reason))
	}
	if m.Reason == ReasonAuth && m.Text != "" {
		// A refused peer learns that it was refused, nothing more.
		return malformed(TypeDisconnect, "text with %v", m.Reason)
	}
	if len(m.Text) > MaxText || !printable(m.Text) {
		return malformed(TypeDisconnect, "text is not at most %d bytes of printable UTF-8", MaxText)
	}
	return nil
}

// challenge, response and join are the handshake's own messages.
type challenge struct {
	nonce [nonceLen]byte
	noBulk
}

func (*challenge) Type() Type                 { return TypeChallenge }
func (m *challenge) appendTo(b []byte) []byte { return append(b, m.nonce[:]...) }
func (*challenge) check(uint64) error         { return nil }

type response struct {
	mac [nonceLen]byte
	noBulk
}

func (*response) Type() Type                 { return TypeResponse }
func (m *response) appendTo(b []byte) []byte { return append(b, m.mac[:]...) }
func (*response) check(uint64) error         { return nil }

type join struct {
	session SessionID
	noBulk
}

func (*join) Type() Type                 { return TypeJoin }
func (m *join) appendTo(b []byte) []byte { return append(b, m.session[:]...) }
func (*join) check(uint64) error         { return nil }

func appendGen(b []byte, g Generations) []byte {
	b = binary.BigEndian.AppendUint64(b, g.Current)
	b = binary.BigEndian.AppendUint64(b, g.Bitmap)
	b = binary.BigEndian.AppendUint64(b, g.History[0])
	return binary.BigEndian.AppendUint64(b, g.History[1])
}

func checkWriteFlags(t Type, f WriteFlags) error {
	if f&^knownWriteFlags != 0 {
		return malformed(t, "unknown write flags %#x", uint32(f&^knownWriteFlags))
	}
	return nil
}

func checkState(t Type, r Role, d DiskState) error {
	if r != RoleSecondary && r != RolePrimary {
		return malformed(t, "role %v", r)
	}
	if d < DiskDiskless || d > DiskUpToDate {
		return malformed(t, "disk state %v", d)
	}
	return nil
}

// checkSpan checks a range of n bytes at off: whole sectors, not empty,
// and inside a volume of size bytes when the size is known.
func checkSpan(t Type, off, n, size uint64) error {
	if off%SectorSize != 0 || n%SectorSize != 0 || n == 0 {
		return malformed(t, "range %d+%d is not whole sectors", off, n)
	}
	if size != 0 && (off > size || n > size-off) {
		return malformed(t, "range %d+%d beyond the volume's %d bytes", off, n, size)
	}
	return nil
}

// appendHashedSpan and appendStatusSpan encode the two shapes the resync
// and verify messages share: a range with a hash, a range with a status.
func appendHashedSpan(b []byte, off uint64, n uint32, h [32]byte) []byte {
	b = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(b, off), n)
	return append(b, h[:]...)
}

func appendStatusSpan(b []byte, off uint64, n uint32, st Status) []byte {
	b = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(b, off), n)
	return binary.BigEndian.AppendUint32(b, uint32(st))
}

func checkResyncSpan(t Type, off uint64, n uint32, size uint64) error {
	if n > MaxData {
		return malformed(t, "%d bytes, at most %d", n, MaxData)
	}
	return checkSpan(t, off, uint64(n), size)
}

func checkName(t Type, what, s string) error {
	if len(s) == 0 || len(s) > MaxName || !printable(s) {
		return malformed(t, "%s name %q is not 1..%d bytes of printable UTF-8", what, s, MaxName)
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters,
// so a peer's text is safe to put in a log line.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
