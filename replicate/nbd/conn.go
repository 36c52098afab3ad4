package nbd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// conn is one client connection: negotiation, then transmission.
type conn struct {
	s   *Server
	nc  net.Conn
	br  *bufio.Reader
	log *zap.Logger

	mu      sync.Mutex // orders stop against deadline changes
	stopped bool

	slots    chan struct{} // one per request in flight
	budget   *budget       // payload bytes of the requests in flight
	inflight sync.WaitGroup

	wmu  sync.Mutex // one reply at a time
	werr error      // first failed reply; the connection is closed then

	backendErrLogged atomic.Bool
}

// errStopped ends a connection when the server shuts down.
var errStopped = errors.New("server shutting down")

// aLongTimeAgo is a read deadline that expires at once.
var aLongTimeAgo = time.Unix(1, 0)

func (c *conn) serve() {
	defer c.s.forget(c)
	defer c.nc.Close()
	c.br = bufio.NewReaderSize(c.nc, 64<<10)
	exp, size, err := c.negotiate()
	if err == nil && exp != nil {
		c.log = c.log.With(zap.String("export", exp.Name))
		c.log.Debug("nbd client attached", zap.Uint64("size", size), zap.Bool("read_only", exp.ReadOnly))
		err = c.transmit(exp, size)
	}
	c.finish(err)
}

// finish logs how the connection ended, once.
func (c *conn) finish(err error) {
	c.wmu.Lock()
	if c.werr != nil {
		err = fmt.Errorf("send reply: %w", c.werr)
	}
	c.wmu.Unlock()
	switch {
	case err == nil:
		c.log.Debug("nbd client disconnected")
	case c.isStopped():
		c.log.Debug("nbd connection closed by shutdown", zap.NamedError("cause", err))
	case errors.Is(err, io.EOF):
		// Between requests, with every reply sent: fio's nbd engine,
		// for one, hangs up like this instead of sending NBD_CMD_DISC.
		c.log.Debug("nbd client closed the connection", zap.Error(err))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		c.log.Info("nbd client hung up mid-message", zap.Error(err))
	default:
		c.log.Warn("nbd connection failed", zap.Error(err))
	}
}

// stop makes the connection stop reading: a blocked read returns at once and
// no new request is started. Replies to requests in flight still go out.
func (c *conn) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.nc.SetReadDeadline(aLongTimeAgo)
}

func (c *conn) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// setDeadline changes the deadline unless stop has set one already.
func (c *conn) setDeadline(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		c.nc.SetDeadline(t)
	}
}

// negotiate runs the fixed newstyle handshake. It returns the export chosen
// by NBD_OPT_GO or NBD_OPT_EXPORT_NAME and its size, or a nil export when
// the client aborted.
func (c *conn) negotiate() (*Export, uint64, error) {
	c.setDeadline(time.Now().Add(c.s.handshakeTimeout))
	var g [greetingLen]byte
	binary.BigEndian.PutUint64(g[0:], magicInit)
	binary.BigEndian.PutUint64(g[8:], magicOpt)
	binary.BigEndian.PutUint16(g[16:], flagFixedNewstyle|flagNoZeroes)
	if _, err := c.nc.Write(g[:]); err != nil {
		return nil, 0, fmt.Errorf("send greeting: %w", err)
	}
	var cf [4]byte
	if _, err := io.ReadFull(c.br, cf[:]); err != nil {
		return nil, 0, fmt.Errorf("read client flags: %w", err)
	}
	flags := binary.BigEndian.Uint32(cf[:])
	if flags&^(clientFixedNewstyle|clientNoZeroes) != 0 {
		return nil, 0, fmt.Errorf("unknown client flags %#x", flags)
	}
	if flags&clientFixedNewstyle == 0 {
		return nil, 0, errors.New("client does not speak fixed newstyle negotiation, the only one served")
	}
	noZeroes := flags&clientNoZeroes != 0
	for {
		var h [optHeaderLen]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return nil, 0, fmt.Errorf("read option: %w", err)
		}
		opt, length, err := decodeOptionHeader(&h)
		if err != nil {
			return nil, 0, err
		}
		exp, size, done, err := c.option(opt, length, noZeroes)
		if err != nil {
			return nil, 0, fmt.Errorf("option %d: %w", opt, err)
		}
		if done {
			c.setDeadline(time.Time{})
			return exp, size, nil
		}
	}
}

