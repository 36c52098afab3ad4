package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The seed corpora in testdata/fuzz/<Target> are written by
// TestWriteCorpus from the seeds below:
//
//	HACTL_WIRE_WRITE_CORPUS=1 go test -run TestWriteCorpus ./replicate/wire

// Modes of FuzzFrame: which connection the stream arrives on.
const (
	modeHandshake = iota
	modeData
	modeMeta
	modes
)

var modeRoutes = [modes]route{onHandshake, onData, onMeta}

type frameSeed struct {
	name   string
	stream []byte
	mode   uint8
	size   uint64
}

func frameSeeds() []frameSeed {
	var seeds []frameSeed
	for _, tc := range roundTrips() {
		stream := frames(tc.msg)
		if len(stream) > 8<<10 {
			continue // big frames make slow fuzzing; the unit tests have them
		}
		mode := uint8(modeHandshake)
		switch routeOf(tc.msg.Type()) {
		case onData:
			mode = modeData
		case onMeta:
			mode = modeMeta
		}
		seeds = append(seeds, frameSeed{"msg-" + strings.ReplaceAll(tc.name, " ", "-"), stream, mode, testSize})
	}
	stream := frames(
		&Data{BlockID: 1, Epoch: 1, Offset: 0, Flags: WriteAckWrite, Payload: filled(4096)},
		&Trim{BlockID: 2, Epoch: 1, Offset: 4096, Length: 8192},
		&Barrier{Epoch: 1},
		&StateChange{Role: RolePrimary, Disk: DiskUpToDate},
		&Disconnect{Reason: ReasonShutdown, Text: "bye"},
	)
	return append(seeds,
		frameSeed{"stream-data", stream, modeData, testSize},
		frameSeed{"stream-data-size-unknown", stream, modeData, 0},
		frameSeed{"stream-meta", frames(&WriteAck{BlockID: 1, Length: 4096}, &Ping{Nonce: 1}, &PingAck{Nonce: 9}, &BarrierAck{Epoch: 1, Writes: 2}), modeMeta, testSize},
		frameSeed{"bad-magic", mutate(frames(&Ping{}), put32(0, 0)), modeMeta, testSize},
		frameSeed{"sequence-gap", append(frames(&Ping{}), frame(TypePing, 3, make([]byte, 8))...), modeMeta, testSize},
		frameSeed{"huge-length", mutate(frame(TypeData, 1, nil), put32(16, 0xffffffff)), modeData, testSize},
		frameSeed{"truncated", frames(&Data{Payload: filled(1024)})[:HeaderLen+40], modeData, testSize},
		frameSeed{"empty", nil, modeData, 0},
	)
}

// FuzzFrame reads a stream of frames as one connection would. Every error
// must be one a caller can branch on; every message decoded must be valid,
// re-encode to the very bytes it came from (a Hello to a prefix: newer
// fields are dropped), and decode again to itself.
func FuzzFrame(f *testing.F) {
	for _, s := range frameSeeds() {
		f.Add(s.stream, s.mode, s.size)
	}
	f.Fuzz(func(t *testing.T, stream []byte, mode uint8, size uint64) {
		c := readConn(stream, modeRoutes[mode%modes], size)
		off := 0
		for {
			m, err := c.Recv()
			if err != nil {
				if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrVersion) && err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("Recv error %v is none a caller branches on", err)
				}
				return
			}
			length := int(binary.BigEndian.Uint32(stream[off+16:]))
			raw := stream[off+HeaderLen : off+HeaderLen+length]
			off += HeaderLen + length

			if err := m.check(size); err != nil {
				t.Fatalf("decoded an invalid %v: %v", m.Type(), err)
			}
			enc := payload(m)
			if m.Type() == TypeHello {
				if !bytes.HasPrefix(raw, enc) {
					t.Fatalf("Hello re-encodes to % x, not a prefix of % x", enc, raw)
				}
			} else if !bytes.Equal(enc, raw) {
				t.Fatalf("%v re-encodes to\n% x\nnot\n% x", m.Type(), enc, raw)
			}
			again, err := decodeFlat(m.Type(), enc, size)
			if err != nil {
				t.Fatalf("re-encoded %v does not decode: %v", m.Type(), err)
			}
			if !reflect.DeepEqual(unpooled(again), unpooled(m)) {
				t.Fatalf("%v decodes to %+v, then %+v", m.Type(), m, again)
			}
			Release(m)
		}
	})
}

func helloSeeds() map[string][]byte {
	full := testHello("a")
	full.MinVersion, full.MaxVersion = 1, 1
	newer := testHello("b")
	newer.MinVersion, newer.MaxVersion = 1, 9
	newer.Flags |= 1 << 63
	return map[string][]byte{
		"hello":          payload(&full),
		"hello-extended": append(payload(&newer), "version 9 fields"...),
		"hello-peer":     payload(func() *Hello { h := testHello("b"); h.MinVersion, h.MaxVersion = 1, 1; return &h }()),
		"hello-short":    payload(&full)[:helloFixed],
		"hello-names-overrun": mutate(payload(&full), func(b []byte) {
			b[helloFixed] = 0xff
		}),
	}
}

