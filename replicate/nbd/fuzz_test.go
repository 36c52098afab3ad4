package nbd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// fuzzConn is a net.Conn whose client side is a fixed byte string; what the
// server sends is dropped.
type fuzzConn struct {
	r      *bytes.Reader
	closed atomic.Bool
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *fuzzConn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return len(p), nil
}

func (c *fuzzConn) Close() error                     { c.closed.Store(true); return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return &net.UnixAddr{Name: "fuzz", Net: "unix"} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Name: "fuzz", Net: "unix"} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzServe serves the client bytes b to the end on a server with a
// writable and a read-only export, whose backends fail the test on any
// access outside the device. An odd size puts the end off any alignment.
func fuzzServe(t *testing.T, b []byte) {
	const size = 64<<10 + 7
	s := NewServer(nil,
		Export{Name: "vol", Backend: newMemBackend(t, size)},
		Export{Name: "ro", Backend: newMemBackend(t, size), ReadOnly: true})
	c := s.newConn(&fuzzConn{r: bytes.NewReader(b)})
	c.serve()
	if st := s.Stats(); st.ConnsOpen != 0 {
		t.Fatalf("%d connections open after serve returned", st.ConnsOpen)
	}
}

// FuzzNegotiation feeds arbitrary client bytes from the very start of a
// connection: client flags, options, and requests if an option opened an
// export. The server must not panic, hang or touch a device out of range.
// The seed corpus is testdata/fuzz/FuzzNegotiation, from negotiationSeeds.
func FuzzNegotiation(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { fuzzServe(t, b) })
}

// FuzzTransmission feeds arbitrary requests after a valid negotiation of
// the writable default export. The seed corpus is
// testdata/fuzz/FuzzTransmission, from transmissionSeeds.
func FuzzTransmission(f *testing.F) {
	prefix := goPrefix("")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzServe(t, append(bytes.Clone(prefix), b...))
	})
}

type seed struct {
	name string
	b    []byte
}

func opt(opt uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, magicOpt)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var clientFlags = binary.BigEndian.AppendUint32(nil, clientFixedNewstyle|clientNoZeroes)

// goPrefix is a client's side of a successful negotiation with NBD_OPT_GO.
func goPrefix(name string) []byte {
	return cat(clientFlags, opt(optGo, infoData(name, infoBlockSize)))
}

func negotiationSeeds() []seed {
	oversized := opt(optInfo, nil)
	binary.BigEndian.PutUint32(oversized[12:], maxOptionLen+1)
	badName := infoData("vol")
	binary.BigEndian.PutUint32(badName, 0xffffffff)
	return []seed{
		{"go", cat(goPrefix("vol"), appendRequest(nil, 0, cmdRead, 1, 0, 512))},
		{"go-read-only-write", cat(goPrefix("ro"), appendRequest(nil, 0, cmdWrite, 1, 0, 4), []byte("data"))},
		{"info-then-go", cat(clientFlags, opt(optInfo, infoData("vol", infoBlockSize, infoName)), opt(optGo, infoData("")))},
		{"list", cat(clientFlags, opt(optList, nil), opt(optList, []byte{1}))},
		{"abort", cat(clientFlags, opt(optAbort, nil))},
		{"export-name", cat(binary.BigEndian.AppendUint32(nil, clientFixedNewstyle), opt(optExportName, []byte("vol")),
			appendRequest(nil, cmdFlagFUA, cmdWrite, 2, 65536, 7), []byte("1234567"))},
		{"export-name-unknown", cat(clientFlags, opt(optExportName, []byte("nope")))},
		{"unknown-options", cat(clientFlags, opt(8, nil), opt(5, nil), opt(0xdeadbeef, []byte("xyz")), opt(optGo, infoData("nope")))},
		{"info-bad-name-length", cat(clientFlags, opt(optInfo, badName))},
		{"info-oversized", cat(clientFlags, oversized)},
		{"not-fixed-newstyle", binary.BigEndian.AppendUint32(nil, 0)},
		{"bad-option-magic", cat(clientFlags, make([]byte, optHeaderLen))},
	}
}

func transmissionSeeds() []seed {
	req := func(flags, typ uint16, off uint64, n uint32) []byte {
		return appendRequest(nil, flags, typ, 0x1122334455667788, off, n)
	}
	const size = 64<<10 + 7
	return []seed{
		{"read", req(0, cmdRead, 4096, 4096)},
		{"write", cat(req(cmdFlagFUA, cmdWrite, 10, 5), []byte("hello"), req(0, cmdRead, 10, 5))},
		{"write-to-end", cat(req(0, cmdWrite, size-3, 3), []byte("end"))},
		{"write-past-end", cat(req(0, cmdWrite, size-3, 4), []byte("over"), req(0, cmdFlush, 0, 0))},
		{"write-oversized-header-only", req(0, cmdWrite, 0, MaxPayload+1)},
		{"read-oversized", req(0, cmdRead, 0, 0xffffffff)},
		{"offset-overflow", cat(req(0, cmdRead, 0xffffffffffffff00, 0x100), req(0, cmdTrim, 0xffffffffffffffff, 1))},
		{"trim-zeroes-flush", cat(req(cmdFlagFUA, cmdTrim, 0, 4096), req(cmdFlagNoHole, cmdWriteZeroes, 4096, size-4096), req(0, cmdFlush, 0, 0))},
		{"unknown-command-and-flags", cat(req(0, 5, 0, 512), req(0xffff, cmdRead, 0, 1), req(0, 0x7777, 0, 0))},
		{"disc", cat(req(0, cmdWrite, 0, 2), []byte("hi"), req(0, cmdDisc, 0, 0), req(0, cmdRead, 0, 2))},
		{"bad-magic", cat(req(0, cmdRead, 0, 1), make([]byte, requestLen))},
		{"truncated-payload", cat(req(0, cmdWrite, 0, 100), []byte("short"))},
	}
}

// TestWriteFuzzSeeds writes the seeds above as the fuzzers' corpus files in
// testdata/fuzz when NBD_WRITE_FUZZ_SEEDS is set; otherwise it checks that
// the files are there.
func TestWriteFuzzSeeds(t *testing.T) {
	for target, seeds := range map[string][]seed{
		"FuzzNegotiation":  negotiationSeeds(),
		"FuzzTransmission": transmissionSeeds(),
	} {
		dir := filepath.Join("testdata", "fuzz", target)
		for _, s := range seeds {
			path := filepath.Join(dir, s.name)
			if os.Getenv("NBD_WRITE_FUZZ_SEEDS") == "" {
				if _, err := os.Stat(path); err != nil {
					t.Errorf("seed file missing (NBD_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds writes it): %v", err)
				}
				continue
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.b)
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
