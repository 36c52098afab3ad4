package nbd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// The client side of the handshake: hactl negotiates an export on its own
// server's socket, then hands the socket, now in the transmission phase, to
// the kernel's NBD client. Everything the server sends is untrusted and
// checked; no reply is held in memory past maxReplyLen.

// Protocol values only the client needs.
const (
	// magicOldstyle follows NBDMAGIC in an oldstyle greeting
	// (cliserv_magic).
	magicOldstyle = 0x00420281861253

	// repFlagError marks the error reply types.
	repFlagError        = 1 << 31
	repErrPolicy        = 1<<31 + 2
	repErrPlatform      = 1<<31 + 4
	repErrTLSReqd       = 1<<31 + 5
	repErrShutdown      = 1<<31 + 7
	repErrBlockSizeReqd = 1<<31 + 8
	repErrExtHeaderReqd = 1<<31 + 10

	infoDescription = 2

	optReplyHeaderLen = 20 // magic, option, type, length
	// exportReplyShortLen is the reply to NBD_OPT_EXPORT_NAME without
	// the 124 zeroes: size and transmission flags.
	exportReplyShortLen = 8 + 2

	// maxMinBlockSize is the largest minimum block size the protocol
	// allows.
	maxMinBlockSize = 64 << 10
)

// Client limits on what a server may send.
const (
	// maxReplyLen bounds the data of one option reply. The largest
	// legitimate ones (an export name or description, an error message)
	// are strings of at most 4096 bytes.
	maxReplyLen = 64 << 10
	// maxReplies bounds the replies to one option, so a server cannot
	// keep a client without a deadline busy forever.
	maxReplies = 128
	// maxMessageLen shortens error messages from the server in errors.
	maxMessageLen = 256
)

// ExportInfo describes the export a handshake opened.
type ExportInfo struct {
	Size  int64  // bytes
	Flags uint16 // transmission flags (NBD_FLAG_*)
	// Block size constraints from NBD_INFO_BLOCK_SIZE; all 0 when the
	// server sent none (always after NBD_OPT_EXPORT_NAME).
	MinBlock, PreferredBlock, MaxBlock uint32
}

// Handshake performs the client side of the fixed newstyle handshake on c
// (a fresh connection to an NBD server) and asks for export name with
// NBD_OPT_GO, requesting NBD_INFO_BLOCK_SIZE, falling back to
// NBD_OPT_EXPORT_NAME only if the server answers NBD_REP_ERR_UNSUP to GO. A
// server that does not offer fixed newstyle gets NBD_OPT_EXPORT_NAME at
// once, the only option it understands. NBD_FLAG_C_FIXED_NEWSTYLE and
// NBD_FLAG_C_NO_ZEROES are sent only when the server offers them; oldstyle
// servers are refused.
//
// On success c is in the transmission phase and the returned ExportInfo
// describes the export. Handshake reads exactly the handshake's bytes from c,
// never more, so c can be handed to another reader (the kernel) afterwards.
// When the server refuses the export with an error reply, Handshake ends the
// negotiation with NBD_OPT_ABORT, as the protocol asks. On any error c is of
// no further use and the caller should close it.
//
// Handshake sets ctx's deadline on c, and an expired one when ctx is
// cancelled, and clears c's deadlines before returning. A c that does not
// support deadlines can block past ctx.
func Handshake(ctx context.Context, c net.Conn, export string) (ExportInfo, error) {
	if len(export) > maxNameLen {
		return ExportInfo{}, fmt.Errorf("nbd: export %q: name of %d bytes, at most %d allowed",
			truncate([]byte(export)), len(export), maxNameLen)
	}
	if err := ctx.Err(); err != nil {
		return ExportInfo{}, fmt.Errorf("nbd: export %q: %w", export, err)
	}
	release := watchConn(ctx, c)
	h := clientHandshake{c: c, export: export}
	info, err := h.run(ctx)
	release()
	if err != nil {
		return ExportInfo{}, fmt.Errorf("nbd: export %q: %w", export, withContext(ctx, err))
	}
	return info, nil
}

