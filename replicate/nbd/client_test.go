package nbd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// handshakeCtx bounds a handshake in a test: a stuck one fails instead of
// hanging the suite.
func handshakeCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pipeTo connects the client end of a net.Pipe to s.
func pipeTo(t *testing.T, s *Server) net.Conn {
	t.Helper()
	cn, sn := net.Pipe()
	if !s.serveConn(sn) {
		t.Fatal("server refused the connection")
	}
	t.Cleanup(func() { cn.Close() })
	return cn
}

// deadlineConn records the deadlines set on a net.Conn.
type deadlineConn struct {
	net.Conn
	mu  sync.Mutex
	set []string
}

func (c *deadlineConn) record(kind string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.IsZero() {
		c.set = append(c.set, kind+" cleared")
	} else {
		c.set = append(c.set, kind)
	}
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.record("deadline", t)
	return c.Conn.SetDeadline(t)
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.record("read deadline", t)
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.record("write deadline", t)
	return c.Conn.SetWriteDeadline(t)
}

// last returns the last deadline change.
func (c *deadlineConn) last() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.set) == 0 {
		return "none"
	}
	return c.set[len(c.set)-1]
}

// noDeadlineConn is a net.Conn without deadline support.
type noDeadlineConn struct{ net.Conn }

func (noDeadlineConn) SetDeadline(time.Time) error      { return os.ErrNoDeadline }
func (noDeadlineConn) SetReadDeadline(time.Time) error  { return os.ErrNoDeadline }
func (noDeadlineConn) SetWriteDeadline(time.Time) error { return os.ErrNoDeadline }

// roundTrip writes and reads back through the transmission phase on nc and
// disconnects; a read-only export must refuse the write.
func roundTrip(t *testing.T, nc net.Conn, be *memBackend, readOnly bool) {
	t.Helper()
	nc.SetDeadline(time.Now().Add(time.Minute))
	c := &client{t: t, nc: nc, br: bufio.NewReader(nc)}
	want := []byte("hello, kernel")
	errno, _ := c.do(cmdFlagFUA, cmdWrite, 4096, uint32(len(want)), want)
	if readOnly {
		if errno != errPerm {
			t.Fatalf("write to a read-only export: errno %d, want EPERM", errno)
		}
		be.WriteAt(want, 4096, false) // as if written before
	} else if errno != 0 {
		t.Fatalf("write: errno %d", errno)
	}
	errno, got := c.do(0, cmdRead, 4096, uint32(len(want)), nil)
	if errno != 0 || !bytes.Equal(got, want) {
		t.Fatalf("read: errno %d, data %q, want %q", errno, got, want)
	}
	if !bytes.Equal(be.bytes()[4096:4096+len(want)], want) {
		t.Fatal("device content differs from what was written")
	}
	c.request(0, cmdDisc, 1, 0, 0, nil)
	if !c.closed() {
		t.Fatal("server kept the connection open after NBD_CMD_DISC")
	}
}

// TestClientHandshake negotiates with the package's own server over a pipe,
// then uses the connection.
func TestClientHandshake(t *testing.T) {
	tests := []struct {
		name       string
		export     string
		readOnly   bool
		noDeadline bool
	}{
		{name: "named", export: "data"},
		{name: "default export", export: ""},
		{name: "read-only", export: "ro", readOnly: true},
		{name: "conn without deadlines", export: "data", noDeadline: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := newMemBackend(t, testSize)
			ro := newMemBackend(t, testSize/2)
			s := newTestServer(t,
				Export{Name: "data", Backend: data},
				Export{Name: "ro", Backend: ro, ReadOnly: true})
			be, size := data, int64(testSize)
			if tt.readOnly {
				be, size = ro, testSize/2
			}
			pc := pipeTo(t, s)
			dc := &deadlineConn{Conn: pc}
			var nc net.Conn = dc
			if tt.noDeadline {
				nc = noDeadlineConn{dc}
			}

			info, err := Handshake(handshakeCtx(t, time.Minute), nc, tt.export)
			if err != nil {
				t.Fatalf("Handshake: %v", err)
			}
			want := ExportInfo{
				Size:           size,
				Flags:          transmissionFlags(tt.readOnly),
				MinBlock:       MinBlockSize,
				PreferredBlock: PreferredBlockSize,
				MaxBlock:       MaxPayload,
			}
			if info != want {
				t.Fatalf("ExportInfo %+v, want %+v", info, want)
			}
			wantLast := "deadline cleared"
			if tt.noDeadline {
				wantLast = "none"
			}
			if got := dc.last(); got != wantLast {
				t.Fatalf("last deadline change %q, want %q", got, wantLast)
			}
			roundTrip(t, pc, be, tt.readOnly)
		})
	}
}

