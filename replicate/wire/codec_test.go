package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// roundTrips has a message of every type, some at their limits.
func roundTrips() []struct {
	name string
	msg  Msg
} {
	maxNames := testHello(strings.Repeat("n", MaxName))
	maxNames.Volume = strings.Repeat("v", MaxName)
	maxNames.MinVersion, maxNames.MaxVersion = 1, 65535
	maxNames.Flags = ^StateFlags(0) // unknown bits pass in a Hello
	maxNames.Role, maxNames.Disk = RolePrimary, DiskDiskless
	utf := testHello("knoten-ü")
	utf.MinVersion, utf.MaxVersion = 1, 1
	small := testHello("a")
	small.MinVersion, small.MaxVersion, small.Size = 1, 1, SectorSize

	return []struct {
		name string
		msg  Msg
	}{
		{"challenge", &challenge{nonce: [32]byte{1, 2, 3, 31: 0xff}}},
		{"response", &response{mac: [32]byte{9, 31: 7}}},
		{"join", &join{session: SessionID{0xab, 15: 0xcd}}},
		{"hello", &Hello{MinVersion: 1, MaxVersion: 1, Node: "a", Volume: "data", Size: testSize, Role: RoleSecondary, Disk: DiskInconsistent}},
		{"hello full", func() Msg { h := testHello("node-a"); h.MinVersion, h.MaxVersion = 1, 3; return &h }()},
		{"hello longest names", &maxNames},
		{"hello utf-8", &utf},
		{"hello smallest volume", &small},
		{"disconnect", &Disconnect{Reason: ReasonShutdown, Text: "node a is going down"}},
		{"disconnect auth", &Disconnect{Reason: ReasonAuth}},
		{"disconnect longest text", &Disconnect{Reason: ReasonSplitBrain, Text: strings.Repeat("x", MaxText)}},
		{"data one sector", &Data{BlockID: 1, Epoch: 2, Offset: 0, Payload: filled(SectorSize)}},
		{"data largest", &Data{BlockID: ^uint64(0), Epoch: 1 << 40, Offset: testSize - MaxData, Flags: WriteFUA | WriteFlush | WriteAckWrite, Payload: filled(MaxData)}},
		{"data proto B", &Data{BlockID: 7, Epoch: 3, Offset: 4096, Flags: WriteAckRecv, Payload: filled(4096)}},
		{"trim", &Trim{BlockID: 5, Epoch: 9, Offset: 8192, Length: 1 << 20, Flags: WriteAckWrite}},
		{"write zeroes whole volume", &WriteZeroes{BlockID: 6, Epoch: 9, Offset: 0, Length: testSize, Flags: WriteFUA}},
		{"barrier", &Barrier{Epoch: 12345}},
		{"state change", &StateChange{Role: RolePrimary, Disk: DiskOutdated, Flags: FlagCrashedPrimary | FlagPeerOutdated, Gen: Generations{1, 2, [2]uint64{3, 4}}, Dirty: 99}},
		{"recv ack", &RecvAck{BlockID: 1, Offset: 512, Length: 512}},
		{"write ack", &WriteAck{BlockID: 2, Offset: 1024, Length: MaxData, Status: StatusOK}},
		{"neg ack", &NegAck{BlockID: 3, Offset: 0, Length: 4096, Status: StatusIOError}},
		{"neg ack no disk", &NegAck{BlockID: 3, Offset: 0, Length: 4096, Status: StatusNoDisk}},
		{"barrier ack", &BarrierAck{Epoch: 12345, Writes: 2048}},
		{"ping", &Ping{Nonce: 42}},
		{"ping ack", &PingAck{Nonce: 42}},
		{"resync request", &ResyncRequest{Offset: 1 << 20, Length: MaxData}},
		{"resync data", &ResyncData{Offset: 1 << 20, Payload: filled(64 << 10)}},
		{"resync hash", &ResyncHash{Offset: 4096, Length: 4096, Hash: [32]byte{1, 31: 2}}},
		{"resync ack in sync", &ResyncAck{Offset: 4096, Length: 4096, Status: StatusInSync}},
		{"resync ack written", &ResyncAck{Offset: 4096, Length: 4096, Status: StatusOK}},
		{"verify hash", &VerifyHash{Offset: 1 << 20, Length: MaxData, Hash: [32]byte{3, 31: 4}}},
		{"verify ack differs", &VerifyAck{Offset: 1 << 20, Length: MaxData, Status: StatusOutOfSync}},
		{"verify ack same", &VerifyAck{Offset: 0, Length: 4096, Status: StatusInSync}},
		{"bitmap chunk", &BitmapChunk{Start: 64, Bits: []byte{0xff, 0, 0, 0, 0, 0, 0, 0x80}}},
		{"bitmap last chunk", &BitmapChunk{Start: testSize/BitmapBlock - 64*8, Last: true, Bits: make([]byte, 64)}},
	}
}

