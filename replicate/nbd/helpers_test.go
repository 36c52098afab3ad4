package nbd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// memBackend is an in-memory Backend that fails the test on any access
// outside its size and records every call.
type memBackend struct {
	t testing.TB

	mu    sync.Mutex
	data  []byte
	calls []call

	// hook, when set, runs first in every method: it may block, or fail
	// the call by returning an error.
	hook func(c call) error
}

// call is one Backend call as the server made it.
type call struct {
	op       string
	off, len int64
	fua      bool
}

func newMemBackend(t testing.TB, size int) *memBackend {
	return &memBackend{t: t, data: make([]byte, size)}
}

func (m *memBackend) Size() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.data))
}

func (m *memBackend) enter(c call) error {
	m.mu.Lock()
	m.calls = append(m.calls, c)
	size := int64(len(m.data))
	hook := m.hook
	m.mu.Unlock()
	if c.off < 0 || c.len < 0 || c.off > size || c.len > size-c.off {
		m.t.Errorf("backend %s [%d, +%d) outside the device's %d bytes", c.op, c.off, c.len, size)
		return fmt.Errorf("out of range")
	}
	if hook != nil {
		return hook(c)
	}
	return nil
}

func (m *memBackend) ReadAt(p []byte, off int64) (int, error) {
	if err := m.enter(call{op: "read", off: off, len: int64(len(p))}); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(p, m.data[off:]), nil
}

func (m *memBackend) WriteAt(p []byte, off int64, fua bool) (int, error) {
	if err := m.enter(call{op: "write", off: off, len: int64(len(p)), fua: fua}); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(m.data[off:], p), nil
}

func (m *memBackend) Flush() error { return m.enter(call{op: "flush"}) }

// Trim zeroes, so a model of the device stays deterministic.
func (m *memBackend) Trim(off, n int64) error {
	if err := m.enter(call{op: "trim", off: off, len: n}); err != nil {
		return err
	}
	m.zero(off, n)
	return nil
}

func (m *memBackend) WriteZeroes(off, n int64, fua bool) error {
	if err := m.enter(call{op: "zero", off: off, len: n, fua: fua}); err != nil {
		return err
	}
	m.zero(off, n)
	return nil
}

func (m *memBackend) zero(off, n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.data[off : off+n])
}

func (m *memBackend) bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.data)
}

func (m *memBackend) takeCalls() []call {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.calls
	m.calls = nil
	return c
}

func (m *memBackend) setHook(h func(call) error) {
	m.mu.Lock()
	m.hook = h
	m.mu.Unlock()
}

// newTestServer returns a server logging to the test, shut down at cleanup.
func newTestServer(t testing.TB, exports ...Export) *Server {
	var log *zap.Logger
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt)
	}
	s := NewServer(log, exports...)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// client is a hand-written NBD client speaking to a server over net.Pipe.
type client struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

// dial connects a new client to s.
func dial(t testing.TB, s *Server) *client {
	t.Helper()
	cn, sn := net.Pipe()
	if !s.serveConn(sn) {
		t.Fatal("server refused the connection")
	}
	t.Cleanup(func() { cn.Close() })
	// A stuck test fails instead of hanging the suite.
	cn.SetDeadline(time.Now().Add(time.Minute))
	return &client{t: t, nc: cn, br: bufio.NewReader(cn)}
}

func (c *client) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

func (c *client) read(n int) []byte {
	c.t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c.br, b); err != nil {
		c.t.Fatalf("client read %d bytes: %v", n, err)
	}
	return b
}

// greet reads the server's greeting and answers with the client flags.
func (c *client) greet(flags uint32) {
	c.t.Helper()
	g := c.read(greetingLen)
	if m := binary.BigEndian.Uint64(g); m != magicInit {
		c.t.Fatalf("greeting magic %#x, want NBDMAGIC", m)
	}
	if m := binary.BigEndian.Uint64(g[8:]); m != magicOpt {
		c.t.Fatalf("greeting second magic %#x, want IHAVEOPT", m)
	}
	if f := binary.BigEndian.Uint16(g[16:]); f != flagFixedNewstyle|flagNoZeroes {
		c.t.Fatalf("handshake flags %#x, want FIXED_NEWSTYLE|NO_ZEROES", f)
	}
	c.write(binary.BigEndian.AppendUint32(nil, flags))
}

