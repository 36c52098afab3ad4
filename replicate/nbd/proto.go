package nbd

import (
	"encoding/binary"
	"fmt"
)

// Magic numbers, option, reply, info, command and error values of the NBD
// protocol (NetworkBlockDevice/nbd doc/proto.md). All integers on the wire
// are big-endian.
const (
	magicInit        = 0x4e42444d41474943 // "NBDMAGIC"
	magicOpt         = 0x49484156454f5054 // "IHAVEOPT"
	magicOptReply    = 0x0003e889045565a9
	magicRequest     = 0x25609513
	magicSimpleReply = 0x67446698
)

// Handshake flags (server) and client flags.
const (
	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	clientFixedNewstyle = 1 << 0
	clientNoZeroes      = 1 << 1
)

// Transmission flags.
const (
	tflagHasFlags        = 1 << 0
	tflagReadOnly        = 1 << 1
	tflagSendFlush       = 1 << 2
	tflagSendFUA         = 1 << 3
	tflagSendTrim        = 1 << 5
	tflagSendWriteZeroes = 1 << 6
	tflagCanMultiConn    = 1 << 8
)

// Options.
const (
	optExportName = 1
	optAbort      = 2
	optList       = 3
	optInfo       = 6
	optGo         = 7
)

// Option reply types.
const (
	repAck        = 1
	repServer     = 2
	repInfo       = 3
	repErrUnsup   = 1<<31 + 1
	repErrInvalid = 1<<31 + 3
	repErrUnknown = 1<<31 + 6
	repErrTooBig  = 1<<31 + 9
)

// Information types of NBD_OPT_INFO and NBD_OPT_GO.
const (
	infoExport    = 0
	infoName      = 1
	infoBlockSize = 3
)

// Commands.
const (
	cmdRead        = 0
	cmdWrite       = 1
	cmdDisc        = 2
	cmdFlush       = 3
	cmdTrim        = 4
	cmdWriteZeroes = 6
)

// Command flags.
const (
	cmdFlagFUA    = 1 << 0
	cmdFlagNoHole = 1 << 1
)

// Error values of simple replies. They are fixed by the protocol, not the
// host's errno numbering.
const (
	errPerm     = 1
	errIO       = 5
	errInval    = 22
	errNoSpc    = 28
	errShutdown = 108
)

// Block size constraints announced in NBD_INFO_BLOCK_SIZE.
const (
	// MinBlockSize is the alignment requests need: any, the backend
	// handles byte granularity (it may read-modify-write internally).
	MinBlockSize = 1
	// PreferredBlockSize is the size below which requests are inefficient:
	// the engine's bitmap granule.
	PreferredBlockSize = 4096
	// MaxPayload is the largest READ or WRITE the server accepts, the
	// protocol's interoperable limit (2^25). It bounds the memory one
	// request can pin.
	MaxPayload = 32 << 20
)

const (
	greetingLen    = 18 // NBDMAGIC, IHAVEOPT, handshake flags
	optHeaderLen   = 16 // IHAVEOPT, option, length
	requestLen     = 28 // magic, flags, type, handle, offset, length
	replyLen       = 16 // magic, error, handle
	exportReplyLen = 8 + 2 + 124

	// maxOptionLen bounds the option data read into memory: an export
	// name (at most 4096 bytes by the protocol) and thousands of info
	// requests fit. Longer options are drained and refused.
	maxOptionLen = 16 << 10
	maxNameLen   = 4096
)

// transmissionFlags are the flags announced for an export. Every export
// supports flush, FUA, trim and write-zeroes; CAN_MULTI_CONN holds because a
// Backend is shared by all connections to its export (see the package doc).
func transmissionFlags(readOnly bool) uint16 {
	f := uint16(tflagHasFlags | tflagSendFlush | tflagSendFUA | tflagSendTrim |
		tflagSendWriteZeroes | tflagCanMultiConn)
	if readOnly {
		f |= tflagReadOnly
	}
	return f
}

// request is a transmission request header.
type request struct {
	flags  uint16
	typ    uint16
	handle uint64
	offset uint64
	length uint32
}

