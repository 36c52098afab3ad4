package membership

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func mustEncode(t testing.TB, h message) []byte {
	t.Helper()
	b, err := appendMessage(nil, h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMessageRoundTrip(t *testing.T) {
	for _, h := range []message{
		{Kind: kindHeartbeat, Boot: 0, Seq: 1, Node: "a"},
		{Kind: kindHeartbeat, Boot: 0xdeadbeefcafef00d, Seq: 1<<64 - 1, Node: "node-1.example", State: []byte(`{"vrrp":{"vi1":"MASTER"}}`)},
		{Kind: kindHeartbeat, Boot: 7, Seq: 9, Node: strings.Repeat("n", maxNameLen), State: bytes.Repeat([]byte{0xff}, MaxStateSize)},
		{Kind: kindLeave, Boot: 7, Seq: 10, Node: "a"},
	} {
		b := mustEncode(t, h)
		got, err := decodeMessage(b)
		if err != nil {
			t.Fatalf("decode(%s): %v", h.Node, err)
		}
		if got.Kind != h.Kind || got.Boot != h.Boot || got.Seq != h.Seq || got.Node != h.Node || !bytes.Equal(got.State, h.State) {
			t.Errorf("round trip: got %+v, want %+v", got, h)
		}
		if len(h.State) == 0 && got.State != nil {
			t.Errorf("empty state decoded as %q, want nil", got.State)
		}
	}
}

func TestMessageLayout(t *testing.T) {
	b := mustEncode(t, message{Kind: kindHeartbeat, Boot: 0x0102030405060708, Seq: 0x1112131415161718, Node: "ab", State: []byte("xyz")})
	want := []byte{1, 1,
		1, 2, 3, 4, 5, 6, 7, 8,
		0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
		2, 'a', 'b',
		0, 3, 'x', 'y', 'z'}
	if !bytes.Equal(b, want) {
		t.Errorf("encoding\n got %x\nwant %x", b, want)
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	good := mustEncode(t, message{Kind: kindHeartbeat, Boot: 1, Seq: 2, Node: "node", State: []byte("state")})
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	oversize := func() []byte {
		b := mustEncode(t, message{Kind: kindHeartbeat, Seq: 1, Node: "n"})
		b = b[:len(b)-2]
		b = binary.BigEndian.AppendUint16(b, MaxStateSize+1)
		return append(b, make([]byte, MaxStateSize+1)...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, errShort},
		{"one byte", []byte{1}, errShort},
		{"wrong version", mod(func(b []byte) []byte { b[0] = 2; return b }), errVersion},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0; return b }), errVersion},
		{"wrong kind", mod(func(b []byte) []byte { b[1] = 9; return b }), errKind},
		{"kind 0", mod(func(b []byte) []byte { b[1] = 0; return b }), errKind},
		{"leave with state", mod(func(b []byte) []byte { b[1] = kindLeave; return b }), errTooLarge},
		{"header cut", good[:headerLen-1], errShort},
		{"name cut", good[:headerLen+2], errShort},
		{"state length cut", good[:headerLen+4+1], errShort},
		{"state cut", good[:len(good)-1], errShort},
		{"trailing byte", append(bytes.Clone(good), 0), errTrailing},
		{"empty name", mod(func(b []byte) []byte { b[18] = 0; return b }), errName},
		{"seq 0", mod(func(b []byte) []byte { binary.BigEndian.PutUint64(b[10:], 0); return b }), errSeq},
		{"name length past end", mod(func(b []byte) []byte { b[18] = 200; return b }), errShort},
		{"state length over max", oversize(), errTooLarge},
		{"message over max", append(bytes.Clone(good), make([]byte, maxMessageLen)...), errTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeMessage(tc.in)
			if !errors.Is(err, tc.want) {
				t.Errorf("decode = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAppendMessageRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    message
		want error
	}{
		{"no name", message{Kind: kindHeartbeat, Seq: 1}, errName},
		{"long name", message{Kind: kindHeartbeat, Seq: 1, Node: strings.Repeat("x", maxNameLen+1)}, errName},
		{"big state", message{Kind: kindHeartbeat, Seq: 1, Node: "a", State: make([]byte, MaxStateSize+1)}, errTooLarge},
		{"seq 0", message{Kind: kindHeartbeat, Node: "a"}, errSeq},
		{"no kind", message{Seq: 1, Node: "a"}, errKind},
		{"leave with state", message{Kind: kindLeave, Seq: 1, Node: "a", State: []byte("x")}, errTooLarge},
	} {
		if _, err := appendMessage(nil, tc.h); !errors.Is(err, tc.want) {
			t.Errorf("%s: encode = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestMeta(t *testing.T) {
	for _, w := range []bool{false, true} {
		got, ok := decodeMeta(encodeMeta(w))
		if !ok || got != w {
			t.Errorf("meta(%v) round trip = %v, %v", w, got, ok)
		}
	}
	for _, b := range [][]byte{nil, {1}, {2, 1}} {
		if _, ok := decodeMeta(b); ok {
			t.Errorf("decodeMeta(%x) accepted", b)
		}
	}
	// Flags a later version adds are ignored.
	if w, ok := decodeMeta([]byte{1, 0x81, 0xff}); !ok || !w {
		t.Errorf("decodeMeta with extra flags = %v, %v", w, ok)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(mustEncode(f, message{Kind: kindHeartbeat, Boot: 1, Seq: 1, Node: "a"}))
	f.Add(mustEncode(f, message{Kind: kindHeartbeat, Boot: 42, Seq: 1000, Node: "node-2", State: []byte("state")}))
	f.Add(mustEncode(f, message{Kind: kindLeave, Boot: 42, Seq: 1001, Node: "node-2"}))
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeMessage(b)
		if err != nil {
			return
		}
		// Canonical: a valid message re-encodes to exactly its input.
		again, err := appendMessage(nil, h)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", h, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
	})
}
