// Package membership runs hactl's cluster membership on the cluster
// network: hashicorp/memberlist for who is in the cluster, plus a direct
// heartbeat from every node to every other that carries the node's state
// blob (VRRP roles, volume roles and disk states, group states).
//
// The heartbeat, not memberlist's failure detector, is the fast liveness
// signal: Member.LastHeard advances only on packets from the node itself,
// while memberlist takes seconds to declare a node dead. The orchestrator
// uses LastHeard as the veto on promotion ("the master's adverts stopped,
// but it is still heard here") and memberlist's Status as the slower,
// gossip-confirmed view.
//
// Every packet and stream is encrypted and authenticated with a key
// derived from the cluster secret; plaintext and wrong-key traffic is
// dropped. See docs/membership.md for the wire format and timings.
package membership

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/zap"

	"github.com/hactl/hactl/internal/logging"
)

// Defaults for Config fields left zero.
const (
	// DefaultPort is memberlist's customary port, used for both UDP
	// (probes, gossip, heartbeats) and TCP (join and push/pull state
	// sync).
	DefaultPort = 7946
	// DefaultHeartbeat is how often each node sends its heartbeat.
	DefaultHeartbeat = 200 * time.Millisecond
	// defaultSilentHeartbeats times the heartbeat is DefaultSilentAfter:
	// three heartbeats in a row lost on a healthy LAN is rare, and a
	// silent peer only opens the gate when it is silent on every path.
	defaultSilentHeartbeats = 3
)

// Bounds of the background work and of Stop.
const (
	joinMinBackoff = 250 * time.Millisecond
	joinMaxBackoff = 5 * time.Second
	// leaveTimeout bounds how long Stop waits for the leave message to be
	// gossiped; with a 100 ms gossip interval it goes out at once.
	leaveTimeout = time.Second
)

// Config configures Start.
type Config struct {
	// Node is this node's name, unique in the cluster. Required.
	Node string
	// Bind is this node's cluster network address; memberlist listens and
	// advertises there. Required.
	Bind netip.Addr
	// Port is the UDP and TCP port; 0 means DefaultPort. All nodes use the
	// same port in practice, since Peers come from the cluster file.
	Port int
	// Peers are the other nodes' addresses. Start never waits for them:
	// joining is retried in the background, with backoff, for every peer
	// that is not a live member, for as long as the membership runs.
	Peers []netip.AddrPort
	// Secret is the content of the cluster secret file. Required. See
	// docs/membership.md for how the key is derived.
	Secret []byte
	// Witness marks a diskless quorum witness; other nodes see it in
	// Member.Witness.
	Witness bool
	// Heartbeat is the heartbeat interval; 0 means DefaultHeartbeat.
	Heartbeat time.Duration
	// SilentAfter is how long without a heartbeat makes a peer Silent
	// (and wakes Changes); 0 means three heartbeats.
	SilentAfter time.Duration
	// Log receives membership and memberlist events; nil discards them.
	Log *zap.Logger
	// Now is the clock for LastHeard and silence; nil means time.Now. It
	// should return monotonic readings, as time.Now does.
	Now func() time.Time

	// dial, when set, opens memberlist's outgoing TCP connections (join,
	// push/pull, fallback pings). Tests use it to dial from inside a
	// node's network namespace: the listeners are bound once in Start,
	// but these sockets are created later, on whatever thread runs.
	dial func(addr string, timeout time.Duration) (net.Conn, error)
}

// Membership is a running cluster membership. Its methods are safe for
// concurrent use.
type Membership struct {
	cfg     Config
	log     *zap.Logger
	now     func() time.Time
	self    netip.AddrPort
	boot    uint64
	ml      *memberlist.Memberlist
	changes chan struct{}
	kick    chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	mu      sync.Mutex
	table   *table
	state   []byte
	seq     uint64
	stopped bool
	dropped uint64 // heartbeats refused, for the debug log
}