// DialUnix connects to the NBD server's unix socket at path, performs
// Handshake and returns the connection as an *os.File (for handing to the
// kernel NBD client via netlink) together with the ExportInfo. The file is a
// duplicate of the socket; the net.Conn itself is closed before DialUnix
// returns, and the file is the caller's to close.
func DialUnix(ctx context.Context, path, export string) (*os.File, ExportInfo, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, ExportInfo{}, fmt.Errorf("nbd: export %q: %w", export, err)
	}
	defer nc.Close()
	info, err := Handshake(ctx, nc, export)
	if err != nil {
		return nil, ExportInfo{}, err
	}
	fc, ok := nc.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, ExportInfo{}, fmt.Errorf("nbd: export %q: %T has no file descriptor", export, nc)
	}
	f, err := fc.File()
	if err != nil {
		return nil, ExportInfo{}, fmt.Errorf("nbd: export %q: duplicate socket: %w", export, err)
	}
	return f, info, nil
}

// watchConn puts ctx's deadline on c, and an expired deadline once ctx is
// cancelled, so blocked reads and writes return. The returned release stops
// watching and clears c's deadlines. Errors from SetDeadline are ignored: c
// may not support deadlines.
func watchConn(ctx context.Context, c net.Conn) (release func()) {
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	var mu sync.Mutex
	released := false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !released {
			c.SetDeadline(aLongTimeAgo)
		}
	})
	return func() {
		stop()
		mu.Lock()
		released = true
		mu.Unlock()
		c.SetDeadline(time.Time{})
	}
}

// withContext adds ctx's error to an I/O error that ctx's deadline or
// cancellation caused, so that errors.Is finds context.DeadlineExceeded or
// context.Canceled.
func withContext(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// The deadline on c may fire just before ctx's timer does.
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w: %w", cerr, err)
}

// refusal is an error reply from the server.
type refusal struct {
	typ uint32
	msg string // from the server, made printable
}

func (r *refusal) Error() string {
	s := "server refused: " + repErrName(r.typ)
	if r.msg != "" {
		s += ": " + r.msg
	}
	return s
}

// clientHandshake is the state of one Handshake.
type clientHandshake struct {
	c        net.Conn
	export   string
	noZeroes bool // NBD_FLAG_C_NO_ZEROES was sent
}

func (h *clientHandshake) run(ctx context.Context) (ExportInfo, error) {
	var g [greetingLen]byte
	if err := h.read(g[:], "greeting"); err != nil {
		return ExportInfo{}, err
	}
	if m := binary.BigEndian.Uint64(g[0:]); m != magicInit {
		return ExportInfo{}, fmt.Errorf("not an NBD server: greeting magic %#016x, want NBDMAGIC", m)
	}
	switch m := binary.BigEndian.Uint64(g[8:]); m {
	case magicOpt:
	case magicOldstyle:
		return ExportInfo{}, errors.New("server speaks oldstyle negotiation, which is not supported")
	default:
		return ExportInfo{}, fmt.Errorf("not an NBD server: greeting's second magic %#016x, want IHAVEOPT", m)
	}
	// Unknown handshake flags are ignored, as the protocol asks.
	sflags := binary.BigEndian.Uint16(g[16:])
	fixed := sflags&flagFixedNewstyle != 0
	var cflags uint32
	if fixed {
		cflags |= clientFixedNewstyle
	}
	if sflags&flagNoZeroes != 0 {
		cflags |= clientNoZeroes
		h.noZeroes = true
	}
	if err := h.write(binary.BigEndian.AppendUint32(nil, cflags), "client flags"); err != nil {
		return ExportInfo{}, err
	}
	if !fixed {
		return h.exportName()
	}
	info, err := h.optGo()
	var r *refusal
	if errors.As(err, &r) {
		if r.typ == repErrUnsup {
			return h.exportName()
		}
		h.abort(ctx)
	}
	return info, err
}

