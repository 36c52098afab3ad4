package nbd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Backend is the block device an export serves. Methods may be called
// concurrently, from several connections; the server never calls them
// outside [0, Size()).
type Backend interface {
	// Size is the device size in bytes. It is read when a client
	// negotiates and holds for that connection.
	Size() int64
	// ReadAt reads len(p) bytes at off, like io.ReaderAt.
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt writes p at off. With fua, p is durable when it returns.
	WriteAt(p []byte, off int64, fua bool) (int, error)
	// Flush makes every write that returned before Flush was called
	// durable, whichever connection issued it.
	Flush() error
	// Trim tells the device that the range is no longer needed; its
	// content is undefined until written again.
	Trim(off, length int64) error
	// WriteZeroes makes the range read as zeroes and leaves it
	// allocated: NBD_CMD_FLAG_NO_HOLE is honoured by this contract, so
	// zero ranges rather than punching holes (deallocation is Trim's).
	// With fua, the zeroes are durable when it returns.
	WriteZeroes(off, length int64, fua bool) error
}

// Export is a named device offered to clients.
type Export struct {
	Name    string
	Backend Backend
	// ReadOnly announces NBD_FLAG_READ_ONLY and refuses every request
	// that writes with EPERM: a Secondary serving reads.
	ReadOnly bool
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("nbd: server closed")

// DefaultShutdownTimeout bounds Close.
const DefaultShutdownTimeout = 10 * time.Second

// Per-connection limits; see the package documentation.
const (
	defaultMaxInflight      = 128
	defaultMaxInflightBytes = 64 << 20
	defaultHandshakeTimeout = time.Minute
)

// Server serves exports to NBD clients.
type Server struct {
	log     *zap.Logger
	exports []*Export
	byName  map[string]*Export

	// Limits; tests lower them.
	maxInflight      int
	maxInflightBytes int64
	handshakeTimeout time.Duration

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	done      chan struct{} // closed when shutdown starts
	wg        sync.WaitGroup

	stats counters
}

// NewServer returns a server for the exports; the first is also the default
// export, chosen by an empty name. It panics on an export without a Backend
// or on a repeated name: both are programming errors.
func NewServer(log *zap.Logger, exports ...Export) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		log:              log,
		byName:           make(map[string]*Export, len(exports)),
		maxInflight:      defaultMaxInflight,
		maxInflightBytes: defaultMaxInflightBytes,
		handshakeTimeout: defaultHandshakeTimeout,
		listeners:        make(map[net.Listener]struct{}),
		conns:            make(map[*conn]struct{}),
		done:             make(chan struct{}),
	}
	for i := range exports {
		e := exports[i]
		if e.Backend == nil {
			panic(fmt.Sprintf("nbd: export %q has no backend", e.Name))
		}
		if _, dup := s.byName[e.Name]; dup {
			panic(fmt.Sprintf("nbd: export %q given twice", e.Name))
		}
		s.exports = append(s.exports, &e)
		s.byName[e.Name] = &e
	}
	return s
}

// lookup finds an export by name; the empty name is the default export.
func (s *Server) lookup(name string) *Export {
	if e, ok := s.byName[name]; ok {
		return e
	}
	if name == "" && len(s.exports) > 0 {
		return s.exports[0]
	}
	return nil
}

// Serve accepts connections on l and serves each in its own goroutine until
// Shutdown or Close, then returns ErrServerClosed. Accept errors other than
// a closed listener are retried with backoff, so a burst of EMFILE does not
// take a volume's socket away.
func (s *Server) Serve(l net.Listener) error {
	if !s.track(l) {
		return ErrServerClosed
	}
	defer s.untrack(l)
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shuttingDown() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("nbd: accept: %w", err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("nbd accept failed, retrying", zap.Error(err), zap.Duration("in", delay))
			select {
			case <-time.After(delay):
			case <-s.done:
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		if !s.serveConn(nc) {
			return ErrServerClosed
		}
	}
}

// serveConn serves one connection in its own goroutine. It closes nc and
// returns false when the server is shutting down.
func (s *Server) serveConn(nc net.Conn) bool {
	c := s.newConn(nc)
	if c == nil {
		nc.Close()
		return false
	}
	go c.serve()
	return true
}

func (s *Server) track(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.listeners[l] = struct{}{}
	return true
}

func (s *Server) untrack(l net.Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
}

func (s *Server) shuttingDown() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// newConn registers a connection, or returns nil when shutting down.
func (s *Server) newConn(nc net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	c := &conn{
		s:      s,
		nc:     nc,
		log:    s.log.With(zap.Stringer("client", remote{nc})),
		slots:  make(chan struct{}, s.maxInflight),
		budget: newBudget(s.maxInflightBytes),
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.stats.connsOpen.Add(1)
	s.stats.connsTotal.Add(1)
	return c
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.stats.connsOpen.Add(-1)
	s.wg.Done()
}

// Shutdown stops accepting connections and negotiations, stops reading new
// requests, and waits until the requests in flight have been replied to and
// every connection is closed. If ctx ends first, it closes the connections
// hard and returns; requests still inside the Backend then finish on their
// own. It may be called more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.done)
	}
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.stop()
	}
	s.mu.Unlock()

	idle := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	n := len(s.conns)
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	return fmt.Errorf("nbd: shutdown: %d connections still busy, closed hard: %w", n, ctx.Err())
}

// Close is Shutdown bounded by DefaultShutdownTimeout.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Stats are counters since the server started.
type Stats struct {
	ConnsOpen  int64  // connections open now
	ConnsTotal uint64 // connections accepted

	Reads, Writes, Flushes, Trims, WriteZeroes uint64 // requests received, by command
	Other                                      uint64 // requests with an unknown command

	Refused       uint64 // requests refused without reaching the backend (EINVAL, EPERM, ENOSPC)
	BackendErrors uint64 // requests the backend failed

	BytesRead, BytesWritten uint64 // payload of successful reads and writes
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		ConnsOpen:     c.connsOpen.Load(),
		ConnsTotal:    c.connsTotal.Load(),
		Reads:         c.reads.Load(),
		Writes:        c.writes.Load(),
		Flushes:       c.flushes.Load(),
		Trims:         c.trims.Load(),
		WriteZeroes:   c.writeZeroes.Load(),
		Other:         c.other.Load(),
		Refused:       c.refused.Load(),
		BackendErrors: c.backendErrors.Load(),
		BytesRead:     c.bytesRead.Load(),
		BytesWritten:  c.bytesWritten.Load(),
	}
}

type counters struct {
	connsOpen                                         atomic.Int64
	connsTotal                                        atomic.Uint64
	reads, writes, flushes, trims, writeZeroes, other atomic.Uint64
	refused, backendErrors                            atomic.Uint64
	bytesRead, bytesWritten                           atomic.Uint64
}

func (c *counters) count(typ uint16) {
	switch typ {
	case cmdRead:
		c.reads.Add(1)
	case cmdWrite:
		c.writes.Add(1)
	case cmdFlush:
		c.flushes.Add(1)
	case cmdTrim:
		c.trims.Add(1)
	case cmdWriteZeroes:
		c.writeZeroes.Add(1)
	case cmdDisc:
	default:
		c.other.Add(1)
	}
}

// remote names a client in logs: unix socket peers have no address, so the
// local socket path stands in.
type remote struct{ nc net.Conn }

func (r remote) String() string {
	if a := r.nc.RemoteAddr(); a != nil && a.String() != "" && a.String() != "@" {
		return a.String()
	}
	if a := r.nc.LocalAddr(); a != nil {
		return a.String()
	}
	return "?"
}