// TestClientUnknownExport: the server's refusal names the export, and the
// client ends the negotiation with NBD_OPT_ABORT.
func TestClientUnknownExport(t *testing.T) {
	s := newTestServer(t, Export{Name: "data", Backend: newMemBackend(t, testSize)})
	cn := pipeTo(t, s)
	_, err := Handshake(handshakeCtx(t, time.Minute), cn, "nope")
	if err == nil {
		t.Fatal("Handshake of an unknown export succeeded")
	}
	const want = `nbd: export "nope": server refused: unknown export: no export named "nope"`
	if err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	c := &client{t: t, nc: cn, br: bufio.NewReader(cn)}
	cn.SetDeadline(time.Now().Add(time.Minute))
	if r := c.optReply(); r.opt != optAbort || r.typ != repAck {
		t.Fatalf("after the refusal the server answered option %d with %#x, want NBD_OPT_ABORT acked", r.opt, r.typ)
	}
	if !c.closed() {
		t.Fatal("server kept the connection open after NBD_OPT_ABORT")
	}
}

// TestDialUnix dials the server's unix socket and uses the file it returns.
func TestDialUnix(t *testing.T) {
	be := newMemBackend(t, testSize)
	s := newTestServer(t, Export{Name: "data", Backend: be})
	path, _ := listen(t, s)
	ctx := handshakeCtx(t, time.Minute)

	f, info, err := DialUnix(ctx, path, "data")
	if err != nil {
		t.Fatalf("DialUnix: %v", err)
	}
	if info.Size != testSize || info.Flags != transmissionFlags(false) || info.PreferredBlock != PreferredBlockSize {
		t.Fatalf("ExportInfo %+v", info)
	}
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	roundTrip(t, nc, be, false)

	if _, _, err := DialUnix(ctx, path, "nope"); err == nil || !strings.Contains(err.Error(), `export "nope": server refused: unknown export`) {
		t.Fatalf("DialUnix of an unknown export: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.sock")
	if _, _, err := DialUnix(ctx, missing, "data"); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("DialUnix of a missing socket: %v", err)
	}
}

// Server-side messages for scripted servers.

func srvGreeting(flags uint16) []byte {
	b := binary.BigEndian.AppendUint64(nil, magicInit)
	b = binary.BigEndian.AppendUint64(b, magicOpt)
	return binary.BigEndian.AppendUint16(b, flags)
}

// srvReplyHeader is an option reply header announcing n bytes of data.
func srvReplyHeader(opt, typ, n uint32) []byte {
	b := binary.BigEndian.AppendUint64(nil, magicOptReply)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, typ)
	return binary.BigEndian.AppendUint32(b, n)
}

func srvInfoExport(size uint64, flags uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, infoExport)
	b = binary.BigEndian.AppendUint64(b, size)
	return appendOptReply(nil, optGo, repInfo, binary.BigEndian.AppendUint16(b, flags))
}

func srvInfoBlockSize(lo, pref, hi uint32) []byte {
	b := binary.BigEndian.AppendUint16(nil, infoBlockSize)
	b = binary.BigEndian.AppendUint32(b, lo)
	b = binary.BigEndian.AppendUint32(b, pref)
	return appendOptReply(nil, optGo, repInfo, binary.BigEndian.AppendUint32(b, hi))
}

func srvInfo(typ uint16, data []byte) []byte {
	return appendOptReply(nil, optGo, repInfo, binary.BigEndian.AppendUint16(nil, typ), data)
}

func srvAck() []byte { return appendOptReply(nil, optGo, repAck) }

// srvExportReply answers NBD_OPT_EXPORT_NAME.
func srvExportReply(size uint64, flags uint16, zeroes bool) []byte {
	b := binary.BigEndian.AppendUint64(nil, size)
	b = binary.BigEndian.AppendUint16(b, flags)
	if zeroes {
		b = append(b, make([]byte, 124)...)
	}
	return b
}

