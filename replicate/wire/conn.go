package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Conn is one of a link's two connections: framed, sequenced, and checked
// on both ends. Send may be called from any number of goroutines; each
// call writes one whole frame. Recv must be called from one goroutine at a
// time. After Send or Recv fails the connection is broken and keeps
// returning that error: close the link.
type Conn struct {
	nc          net.Conn
	route       route // onData or onMeta
	sendTimeout time.Duration

	wmu  sync.Mutex
	wseq uint64 // sequence number of the last frame sent
	wbuf []byte // header and fixed payload of the frame being sent
	vec  [2][]byte
	bufs net.Buffers
	werr error

	r    *bufio.Reader
	rseq uint64 // sequence number of the last frame received
	hbuf [HeaderLen]byte
	rbuf []byte // payloads of the types that are not bulk
	rerr error

	// Set once by the handshake, before the Conn is shared: the volume
	// size for range checks, and whether the link is up (from then on
	// the handshake's messages are refused).
	size uint64
	up   bool
}

// readBufferSize is the bufio buffer: many acks per read syscall on the
// meta connection; Data payloads bigger than it bypass it.
const readBufferSize = 64 << 10

func newConn(nc net.Conn, r route, sendTimeout time.Duration) *Conn {
	return &Conn{
		nc:          nc,
		route:       r,
		sendTimeout: sendTimeout,
		wbuf:        make([]byte, 0, HeaderLen+maxSmall),
		r:           bufio.NewReaderSize(nc, readBufferSize),
		rbuf:        make([]byte, maxSmall),
	}
}

// Send writes m as one frame. A write not taken by the peer within the
// send timeout breaks the connection. The bulk bytes of Data, ResyncData
// and BitmapChunk go out from the caller's slice, which must not change
// until Send returns.
func (c *Conn) Send(m Msg) error {
	if err := c.send(m); err != nil {
		return fmt.Errorf("wire: %w", err)
	}
	return nil
}

func (c *Conn) send(m Msg) error {
	t := m.Type()
	if err := c.allowed(t); err != nil {
		return fmt.Errorf("sending: %w", err)
	}
	if err := m.check(c.size); err != nil {
		return fmt.Errorf("sending: %w", err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	b := m.appendTo(c.wbuf[:HeaderLen])
	bulk := m.bulk()
	c.wseq++
	putHeader(b, header{typ: t, seq: c.wseq, length: uint32(len(b) - HeaderLen + len(bulk))})
	c.wbuf = b[:0] // keep what it grew to

	if c.sendTimeout > 0 {
		if err := c.nc.SetWriteDeadline(time.Now().Add(c.sendTimeout)); err != nil {
			c.werr = fmt.Errorf("sending %v: %w", t, err)
			return c.werr
		}
	}
	var err error
	if bulk == nil {
		_, err = c.nc.Write(b)
	} else {
		// One writev for header and payload: no copy of the payload, and
		// no second segment on the wire for the header alone.
		c.vec = [2][]byte{b, bulk}
		c.bufs = c.vec[:]
		_, err = c.bufs.WriteTo(c.nc)
		c.vec = [2][]byte{} // do not keep the caller's payload alive
	}
	if err != nil {
		// Part of the frame may be out: nothing sent after it would parse.
		c.werr = fmt.Errorf("sending %v: %w", t, err)
		return c.werr
	}
	return nil
}

// Recv reads and validates the next frame. The payload of a Data,
// ResyncData or BitmapChunk is the caller's: hand it back with Release
// once done, so the next one reuses its buffer. io.EOF means the peer
// closed the connection between frames.
func (c *Conn) Recv() (Msg, error) {
	m, err := c.recv()
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("wire: %w", err)
	}
	return m, err
}

// recv is Recv, with errors as the handshake reports them.
func (c *Conn) recv() (Msg, error) {
	if c.rerr != nil {
		return nil, c.rerr
	}
	m, err := c.readFrame()
	if err != nil {
		c.rerr = err
	}
	return m, err
}

func (c *Conn) readFrame() (Msg, error) {
	if _, err := io.ReadFull(c.r, c.hbuf[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("receiving: reading a frame header: %w", err)
	}
	h, err := parseHeader(c.hbuf[:])
	if err != nil {
		return nil, fmt.Errorf("receiving: %w", err)
	}
	if h.seq != c.rseq+1 {
		// TCP neither loses nor repeats bytes: a gap or a repeat is a bug
		// in the sender or something else writing into the stream.
		return nil, fmt.Errorf("receiving %v: %w: number %d, want %d", h.typ, ErrSequence, h.seq, c.rseq+1)
	}
	if err := c.allowed(h.typ); err != nil {
		return nil, fmt.Errorf("receiving %v: %w", h.typ, err)
	}
	// parseHeader bounded h.length by the type's maximum: MaxData plus a
	// few bytes for bulk types, maxSmall for the others.
	var p []byte
	var buf *[]byte
	if types[h.typ].bulk {
		p = c.rbuf[:fixedLen(h.typ)]
		buf = getBulk(int(h.length) - len(p))
	} else {
		p = c.rbuf[:h.length]
	}
	m, err := c.readPayload(h, p, buf)
	if err != nil {
		putBulk(buf)
		return nil, err
	}
	return m, nil
}

func (c *Conn) readPayload(h header, p []byte, buf *[]byte) (Msg, error) {
	_, err := io.ReadFull(c.r, p)
	if err == nil && buf != nil {
		_, err = io.ReadFull(c.r, *buf)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("receiving %v: reading the payload: %w", h.typ, err)
	}
	c.rseq = h.seq
	var bulk []byte
	if buf != nil {
		bulk = *buf
	}
	m, err := decode(h.typ, p, bulk, c.size)
	if err != nil {
		return nil, fmt.Errorf("receiving: %w", err)
	}
	switch m := m.(type) {
	case *Data:
		m.buf = buf
	case *ResyncData:
		m.buf = buf
	case *BitmapChunk:
		m.buf = buf
	}
	return m, nil
}

// allowed says whether a message of type t may travel on c now.
func (c *Conn) allowed(t Type) error {
	r := types[t].route
	switch {
	case r == 0:
		return ErrUnknownType
	case !c.up && r&onHandshake == 0:
		return fmt.Errorf("%w: %v before the link is up", ErrUnexpected, t)
	case c.up && r&c.route == 0:
		return fmt.Errorf("%w: %v on the %s connection", ErrUnexpected, t, c.name())
	}
	return nil
}

func (c *Conn) name() string {
	if c.route == onMeta {
		return "meta"
	}
	return "data"
}

// Close closes the connection; a blocked Send or Recv returns.
func (c *Conn) Close() error { return c.nc.Close() }

// LocalAddr and RemoteAddr are the connection's addresses.
func (c *Conn) LocalAddr() net.Addr  { return c.nc.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }
