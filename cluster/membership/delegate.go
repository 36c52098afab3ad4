package membership

import (
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate is memberlist's hook into this node: it publishes the node
// metadata and hands over user messages (heartbeats). State travels only
// in heartbeats, not in gossip or push/pull.
type delegate struct{ m *Membership }

func (d delegate) NodeMeta(limit int) []byte {
	b := encodeMeta(d.m.cfg.Witness)
	if len(b) > limit {
		return nil
	}
	return b
}

// NotifyMsg runs on memberlist's packet handler goroutine; b is reused
// after it returns, which receive allows for.
func (d delegate) NotifyMsg(b []byte) { d.m.receive(b) }

func (delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (delegate) LocalState(join bool) []byte                { return nil }
func (delegate) MergeRemoteState(buf []byte, join bool)     {}

// events turns memberlist's membership callbacks into Status changes.
type events struct{ m *Membership }

func (e events) NotifyJoin(n *memberlist.Node)   { e.m.memberEvent(n, StatusAlive) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.m.memberEvent(n, StatusAlive) }

func (e events) NotifyLeave(n *memberlist.Node) {
	// memberlist reports both a failure and a graceful leave here; the
	// node's state says which.
	st := StatusDead
	if n.State == memberlist.StateLeft {
		st = StatusLeft
	}
	e.m.memberEvent(n, st)
}

// dialTransport replaces NetTransport's outgoing TCP dials.
type dialTransport struct {
	*memberlist.NetTransport
	dial func(addr string, timeout time.Duration) (net.Conn, error)
}

func (t *dialTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.dial(addr, timeout)
}

func (t *dialTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.dial(a.Addr, timeout)
}