// srvGo is a successful answer to NBD_OPT_GO.
func srvGo(size uint64, flags uint16) []byte {
	return cat(srvInfoExport(size, flags), srvInfoBlockSize(512, 4096, 32<<20), srvAck())
}

const fixedNoZeroes = flagFixedNewstyle | flagNoZeroes

// socketPair returns the two ends of a connected unix socket pair.
func socketPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// fakeServer plays a server that sends script, then hangs up (shuts down its
// sending side) unless hold is set, and reads whatever the client sends. A
// socket pair rather than net.Pipe, so that the client's writes still
// succeed after the hang-up, as they do on a real socket. sent closes the
// connection and returns what the client sent.
func fakeServer(t *testing.T, script []byte, hold bool) (cn net.Conn, sent func() []byte) {
	cn, sn := socketPair(t)
	var got bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		io.Copy(&got, sn) // to EOF, or a reset if the client left bytes unread
	}()
	go func() {
		defer wg.Done()
		sn.Write(script)
		if !hold {
			sn.CloseWrite()
		}
	}()
	var once sync.Once
	sent = func() []byte {
		once.Do(func() {
			cn.Close() // ends the reader, and the writer if stuck
			wg.Wait()
			sn.Close()
		})
		return got.Bytes()
	}
	t.Cleanup(func() { sent() })
	return cn, sent
}

// clientOpts is what a client sends: its flags, then options.
func clientOpts(flags uint32, opts ...[]byte) []byte {
	return cat(binary.BigEndian.AppendUint32(nil, flags), cat(opts...))
}

var (
	goData  = opt(optGo, infoData("data", infoBlockSize))
	expName = opt(optExportName, []byte("data"))
	abort   = opt(optAbort, nil)
)

// TestClientHandshakeVariants runs successful negotiations with scripted
// servers and checks what the client sent: flags only as offered, GO first
// and EXPORT_NAME only after NBD_REP_ERR_UNSUP or without fixed newstyle.
// Bytes after the handshake must stay unread, for the kernel.
func TestClientHandshakeVariants(t *testing.T) {
	const size = 5 << 30
	flags := transmissionFlags(false)
	tests := []struct {
		name   string
		script []byte
		want   ExportInfo
		sent   []byte
	}{
		{
			name:   "go",
			script: cat(srvGreeting(fixedNoZeroes), srvGo(size, flags)),
			want:   ExportInfo{Size: size, Flags: flags, MinBlock: 512, PreferredBlock: 4096, MaxBlock: 32 << 20},
			sent:   clientOpts(clientFixedNewstyle|clientNoZeroes, goData),
		},
		{
			name: "go with other information, block sizes first, no maximum",
			script: cat(srvGreeting(fixedNoZeroes),
				srvInfoBlockSize(1, 1, 0xffffffff), srvInfo(infoName, []byte("data")),
				srvInfo(infoDescription, []byte("a volume")), srvInfo(0x7777, nil),
				srvInfoExport(size, flags), srvAck()),
			want: ExportInfo{Size: size, Flags: flags, MinBlock: 1, PreferredBlock: 1, MaxBlock: 0xffffffff},
			sent: clientOpts(clientFixedNewstyle|clientNoZeroes, goData),
		},
		{
			name:   "go without block sizes",
			script: cat(srvGreeting(fixedNoZeroes), srvInfoExport(0, 1), srvAck()),
			want:   ExportInfo{Size: 0, Flags: 1},
			sent:   clientOpts(clientFixedNewstyle|clientNoZeroes, goData),
		},
		{
			name:   "unknown handshake flags ignored",
			script: cat(srvGreeting(0xfff0|fixedNoZeroes), srvGo(size, flags)),
			want:   ExportInfo{Size: size, Flags: flags, MinBlock: 512, PreferredBlock: 4096, MaxBlock: 32 << 20},
			sent:   clientOpts(clientFixedNewstyle|clientNoZeroes, goData),
		},
		{
			name: "go unsupported, no zeroes",
			script: cat(srvGreeting(fixedNoZeroes), appendOptReply(nil, optGo, repErrUnsup, []byte("what is GO?")),
				srvExportReply(size, flags, false)),
			want: ExportInfo{Size: size, Flags: flags},
			sent: clientOpts(clientFixedNewstyle|clientNoZeroes, goData, expName),
		},
		{
			name: "go unsupported, fixed newstyle without no-zeroes",
			script: cat(srvGreeting(flagFixedNewstyle), appendOptReply(nil, optGo, repErrUnsup),
				srvExportReply(size, flags, true)),
			want: ExportInfo{Size: size, Flags: flags},
			sent: clientOpts(clientFixedNewstyle, goData, expName),
		},
		{
			name:   "plain newstyle",
			script: cat(srvGreeting(0), srvExportReply(size, flags|tflagReadOnly, true)),
			want:   ExportInfo{Size: size, Flags: flags | tflagReadOnly},
			sent:   clientOpts(0, expName),
		},
		{
			name:   "plain newstyle with no-zeroes",
			script: cat(srvGreeting(flagNoZeroes), srvExportReply(size, flags, false)),
			want:   ExportInfo{Size: size, Flags: flags},
			sent:   clientOpts(clientNoZeroes, expName),
		},
	}
	trailer := []byte("transmission....")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cn, sent := fakeServer(t, cat(tt.script, trailer), true)
			info, err := Handshake(handshakeCtx(t, 10*time.Second), cn, "data")
			if err != nil {
				t.Fatalf("Handshake: %v", err)
			}
			if info != tt.want {
				t.Fatalf("ExportInfo %+v, want %+v", info, tt.want)
			}
			cn.SetDeadline(time.Now().Add(10 * time.Second))
			rest := make([]byte, len(trailer))
			if _, err := io.ReadFull(cn, rest); err != nil || !bytes.Equal(rest, trailer) {
				t.Fatalf("after the handshake read %q, %v; want the untouched %q", rest, err, trailer)
			}
			if got := sent(); !bytes.Equal(got, tt.sent) {
				t.Fatalf("client sent\n%q\nwant\n%q", got, tt.sent)
			}
		})
	}
}

