package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Defaults for Config.
const (
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultSendTimeout is DRBD's "timeout" (6 s): a peer that takes no
	// bytes for that long is gone.
	DefaultSendTimeout = 6 * time.Second
)

// Config sets up links for one volume.
type Config struct {
	// Secret is the cluster secret; both ends must hold the same. Required.
	Secret []byte
	// Local returns what this node announces. It is called once per
	// connection attempt, when the Hello is sent, so the announcement is
	// current; zero versions mean this package's. Required.
	Local func() Hello
	// PeerNode, when set, is the node the peer's Hello must name.
	PeerNode string
	// HandshakeTimeout bounds each step of setting up a link: a TCP
	// connect, a frame written or read, and the wait for a data
	// connection's meta connection. Zero: DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// SendTimeout bounds each frame written once the link is up; a frame
	// not taken in time breaks the connection. Zero: DefaultSendTimeout;
	// negative: none.
	SendTimeout time.Duration

	// dial replaces the TCP dialer (Pipe).
	dial func(ctx context.Context, addr string) (net.Conn, error)
}

func (cfg Config) prepare() (Config, error) {
	if len(cfg.Secret) == 0 {
		return cfg, errors.New("wire: no cluster secret")
	}
	if cfg.Local == nil {
		return cfg, errors.New("wire: Config.Local is not set")
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.dial == nil {
		d := &net.Dialer{Timeout: cfg.HandshakeTimeout}
		cfg.dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	return cfg, nil
}

// hello is this node's announcement, checked as the peer would check it.
func (cfg *Config) hello() (*Hello, error) {
	h := cfg.Local()
	if h.MinVersion == 0 && h.MaxVersion == 0 {
		h.MinVersion, h.MaxVersion = MinProtocolVersion, ProtocolVersion
	}
	if err := h.check(0); err != nil {
		return nil, fmt.Errorf("our own hello: %w", err)
	}
	return &h, nil
}

// Link is an established replication link to the peer: two authenticated
// connections of one session. Data carries writes, barriers, state and
// resync traffic in order; Meta carries acks and pings, so an ack never
// waits behind a megabyte of data (see Type for which goes where). Both
// directions of both connections are used.
type Link struct {
	Data *Conn
	Meta *Conn

	peer    Hello
	version uint16
	session SessionID
}

func newLink(data, meta *Conn, peer *Hello, version uint16, session SessionID, cfg *Config) *Link {
	for _, c := range []*Conn{data, meta} {
		c.size = peer.Size // agree made sure it is ours too
		c.up = true
		c.sendTimeout = max(cfg.SendTimeout, 0)
	}
	data.route, meta.route = onData, onMeta
	return &Link{Data: data, Meta: meta, peer: *peer, version: version, session: session}
}

// Peer returns the peer's Hello: its node, state and generations when the
// link was set up.
func (l *Link) Peer() Hello { return l.peer }

// Version is the protocol version both ends speak on this link.
func (l *Link) Version() uint16 { return l.version }

// Session identifies the link on both ends, for logs.
func (l *Link) Session() SessionID { return l.session }

// Close closes both connections.
func (l *Link) Close() error {
	return errors.Join(l.Data.Close(), l.Meta.Close())
}

// Disconnect tells the peer why we close, after any data already queued on
// the data connection, and closes the link. text is made printable and
// clipped to MaxText.
func (l *Link) Disconnect(r Reason, text string) error {
	d := &Disconnect{Reason: r}
	if r != ReasonAuth {
		d.Text = clip(text)
	}
	err := l.Data.Send(d)
	return errors.Join(err, l.Close())
}

// Dial sets up a link to the peer listening at addr: the data connection
// (authenticate, exchange Hellos, check them), then the meta connection
// (authenticate, join the session). Each step has cfg.HandshakeTimeout;
// ctx bounds the whole. A refusal by either side returns an error that
// matches ErrAuth, ErrVersion, ErrWrongVolume, ErrWrongPeer,
// ErrSizeMismatch or ErrNoSession with errors.Is.
func Dial(ctx context.Context, addr string, cfg Config) (*Link, error) {
	cfg, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	local, err := cfg.hello()
	if err != nil {
		return nil, fmt.Errorf("wire: %w", err)
	}

	nc, err := cfg.dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("wire: dialing %s: %w", addr, err)
	}
	data := newConn(nc, onData, 0)
	peer, version, session, err := clientData(ctx, &cfg, data, local)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("wire: data connection to %s: %w", addr, err)
	}

	mc, err := cfg.dial(ctx, addr)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("wire: dialing %s: %w", addr, err)
	}
	meta := newConn(mc, onMeta, 0)
	if err := clientMeta(ctx, &cfg, meta, session); err != nil {
		nc.Close()
		mc.Close()
		return nil, fmt.Errorf("wire: meta connection to %s: %w", addr, err)
	}
	return newLink(data, meta, peer, version, session, &cfg), nil
}

