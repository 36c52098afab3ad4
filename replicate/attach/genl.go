package attach

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// A minimal generic netlink codec for the two families this package talks
// to: "nlctrl" (to resolve the family id of "nbd") and "nbd". Netlink uses
// host byte order.
//
// Message layout: struct nlmsghdr (16 bytes: len u32, type u16, flags u16,
// seq u32, pid u32), struct genlmsghdr (4 bytes: cmd u8, version u8,
// reserved u16), then attributes, each struct nlattr (len u16, type u16)
// plus payload padded to 4 bytes. len counts header and payload, not the
// padding.

// Constants from include/uapi/linux/netlink.h and genetlink.h.
const (
	nlmsgHdrLen   = 16
	genlHdrLen    = 4
	nlaHdrLen     = 4
	nlmFRequest   = 0x1
	nlmFAck       = 0x4
	nlmsgError    = 0x2
	nlmsgDone     = 0x3
	nlaFNested    = 0x8000
	nlaTypeMask   = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
	genlIDCtrl    = 0x10
	ctrlCmdGetFam = 3
	ctrlVersion   = 1
	ctrlAttrFamID = 1 // u16
	ctrlAttrName  = 2 // NUL-terminated string
)

// Constants from include/uapi/linux/nbd-netlink.h.
const (
	nbdGenlName    = "nbd"
	nbdGenlVersion = 1

	nbdCmdConnect    = 1
	nbdCmdDisconnect = 2

	nbdAttrIndex      = 1  // u32
	nbdAttrSizeBytes  = 2  // u64
	nbdAttrBlockSize  = 3  // u64
	nbdAttrTimeout    = 4  // u64, seconds
	nbdAttrServerFlag = 5  // u64, NBD_FLAG_* from the handshake
	nbdAttrSockets    = 7  // nested: NBD_SOCK_ITEM*
	nbdAttrBackend    = 10 // string, shown in /sys/block/nbdN/backend

	nbdSockItem = 1 // nested: NBD_SOCK_FD
	nbdSockFD   = 1 // u32
)

func nlaAlign(n int) int { return (n + 3) &^ 3 }