// TestClientHandshakeBadServer: whatever a broken or hostile server sends,
// Handshake returns a clear error, at once rather than at the deadline. Most
// servers hold the connection open, so the error cannot be a mere EOF.
func TestClientHandshakeBadServer(t *testing.T) {
	greet := srvGreeting(fixedNoZeroes)
	badMagic := srvGreeting(fixedNoZeroes)
	badMagic[0] = 'X'
	badSecond := srvGreeting(fixedNoZeroes)
	binary.BigEndian.PutUint64(badSecond[8:], 0x1122334455667788)
	oldstyle := binary.BigEndian.AppendUint64(nil, magicInit)
	oldstyle = binary.BigEndian.AppendUint64(oldstyle, magicOldstyle)
	oldstyle = append(oldstyle, srvExportReply(1<<20, 1, true)...)
	badReplyMagic := srvAck()
	badReplyMagic[7] ^= 1
	var tooMany []byte
	for range maxReplies {
		tooMany = append(tooMany, srvInfo(infoName, []byte("data"))...)
	}
	ctrl := []byte("bad\x00\x1b[31mred\xff\xfe name ünïcode")
	long := bytes.Repeat([]byte("x"), 5000)

	tests := []struct {
		name   string
		script []byte
		hangUp bool   // the server hangs up after the script
		want   string // the whole error after `nbd: export "data": `, or its start when ending in "..."
		sent   []byte // what the client sent, when checked
	}{
		{name: "bad greeting magic", script: badMagic, want: "not an NBD server: greeting magic 0x584244...", sent: []byte{}},
		{name: "bad second magic", script: badSecond, want: "not an NBD server: greeting's second magic 0x1122334455667788, want IHAVEOPT"},
		{name: "oldstyle", script: oldstyle, want: "server speaks oldstyle negotiation, which is not supported", sent: []byte{}},
		{name: "bad reply magic", script: cat(greet, badReplyMagic), want: "bad option reply magic 0x0003e889045565a8"},
		{name: "oversized reply", script: cat(greet, srvReplyHeader(optGo, repInfo, maxReplyLen+1)),
			want: "reply to NBD_OPT_GO of 65537 bytes, at most 65536 accepted"},
		{name: "huge reply", script: cat(greet, srvReplyHeader(optGo, repErrUnknown, 0xffffffff)),
			want: "reply to NBD_OPT_GO of 4294967295 bytes, at most 65536 accepted"},
		{name: "wrong option echo", script: cat(greet, appendOptReply(nil, optList, repAck)),
			want: "reply names option 3, but NBD_OPT_GO was sent"},
		{name: "unexpected reply type", script: cat(greet, appendOptReply(nil, optGo, repServer, []byte("\x00\x00\x00\x00"))),
			want: "unexpected reply type 2 to NBD_OPT_GO"},
		{name: "ack with data", script: cat(greet, srvInfoExport(1, 1), appendOptReply(nil, optGo, repAck, []byte{0})),
			want: "NBD_REP_ACK to NBD_OPT_GO carries 1 bytes, want none"},
		{name: "ack without export", script: cat(greet, srvInfoBlockSize(1, 4096, 1<<20), srvAck()),
			want: "NBD_OPT_GO acknowledged without NBD_INFO_EXPORT"},
		{name: "empty info", script: cat(greet, appendOptReply(nil, optGo, repInfo)),
			want: "NBD_REP_INFO of 0 bytes, too short for its type"},
		{name: "short export info", script: cat(greet, srvInfo(infoExport, make([]byte, 9))),
			want: "NBD_INFO_EXPORT of 11 bytes, want 12"},
		{name: "long export info", script: cat(greet, srvInfo(infoExport, make([]byte, 11))),
			want: "NBD_INFO_EXPORT of 13 bytes, want 12"},
		{name: "short block size info", script: cat(greet, srvInfo(infoBlockSize, make([]byte, 8))),
			want: "NBD_INFO_BLOCK_SIZE of 10 bytes, want 14"},
		{name: "size over int64", script: cat(greet, srvInfoExport(1<<63, 1)),
			want: "export size 9223372036854775808 exceeds 9223372036854775807"},
		{name: "export name size over int64", script: cat(srvGreeting(flagNoZeroes), srvExportReply(1<<64-1, 1, false)),
			want: "export size 18446744073709551615 exceeds 9223372036854775807"},
		{name: "minimum block not a power of 2", script: cat(greet, srvInfoBlockSize(3, 4096, 1<<20)),
			want: "invalid block size constraints: minimum 3 is not a power of 2 up to 65536"},
		{name: "minimum block zero", script: cat(greet, srvInfoBlockSize(0, 4096, 1<<20)),
			want: "invalid block size constraints: minimum 0 is not a power of 2 up to 65536"},
		{name: "minimum block too big", script: cat(greet, srvInfoBlockSize(128<<10, 128<<10, 1<<20)),
			want: "invalid block size constraints: minimum 131072 is not a power of 2 up to 65536"},
		{name: "preferred below minimum", script: cat(greet, srvInfoBlockSize(4096, 512, 1<<20)),
			want: "invalid block size constraints: preferred 512 is not a power of 2 of at least the minimum 4096"},
		{name: "maximum not a multiple", script: cat(greet, srvInfoBlockSize(512, 4096, 1000)),
			want: "invalid block size constraints: maximum 1000 is not a multiple of the minimum 512"},
		{name: "maximum zero", script: cat(greet, srvInfoBlockSize(512, 4096, 0)),
			want: "invalid block size constraints: maximum 0 is not a multiple of the minimum 512"},
		{name: "too many replies", script: cat(greet, tooMany, srvInfoExport(1, 1), srvAck()),
			want: "more than 128 replies to NBD_OPT_GO"},

		{name: "unknown export", script: cat(greet, appendOptReply(nil, optGo, repErrUnknown, []byte("no such volume"))),
			want: "server refused: unknown export: no such volume", sent: clientOpts(3, goData, abort)},
		{name: "refusal without message", script: cat(greet, appendOptReply(nil, optGo, repErrShutdown)),
			want: "server refused: server shutting down", sent: clientOpts(3, goData, abort)},
		{name: "refusal after information", script: cat(greet, srvInfoExport(1, 1), appendOptReply(nil, optGo, repErrPolicy, []byte("go away"))),
			want: "server refused: forbidden by policy: go away"},
		{name: "tls required", script: cat(greet, appendOptReply(nil, optGo, repErrTLSReqd)),
			want: "server refused: TLS required"},
		{name: "unknown error", script: cat(greet, appendOptReply(nil, optGo, 1<<31+99)),
			want: "server refused: error 0x80000063"},
		{name: "unprintable message", script: cat(greet, appendOptReply(nil, optGo, repErrInvalid, ctrl)),
			want: "server refused: invalid request: bad??[31mred?? name ünïcode"},
		{name: "long message", script: cat(greet, appendOptReply(nil, optGo, repErrInvalid, long)),
			want: "server refused: invalid request: " + strings.Repeat("x", maxMessageLen) + "..."},

		{name: "no greeting", hangUp: true, want: "read greeting: EOF", sent: []byte{}},
		{name: "truncated greeting", script: greet[:10], hangUp: true, want: "read greeting: unexpected EOF", sent: []byte{}},
		{name: "truncated reply header", script: cat(greet, srvAck()[:11]), hangUp: true, want: "read reply to NBD_OPT_GO: unexpected EOF"},
		{name: "truncated reply data", script: cat(greet, srvInfoExport(1, 1)[:25]), hangUp: true, want: "read reply data: unexpected EOF"},
		{name: "hang-up after export name", script: srvGreeting(0), hangUp: true,
			want: "server hung up after NBD_OPT_EXPORT_NAME, its way of refusing (unknown export?): EOF", sent: clientOpts(0, expName)},
		{name: "hang-up after fallback", script: cat(greet, appendOptReply(nil, optGo, repErrUnsup)), hangUp: true,
			want: "server hung up after NBD_OPT_EXPORT_NAME, its way of refusing (unknown export?): EOF", sent: clientOpts(3, goData, expName)},
		{name: "hang-up in export name reply", script: cat(srvGreeting(0), srvExportReply(1, 1, true)[:100]), hangUp: true,
			want: "server hung up after NBD_OPT_EXPORT_NAME, its way of refusing (unknown export?): unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cn, sent := fakeServer(t, tt.script, !tt.hangUp)
			start := time.Now()
			_, err := Handshake(handshakeCtx(t, 10*time.Second), cn, "data")
			if err == nil {
				t.Fatal("Handshake succeeded")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Handshake took %v to fail", d)
			}
			msg, ok := strings.CutPrefix(err.Error(), `nbd: export "data": `)
			if !ok {
				t.Fatalf("error %q does not name the export", err)
			}
			if want, prefix := strings.CutSuffix(tt.want, "..."); prefix && !strings.HasPrefix(msg, want) ||
				!prefix && msg != tt.want {
				t.Fatalf("error %q, want %q", msg, tt.want)
			}
			if tt.sent != nil {
				if got := sent(); !bytes.Equal(got, tt.sent) {
					t.Fatalf("client sent\n%q\nwant\n%q", got, tt.sent)
				}
			}
		})
	}
}