// optGo sends NBD_OPT_GO and reads its replies up to the final one.
func (h *clientHandshake) optGo() (ExportInfo, error) {
	data := binary.BigEndian.AppendUint32(nil, uint32(len(h.export)))
	data = append(data, h.export...)
	data = binary.BigEndian.AppendUint16(data, 1)
	data = binary.BigEndian.AppendUint16(data, infoBlockSize)
	if err := h.sendOption(optGo, data); err != nil {
		return ExportInfo{}, err
	}
	var info ExportInfo
	haveExport := false
	for range maxReplies {
		typ, data, err := h.reply(optGo)
		if err != nil {
			return ExportInfo{}, err
		}
		switch {
		case typ == repAck:
			if len(data) != 0 {
				return ExportInfo{}, fmt.Errorf("NBD_REP_ACK to NBD_OPT_GO carries %d bytes, want none", len(data))
			}
			if !haveExport {
				return ExportInfo{}, errors.New("NBD_OPT_GO acknowledged without NBD_INFO_EXPORT")
			}
			return info, nil
		case typ == repInfo:
			isExport, err := parseInfo(data, &info)
			if err != nil {
				return ExportInfo{}, err
			}
			haveExport = haveExport || isExport
		case typ&repFlagError != 0:
			return ExportInfo{}, &refusal{typ: typ, msg: printable(data)}
		default:
			return ExportInfo{}, fmt.Errorf("unexpected reply type %d to NBD_OPT_GO", typ)
		}
	}
	return ExportInfo{}, fmt.Errorf("more than %d replies to NBD_OPT_GO", maxReplies)
}

// parseInfo decodes the data of an NBD_REP_INFO into info. It reports
// whether it was NBD_INFO_EXPORT. Information types the client does not use
// (the name, the description, unknown ones) are skipped, as the protocol
// asks.
func parseInfo(b []byte, info *ExportInfo) (isExport bool, err error) {
	if len(b) < 2 {
		return false, fmt.Errorf("NBD_REP_INFO of %d bytes, too short for its type", len(b))
	}
	switch t := binary.BigEndian.Uint16(b); t {
	case infoExport:
		if len(b) != 12 {
			return false, fmt.Errorf("NBD_INFO_EXPORT of %d bytes, want 12", len(b))
		}
		size, err := checkSize(binary.BigEndian.Uint64(b[2:]))
		if err != nil {
			return false, err
		}
		info.Size = size
		info.Flags = binary.BigEndian.Uint16(b[10:])
		return true, nil
	case infoBlockSize:
		if len(b) != 14 {
			return false, fmt.Errorf("NBD_INFO_BLOCK_SIZE of %d bytes, want 14", len(b))
		}
		lo := binary.BigEndian.Uint32(b[2:])
		pref := binary.BigEndian.Uint32(b[6:])
		hi := binary.BigEndian.Uint32(b[10:])
		if err := checkBlockSizes(lo, pref, hi); err != nil {
			return false, err
		}
		info.MinBlock, info.PreferredBlock, info.MaxBlock = lo, pref, hi
	}
	return false, nil
}

// checkBlockSizes applies the protocol's rules for NBD_INFO_BLOCK_SIZE: the
// minimum a power of 2 up to 64 KiB, the preferred a power of 2 no smaller,
// the maximum a multiple of the minimum or 0xffffffff for no limit.
func checkBlockSizes(lo, pref, hi uint32) error {
	pow2 := func(n uint32) bool { return n != 0 && n&(n-1) == 0 }
	switch {
	case !pow2(lo) || lo > maxMinBlockSize:
		return fmt.Errorf("invalid block size constraints: minimum %d is not a power of 2 up to %d", lo, maxMinBlockSize)
	case !pow2(pref) || pref < lo:
		return fmt.Errorf("invalid block size constraints: preferred %d is not a power of 2 of at least the minimum %d", pref, lo)
	case hi != math.MaxUint32 && (hi < lo || hi%lo != 0):
		return fmt.Errorf("invalid block size constraints: maximum %d is not a multiple of the minimum %d", hi, lo)
	}
	return nil
}

func checkSize(size uint64) (int64, error) {
	if size > math.MaxInt64 {
		return 0, fmt.Errorf("export size %d exceeds %d", size, int64(math.MaxInt64))
	}
	return int64(size), nil
}