// Start creates the memberlist listeners on cfg.Bind, starts the heartbeat
// and begins joining cfg.Peers in the background. The sockets are opened
// before Start returns, in the calling thread's network namespace.
func Start(cfg Config) (*Membership, error) {
	switch {
	case cfg.Node == "":
		return nil, errors.New("membership: no node name")
	case len(cfg.Node) > maxNameLen:
		return nil, fmt.Errorf("membership: node name longer than %d bytes", maxNameLen)
	case !cfg.Bind.IsValid():
		return nil, errors.New("membership: no bind address")
	case len(cfg.Secret) == 0:
		return nil, errors.New("membership: empty cluster secret")
	case cfg.Port < 0 || cfg.Port > 65535:
		return nil, fmt.Errorf("membership: port %d out of range", cfg.Port)
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.SilentAfter <= 0 {
		cfg.SilentAfter = defaultSilentHeartbeats * cfg.Heartbeat
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("membership: boot id: %w", err)
	}
	m := &Membership{
		cfg:     cfg,
		log:     cfg.Log.Named("membership"),
		now:     cfg.Now,
		self:    netip.AddrPortFrom(cfg.Bind.Unmap(), uint16(cfg.Port)),
		boot:    binary.BigEndian.Uint64(b[:]),
		changes: make(chan struct{}, 1),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		table:   newTable(cfg.Node, cfg.SilentAfter),
	}
	mlc, err := m.memberlistConfig()
	if err != nil {
		return nil, err
	}
	ml, err := memberlist.Create(mlc)
	if err != nil {
		mlc.Transport.Shutdown()
		return nil, fmt.Errorf("membership: start memberlist on %s: %w", m.self, err)
	}
	m.ml = ml
	m.log.Info("membership started", zap.String(logging.KeyEvent, "start"),
		zap.String(logging.KeyNode, cfg.Node), zap.Stringer("addr", m.self),
		zap.Bool("witness", cfg.Witness), zap.Duration("heartbeat", cfg.Heartbeat))
	m.wg.Add(2)
	go m.heartbeatLoop()
	go m.joinLoop()
	return m, nil
}

// memberlistConfig tunes memberlist for a LAN of two to a handful of
// nodes. Faster than DefaultLANConfig, because hactl's clusters are small
// and local; the heartbeat stays the fast signal, these numbers only make
// memberlist's own verdict come in seconds instead of tens of seconds.
func (m *Membership) memberlistConfig() (*memberlist.Config, error) {
	mlLog := log.New(logWriter{m.log.Named("memberlist")}, "", 0)
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{m.cfg.Bind.String()},
		BindPort:  m.cfg.Port,
		Logger:    mlLog,
	})
	if err != nil {
		return nil, fmt.Errorf("membership: listen on %s: %w", m.self, err)
	}
	c := memberlist.DefaultLANConfig()
	c.Name = m.cfg.Node
	c.BindAddr = m.cfg.Bind.String()
	c.BindPort = m.cfg.Port
	c.AdvertiseAddr = m.cfg.Bind.String()
	c.AdvertisePort = m.cfg.Port
	c.Transport = nt
	if m.cfg.dial != nil {
		c.Transport = &dialTransport{NetTransport: nt, dial: m.cfg.dial}
	}
	c.Logger = mlLog
	c.Delegate = delegate{m}
	c.Events = events{m}

	// Encryption: one key, required both ways. With GossipVerifyIncoming
	// memberlist drops any packet or stream it cannot decrypt, plaintext
	// included.
	kr, err := memberlist.NewKeyring(nil, deriveKey(m.cfg.Secret))
	if err != nil {
		nt.Shutdown()
		return nil, fmt.Errorf("membership: keyring: %w", err)
	}
	c.Keyring = kr
	c.GossipVerifyIncoming = true
	c.GossipVerifyOutgoing = true

	// Failure detection (defaults in parentheses). A peer is probed every
	// ProbeInterval round-robin; a missed ack makes it suspect, and with
	// fewer than 10 nodes a suspect is declared dead after
	// SuspicionMult × ProbeInterval. Dead is thus reported about 3–4 s
	// after a node stops, against 6–8 s with the defaults.
	c.ProbeInterval = 500 * time.Millisecond  // (1 s)
	c.ProbeTimeout = 250 * time.Millisecond   // (500 ms) LAN RTT is well under 1 ms; margin for a loaded host
	c.SuspicionMult = 4                       // (4) suspect → dead after 2 s
	c.GossipInterval = 100 * time.Millisecond // (200 ms) spreads alive/dead/leave faster
	c.PushPullInterval = 15 * time.Second     // (30 s) full state sync heals missed gossip sooner
	c.TCPTimeout = 2 * time.Second            // (10 s) bounds a join or push/pull to a dead peer
	return c, nil
}

