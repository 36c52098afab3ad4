package attach

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"syscall"
	"testing"
)

// The expected bytes below are derived by hand from the kernel's uapi
// headers: include/uapi/linux/netlink.h (struct nlmsghdr, struct nlattr,
// NLM_F_REQUEST 0x1, NLM_F_ACK 0x4, NLA_F_NESTED 0x8000),
// include/uapi/linux/genetlink.h (struct genlmsghdr, GENL_ID_CTRL 0x10,
// CTRL_CMD_GETFAMILY 3, CTRL_ATTR_FAMILY_NAME 2) and
// include/uapi/linux/nbd-netlink.h (NBD_CMD_CONNECT 1, NBD_CMD_DISCONNECT 2,
// NBD_ATTR_INDEX 1 u32, NBD_ATTR_SIZE_BYTES 2 u64, NBD_ATTR_BLOCK_SIZE_BYTES
// 3 u64, NBD_ATTR_TIMEOUT 4 u64, NBD_ATTR_SERVER_FLAGS 5 u64,
// NBD_ATTR_SOCKETS 7 nested, NBD_ATTR_BACKEND_IDENTIFIER 10 string,
// NBD_SOCK_ITEM 1 nested, NBD_SOCK_FD 1 u32), attribute types as in the
// nla_policy tables of drivers/block/nbd.c. Netlink is host-endian; the
// tables are written for little-endian hosts.

type chunk struct{ name, hex string }

func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