// TestClientHandshakeContext: a silent server holds Handshake only until
// ctx's deadline or cancellation, and the deadlines are cleared afterwards.
func TestClientHandshakeContext(t *testing.T) {
	silent := srvGreeting(fixedNoZeroes) // then nothing, connection open
	t.Run("deadline", func(t *testing.T) {
		cn, _ := fakeServer(t, silent, true)
		dc := &deadlineConn{Conn: cn}
		ctx := handshakeCtx(t, 100*time.Millisecond)
		_, err := Handshake(ctx, dc, "data")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), `nbd: export "data": context deadline exceeded: `) {
			t.Fatalf("error %v, want the context's deadline", err)
		}
		if got := dc.last(); got != "deadline cleared" {
			t.Fatalf("last deadline change %q, want the deadline cleared", got)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		cn, _ := fakeServer(t, silent, true)
		dc := &deadlineConn{Conn: cn}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(50*time.Millisecond, cancel)
		done := make(chan error, 1)
		go func() {
			_, err := Handshake(ctx, dc, "data")
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Handshake ignored the cancellation")
		}
		if got := dc.last(); got != "deadline cleared" {
			t.Fatalf("last deadline change %q, want the deadline cleared", got)
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		cn, sent := fakeServer(t, silent, true)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Handshake(ctx, cn, "data"); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if got := sent(); len(got) != 0 {
			t.Fatalf("client sent %q", got)
		}
	})
	t.Run("name too long", func(t *testing.T) {
		cn, sent := fakeServer(t, silent, true)
		_, err := Handshake(handshakeCtx(t, time.Minute), cn, strings.Repeat("n", maxNameLen+1))
		if err == nil || !strings.Contains(err.Error(), "name of 4097 bytes, at most 4096 allowed") {
			t.Fatalf("error %v", err)
		}
		if got := sent(); len(got) != 0 {
			t.Fatalf("client sent %q", got)
		}
	})
}