// option answers one option. done is set when negotiation is over: with an
// export to serve, or without one after NBD_OPT_ABORT.
func (c *conn) option(opt, length uint32, noZeroes bool) (exp *Export, size uint64, done bool, err error) {
	switch opt {
	case optExportName:
		data, err := c.readOption(length)
		if err != nil {
			return nil, 0, false, err
		}
		// This option has no error reply: refusing means hanging up.
		if exp = c.s.lookup(string(data)); exp == nil {
			return nil, 0, false, fmt.Errorf("unknown export %q", truncate(data))
		}
		size = exportSize(exp)
		b := make([]byte, 0, exportReplyLen)
		b = binary.BigEndian.AppendUint64(b, size)
		b = binary.BigEndian.AppendUint16(b, transmissionFlags(exp.ReadOnly))
		if !noZeroes {
			b = append(b, make([]byte, 124)...)
		}
		if _, err := c.nc.Write(b); err != nil {
			return nil, 0, false, fmt.Errorf("send export: %w", err)
		}
		return exp, size, true, nil

	case optAbort:
		// The data should be empty but is ignored, as the protocol asks.
		// The client may hang up without reading the ack.
		if err := c.discard(int64(length)); err == nil {
			c.nc.Write(appendOptReply(nil, opt, repAck))
		}
		return nil, 0, true, nil

	case optList:
		if length != 0 {
			if err := c.discard(int64(length)); err != nil {
				return nil, 0, false, err
			}
			return nil, 0, false, c.optError(opt, repErrInvalid, "NBD_OPT_LIST takes no data")
		}
		var b []byte
		for _, e := range c.s.exports {
			b = appendOptReply(b, opt, repServer, binary.BigEndian.AppendUint32(nil, uint32(len(e.Name))), []byte(e.Name))
		}
		return nil, 0, false, c.send(appendOptReply(b, opt, repAck))

	case optInfo, optGo:
		if length > maxOptionLen {
			if err := c.discard(int64(length)); err != nil {
				return nil, 0, false, err
			}
			return nil, 0, false, c.optError(opt, repErrTooBig, fmt.Sprintf("%d bytes of option data, at most %d accepted", length, maxOptionLen))
		}
		data, err := c.readOption(length)
		if err != nil {
			return nil, 0, false, err
		}
		req, err := parseInfoRequest(data)
		if err != nil {
			return nil, 0, false, c.optError(opt, repErrInvalid, err.Error())
		}
		if exp = c.s.lookup(req.name); exp == nil {
			return nil, 0, false, c.optError(opt, repErrUnknown, fmt.Sprintf("no export named %q", truncate([]byte(req.name))))
		}
		size = exportSize(exp)
		if err := c.send(appendInfo(nil, opt, exp, size, req.infos)); err != nil {
			return nil, 0, false, err
		}
		return exp, size, opt == optGo, nil

	default:
		// STARTTLS, STRUCTURED_REPLY, meta contexts, extended headers and
		// options unknown to us alike.
		if err := c.discard(int64(length)); err != nil {
			return nil, 0, false, err
		}
		return nil, 0, false, c.optError(opt, repErrUnsup, fmt.Sprintf("option %d is not supported", opt))
	}
}

// appendInfo appends the successful answer to NBD_OPT_INFO or NBD_OPT_GO:
// NBD_INFO_EXPORT always, the block sizes and canonical name when asked
// (once each, even if asked twice), then the ack.
func appendInfo(b []byte, opt uint32, exp *Export, size uint64, infos []uint16) []byte {
	var info [14]byte
	binary.BigEndian.PutUint16(info[0:], infoExport)
	binary.BigEndian.PutUint64(info[2:], size)
	binary.BigEndian.PutUint16(info[10:], transmissionFlags(exp.ReadOnly))
	b = appendOptReply(b, opt, repInfo, info[:12])
	var sentSizes, sentName bool
	for _, t := range infos {
		switch {
		case t == infoBlockSize && !sentSizes:
			sentSizes = true
			binary.BigEndian.PutUint16(info[0:], infoBlockSize)
			binary.BigEndian.PutUint32(info[2:], MinBlockSize)
			binary.BigEndian.PutUint32(info[6:], PreferredBlockSize)
			binary.BigEndian.PutUint32(info[10:], MaxPayload)
			b = appendOptReply(b, opt, repInfo, info[:14])
		case t == infoName && !sentName:
			sentName = true
			binary.BigEndian.PutUint16(info[0:], infoName)
			b = appendOptReply(b, opt, repInfo, info[:2], []byte(exp.Name))
		}
	}
	return appendOptReply(b, opt, repAck)
}