func (c *client) option(opt uint32, data []byte) {
	c.t.Helper()
	b := binary.BigEndian.AppendUint64(nil, magicOpt)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	c.write(append(b, data...))
}

type optReply struct {
	opt, typ uint32
	data     []byte
}

func (c *client) optReply() optReply {
	c.t.Helper()
	h := c.read(20)
	if m := binary.BigEndian.Uint64(h); m != magicOptReply {
		c.t.Fatalf("option reply magic %#x", m)
	}
	return optReply{
		opt:  binary.BigEndian.Uint32(h[8:]),
		typ:  binary.BigEndian.Uint32(h[12:]),
		data: c.read(int(binary.BigEndian.Uint32(h[16:]))),
	}
}

// optReplies reads replies to opt up to the final one (an ack or error).
func (c *client) optReplies(opt uint32) []optReply {
	c.t.Helper()
	var all []optReply
	for {
		r := c.optReply()
		if r.opt != opt {
			c.t.Fatalf("reply for option %d, want %d", r.opt, opt)
		}
		all = append(all, r)
		if r.typ == repAck || r.typ&(1<<31) != 0 {
			return all
		}
	}
}

func infoData(name string, infos ...uint16) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(infos)))
	for _, i := range infos {
		b = binary.BigEndian.AppendUint16(b, i)
	}
	return b
}

// open negotiates export name with NBD_OPT_GO and returns its size and
// transmission flags.
func (c *client) open(name string) (size uint64, flags uint16) {
	c.t.Helper()
	c.greet(clientFixedNewstyle | clientNoZeroes)
	c.option(optGo, infoData(name, infoBlockSize))
	rs := c.optReplies(optGo)
	if last := rs[len(rs)-1]; last.typ != repAck {
		c.t.Fatalf("NBD_OPT_GO %q: reply %#x %q", name, last.typ, last.data)
	}
	for _, r := range rs {
		if r.typ == repInfo && binary.BigEndian.Uint16(r.data) == infoExport {
			return binary.BigEndian.Uint64(r.data[2:]), binary.BigEndian.Uint16(r.data[10:])
		}
	}
	c.t.Fatal("NBD_OPT_GO: no NBD_INFO_EXPORT")
	return 0, 0
}

func appendRequest(b []byte, flags, typ uint16, handle, off uint64, length uint32) []byte {
	b = binary.BigEndian.AppendUint32(b, magicRequest)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint64(b, handle)
	b = binary.BigEndian.AppendUint64(b, off)
	return binary.BigEndian.AppendUint32(b, length)
}

// request sends a request; payload follows a write's header.
func (c *client) request(flags, typ uint16, handle, off uint64, length uint32, payload []byte) {
	c.t.Helper()
	c.write(append(appendRequest(nil, flags, typ, handle, off, length), payload...))
}

// reply reads a simple reply; dataLen says how much data follows a
// successful reply to each handle.
func (c *client) reply(dataLen func(handle uint64) int) (handle uint64, errno uint32, data []byte) {
	c.t.Helper()
	h := c.read(replyLen)
	if m := binary.BigEndian.Uint32(h); m != magicSimpleReply {
		c.t.Fatalf("reply magic %#x", m)
	}
	errno = binary.BigEndian.Uint32(h[4:])
	handle = binary.BigEndian.Uint64(h[8:])
	if errno == 0 && dataLen != nil {
		data = c.read(dataLen(handle))
	}
	return handle, errno, data
}

// do sends one request and reads its reply.
func (c *client) do(flags, typ uint16, off uint64, length uint32, payload []byte) (uint32, []byte) {
	c.t.Helper()
	const handle = 0xfeedface
	c.request(flags, typ, handle, off, length, payload)
	n := 0
	if typ == cmdRead {
		n = int(length)
	}
	h, errno, data := c.reply(func(uint64) int { return n })
	if h != handle {
		c.t.Fatalf("reply handle %#x, want %#x", h, handle)
	}
	return errno, data
}

// closed reports whether the server hung up: reading hits EOF, or a reset
// when the server closed with client bytes still unread.
func (c *client) closed() bool {
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.nc.SetReadDeadline(time.Time{})
	_, err := c.br.ReadByte()
	return err == io.EOF || errors.Is(err, syscall.ECONNRESET)
}