// fuzzHandshake runs Handshake against a server that sends b and hangs up.
// It fails the test if Handshake does not end once the bytes run out, or
// succeeds with an ExportInfo it should have rejected.
func fuzzHandshake(t *testing.T, b []byte) (ExportInfo, error) {
	cn, sn := net.Pipe()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		io.Copy(io.Discard, sn)
	}()
	go func() {
		defer wg.Done()
		sn.Write(b)
		sn.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := Handshake(ctx, cn, "data")
	cn.Close()
	wg.Wait()
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Handshake did not end when the server's bytes did: %v", err)
	}
	if err != nil {
		if !strings.HasPrefix(err.Error(), `nbd: export "data": `) {
			t.Fatalf("error %q does not name the export", err)
		}
		return info, err
	}
	if info.Size < 0 {
		t.Fatalf("negative size %d", info.Size)
	}
	if info.MinBlock != 0 || info.PreferredBlock != 0 || info.MaxBlock != 0 {
		if err := checkBlockSizes(info.MinBlock, info.PreferredBlock, info.MaxBlock); err != nil {
			t.Fatalf("accepted %v", err)
		}
	}
	return info, nil
}

// FuzzHandshakeReplies feeds arbitrary server bytes to Handshake. It must
// not panic, must end when the bytes do, and must only accept what it
// validates. The seed corpus is testdata/fuzz/FuzzHandshakeReplies, from
// handshakeSeeds.
func FuzzHandshakeReplies(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { fuzzHandshake(t, b) })
}

