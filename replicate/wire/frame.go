package wire

import (
	"encoding/binary"
	"fmt"
)

// Frame header, big-endian:
//
//	0  magic    uint32  "haRL"
//	4  version  uint8   frame layout version (1)
//	5  type     uint8   Type
//	6  flags    uint16  reserved, zero
//	8  seq      uint64  1 for the first frame a side sends on a connection, then +1
//	16 length   uint32  payload bytes that follow
const (
	HeaderLen    = 20
	magic        = 0x6861524c // "haRL": hactl replication link
	frameVersion = 1
)

// Limits and units.
const (
	// MaxData is the most block data one frame carries: DRBD's 1 MiB
	// request limit, so a frame never holds the meta connection's peer
	// waiting long behind it and a receiver's buffer stays bounded.
	MaxData = 1 << 20
	// SectorSize is the unit of every offset and length on the wire.
	SectorSize = 512
	// BitmapBlock is the bytes of volume one bitmap bit stands for.
	BitmapBlock = 4096
	// MaxFrame is the largest frame on the wire, header included.
	MaxFrame = HeaderLen + dataFixed + MaxData

	// MaxName is the longest node or volume name in a Hello.
	MaxName = 64
	// MaxText is the longest Disconnect text.
	MaxText = 256
	// maxHello leaves room for fields a newer version appends.
	maxHello = 1024
)

// Protocol versions this package speaks, negotiated in the Hello.
const (
	ProtocolVersion    = 1
	MinProtocolVersion = 1
)

// Type is a message type.
type Type uint8

// Message types. The handshake types are valid only before the link is up;
// every other type belongs to one of the two connections (see route).
const (
	TypeChallenge  Type = 1 // handshake: a random nonce to answer
	TypeResponse   Type = 2 // handshake: the HMAC answering both nonces
	TypeHello      Type = 3 // handshake: who we are, our volume and its state
	TypeJoin       Type = 4 // handshake: the session a connection belongs to
	TypeDisconnect Type = 5 // either connection, any time: why we close

	TypeData        Type = 16 // data: a write
	TypeTrim        Type = 17 // data: discard a range
	TypeWriteZeroes Type = 18 // data: zero a range
	TypeBarrier     Type = 19 // data: end of an epoch
	TypeStateChange Type = 20 // data: role, disk state or generations changed

	TypeRecvAck    Type = 32 // meta: protocol B, write received
	TypeWriteAck   Type = 33 // meta: protocol C, write on disk
	TypeNegAck     Type = 34 // meta: write failed on the peer
	TypeBarrierAck Type = 35 // meta: epoch complete and flushed
	TypePing       Type = 36 // meta: are you there
	TypePingAck    Type = 37 // meta: yes

	TypeResyncRequest Type = 48 // data: sync target asks for a range
	TypeResyncData    Type = 49 // data: sync source sends a range
	TypeResyncHash    Type = 50 // data: sync target's hash of a range
	TypeResyncAck     Type = 51 // meta: range written or found in sync
	TypeBitmapChunk   Type = 52 // data: part of the dirty bitmap
	TypeVerifyHash    Type = 53 // data: online verify, the verifier's hash of a range
	TypeVerifyAck     Type = 54 // meta: online verify, the peer's verdict
)

// route says which connections may carry a type.
type route uint8

const (
	onHandshake route = 1 << iota // before the link is up, either connection
	onData                        // the data connection, once up
	onMeta                        // the meta connection, once up
)

// Fixed payload sizes (without the bulk bytes of Data, ResyncData and
// BitmapChunk).
const (
	nonceLen    = 32
	helloFixed  = 2 + 2 + 1 + 1 + 16 + 8 + 4*8 + 8 + 8 // 78, then two names
	dataFixed   = 8 + 8 + 8 + 4                        // block id, epoch, offset, flags
	rangeFixed  = 8 + 8 + 8 + 4 + 4                    // trim, write zeroes
	ackFixed    = 8 + 8 + 4 + 4                        // block id, offset, length, status
	stateFixed  = 1 + 1 + 8 + 4*8 + 8                  // 50
	rsDataFixed = 8
	bitmapFixed = 8 + 4
)

type typeInfo struct {
	name     string
	min, max int  // payload bytes
	bulk     bool // the payload ends in block data or bitmap: min is fixed+bulk
	route    route
}