// Stop stops the heartbeat, tells every peer it is leaving, announces
// memberlist's graceful leave (waiting at most
// about a second for it to be gossiped) and closes the sockets. Changes is
// closed afterwards. Stop may block for up to TCP timeout (2 s) more while
// a join attempt in flight gives up. It is safe to call more than once.
func (m *Membership) Stop() {
	m.once.Do(func() {
		close(m.stop)
		m.wg.Wait()
		// Twice: a lost leave only makes peers report "dead" rather than
		// "left", but costs nothing to avoid.
		m.send(kindLeave)
		m.send(kindLeave)
		if err := m.ml.Leave(leaveTimeout); err != nil {
			m.log.Warn("leave not confirmed", zap.String(logging.KeyEvent, "leave"), zap.Error(err))
		}
		if err := m.ml.Shutdown(); err != nil {
			m.log.Warn("memberlist shutdown", zap.String(logging.KeyEvent, "stop"), zap.Error(err))
		}
		m.mu.Lock()
		m.stopped = true
		close(m.changes)
		m.mu.Unlock()
		m.log.Info("membership stopped", zap.String(logging.KeyEvent, "stop"))
	})
}

// SetState sets the blob this node publishes. It is sent to every peer
// at once if it changed, and with every heartbeat. The slice is copied.
func (m *Membership) SetState(state []byte) error {
	if len(state) > MaxStateSize {
		return fmt.Errorf("membership: state of %d bytes exceeds %d", len(state), MaxStateSize)
	}
	m.mu.Lock()
	same := bytes.Equal(m.state, state)
	if !same {
		m.state = append([]byte{}, state...)
	}
	m.mu.Unlock()
	if !same {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// View returns every other node this node knows of, sorted by name.
func (m *Membership) View() []Member {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.table.view(now)
}

// Changes receives a value (coalesced: at most one pending) whenever a
// node appears, its state blob, status, address or witness flag changes,
// it restarts, or it becomes silent or is heard again. Read View after
// each. The channel is closed by Stop.
func (m *Membership) Changes() <-chan struct{} { return m.changes }

// notify wakes the consumer; m.mu must be held.
func (m *Membership) notify() {
	if m.stopped {
		return
	}
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

func (m *Membership) heartbeatLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.Heartbeat)
	defer t.Stop()
	for {
		m.beat()
		select {
		case <-m.stop:
			return
		case <-t.C:
		case <-m.kick:
		}
	}
}

// beat sends one heartbeat to every peer and re-evaluates silence.
func (m *Membership) beat() {
	now := m.now()
	m.mu.Lock()
	if m.table.tick(now) {
		m.notify()
	}
	m.mu.Unlock()
	m.send(kindHeartbeat)
}

// send sends a message of kind with the current state to every peer: the
// configured ones and every address memberlist reported, whatever its
// verdict, so that LastHeard never depends on memberlist's failure
// detector.
func (m *Membership) send(kind byte) {
	m.mu.Lock()
	m.seq++
	h := message{Kind: kind, Boot: m.boot, Seq: m.seq, Node: m.cfg.Node}
	if kind == kindHeartbeat {
		h.State = m.state
	}
	msg, err := appendMessage(nil, h)
	dst := append(m.table.addrs(), m.cfg.Peers...)
	m.mu.Unlock()
	if err != nil { // Start and SetState bound every field
		m.log.Error("encode message", zap.String(logging.KeyEvent, "heartbeat"), zap.Error(err))
		return
	}
	seen := map[netip.AddrPort]bool{m.self: true}
	for _, a := range dst {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if seen[a] {
			continue
		}
		seen[a] = true
		// Send errors are local (no route, buffer full); the peer's
		// silence is what reports them.
		if err := m.ml.SendToAddress(memberlist.Address{Addr: a.String()}, msg); err != nil {
			m.log.Debug("message not sent", zap.String(logging.KeyEvent, "heartbeat"),
				zap.Stringer("peer_addr", a), zap.Error(err))
		}
	}
}

// receive handles a user message from memberlist. Only nodes holding the
// cluster key can get one here.
func (m *Membership) receive(b []byte) {
	h, err := decodeMessage(b)
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.dropped++
		m.log.Debug("message refused", zap.String(logging.KeyEvent, "heartbeat"),
			zap.String(logging.KeyReason, err.Error()), zap.Uint64("refused", m.dropped))
		return
	}
	if _, changed := m.table.message(h, now); changed {
		m.notify()
		if h.Kind == kindLeave {
			m.log.Info("member leaving", zap.String(logging.KeyEvent, "member"), zap.String(logging.KeyNode, h.Node))
		}
	}
}