// handshakeSeeds are server transcripts; those named ok-* are accepted.
func handshakeSeeds() []seed {
	greet := srvGreeting(fixedNoZeroes)
	full := cat(greet, srvInfo(infoName, []byte("data")), srvGo(1<<30, transmissionFlags(false)))
	return []seed{
		{"ok-go", cat(greet, srvGo(1<<30, transmissionFlags(false)))},
		{"ok-go-name-and-unknown-info", cat(full[:len(full)-20], srvInfo(0x1234, []byte("?")), srvAck())},
		{"ok-go-read-only-no-block-size", cat(greet, srvInfoExport(4096, transmissionFlags(true)), srvAck())},
		{"ok-go-unsupported", cat(greet, appendOptReply(nil, optGo, repErrUnsup, []byte("no")), srvExportReply(1<<20, 3, false))},
		{"ok-fixed-with-zeroes", cat(srvGreeting(flagFixedNewstyle), appendOptReply(nil, optGo, repErrUnsup), srvExportReply(1<<20, 3, true))},
		{"ok-newstyle", cat(srvGreeting(0), srvExportReply(1<<20, 1, true))},
		{"unknown-export", cat(greet, appendOptReply(nil, optGo, repErrUnknown, []byte("no export named \"data\"")))},
		{"truncated-greeting", greet[:9]},
		{"truncated-reply-header", full[:len(greet)+10]},
		{"truncated-reply-data", full[:len(greet)+25]},
		{"truncated-before-ack", full[:len(full)-20]},
		{"truncated-export-reply", cat(srvGreeting(0), srvExportReply(1<<20, 1, true)[:50])},
		{"oversized-reply", cat(greet, srvReplyHeader(optGo, repInfo, 0xffffffff))},
		{"wrong-option", cat(greet, appendOptReply(nil, optList, repAck))},
		{"bad-block-size", cat(greet, srvInfoBlockSize(3, 7, 11), srvInfoExport(1, 1), srvAck())},
		{"oldstyle", cat(binary.BigEndian.AppendUint64(nil, magicInit), binary.BigEndian.AppendUint64(nil, magicOldstyle), srvExportReply(1, 1, true))},
	}
}

// TestHandshakeFuzzSeeds checks that the seeds above do what their names
// say and that their corpus files exist; with NBD_WRITE_FUZZ_SEEDS set it
// writes the files.
func TestHandshakeFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzHandshakeReplies")
	for _, s := range handshakeSeeds() {
		if _, err := fuzzHandshake(t, s.b); (err == nil) != strings.HasPrefix(s.name, "ok-") {
			t.Errorf("seed %s: Handshake returned %v", s.name, err)
		}
		path := filepath.Join(dir, s.name)
		if os.Getenv("NBD_WRITE_FUZZ_SEEDS") == "" {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("seed file missing (NBD_WRITE_FUZZ_SEEDS=1 go test -run TestHandshakeFuzzSeeds writes it): %v", err)
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