// appendAttr appends one attribute with its padding.
func appendAttr(b []byte, typ uint16, payload []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(nlaHdrLen+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

// cstring is a string payload with its terminating NUL, as nla_put_string
// writes it; the kernel accepts it for both NLA_STRING and NLA_NUL_STRING.
func cstring(s string) []byte { return append([]byte(s), 0) }

// genlMessage frames attrs as one request that asks for an ACK.
func genlMessage(family uint16, seq uint32, cmd, version uint8, attrs []byte) []byte {
	n := nlmsgHdrLen + genlHdrLen + len(attrs)
	b := make([]byte, 0, n)
	b = binary.NativeEndian.AppendUint32(b, uint32(n))
	b = binary.NativeEndian.AppendUint16(b, family)
	b = binary.NativeEndian.AppendUint16(b, nlmFRequest|nlmFAck)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // port id: the kernel fills it in
	b = append(b, cmd, version, 0, 0)
	return append(b, attrs...)
}

// getFamilyMsg asks nlctrl for the id of the named family.
func getFamilyMsg(seq uint32, name string) []byte {
	return genlMessage(genlIDCtrl, seq, ctrlCmdGetFam, ctrlVersion, appendAttr(nil, ctrlAttrName, cstring(name)))
}

// nbdConnect holds the attributes of NBD_CMD_CONNECT.
type nbdConnect struct {
	Index     int    // -1: the kernel picks a free device
	Size      uint64 // NBD_ATTR_SIZE_BYTES (required)
	BlockSize uint64 // NBD_ATTR_BLOCK_SIZE_BYTES, 0 to omit
	Timeout   uint64 // NBD_ATTR_TIMEOUT in seconds, 0 to omit
	Flags     uint64 // NBD_ATTR_SERVER_FLAGS
	FDs       []int  // NBD_ATTR_SOCKETS
	Backend   string // NBD_ATTR_BACKEND_IDENTIFIER, "" to omit
}

// connectMsg encodes NBD_CMD_CONNECT. The sockets are nested as the kernel
// parses them: SOCKETS { SOCK_ITEM { SOCK_FD u32 } ... }, with NLA_F_NESTED
// set on the nests (nbd parses them leniently, so older kernels accept it
// too).
func connectMsg(family uint16, seq uint32, c nbdConnect) []byte {
	var a []byte
	if c.Index >= 0 {
		a = appendAttr(a, nbdAttrIndex, u32(uint32(c.Index)))
	}
	a = appendAttr(a, nbdAttrSizeBytes, u64(c.Size))
	if c.BlockSize != 0 {
		a = appendAttr(a, nbdAttrBlockSize, u64(c.BlockSize))
	}
	if c.Timeout != 0 {
		a = appendAttr(a, nbdAttrTimeout, u64(c.Timeout))
	}
	a = appendAttr(a, nbdAttrServerFlag, u64(c.Flags))
	var socks []byte
	for _, fd := range c.FDs {
		socks = appendAttr(socks, nbdSockItem|nlaFNested, appendAttr(nil, nbdSockFD, u32(uint32(fd))))
	}
	a = appendAttr(a, nbdAttrSockets|nlaFNested, socks)
	if c.Backend != "" {
		a = appendAttr(a, nbdAttrBackend, cstring(c.Backend))
	}
	return genlMessage(family, seq, nbdCmdConnect, nbdGenlVersion, a)
}

// disconnectMsg encodes NBD_CMD_DISCONNECT for /dev/nbd<index>.
func disconnectMsg(family uint16, seq uint32, index uint32) []byte {
	return genlMessage(family, seq, nbdCmdDisconnect, nbdGenlVersion, appendAttr(nil, nbdAttrIndex, u32(index)))
}

// nlMessage is one decoded netlink message.
type nlMessage struct {
	Type  uint16
	Flags uint16
	Seq   uint32
	// Errno is set for NLMSG_ERROR: 0 is an ACK.
	Errno syscall.Errno
	// Cmd and Attrs are set for generic netlink messages.
	Cmd   uint8
	Attrs []nlAttr
}

// nlAttr is one attribute; Type has the flag bits (NLA_F_NESTED) kept.
type nlAttr struct {
	Type uint16
	Data []byte
}

// attr returns the payload of the first attribute of type typ (flags
// ignored).
func attr(attrs []nlAttr, typ uint16) ([]byte, bool) {
	for _, a := range attrs {
		if a.Type&nlaTypeMask == typ {
			return a.Data, true
		}
	}
	return nil, false
}

var errShort = errors.New("truncated netlink message")

// parseMessages splits a datagram into messages.
func parseMessages(b []byte) ([]nlMessage, error) {
	var out []nlMessage
	for len(b) >= nlmsgHdrLen {
		n := int(binary.NativeEndian.Uint32(b[0:4]))
		if n < nlmsgHdrLen || n > len(b) {
			return nil, fmt.Errorf("%w: length %d of %d bytes", errShort, n, len(b))
		}
		m := nlMessage{
			Type:  binary.NativeEndian.Uint16(b[4:6]),
			Flags: binary.NativeEndian.Uint16(b[6:8]),
			Seq:   binary.NativeEndian.Uint32(b[8:12]),
		}
		body := b[nlmsgHdrLen:n]
		switch m.Type {
		case nlmsgError:
			if len(body) < 4 {
				return nil, fmt.Errorf("%w: NLMSG_ERROR without code", errShort)
			}
			m.Errno = syscall.Errno(-int32(binary.NativeEndian.Uint32(body[0:4])))
		case nlmsgDone:
		default:
			if len(body) < genlHdrLen {
				return nil, fmt.Errorf("%w: no genetlink header", errShort)
			}
			m.Cmd = body[0]
			attrs, err := parseAttrs(body[genlHdrLen:])
			if err != nil {
				return nil, err
			}
			m.Attrs = attrs
		}
		out = append(out, m)
		b = b[min(nlaAlign(n), len(b)):]
	}
	return out, nil
}

// parseAttrs decodes one level of attributes, in order.
func parseAttrs(b []byte) ([]nlAttr, error) {
	var attrs []nlAttr
	for len(b) >= nlaHdrLen {
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		if n < nlaHdrLen || n > len(b) {
			return nil, fmt.Errorf("%w: attribute length %d of %d bytes", errShort, n, len(b))
		}
		attrs = append(attrs, nlAttr{Type: binary.NativeEndian.Uint16(b[2:4]), Data: b[nlaHdrLen:n]})
		b = b[min(nlaAlign(n), len(b)):]
	}
	return attrs, nil
}