// readOption reads the data of an option into memory.
func (c *conn) readOption(length uint32) ([]byte, error) {
	if length > maxOptionLen {
		return nil, fmt.Errorf("%d bytes of option data, at most %d accepted", length, maxOptionLen)
	}
	b := make([]byte, length)
	if _, err := io.ReadFull(c.br, b); err != nil {
		return nil, fmt.Errorf("read option data: %w", err)
	}
	return b, nil
}

// optError sends an error reply whose data is a message for the user.
func (c *conn) optError(opt, typ uint32, msg string) error {
	return c.send(appendOptReply(nil, opt, typ, []byte(msg)))
}

func (c *conn) send(b []byte) error {
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("send option reply: %w", err)
	}
	return nil
}

// discard reads and drops n bytes without holding them.
func (c *conn) discard(n int64) error {
	if _, err := io.CopyN(io.Discard, c.br, n); err != nil {
		return fmt.Errorf("discard %d bytes: %w", n, err)
	}
	return nil
}

func exportSize(e *Export) uint64 {
	return uint64(max(e.Backend.Size(), 0))
}

// truncate keeps client-chosen names short in messages and logs.
func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// transmit reads requests until NBD_CMD_DISC, an error or shutdown, starting
// a goroutine for each; it returns once all of them have replied.
func (c *conn) transmit(exp *Export, size uint64) error {
	defer c.inflight.Wait()
	var h [requestLen]byte
	for {
		if c.isStopped() {
			return errStopped
		}
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return fmt.Errorf("read request: %w", err)
		}
		r, err := decodeRequest(&h)
		if err != nil {
			return err
		}
		if r.typ == cmdDisc {
			return nil
		}
		c.s.stats.count(r.typ)
		if e := check(r, size, exp.ReadOnly); e != 0 {
			c.s.stats.refused.Add(1)
			if r.typ == cmdWrite {
				if err := c.discard(int64(r.length)); err != nil {
					return fmt.Errorf("payload of refused write %#x: %w", r.handle, err)
				}
			}
			c.reply(r.handle, e, nil)
			continue
		}

		// Wait for a slot and for payload room before reading the
		// payload: that is the back-pressure that bounds memory.
		c.slots <- struct{}{}
		var buf []byte
		if r.typ == cmdRead || r.typ == cmdWrite {
			c.budget.acquire(int64(r.length))
			buf = getBuf(int(r.length))
		}
		if r.typ == cmdWrite {
			if _, err := io.ReadFull(c.br, buf); err != nil {
				c.done(r, buf)
				return fmt.Errorf("payload of write %#x: %w", r.handle, err)
			}
		}
		c.inflight.Add(1)
		go c.handle(exp.Backend, r, buf)
	}
}

func (c *conn) handle(b Backend, r request, buf []byte) {
	defer c.inflight.Done()
	errno := c.do(b, r, buf)
	var data []byte
	if r.typ == cmdRead {
		data = buf
	}
	c.reply(r.handle, errno, data)
	c.done(r, buf)
}

// done returns what a request held.
func (c *conn) done(r request, buf []byte) {
	if r.typ == cmdRead || r.typ == cmdWrite {
		putBuf(buf)
		c.budget.release(int64(r.length))
	}
	<-c.slots
}

