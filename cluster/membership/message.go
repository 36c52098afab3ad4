package membership

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Heartbeat wire format, version 1. memberlist encrypts and authenticates
// the whole datagram with the cluster key; this framing only has to be
// unambiguous and cheap to reject.
//
//	off  size  field
//	0    1     version (1)
//	1    1     kind (1 = heartbeat, 2 = leave)
//	2    8     boot: random, chosen once per Start (big endian)
//	10   8     seq: starts at 1, +1 per message within a boot
//	18   1     n = len(node name), 1..255
//	19   n     node name
//	19+n 2     m = len(state), 0..MaxStateSize
//	21+n m     state blob (always empty in a leave)
//
// Nothing may follow the state. A leave is sent by Stop, before
// memberlist's own leave: memberlist reports a graceful leave and a
// failure alike to its event callbacks, so the node says so itself.
const (
	msgVersion    = 1
	kindHeartbeat = 1
	kindLeave     = 2

	headerLen = 19 // through the name length byte

	// MaxStateSize bounds the state blob a node publishes. Blobs above
	// about 1300 bytes no longer fit one 1500-byte Ethernet frame and are
	// IP-fragmented: that works on a LAN, but losing any fragment loses the
	// heartbeat, so keep the state compact.
	MaxStateSize = 8 << 10

	maxNameLen = 255
	// maxMessageLen is the largest valid heartbeat.
	maxMessageLen = headerLen + maxNameLen + 2 + MaxStateSize
)

// Reasons a heartbeat is refused. They are not exported: callers only
// count and log them.
var (
	errShort    = errors.New("truncated")
	errVersion  = errors.New("unknown version")
	errKind     = errors.New("unknown kind")
	errName     = errors.New("bad node name")
	errTooLarge = errors.New("state too large")
	errTrailing = errors.New("trailing bytes")
	errSeq      = errors.New("sequence number 0")
)

// message is one heartbeat or leave.
type message struct {
	Kind  byte
	Boot  uint64
	Seq   uint64
	Node  string
	State []byte // aliases the decoded buffer
}

// appendMessage appends h's encoding to dst.
func appendMessage(dst []byte, h message) ([]byte, error) {
	switch {
	case h.Kind != kindHeartbeat && h.Kind != kindLeave:
		return dst, fmt.Errorf("encode message: %w %d", errKind, h.Kind)
	case h.Kind == kindLeave && len(h.State) > 0:
		return dst, fmt.Errorf("encode message: %w: state in a leave", errTooLarge)
	case len(h.Node) == 0 || len(h.Node) > maxNameLen:
		return dst, fmt.Errorf("encode message: %w: %d bytes", errName, len(h.Node))
	case len(h.State) > MaxStateSize:
		return dst, fmt.Errorf("encode message: %w: %d bytes, max %d", errTooLarge, len(h.State), MaxStateSize)
	case h.Seq == 0:
		return dst, fmt.Errorf("encode message: %w", errSeq)
	}
	dst = append(dst, msgVersion, h.Kind)
	dst = binary.BigEndian.AppendUint64(dst, h.Boot)
	dst = binary.BigEndian.AppendUint64(dst, h.Seq)
	dst = append(dst, byte(len(h.Node)))
	dst = append(dst, h.Node...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(h.State)))
	return append(dst, h.State...), nil
}

// decodeMessage parses an untrusted message. The returned State aliases
// b. Every valid message has exactly one encoding, so re-encoding a decoded
// message gives back b.
func decodeMessage(b []byte) (message, error) {
	var h message
	if len(b) < 2 {
		return h, errShort
	}
	if b[0] != msgVersion {
		return h, fmt.Errorf("%w %d", errVersion, b[0])
	}
	h.Kind = b[1]
	if h.Kind != kindHeartbeat && h.Kind != kindLeave {
		return h, fmt.Errorf("%w %d", errKind, h.Kind)
	}
	if len(b) > maxMessageLen {
		return h, fmt.Errorf("%w: message of %d bytes", errTooLarge, len(b))
	}
	if len(b) < headerLen {
		return h, errShort
	}
	h.Boot = binary.BigEndian.Uint64(b[2:])
	h.Seq = binary.BigEndian.Uint64(b[10:])
	if h.Seq == 0 {
		return h, errSeq
	}
	n := int(b[18])
	if n == 0 {
		return h, errName
	}
	rest := b[headerLen:]
	if len(rest) < n+2 {
		return h, errShort
	}
	h.Node = string(rest[:n])
	m := int(binary.BigEndian.Uint16(rest[n:]))
	rest = rest[n+2:]
	switch {
	case m > MaxStateSize:
		return h, fmt.Errorf("%w: %d bytes", errTooLarge, m)
	case m > 0 && h.Kind == kindLeave:
		return h, fmt.Errorf("%w: state in a leave", errTooLarge)
	case len(rest) < m:
		return h, errShort
	case len(rest) > m:
		return h, errTrailing
	}
	if m > 0 {
		h.State = rest
	}
	return h, nil
}

// Node metadata carried in memberlist's alive messages: a version byte
// and a flags byte. Unknown flags are ignored so a later version can add
// some.
const (
	metaVersion = 1
	metaWitness = 1 << 0
)

func encodeMeta(witness bool) []byte {
	var flags byte
	if witness {
		flags |= metaWitness
	}
	return []byte{metaVersion, flags}
}

// decodeMeta reports the witness flag; ok is false for metadata it does
// not understand.
func decodeMeta(b []byte) (witness, ok bool) {
	if len(b) < 2 || b[0] != metaVersion {
		return false, false
	}
	return b[1]&metaWitness != 0, true
}