func TestGenlMessages(t *testing.T) {
	if !littleEndian() {
		t.Skip("skipping: expected bytes are little-endian")
	}
	const family = 0x1a // a typical dynamic id; the kernel assigns it
	tests := []struct {
		name   string
		msg    []byte
		chunks []chunk
	}{
		{
			name: "GETFAMILY nbd",
			msg:  getFamilyMsg(1, "nbd"),
			chunks: []chunk{
				{"nlmsghdr len=28", "1c000000"},
				{"nlmsghdr type=GENL_ID_CTRL", "1000"},
				{"nlmsghdr flags=REQUEST|ACK", "0500"},
				{"nlmsghdr seq=1", "01000000"},
				{"nlmsghdr pid=0", "00000000"},
				{"genlmsghdr cmd=CTRL_CMD_GETFAMILY version=1", "03010000"},
				{"CTRL_ATTR_FAMILY_NAME hdr len=8", "08000200"},
				{"CTRL_ATTR_FAMILY_NAME \"nbd\\0\"", "6e626400"},
			},
		},
		{
			name: "CONNECT any index, two sockets, backend",
			msg: connectMsg(family, 7, nbdConnect{
				Index: -1, Size: 64 << 20, BlockSize: 4096, Timeout: 30,
				Flags: 0x16d, // HAS_FLAGS|SEND_FLUSH|SEND_FUA|SEND_TRIM|SEND_WRITE_ZEROES|CAN_MULTI_CONN
				FDs:   []int{5, 6}, Backend: "hactl:data",
			}),
			chunks: []chunk{
				{"nlmsghdr len=112", "70000000"},
				{"nlmsghdr type=family", "1a00"},
				{"nlmsghdr flags=REQUEST|ACK", "0500"},
				{"nlmsghdr seq=7", "07000000"},
				{"nlmsghdr pid=0", "00000000"},
				{"genlmsghdr cmd=NBD_CMD_CONNECT version=1", "01010000"},
				{"NBD_ATTR_SIZE_BYTES hdr", "0c000200"},
				{"NBD_ATTR_SIZE_BYTES 64 MiB", "0000000400000000"},
				{"NBD_ATTR_BLOCK_SIZE_BYTES hdr", "0c000300"},
				{"NBD_ATTR_BLOCK_SIZE_BYTES 4096", "0010000000000000"},
				{"NBD_ATTR_TIMEOUT hdr", "0c000400"},
				{"NBD_ATTR_TIMEOUT 30 s", "1e00000000000000"},
				{"NBD_ATTR_SERVER_FLAGS hdr", "0c000500"},
				{"NBD_ATTR_SERVER_FLAGS 0x16d", "6d01000000000000"},
				{"NBD_ATTR_SOCKETS|NLA_F_NESTED len=28", "1c000780"},
				{"NBD_SOCK_ITEM|NLA_F_NESTED len=12", "0c000180"},
				{"NBD_SOCK_FD hdr len=8", "08000100"},
				{"NBD_SOCK_FD 5", "05000000"},
				{"NBD_SOCK_ITEM|NLA_F_NESTED len=12", "0c000180"},
				{"NBD_SOCK_FD hdr len=8", "08000100"},
				{"NBD_SOCK_FD 6", "06000000"},
				{"NBD_ATTR_BACKEND_IDENTIFIER hdr len=15", "0f000a00"},
				{"NBD_ATTR_BACKEND_IDENTIFIER \"hactl:data\\0\"", "686163746c3a6461746100"},
				{"padding to 4", "00"},
			},
		},
		{
			name: "CONNECT fixed index, one socket, kernel defaults",
			msg: connectMsg(family, 9, nbdConnect{
				Index: 3, Size: 1 << 30, Flags: 0x0d, FDs: []int{9},
			}),
			chunks: []chunk{
				{"nlmsghdr len=68", "44000000"},
				{"nlmsghdr type=family", "1a00"},
				{"nlmsghdr flags=REQUEST|ACK", "0500"},
				{"nlmsghdr seq=9", "09000000"},
				{"nlmsghdr pid=0", "00000000"},
				{"genlmsghdr cmd=NBD_CMD_CONNECT version=1", "01010000"},
				{"NBD_ATTR_INDEX hdr len=8", "08000100"},
				{"NBD_ATTR_INDEX 3", "03000000"},
				{"NBD_ATTR_SIZE_BYTES hdr", "0c000200"},
				{"NBD_ATTR_SIZE_BYTES 1 GiB", "0000004000000000"},
				{"NBD_ATTR_SERVER_FLAGS hdr", "0c000500"},
				{"NBD_ATTR_SERVER_FLAGS 0x0d", "0d00000000000000"},
				{"NBD_ATTR_SOCKETS|NLA_F_NESTED len=16", "10000780"},
				{"NBD_SOCK_ITEM|NLA_F_NESTED len=12", "0c000180"},
				{"NBD_SOCK_FD hdr len=8", "08000100"},
				{"NBD_SOCK_FD 9", "09000000"},
			},
		},
		{
			name: "DISCONNECT nbd3",
			msg:  disconnectMsg(family, 8, 3),
			chunks: []chunk{
				{"nlmsghdr len=28", "1c000000"},
				{"nlmsghdr type=family", "1a00"},
				{"nlmsghdr flags=REQUEST|ACK", "0500"},
				{"nlmsghdr seq=8", "08000000"},
				{"nlmsghdr pid=0", "00000000"},
				{"genlmsghdr cmd=NBD_CMD_DISCONNECT version=1", "02010000"},
				{"NBD_ATTR_INDEX hdr len=8", "08000100"},
				{"NBD_ATTR_INDEX 3", "03000000"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.msg
			off := 0
			for _, c := range tc.chunks {
				want, err := hex.DecodeString(c.hex)
				if err != nil {
					t.Fatalf("bad test hex for %s: %v", c.name, err)
				}
				end := min(off+len(want), len(got))
				if !bytes.Equal(got[off:end], want) {
					t.Fatalf("%s at byte %d: got % x, want % x\nwhole message: % x", c.name, off, got[off:end], want, got)
				}
				off += len(want)
			}
			if off != len(got) {
				t.Fatalf("message has %d bytes, the layout %d: trailing % x", len(got), off, got[off:])
			}
		})
	}
}

// TestGenlConnectStructure decodes a CONNECT the way the kernel walks it.
func TestGenlConnectStructure(t *testing.T) {
	msg := connectMsg(0x22, 1, nbdConnect{Index: -1, Size: 8192, FDs: []int{3, 4, 5}, Backend: "hactl:v"})
	msgs, err := parseMessages(msg)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parse: %v, %d messages", err, len(msgs))
	}
	m := msgs[0]
	if m.Type != 0x22 || m.Cmd != nbdCmdConnect || m.Flags != nlmFRequest|nlmFAck {
		t.Fatalf("header: %+v", m)
	}
	if _, ok := attr(m.Attrs, nbdAttrIndex); ok {
		t.Errorf("NBD_ATTR_INDEX present, want it omitted so the kernel picks a device")
	}
	if b, _ := attr(m.Attrs, nbdAttrSizeBytes); len(b) != 8 || binary.NativeEndian.Uint64(b) != 8192 {
		t.Errorf("NBD_ATTR_SIZE_BYTES = % x", b)
	}
	if b, _ := attr(m.Attrs, nbdAttrBackend); string(b) != "hactl:v\x00" {
		t.Errorf("NBD_ATTR_BACKEND_IDENTIFIER = %q", b)
	}
	socks, ok := attr(m.Attrs, nbdAttrSockets)
	if !ok {
		t.Fatal("no NBD_ATTR_SOCKETS")
	}
	items, err := parseAttrs(socks)
	if err != nil {
		t.Fatal(err)
	}
	var fds []uint32
	for _, it := range items {
		if it.Type != nbdSockItem|nlaFNested {
			t.Errorf("socket list entry type %#x, want NBD_SOCK_ITEM|NLA_F_NESTED", it.Type)
		}
		inner, err := parseAttrs(it.Data)
		if err != nil {
			t.Fatal(err)
		}
		fd, ok := attr(inner, nbdSockFD)
		if !ok || len(fd) != 4 {
			t.Fatalf("NBD_SOCK_ITEM without a u32 NBD_SOCK_FD: %+v", inner)
		}
		fds = append(fds, binary.NativeEndian.Uint32(fd))
	}
	if len(fds) != 3 || fds[0] != 3 || fds[1] != 4 || fds[2] != 5 {
		t.Errorf("socket fds = %v, want [3 4 5]", fds)
	}
}