// memberEvent records a memberlist callback. It runs under memberlist's
// node lock, so it must not call back into memberlist.
func (m *Membership) memberEvent(n *memberlist.Node, st Status) {
	witness, ok := decodeMeta(n.Meta)
	ip, _ := netip.AddrFromSlice(n.Addr)
	addr := netip.AddrPortFrom(ip.Unmap(), n.Port)
	m.mu.Lock()
	changed := m.table.member(n.Name, addr, witness, st)
	if changed {
		m.notify()
	}
	m.mu.Unlock()
	if !changed || n.Name == m.cfg.Node {
		return
	}
	fields := []zap.Field{zap.String(logging.KeyEvent, "member"), zap.String(logging.KeyNode, n.Name),
		zap.Stringer("peer_addr", addr), zap.Stringer("status", st)}
	if !ok {
		fields = append(fields, zap.String(logging.KeyReason, "unreadable node metadata"))
	}
	lvl := zap.InfoLevel
	if st == StatusDead {
		lvl = zap.WarnLevel
	}
	m.log.Log(lvl, "member "+st.String(), fields...)
}

// joinLoop keeps joining every configured peer that is not a live member.
// Besides the first join this heals long partitions: memberlist stops
// gossiping to a dead node after GossipToTheDeadTime, and without a new
// join two halves that both declared each other dead would stay apart.
func (m *Membership) joinLoop() {
	defer m.wg.Done()
	backoff := joinMinBackoff
	for {
		m.mu.Lock()
		var missing []netip.AddrPort
		for _, p := range m.cfg.Peers {
			if !m.table.aliveAt(netip.AddrPortFrom(p.Addr().Unmap(), p.Port())) {
				missing = append(missing, p)
			}
		}
		m.mu.Unlock()

		wait := joinMaxBackoff
		if len(missing) > 0 {
			if m.join(missing) {
				backoff = joinMinBackoff
				wait = joinMinBackoff // look again soon for the rest
			} else {
				wait = backoff
				backoff = min(2*backoff, joinMaxBackoff)
			}
		} else {
			backoff = joinMinBackoff
		}
		select {
		case <-m.stop:
			return
		case <-time.After(wait):
		}
	}
}

// join tries each missing peer in turn, one Join call per address so that
// Stop never waits behind more than one TCP timeout.
func (m *Membership) join(peers []netip.AddrPort) (any bool) {
	for _, p := range peers {
		select {
		case <-m.stop:
			return any
		default:
		}
		_, err := m.ml.Join([]string{net.JoinHostPort(p.Addr().String(), strconv.Itoa(int(p.Port())))})
		if err != nil {
			m.log.Debug("join failed", zap.String(logging.KeyEvent, "join"),
				zap.Stringer("peer_addr", p), zap.Error(err))
			continue
		}
		m.log.Debug("joined", zap.String(logging.KeyEvent, "join"), zap.Stringer("peer_addr", p))
		any = true
	}
	return any
}