// clientData runs the data connection's handshake from the dialer's side:
//
//	auth, C→S Hello, S→C Hello, C→S Join{session}
//
// The closing Join tells the server we accept its Hello, so a mismatch
// only this side sees is reported to both.
func clientData(ctx context.Context, cfg *Config, c *Conn, local *Hello) (*Hello, uint16, SessionID, error) {
	s := newStep(ctx, c, cfg.HandshakeTimeout)
	defer s.stopCtx()
	n, err := clientAuth(s, cfg.Secret)
	if err != nil {
		return nil, 0, SessionID{}, err
	}
	if err := s.send(local); err != nil {
		return nil, 0, SessionID{}, err
	}
	peer, err := recvAs[*Hello](s)
	if err != nil {
		return nil, 0, SessionID{}, err
	}
	v, err := agree(local, peer, cfg.PeerNode)
	if err != nil {
		return nil, 0, SessionID{}, s.refuse(err)
	}
	session := sessionID(cfg.Secret, &n.client, &n.server)
	if err := s.send(&join{session: session}); err != nil {
		return nil, 0, SessionID{}, err
	}
	return peer, v, session, s.finish()
}

// clientMeta runs the meta connection's handshake from the dialer's side:
//
//	auth, C→S Join{session}, S→C Join{session}
func clientMeta(ctx context.Context, cfg *Config, c *Conn, session SessionID) error {
	s := newStep(ctx, c, cfg.HandshakeTimeout)
	defer s.stopCtx()
	if _, err := clientAuth(s, cfg.Secret); err != nil {
		return err
	}
	if err := s.send(&join{session: session}); err != nil {
		return err
	}
	j, err := recvAs[*join](s)
	if err != nil {
		return err
	}
	if j.session != session {
		return s.refuse(fmt.Errorf("%w: joined session %v, asked for %v", ErrUnexpected, j.session, session))
	}
	return s.finish()
}

// Listener accepts links for one volume.
type Listener struct {
	ln  net.Listener
	cfg Config

	ctx    context.Context // done when closed
	cancel context.CancelFunc
	conns  chan net.Conn
	dead   chan struct{} // closed when ln.Accept failed, with err set
	err    error

	mu      sync.Mutex // one Accept at a time; guards pending
	pending *pending
}

// pending is a data connection waiting for its meta connection.
type pending struct {
	conn     *Conn
	peer     *Hello
	version  uint16
	session  SessionID
	deadline time.Time
}

// Listen listens for the peer on addr ("host:port").
func Listen(addr string, cfg Config) (*Listener, error) {
	cfg, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wire: %w", err)
	}
	return newListener(ln, cfg), nil
}

func newListener(ln net.Listener, cfg Config) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{ln: ln, cfg: cfg, ctx: ctx, cancel: cancel, conns: make(chan net.Conn), dead: make(chan struct{})}
	go l.acceptLoop()
	return l
}

// acceptLoop hands connections to Accept one at a time; until Accept
// wants one, the peer waits in the kernel's backlog.
func (l *Listener) acceptLoop() {
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			l.err = err
			close(l.dead)
			return
		}
		select {
		case l.conns <- nc:
		case <-l.ctx.Done():
			nc.Close()
			return
		}
	}
}

// Addr is the address the listener listens on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Accept returns the next link set up by a peer. Connections are handled
// one after another, each step bounded by HandshakeTimeout.
//
// An error about one connection attempt (a wrong secret, a mismatched
// Hello, a peer gone silent) leaves the listener working: log it and call
// Accept again. net.ErrClosed means the listener is closed; ctx's error
// that ctx ended. Only one goroutine may be in Accept at a time.
func (l *Listener) Accept(ctx context.Context) (*Link, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		link, err := l.next(ctx)
		if link != nil || err != nil {
			return link, err
		}
	}
}