// do runs a checked request against the backend and returns the NBD error.
func (c *conn) do(b Backend, r request, buf []byte) uint32 {
	off, n := int64(r.offset), int64(r.length)
	fua := r.flags&cmdFlagFUA != 0
	var err error
	switch r.typ {
	case cmdRead:
		if n == 0 {
			return 0
		}
		var got int
		// Like io.ReaderAt, a full read is good even with io.EOF.
		if got, err = b.ReadAt(buf, off); got == len(buf) {
			err = nil
			c.s.stats.bytesRead.Add(uint64(n))
		} else if err == nil {
			err = fmt.Errorf("read %d of %d bytes", got, n)
		}
	case cmdWrite:
		if n == 0 {
			return 0
		}
		var put int
		if put, err = b.WriteAt(buf, off, fua); err == nil && put != len(buf) {
			err = fmt.Errorf("wrote %d of %d bytes: %w", put, n, io.ErrShortWrite)
		}
		if err == nil {
			c.s.stats.bytesWritten.Add(uint64(n))
		}
	case cmdFlush:
		err = b.Flush()
	case cmdTrim:
		if n > 0 {
			err = b.Trim(off, n)
		}
		// Trim has no FUA of its own: a FUA trim must be durable before
		// the reply, so flush.
		if err == nil && fua {
			err = b.Flush()
		}
	case cmdWriteZeroes:
		if n > 0 {
			err = b.WriteZeroes(off, n, fua)
		}
	}
	if err == nil {
		return 0
	}
	c.s.stats.backendErrors.Add(1)
	if c.backendErrLogged.CompareAndSwap(false, true) {
		c.log.Warn("nbd backend failed a request; further failures on this connection are only counted",
			zap.String("command", cmdName(r.typ)), zap.Uint64("offset", r.offset),
			zap.Uint32("length", r.length), zap.Error(err))
	}
	return errnoFor(err)
}

// errnoFor maps a backend error to the NBD error the client sees.
func errnoFor(err error) uint32 {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EFBIG):
		return errNoSpc
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return errPerm
	case errors.Is(err, syscall.ESHUTDOWN):
		return errShutdown
	}
	return errIO
}

// reply sends a simple reply; data only goes with success. After a failed
// send the connection is closed, so the reader stops too, and later replies
// are dropped.
func (c *conn) reply(handle uint64, errno uint32, data []byte) {
	if errno != 0 {
		data = nil
	}
	var h [replyLen]byte
	encodeReply(&h, errno, handle)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return
	}
	var err error
	if len(data) == 0 {
		_, err = c.nc.Write(h[:])
	} else {
		bufs := net.Buffers{h[:], data} // one writev
		_, err = bufs.WriteTo(c.nc)
	}
	if err != nil {
		c.werr = err
		c.nc.Close()
	}
}

func cmdName(typ uint16) string {
	switch typ {
	case cmdRead:
		return "read"
	case cmdWrite:
		return "write"
	case cmdFlush:
		return "flush"
	case cmdTrim:
		return "trim"
	case cmdWriteZeroes:
		return "write_zeroes"
	}
	return fmt.Sprintf("command %d", typ)
}

// budget counts the payload bytes a connection may hold.
type budget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	free  int64
	total int64
}

func newBudget(n int64) *budget {
	b := &budget{free: n, total: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire waits until n bytes are free and takes them. A request larger
// than the whole budget waits until it is alone and takes all of it, so a
// small budget slows big requests down instead of deadlocking them.
func (b *budget) acquire(n int64) {
	n = min(n, b.total)
	b.mu.Lock()
	for b.free < n {
		b.cond.Wait()
	}
	b.free -= n
	b.mu.Unlock()
}

func (b *budget) release(n int64) {
	n = min(n, b.total)
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// Payload buffers come from pools by power-of-two size, 4 KiB to MaxPayload,
// so a busy connection does not allocate a buffer per request.
const minBufShift = 12

var bufPools [bits.UintSize]sync.Pool

func getBuf(n int) []byte {
	if n == 0 {
		return nil
	}
	shift := max(bits.Len(uint(n-1)), minBufShift)
	if p, ok := bufPools[shift].Get().(*[]byte); ok {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<shift)
}

func putBuf(b []byte) {
	c := cap(b)
	if c == 0 || c&(c-1) != 0 {
		return
	}
	b = b[:c]
	bufPools[bits.Len(uint(c-1))].Put(&b)
}