// TestRoundTrip sends a message of every type through a Conn's encoder
// and decoder and compares what comes out with what went in.
func TestRoundTrip(t *testing.T) {
	seen := map[Type]bool{}
	for _, tc := range roundTrips() {
		t.Run(tc.name, func(t *testing.T) {
			seen[tc.msg.Type()] = true
			c := readConn(frames(tc.msg, tc.msg), routeOf(tc.msg.Type()), testSize)
			for seq := 1; seq <= 2; seq++ {
				got, err := c.Recv()
				if err != nil {
					t.Fatalf("frame %d: %v", seq, err)
				}
				if !reflect.DeepEqual(unpooled(got), tc.msg) {
					t.Fatalf("frame %d: got %+v, want %+v", seq, got, tc.msg)
				}
			}
			if _, err := c.Recv(); err != io.EOF {
				t.Fatalf("after the frames: %v, want io.EOF", err)
			}
		})
	}
	for i, info := range types {
		if info.name != "" && !seen[Type(i)] {
			t.Errorf("no round trip for %v", Type(i))
		}
	}
}

// TestFrameLayout pins the bytes of a frame, so a change to the format is
// a deliberate one.
func TestFrameLayout(t *testing.T) {
	for _, tc := range []struct {
		m    Msg
		seq  uint64
		want string
	}{
		{&Ping{Nonce: 0x0102030405060708}, 7,
			"6861524c 01 24 0000 0000000000000007 00000008 0102030405060708"},
		{&WriteAck{BlockID: 9, Offset: 4096, Length: 512}, 1,
			"6861524c 01 21 0000 0000000000000001 00000018 0000000000000009 0000000000001000 00000200 00000000"},
		{&Data{BlockID: 1, Epoch: 2, Offset: 512, Flags: WriteFUA | WriteAckWrite, Payload: make([]byte, 512)}, 2,
			"6861524c 01 10 0000 0000000000000002 0000021c 0000000000000001 0000000000000002 0000000000000200 00000009" + strings.Repeat("00", 512)},
		{&Disconnect{Reason: ReasonAuth}, 3,
			"6861524c 01 05 0000 0000000000000003 00000002 0002"},
	} {
		want, err := hex.DecodeString(strings.ReplaceAll(tc.want, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := frame(tc.m.Type(), tc.seq, payload(tc.m)); !bytes.Equal(got, want) {
			t.Errorf("%v:\n got %x\nwant %x", tc.m.Type(), got, want)
		}
	}
}

// TestDecodeErrors feeds broken frames to a Conn. Each must fail with the
// error a caller can branch on, and a frame too large for its type must
// fail on its header alone: nothing is read or allocated for it.
func TestDecodeErrors(t *testing.T) {
	hello := payload(&Hello{MinVersion: 1, MaxVersion: 1, Node: "ab", Volume: "data", Size: testSize, Role: RoleSecondary, Disk: DiskUpToDate})
	const nodeLen = helloFixed // offset of the node name's length byte
	data := payload(&Data{BlockID: 1, Offset: 4096, Payload: make([]byte, 1024)})
	trim := payload(&Trim{Offset: 4096, Length: 4096})
	ack := payload(&WriteAck{Offset: 4096, Length: 4096})
	state := payload(&StateChange{Role: RolePrimary, Disk: DiskUpToDate})
	bitmap := payload(&BitmapChunk{Start: 0, Bits: make([]byte, 8)})
	ping := frame(TypePing, 1, payload(&Ping{Nonce: 1}))

	for _, tc := range []struct {
		name  string
		in    []byte
		route route
		want  error
	}{
		// The stream and the header.
		{"empty stream", nil, onMeta, io.EOF},
		{"short header", ping[:HeaderLen-1], onMeta, io.ErrUnexpectedEOF},
		{"short payload", ping[:len(ping)-1], onMeta, io.ErrUnexpectedEOF},
		{"bad magic", mutate(ping, put32(0, 0x48545450)), onMeta, ErrBadMagic},
		{"frame version 2", mutate(ping, func(b []byte) { b[4] = 2 }), onMeta, ErrVersion},
		{"frame version 0", mutate(ping, func(b []byte) { b[4] = 0 }), onMeta, ErrVersion},
		{"unknown type", mutate(ping, func(b []byte) { b[5] = 99 }), onMeta, ErrUnknownType},
		{"type zero", mutate(ping, func(b []byte) { b[5] = 0 }), onMeta, ErrUnknownType},
		{"reserved flags", mutate(ping, put16(6, 1)), onMeta, ErrMalformed},
		{"ping too long", frame(TypePing, 1, make([]byte, 9)), onMeta, ErrTooLarge},
		{"ping too short", frame(TypePing, 1, make([]byte, 7)), onMeta, ErrMalformed},
		// Only a header: reading a payload would fail with io.ErrUnexpectedEOF.
		{"data over 1 MiB", mutate(frame(TypeData, 1, nil), put32(16, dataFixed+MaxData+1)), onData, ErrTooLarge},
		{"data claims 4 GiB", mutate(frame(TypeData, 1, nil), put32(16, 0xffffffff)), onData, ErrTooLarge},
		{"hello claims 64 KiB", mutate(frame(TypeHello, 1, nil), put32(16, 64<<10)), onHandshake, ErrTooLarge},
		{"first sequence number 2", frame(TypePing, 2, payload(&Ping{})), onMeta, ErrSequence},
		{"first sequence number 0", frame(TypePing, 0, payload(&Ping{})), onMeta, ErrSequence},
		{"sequence gap", append(frame(TypePing, 1, payload(&Ping{})), frame(TypePing, 3, payload(&Ping{}))...), onMeta, ErrSequence},
		{"sequence repeat", append(frame(TypePing, 1, payload(&Ping{})), frame(TypePing, 1, payload(&Ping{}))...), onMeta, ErrSequence},

		// Which connection, and when.
		{"data on meta", frame(TypeData, 1, data), onMeta, ErrUnexpected},
		{"ack on data", frame(TypeWriteAck, 1, ack), onData, ErrUnexpected},
		{"ping before the link is up", ping, onHandshake, ErrUnexpected},
		{"challenge after the link is up", frame(TypeChallenge, 1, make([]byte, 32)), onData, ErrUnexpected},
		{"hello after the link is up", frame(TypeHello, 1, hello), onData, ErrUnexpected},

		// Hello.
		{"hello versions zero", frame(TypeHello, 1, mutate(hello, put32(0, 0))), onHandshake, ErrMalformed},
		{"hello min above max", frame(TypeHello, 1, mutate(hello, put32(0, 0x00030002))), onHandshake, ErrMalformed},
		{"hello role zero", frame(TypeHello, 1, mutate(hello, func(b []byte) { b[4] = 0 })), onHandshake, ErrMalformed},
		{"hello role 3", frame(TypeHello, 1, mutate(hello, func(b []byte) { b[4] = 3 })), onHandshake, ErrMalformed},
		{"hello disk 7", frame(TypeHello, 1, mutate(hello, func(b []byte) { b[5] = 7 })), onHandshake, ErrMalformed},
		{"hello size zero", frame(TypeHello, 1, mutate(hello, put64(22, 0))), onHandshake, ErrMalformed},
		{"hello size not sectors", frame(TypeHello, 1, mutate(hello, put64(22, testSize+1))), onHandshake, ErrMalformed},
		{"hello empty node", frame(TypeHello, 1, append(mutate(hello[:nodeLen+1], func(b []byte) { b[nodeLen] = 0 }), hello[nodeLen+3:]...)), onHandshake, ErrMalformed},
		{"hello node past the end", frame(TypeHello, 1, mutate(hello, func(b []byte) { b[nodeLen] = 200 })), onHandshake, ErrMalformed},
		{"hello volume past the end", frame(TypeHello, 1, hello[:len(hello)-1]), onHandshake, ErrMalformed},
		{"hello node not UTF-8", frame(TypeHello, 1, mutate(hello, func(b []byte) { b[nodeLen+1] = 0xff })), onHandshake, ErrMalformed},
		{"hello node with newline", frame(TypeHello, 1, mutate(hello, func(b []byte) { b[nodeLen+1] = '\n' })), onHandshake, ErrMalformed},
		{"hello node too long", frame(TypeHello, 1, append(append(mutate(hello[:nodeLen+1], func(b []byte) { b[nodeLen] = MaxName + 1 }), strings.Repeat("n", MaxName+1)...), hello[nodeLen+3:]...)), onHandshake, ErrMalformed},

		// Disconnect.
		{"disconnect reason zero", frame(TypeDisconnect, 1, []byte{0, 0}), onData, ErrMalformed},
		{"disconnect unknown reason", frame(TypeDisconnect, 1, []byte{0, 99}), onData, ErrMalformed},
		{"disconnect auth with text", frame(TypeDisconnect, 1, []byte("\x00\x02because")), onHandshake, ErrMalformed},
		{"disconnect text not UTF-8", frame(TypeDisconnect, 1, []byte("\x00\x01\xff")), onMeta, ErrMalformed},
		{"disconnect text with escape", frame(TypeDisconnect, 1, []byte("\x00\x01\x1b[2J")), onMeta, ErrMalformed},
		{"disconnect text too long", frame(TypeDisconnect, 1, append([]byte{0, 1}, strings.Repeat("x", MaxText+1)...)), onMeta, ErrTooLarge},

		// Writes.
		{"data offset not sectors", frame(TypeData, 1, mutate(data, put64(16, 4097))), onData, ErrMalformed},
		{"data length not sectors", frame(TypeData, 1, append(bytes.Clone(data), 0)), onData, ErrMalformed},
		{"data shorter than a sector", frame(TypeData, 1, data[:dataFixed+SectorSize-1]), onData, ErrMalformed},
		{"data unknown flags", frame(TypeData, 1, mutate(data, put32(24, 1<<4))), onData, ErrMalformed},
		{"data past the end of the volume", frame(TypeData, 1, mutate(data, put64(16, testSize-512))), onData, ErrMalformed},
		{"data offset wraps", frame(TypeData, 1, mutate(data, put64(16, ^uint64(511)))), onData, ErrMalformed},
		{"trim length zero", frame(TypeTrim, 1, mutate(trim, put32(28, 0))), onData, ErrMalformed},
		{"trim length not sectors", frame(TypeTrim, 1, mutate(trim, put32(28, 100))), onData, ErrMalformed},
		{"trim past the end", frame(TypeTrim, 1, mutate(trim, put64(16, testSize))), onData, ErrMalformed},
		{"write zeroes unknown flags", frame(TypeWriteZeroes, 1, mutate(trim, put32(24, 0x80000000))), onData, ErrMalformed},
		{"state unknown flags", frame(TypeStateChange, 1, mutate(state, put64(2, 1<<20))), onData, ErrMalformed},
		{"state role zero", frame(TypeStateChange, 1, mutate(state, func(b []byte) { b[0] = 0 })), onData, ErrMalformed},
		{"state disk zero", frame(TypeStateChange, 1, mutate(state, func(b []byte) { b[1] = 0 })), onData, ErrMalformed},

		// Acks.
		{"recv ack with status", frame(TypeRecvAck, 1, mutate(ack, put32(20, 2))), onMeta, ErrMalformed},
		{"write ack failed", frame(TypeWriteAck, 1, mutate(ack, put32(20, uint32(StatusIOError)))), onMeta, ErrMalformed},
		{"neg ack ok", frame(TypeNegAck, 1, ack), onMeta, ErrMalformed},
		{"ack length zero", frame(TypeWriteAck, 1, mutate(ack, put32(16, 0))), onMeta, ErrMalformed},
		{"ack past the end", frame(TypeWriteAck, 1, mutate(ack, put64(8, testSize))), onMeta, ErrMalformed},

		// Resync.
		{"resync request over 1 MiB", frame(TypeResyncRequest, 1, payload(&ResyncRequest{Offset: 0, Length: MaxData + SectorSize})), onData, ErrMalformed},
		{"resync request past the end", frame(TypeResyncRequest, 1, payload(&ResyncRequest{Offset: testSize, Length: SectorSize})), onData, ErrMalformed},
		{"resync hash not sectors", frame(TypeResyncHash, 1, payload(&ResyncHash{Offset: 3, Length: SectorSize})), onData, ErrMalformed},
		{"verify ack with a write status", frame(TypeVerifyAck, 1, payload(&VerifyAck{Offset: 0, Length: 4096, Status: StatusOK})), onMeta, ErrMalformed},
		{"resync ack with a verify status", frame(TypeResyncAck, 1, payload(&ResyncAck{Offset: 0, Length: 4096, Status: StatusOutOfSync})), onMeta, ErrMalformed},
		{"verify hash on meta", frame(TypeVerifyHash, 1, payload(&VerifyHash{Offset: 0, Length: 4096})), onMeta, ErrUnexpected},
		{"resync ack unknown status", frame(TypeResyncAck, 1, payload(&ResyncAck{Offset: 0, Length: SectorSize, Status: 9})), onMeta, ErrMalformed},
		{"resync data not sectors", frame(TypeResyncData, 1, append(payload(&ResyncData{Offset: 0, Payload: make([]byte, 512)}), 1)), onData, ErrMalformed},
		{"bitmap start not a word", frame(TypeBitmapChunk, 1, mutate(bitmap, put64(0, 8))), onData, ErrMalformed},
		{"bitmap not whole words", frame(TypeBitmapChunk, 1, append(bytes.Clone(bitmap), 0)), onData, ErrMalformed},
		{"bitmap unknown flags", frame(TypeBitmapChunk, 1, mutate(bitmap, put32(8, 2))), onData, ErrMalformed},
		{"bitmap past the end", frame(TypeBitmapChunk, 1, mutate(bitmap, put64(0, testSize/BitmapBlock))), onData, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := readConn(tc.in, tc.route, testSize)
			m, err := c.Recv()
			for err == nil { // frames before the broken one
				m, err = c.Recv()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Recv = %v, %v; want %v", m, err, tc.want)
			}
			if errors.Is(tc.want, ErrProtocol) && !errors.Is(err, ErrProtocol) {
				t.Errorf("%v does not match ErrProtocol", err)
			}
			if _, again := c.Recv(); again == nil || again.Error() != err.Error() {
				t.Errorf("second Recv = %v, want the same error again", again)
			}
		})
	}
}

// TestHelloExtension: a newer peer's Hello may carry more than we know, so
// we can still tell it which versions we speak.
func TestHelloExtension(t *testing.T) {
	h := testHello("b")
	h.MinVersion, h.MaxVersion = 1, 7
	h.Flags |= 1 << 40
	p := append(payload(&h), "fields of version 7"...)
	got, err := readConn(frame(TypeHello, 1, p), onHandshake, 0).Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, &h) {
		t.Fatalf("got %+v, want %+v", got, &h)
	}
}