// types is indexed by Type; an entry without a name is an unknown type.
var types = [256]typeInfo{
	TypeChallenge:  {"Challenge", nonceLen, nonceLen, false, onHandshake},
	TypeResponse:   {"Response", nonceLen, nonceLen, false, onHandshake},
	TypeHello:      {"Hello", helloFixed + 2 + 2, maxHello, false, onHandshake},
	TypeJoin:       {"Join", 16, 16, false, onHandshake},
	TypeDisconnect: {"Disconnect", 2, 2 + MaxText, false, onHandshake | onData | onMeta},

	TypeData:        {"Data", dataFixed + SectorSize, dataFixed + MaxData, true, onData},
	TypeTrim:        {"Trim", rangeFixed, rangeFixed, false, onData},
	TypeWriteZeroes: {"WriteZeroes", rangeFixed, rangeFixed, false, onData},
	TypeBarrier:     {"Barrier", 8, 8, false, onData},
	TypeStateChange: {"StateChange", stateFixed, stateFixed, false, onData},

	TypeRecvAck:    {"RecvAck", ackFixed, ackFixed, false, onMeta},
	TypeWriteAck:   {"WriteAck", ackFixed, ackFixed, false, onMeta},
	TypeNegAck:     {"NegAck", ackFixed, ackFixed, false, onMeta},
	TypeBarrierAck: {"BarrierAck", 8 + 4, 8 + 4, false, onMeta},
	TypePing:       {"Ping", 8, 8, false, onMeta},
	TypePingAck:    {"PingAck", 8, 8, false, onMeta},

	TypeResyncRequest: {"ResyncRequest", 8 + 4, 8 + 4, false, onData},
	TypeResyncData:    {"ResyncData", rsDataFixed + SectorSize, rsDataFixed + MaxData, true, onData},
	TypeResyncHash:    {"ResyncHash", 8 + 4 + 32, 8 + 4 + 32, false, onData},
	TypeResyncAck:     {"ResyncAck", 8 + 4 + 4, 8 + 4 + 4, false, onMeta},
	TypeBitmapChunk:   {"BitmapChunk", bitmapFixed + 8, bitmapFixed + MaxData, true, onData},
	TypeVerifyHash:    {"VerifyHash", 8 + 4 + 32, 8 + 4 + 32, false, onData},
	TypeVerifyAck:     {"VerifyAck", 8 + 4 + 4, 8 + 4 + 4, false, onMeta},
}

// fixedLen is the part of a bulk type's payload before the bulk bytes.
func fixedLen(t Type) int {
	switch t {
	case TypeData:
		return dataFixed
	case TypeResyncData:
		return rsDataFixed
	case TypeBitmapChunk:
		return bitmapFixed
	}
	return types[t].max
}

// maxSmall is the largest payload of a type that is not bulk: Recv reads
// those into one reused buffer of this size.
const maxSmall = maxHello

func (t Type) String() string {
	if n := types[t].name; n != "" {
		return n
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

type header struct {
	typ    Type
	flags  uint16
	seq    uint64
	length uint32
}

func putHeader(b []byte, h header) {
	binary.BigEndian.PutUint32(b[0:4], magic)
	b[4] = frameVersion
	b[5] = byte(h.typ)
	binary.BigEndian.PutUint16(b[6:8], h.flags)
	binary.BigEndian.PutUint64(b[8:16], h.seq)
	binary.BigEndian.PutUint32(b[16:20], h.length)
}

// parseHeader checks what a header says about itself: magic, layout
// version, a known type, no reserved flags, and a length within the
// type's bounds. The sequence number is the connection's to check.
func parseHeader(b []byte) (header, error) {
	if m := binary.BigEndian.Uint32(b[0:4]); m != magic {
		return header{}, fmt.Errorf("%w: %#08x", ErrBadMagic, m)
	}
	if v := b[4]; v != frameVersion {
		return header{}, fmt.Errorf("%w: frame layout version %d, want %d", ErrVersion, v, frameVersion)
	}
	h := header{
		typ:    Type(b[5]),
		flags:  binary.BigEndian.Uint16(b[6:8]),
		seq:    binary.BigEndian.Uint64(b[8:16]),
		length: binary.BigEndian.Uint32(b[16:20]),
	}
	info := &types[h.typ]
	if info.name == "" {
		return header{}, fmt.Errorf("%w: %d", ErrUnknownType, uint8(h.typ))
	}
	if h.flags != 0 {
		return header{}, fmt.Errorf("%w: %v: reserved header flags %#04x", ErrMalformed, h.typ, h.flags)
	}
	// Checked before a byte of payload is read or a buffer is made for
	// it: the length is the peer's word, not ours.
	if int64(h.length) > int64(info.max) {
		return header{}, fmt.Errorf("%w: %v of %d bytes, at most %d", ErrTooLarge, h.typ, h.length, info.max)
	}
	if int64(h.length) < int64(info.min) {
		return header{}, fmt.Errorf("%w: %v of %d bytes, at least %d", ErrMalformed, h.typ, h.length, info.min)
	}
	return h, nil
}