// nlHeader builds a netlink header for reply tests.
func nlHeader(length int, typ, flags uint16, seq uint32) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(length))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	return binary.NativeEndian.AppendUint32(b, 1234)
}

func nlError(seq uint32, errno syscall.Errno) []byte {
	b := nlHeader(nlmsgHdrLen+4+nlmsgHdrLen, nlmsgError, 0, seq)
	b = binary.NativeEndian.AppendUint32(b, uint32(-int32(errno)))
	return append(b, nlHeader(20, 0x1a, 5, seq)...) // the request's header
}

func TestGenlParseReplies(t *testing.T) {
	// What nbd_connect_reply sends, then the ACK, in one datagram.
	reply := nlHeader(nlmsgHdrLen+genlHdrLen+8, 0x1a, 0, 7)
	reply = append(reply, nbdCmdConnect, nbdGenlVersion, 0, 0)
	reply = appendAttr(reply, nbdAttrIndex, u32(4))
	reply = append(reply, nlError(7, 0)...)

	msgs, err := parseMessages(reply)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want reply and ACK", len(msgs))
	}
	if b, ok := attr(msgs[0].Attrs, nbdAttrIndex); !ok || binary.NativeEndian.Uint32(b) != 4 || msgs[0].Cmd != nbdCmdConnect {
		t.Errorf("reply = %+v, want CONNECT with NBD_ATTR_INDEX 4", msgs[0])
	}
	if msgs[1].Type != nlmsgError || msgs[1].Errno != 0 || msgs[1].Seq != 7 {
		t.Errorf("ack = %+v", msgs[1])
	}

	// A missing family is a negative ACK with ENOENT.
	msgs, err = parseMessages(nlError(3, syscall.ENOENT))
	if err != nil || len(msgs) != 1 || msgs[0].Errno != syscall.ENOENT {
		t.Errorf("negative ack: %+v, %v", msgs, err)
	}

	for name, b := range map[string][]byte{
		"length beyond the datagram": nlHeader(100, 0x1a, 0, 1),
		"length below the header":    nlHeader(8, 0x1a, 0, 1),
		"attribute beyond message":   append(append(nlHeader(28, 0x1a, 0, 1), 1, 1, 0, 0), 0x20, 0, 1, 0, 0, 0, 0, 0),
		"error without code":         nlHeader(16, nlmsgError, 0, 1),
	} {
		if _, err := parseMessages(b); err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("%s: err = %v, want a truncation error", name, err)
		}
	}
}

func FuzzParseMessages(f *testing.F) {
	f.Add(getFamilyMsg(1, "nbd"))
	f.Add(connectMsg(0x1a, 2, nbdConnect{Index: 1, Size: 4096, FDs: []int{3}, Backend: "x"}))
	f.Add(nlError(1, syscall.ENOENT))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := parseMessages(b)
		if err != nil {
			return
		}
		for _, m := range msgs {
			for _, a := range m.Attrs {
				parseAttrs(a.Data) // nested decoding must not panic either
			}
		}
	})
}