// exportName sends NBD_OPT_EXPORT_NAME, which ends the negotiation, and
// reads the export's size and flags. A server refuses it only by hanging up.
func (h *clientHandshake) exportName() (ExportInfo, error) {
	if err := h.sendOption(optExportName, []byte(h.export)); err != nil {
		return ExportInfo{}, err
	}
	var b [exportReplyLen]byte
	n := exportReplyLen
	if h.noZeroes {
		n = exportReplyShortLen
	}
	if _, err := io.ReadFull(h.c, b[:n]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ExportInfo{}, fmt.Errorf("server hung up after NBD_OPT_EXPORT_NAME, its way of refusing (unknown export?): %w", err)
		}
		return ExportInfo{}, fmt.Errorf("read NBD_OPT_EXPORT_NAME reply: %w", err)
	}
	// The 124 reserved bytes are not checked: they are reserved.
	size, err := checkSize(binary.BigEndian.Uint64(b[0:]))
	if err != nil {
		return ExportInfo{}, err
	}
	return ExportInfo{Size: size, Flags: binary.BigEndian.Uint16(b[8:])}, nil
}

// abort ends the negotiation softly after an error reply, as the protocol
// asks of clients: NBD_OPT_ABORT, without waiting for the ack. It is best
// effort and takes at most a second.
func (h *clientHandshake) abort(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	d := time.Now().Add(time.Second)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	h.c.SetWriteDeadline(d)
	h.sendOption(optAbort, nil)
}

// sendOption sends an option with its data in one write.
func (h *clientHandshake) sendOption(opt uint32, data []byte) error {
	b := make([]byte, 0, optHeaderLen+len(data))
	b = binary.BigEndian.AppendUint64(b, magicOpt)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return h.write(append(b, data...), optName(opt))
}

// reply reads one option reply to opt and returns its type and data.
func (h *clientHandshake) reply(opt uint32) (typ uint32, data []byte, err error) {
	var b [optReplyHeaderLen]byte
	if err := h.read(b[:], "reply to "+optName(opt)); err != nil {
		return 0, nil, err
	}
	if m := binary.BigEndian.Uint64(b[0:]); m != magicOptReply {
		return 0, nil, fmt.Errorf("bad option reply magic %#016x", m)
	}
	if o := binary.BigEndian.Uint32(b[8:]); o != opt {
		return 0, nil, fmt.Errorf("reply names option %d, but %s was sent", o, optName(opt))
	}
	typ = binary.BigEndian.Uint32(b[12:])
	n := binary.BigEndian.Uint32(b[16:])
	if n > maxReplyLen {
		return 0, nil, fmt.Errorf("reply to %s of %d bytes, at most %d accepted", optName(opt), n, maxReplyLen)
	}
	data = make([]byte, n)
	if err := h.read(data, "reply data"); err != nil {
		return 0, nil, err
	}
	return typ, data, nil
}

func (h *clientHandshake) read(b []byte, what string) error {
	if _, err := io.ReadFull(h.c, b); err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	return nil
}

func (h *clientHandshake) write(b []byte, what string) error {
	if _, err := h.c.Write(b); err != nil {
		return fmt.Errorf("send %s: %w", what, err)
	}
	return nil
}

func optName(opt uint32) string {
	switch opt {
	case optExportName:
		return "NBD_OPT_EXPORT_NAME"
	case optAbort:
		return "NBD_OPT_ABORT"
	case optGo:
		return "NBD_OPT_GO"
	}
	return fmt.Sprintf("option %d", opt)
}

// repErrName describes an error reply type.
func repErrName(typ uint32) string {
	switch typ {
	case repErrUnsup:
		return "unsupported option"
	case repErrPolicy:
		return "forbidden by policy"
	case repErrInvalid:
		return "invalid request"
	case repErrPlatform:
		return "not supported on this platform"
	case repErrTLSReqd:
		return "TLS required"
	case repErrUnknown:
		return "unknown export"
	case repErrShutdown:
		return "server shutting down"
	case repErrBlockSizeReqd:
		return "block size constraints required"
	case repErrTooBig:
		return "request too big"
	case repErrExtHeaderReqd:
		return "extended headers required"
	}
	return fmt.Sprintf("error %#x", typ)
}

// printable makes a message from the server safe to log: unprintable
// characters become '?', and it is cut to maxMessageLen bytes.
func printable(b []byte) string {
	var s strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if r == utf8.RuneError && n == 1 || !unicode.IsPrint(r) {
			r = '?'
		}
		if s.Len()+utf8.RuneLen(r) > maxMessageLen {
			s.WriteString("...")
			break
		}
		s.WriteRune(r)
	}
	return s.String()
}