// decodeRequest decodes a request header. The only thing it can reject is
// the magic: once that is wrong the stream cannot be resynchronised.
func decodeRequest(b *[requestLen]byte) (request, error) {
	if m := binary.BigEndian.Uint32(b[0:]); m != magicRequest {
		return request{}, fmt.Errorf("bad request magic %#08x", m)
	}
	return request{
		flags:  binary.BigEndian.Uint16(b[4:]),
		typ:    binary.BigEndian.Uint16(b[6:]),
		handle: binary.BigEndian.Uint64(b[8:]),
		offset: binary.BigEndian.Uint64(b[16:]),
		length: binary.BigEndian.Uint32(b[24:]),
	}, nil
}

// check returns the error a request gets without reaching the backend, or 0.
// size is the export size announced to the client.
//
// The error values follow the protocol's advice: EINVAL for unknown commands
// and flags, lengths over MaxPayload and reads or trims past the end; ENOSPC
// for writes past the end; EPERM for anything that writes to a read-only
// export. TRIM and WRITE_ZEROES carry no payload, so they may be longer than
// MaxPayload.
func check(r request, size uint64, readOnly bool) uint32 {
	inRange := r.offset <= size && uint64(r.length) <= size-r.offset
	switch r.typ {
	case cmdRead:
		switch {
		case r.flags&^cmdFlagFUA != 0, r.length > MaxPayload, !inRange:
			return errInval
		}
	case cmdWrite:
		switch {
		case r.flags&^cmdFlagFUA != 0, r.length > MaxPayload:
			return errInval
		case readOnly:
			return errPerm
		case !inRange:
			return errNoSpc
		}
	case cmdFlush:
		// Offset and length are reserved; a nonzero value harms nobody.
		if r.flags&^cmdFlagFUA != 0 {
			return errInval
		}
	case cmdTrim:
		switch {
		case r.flags&^cmdFlagFUA != 0:
			return errInval
		case readOnly:
			return errPerm
		case !inRange:
			return errInval
		}
	case cmdWriteZeroes:
		// NBD_CMD_FLAG_FAST_ZERO is not accepted: NBD_FLAG_SEND_FAST_ZERO
		// is not announced.
		switch {
		case r.flags&^(cmdFlagFUA|cmdFlagNoHole) != 0:
			return errInval
		case readOnly:
			return errPerm
		case !inRange:
			return errNoSpc
		}
	case cmdDisc:
	default:
		return errInval
	}
	return 0
}

// encodeReply fills a simple reply header.
func encodeReply(b *[replyLen]byte, errno uint32, handle uint64) {
	binary.BigEndian.PutUint32(b[0:], magicSimpleReply)
	binary.BigEndian.PutUint32(b[4:], errno)
	binary.BigEndian.PutUint64(b[8:], handle)
}

// decodeOptionHeader decodes the header of a client option.
func decodeOptionHeader(b *[optHeaderLen]byte) (opt, length uint32, err error) {
	if m := binary.BigEndian.Uint64(b[0:]); m != magicOpt {
		return 0, 0, fmt.Errorf("bad option magic %#016x", m)
	}
	return binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint32(b[12:]), nil
}

// appendOptReply appends an option reply with its data.
func appendOptReply(b []byte, opt, typ uint32, data ...[]byte) []byte {
	n := 0
	for _, d := range data {
		n += len(d)
	}
	b = binary.BigEndian.AppendUint64(b, magicOptReply)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	for _, d := range data {
		b = append(b, d...)
	}
	return b
}

// infoRequest is the data of NBD_OPT_INFO and NBD_OPT_GO.
type infoRequest struct {
	name  string
	infos []uint16
}

// parseInfoRequest decodes the data of NBD_OPT_INFO and NBD_OPT_GO: a
// 32-bit name length, the name, a 16-bit count and that many 16-bit
// information types. Anything left over, or missing, is invalid.
func parseInfoRequest(b []byte) (infoRequest, error) {
	if len(b) < 6 {
		return infoRequest{}, fmt.Errorf("%d bytes, need at least 6", len(b))
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-6) {
		return infoRequest{}, fmt.Errorf("name length %d exceeds the option's %d bytes", n, len(b))
	}
	req := infoRequest{name: string(b[4 : 4+n])}
	rest := b[4+n:]
	count := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) != 2*count {
		return infoRequest{}, fmt.Errorf("%d information requests need %d bytes, have %d", count, 2*count, len(rest))
	}
	req.infos = make([]uint16, count)
	for i := range req.infos {
		req.infos[i] = binary.BigEndian.Uint16(rest[2*i:])
	}
	return req, nil
}