// next handles one event: a connection, or the pending one's expiry. It
// returns nil, nil when a data connection now waits for its meta
// connection.
func (l *Listener) next(ctx context.Context) (*Link, error) {
	var expired <-chan time.Time
	if l.pending != nil {
		t := time.NewTimer(time.Until(l.pending.deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case nc := <-l.conns:
		link, err := l.handle(ctx, nc)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("wire: connection from %s: %w", nc.RemoteAddr(), err)
		}
		return link, nil
	case <-expired:
		addr := l.pending.conn.RemoteAddr()
		l.dropPending()
		return nil, fmt.Errorf("wire: connection from %s: no meta connection within %v: %w",
			addr, l.cfg.HandshakeTimeout, os.ErrDeadlineExceeded)
	case <-l.dead:
		return nil, fmt.Errorf("wire: accepting: %w", l.err)
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// handle runs the server side of one connection's handshake. A data
// connection becomes pending (nil link, nil error); a meta connection that
// joins it completes the link.
func (l *Listener) handle(ctx context.Context, nc net.Conn) (*Link, error) {
	// Close aborts a handshake under way too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.ctx, cancel)()

	c := newConn(nc, onData, 0)
	s := newStep(ctx, c, l.cfg.HandshakeTimeout)
	defer s.stopCtx()
	n, err := serverAuth(s, l.cfg.Secret)
	if err != nil {
		return nil, err
	}
	m, err := s.recv()
	if err != nil {
		return nil, err
	}
	switch m := m.(type) {
	case *Hello:
		// A data connection: answer its Hello, then wait for its Join.
		local, err := l.cfg.hello()
		if err != nil {
			s.refuse(&refusal{ReasonPolicy, "the listening node's own hello is invalid"})
			return nil, err
		}
		v, err := agree(local, m, l.cfg.PeerNode)
		if err != nil {
			return nil, s.refuse(err)
		}
		if err := s.send(local); err != nil {
			return nil, err
		}
		j, err := recvAs[*join](s)
		if err != nil {
			return nil, err
		}
		session := sessionID(l.cfg.Secret, &n.client, &n.server)
		if j.session != session {
			return nil, s.refuse(fmt.Errorf("%w: data connection joins session %v, its handshake made %v", ErrUnexpected, j.session, session))
		}
		if err := s.finish(); err != nil {
			return nil, err
		}
		// A newer attempt by the peer replaces an older one.
		l.dropPending()
		l.pending = &pending{conn: c, peer: m, version: v, session: session,
			deadline: time.Now().Add(l.cfg.HandshakeTimeout)}
		return nil, nil

	case *join:
		p := l.pending
		if p == nil || p.session != m.session {
			return nil, s.refuse(&refusal{ReasonNoSession, fmt.Sprintf("no data connection waits for session %v", m.session)})
		}
		if err := s.send(&join{session: p.session}); err != nil {
			return nil, err
		}
		if err := s.finish(); err != nil {
			return nil, err
		}
		l.pending = nil
		return newLink(p.conn, c, p.peer, p.version, p.session, &l.cfg), nil

	default:
		return nil, s.refuse(fmt.Errorf("%w: %v opening a connection", ErrUnexpected, m.Type()))
	}
}

func (l *Listener) dropPending() {
	if l.pending != nil {
		l.pending.conn.Close()
		l.pending = nil
	}
}

// Close stops listening, aborts a handshake under way and drops a data
// connection waiting for its meta connection. Links already returned stay
// up.
func (l *Listener) Close() error {
	l.cancel()
	err := l.ln.Close()
	l.mu.Lock()
	l.dropPending()
	l.mu.Unlock()
	if errors.Is(err, net.ErrClosed) {
		return nil // closed before
	}
	return err
}

// Pipe sets up a link over in-memory connections (net.Pipe), the full
// handshake included: client dials, server accepts. For tests of code
// that drives a link. A net.Pipe has no buffer: a Send blocks until the
// other end's Recv takes the frame.
func Pipe(ctx context.Context, client, server Config) (*Link, *Link, error) {
	server, err := server.prepare()
	if err != nil {
		return nil, nil, err
	}
	ml := &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
	client.dial = ml.dial
	l := newListener(ml, server)
	type result struct {
		link *Link
		err  error
	}
	accepted := make(chan result, 1)
	go func() {
		link, err := l.Accept(ctx)
		accepted <- result{link, err}
	}()
	cl, err := Dial(ctx, "pipe", client)
	if err != nil {
		l.Close() // the server may be waiting for a meta connection
	}
	r := <-accepted
	l.Close()
	if err == nil && r.err != nil {
		cl.Close()
		err = r.err
	}
	if err != nil {
		if r.link != nil {
			r.link.Close()
		}
		return nil, nil, err
	}
	return cl, r.link, nil
}

// memListener is a net.Listener of net.Pipe connections.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (m *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *memListener) Close() error {
	m.once.Do(func() { close(m.done) })
	return nil
}

func (m *memListener) Addr() net.Addr { return pipeAddr{} }

func (m *memListener) dial(ctx context.Context, _ string) (net.Conn, error) {
	a, b := net.Pipe()
	select {
	case m.conns <- b:
		return a, nil
	case <-m.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
