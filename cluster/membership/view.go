package membership

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Status is memberlist's opinion of a member, as reported by its event
// callbacks.
//
// memberlist also has a "suspect" state, but does not expose it: the
// State field of the Nodes it hands out is shadowed by its internal
// nodeState and never updated, and its event callbacks fire only on join,
// update and dead/leave. A suspect member therefore shows as alive here;
// LastHeard is the early signal anyway.
type Status uint8

const (
	// StatusUnknown: heard from, but memberlist has not reported the node
	// (yet).
	StatusUnknown Status = iota
	// StatusAlive: memberlist considers the node a live member.
	StatusAlive
	// StatusDead: memberlist's failure detector declared the node dead.
	StatusDead
	// StatusLeft: the node announced a graceful leave (Stop). memberlist
	// reports a leave like a failure, so this rests on the node's own
	// leave message; if that is lost, the node shows as dead.
	StatusLeft
)

func (s Status) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusDead:
		return "dead"
	case StatusLeft:
		return "left"
	default:
		return "unknown"
	}
}

// Member is one other node as this node sees it.
type Member struct {
	Name string
	// Addr is the node's memberlist address; invalid while memberlist has
	// not reported the node.
	Addr    netip.AddrPort
	Witness bool
	Status  Status
	// LastHeard is when the latest accepted heartbeat from the node
	// arrived, on this node's clock (zero: never). It advances only on
	// packets from the node itself, never on gossip about it.
	LastHeard time.Time
	// Silent is true when nothing was heard for Config.SilentAfter, or
	// never.
	Silent bool
	// Boot identifies the node's current run; it changes when the node
	// restarts (0: never heard).
	Boot uint64
	// State is the latest state blob the node published; nil until heard.
	// The slice is a copy the caller may keep.
	State []byte
}

// retiredBoots is how many superseded boots of a peer are remembered so
// that a late packet of a previous run cannot roll its state back.
const retiredBoots = 4

type peer struct {
	name    string
	addr    netip.AddrPort
	witness bool
	status  Status

	heard     bool
	lastHeard time.Time
	silent    bool // as of the last tick, for change detection
	boot, seq uint64
	retired   []uint64
	state     []byte
	left      bool // the node announced its leave (this boot)
}

// table is the pure core: what is known about every other node. It does
// no I/O and reads no clock; every method that needs the time takes it.
// It is not safe for concurrent use.
type table struct {
	self        string
	silentAfter time.Duration
	peers       map[string]*peer
}

func newTable(self string, silentAfter time.Duration) *table {
	return &table{self: self, silentAfter: silentAfter, peers: map[string]*peer{}}
}

func (t *table) get(name string) *peer {
	p, ok := t.peers[name]
	if !ok {
		p = &peer{name: name, silent: true}
		t.peers[name] = p
	}
	return p
}

// accept applies the ordering rules every message from a node passes:
// not our own name; within a boot, a higher sequence number; a new boot is
// a restart, but a boot already superseded is a late packet of an earlier
// run. It returns the node's entry, creating it, and whether the boot is
// new.
func (t *table) accept(h message) (p *peer, restarted, ok bool) {
	if h.Node == t.self {
		return nil, false, false
	}
	p = t.get(h.Node)
	if p.seq == 0 { // nothing accepted yet (valid messages have seq ≥ 1)
		p.boot, p.seq = h.Boot, h.Seq
		return p, false, true
	}
	switch {
	case h.Boot == p.boot:
		if h.Seq <= p.seq {
			return p, false, false
		}
	case slices.Contains(p.retired, h.Boot):
		return p, false, false
	default:
		// Boots are random, so there is no order between them: the one
		// seen last wins.
		p.retired = append(p.retired, p.boot)
		if len(p.retired) > retiredBoots {
			p.retired = p.retired[1:]
		}
		restarted = true
	}
	p.boot, p.seq = h.Boot, h.Seq
	return p, restarted, true
}

// message records a message received at now. It reports whether the
// message was accepted and whether anything a consumer cares about
// changed: a new node, a new state blob, a restart, the node becoming
// heard again, or its leave.
func (t *table) message(h message, now time.Time) (accepted, changed bool) {
	_, known := t.peers[h.Node]
	p, restarted, ok := t.accept(h)
	if !ok {
		return false, false
	}
	changed = !known || restarted
	if restarted && p.left {
		p.left = false
		if p.status == StatusLeft { // until memberlist says otherwise
			p.status = StatusUnknown
		}
	}
	if h.Kind == kindLeave {
		// Authenticated by the cluster key and ordered like heartbeats,
		// so only the node itself can say it left.
		if !p.left || p.status != StatusLeft {
			changed = true
		}
		p.left = true
		p.status = StatusLeft
		return true, changed
	}
	if newState := !bytes.Equal(p.state, h.State); newState || !p.heard {
		p.state = append([]byte{}, h.State...) // h.State aliases a reused buffer
		changed = true
	}
	if p.silent {
		changed = true
	}
	p.heard = true
	p.lastHeard = now
	p.silent = false
	return true, changed
}

// member records what memberlist reported about a node and whether that
// changed anything.
func (t *table) member(name string, addr netip.AddrPort, witness bool, st Status) (changed bool) {
	if name == t.self {
		return false
	}
	p, known := t.peers[name]
	if !known {
		p = t.get(name)
	}
	switch {
	case st == StatusDead && p.left:
		// memberlist reports a graceful leave as a failure; the node
		// told us it was leaving.
		st = StatusLeft
	case st == StatusAlive:
		p.left = false
	}
	changed = !known || p.addr != addr || p.witness != witness || p.status != st
	p.addr, p.witness, p.status = addr, witness, st
	return changed
}

// tick re-evaluates silence at now and reports whether any node became
// silent. (Becoming heard again is reported by heartbeat.)
func (t *table) tick(now time.Time) (changed bool) {
	for _, p := range t.peers {
		s := t.isSilent(p, now)
		if s != p.silent {
			p.silent = s
			changed = true
		}
	}
	return changed
}

func (t *table) isSilent(p *peer, now time.Time) bool {
	return !p.heard || now.Sub(p.lastHeard) > t.silentAfter
}

// view returns every known node but this one, sorted by name.
func (t *table) view(now time.Time) []Member {
	out := make([]Member, 0, len(t.peers))
	for _, p := range t.peers {
		m := Member{
			Name:    p.name,
			Addr:    p.addr,
			Witness: p.witness,
			Status:  p.status,
			Silent:  t.isSilent(p, now),
		}
		if p.heard {
			m.LastHeard = p.lastHeard
			m.Boot = p.boot
			m.State = append([]byte{}, p.state...)
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// aliveAt reports whether memberlist has a live member at addr.
func (t *table) aliveAt(addr netip.AddrPort) bool {
	for _, p := range t.peers {
		if p.addr == addr && p.status == StatusAlive {
			return true
		}
	}
	return false
}

// addrs returns the known addresses of the other nodes.
func (t *table) addrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range t.peers {
		if p.addr.IsValid() {
			out = append(out, p.addr)
		}
	}
	return out
}