// FuzzHello decodes a Hello payload and checks it against ours: the decoder
// fails only with protocol errors, re-encodes to a prefix of its input, and
// the checks are symmetric (whichever side reads the other's Hello first
// finds the same mismatch).
func FuzzHello(f *testing.F) {
	for _, p := range helloSeeds() {
		f.Add(p)
	}
	local := testHello("a")
	local.MinVersion, local.MaxVersion = 1, 1
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := decodeFlat(TypeHello, p, 0)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v is not a protocol error", err)
			}
			return
		}
		h := m.(*Hello)
		if enc := payload(h); !bytes.HasPrefix(p, enc) {
			t.Fatalf("re-encodes to % x, not a prefix of % x", enc, p)
		}
		v1, err1 := agree(&local, h, "")
		v2, err2 := agree(h, &local, "")
		if reasonOf(err1) != reasonOf(err2) || v1 != v2 {
			t.Fatalf("asymmetric: we accept it with %d, %v; it accepts us with %d, %v", v1, err1, v2, err2)
		}
		if err1 == nil && (v1 < h.MinVersion || v1 > h.MaxVersion || v1 != ProtocolVersion) {
			t.Fatalf("agreed on version %d with %d..%d", v1, h.MinVersion, h.MaxVersion)
		}
	})
}

func reasonOf(err error) Reason {
	if err == nil {
		return 0
	}
	return reasonFor(err)
}

func serverHandshakeSeeds() map[string][]byte {
	client := testHello("a")
	client.MinVersion, client.MaxVersion = 1, 1
	hello := frame(TypeHello, 3, payload(&client))
	return map[string][]byte{
		"hello-join":     append(bytes.Clone(hello), frame(TypeJoin, 4, make([]byte, 16))...),
		"hello-refusal":  append(bytes.Clone(hello), frame(TypeDisconnect, 4, []byte{0, byte(ReasonWrongPeer), 'n', 'o'})...),
		"hello-only":     hello,
		"join":           frame(TypeJoin, 3, make([]byte, 16)),
		"disconnect":     frame(TypeDisconnect, 3, []byte{0, byte(ReasonAuth)}),
		"ping":           frame(TypePing, 3, make([]byte, 8)),
		"hello-old-seq":  frame(TypeHello, 2, payload(&client)),
		"hello-big-size": frame(TypeHello, 3, mutate(payload(&client), put64(22, 1<<62))),
		"garbage":        []byte("GET / HTTP/1.1\r\n\r\n"),
	}
}

// FuzzServerHandshake plays a client that authenticates properly and then
// sends anything: the listener's handshake must end (no hang), never
// panic, and succeed only by leaving a data connection waiting.
func FuzzServerHandshake(f *testing.F) {
	for _, b := range serverHandshakeSeeds() {
		f.Add(b)
	}
	cfg, err := testConfig("b").prepare()
	if err != nil {
		f.Fatal(err)
	}
	cfg.HandshakeTimeout = 5 * time.Second
	f.Fuzz(func(t *testing.T, b []byte) {
		l := &Listener{cfg: cfg, ctx: context.Background()}
		ours, theirs := net.Pipe()
		defer ours.Close()
		done := make(chan error, 1)
		go func() {
			_, err := l.handle(context.Background(), theirs)
			theirs.Close()
			done <- err
		}()
		s := newStep(context.Background(), peerConn(ours), time.Second)
		if _, err := clientAuth(s, testSecret); err != nil {
			t.Fatal(err)
		}
		s.stopCtx()
		ours.SetDeadline(time.Now().Add(5 * time.Second))
		go io.Copy(io.Discard, ours) // whatever the server answers
		ours.Write(b)
		ours.Close()
		if err := <-done; err == nil && l.pending == nil {
			t.Fatal("handshake succeeded without a pending data connection")
		}
		l.dropPending()
	})
}

// TestWriteCorpus writes the seeds above as the fuzz seed corpora, when
// asked to.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("HACTL_WIRE_WRITE_CORPUS") == "" {
		t.Skip("set HACTL_WIRE_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	write := func(target, name string, values ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		text := "go test fuzz v1\n"
		for _, v := range values {
			text += v + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range frameSeeds() {
		write("FuzzFrame", s.name, fmt.Sprintf("[]byte(%q)", s.stream), fmt.Sprintf("byte(%q)", s.mode), fmt.Sprintf("uint64(%d)", s.size))
	}
	for name, p := range helloSeeds() {
		write("FuzzHello", name, fmt.Sprintf("[]byte(%q)", p))
	}
	for name, b := range serverHandshakeSeeds() {
		write("FuzzServerHandshake", name, fmt.Sprintf("[]byte(%q)", b))
	}
}