// TestSendRejectsInvalid: the encoder checks what the decoder checks, so
// an engine bug shows at the sender, and nothing is written.
func TestSendRejectsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Msg
		want error
	}{
		{"data unaligned", &Data{Offset: 1, Payload: make([]byte, 512)}, ErrMalformed},
		{"data empty", &Data{Offset: 0}, ErrMalformed},
		{"data over 1 MiB", &Data{Payload: make([]byte, MaxData+SectorSize)}, ErrMalformed},
		{"data past the end", &Data{Offset: testSize, Payload: make([]byte, 512)}, ErrMalformed},
		{"trim empty", &Trim{Offset: 0}, ErrMalformed},
		{"neg ack ok", &NegAck{Length: 512}, ErrMalformed},
		{"disconnect auth with text", &Disconnect{Reason: ReasonAuth, Text: "wrong secret"}, ErrMalformed},
		{"disconnect text with newline", &Disconnect{Reason: ReasonShutdown, Text: "a\nb"}, ErrMalformed},
		{"ping on data", &Ping{}, ErrUnexpected},
		{"hello once up", func() Msg { h := testHello("a"); h.MinVersion, h.MaxVersion = 1, 1; return &h }(), ErrUnexpected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Nothing reads the other end: a write would block.
			c := newConn(nil, onData, 0)
			c.up, c.size = true, testSize
			if _, ok := tc.m.(*NegAck); ok {
				c.route = onMeta
			}
			if err := c.Send(tc.m); !errors.Is(err, tc.want) {
				t.Fatalf("Send = %v, want %v", err, tc.want)
			}
			if c.wseq != 0 {
				t.Fatalf("a sequence number was used")
			}
		})
	}
}
