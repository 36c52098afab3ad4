package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/cluster/membership"
	"github.com/hactl/hactl/internal/logging"
)

// publishEvery is how often this node's state is handed to the membership
// (it travels with every heartbeat; the membership sends it on).
const publishEvery = 250 * time.Millisecond

// memberSet runs the cluster membership: the second path to every peer
// (the veto against promoting while the peer lives) and the carrier of
// each node's state for a cluster-wide status.
type memberSet struct {
	log  *zap.Logger
	self string

	mu     sync.Mutex
	m      *membership.Membership
	failed string
	spec   string // what m was started with; a reload that changes it restarts
}

func newMemberSet(log *zap.Logger, self string) *memberSet {
	return &memberSet{log: log, self: self}
}

// apply starts (or restarts, when the addresses or secret changed) the
// membership for c.
func (s *memberSet) apply(c *config.Cluster) {
	self, ok := c.Node(s.self)
	if !ok {
		return
	}
	secret, err := os.ReadFile(c.SecretFile)
	if err != nil {
		s.setFailed(fmt.Sprintf("reading the cluster secret: %v", err))
		return
	}
	secret = bytes.TrimSpace(secret)
	// Heartbeats every 100 ms, silent after 400 ms: the membership is one
	// of the paths the gate needs silent before a takeover, so its
	// silence should not be what a failover waits for.
	cfg := membership.Config{Node: s.self, Bind: self.Address, Secret: secret, Witness: self.Witness, Log: s.log,
		Heartbeat: 100 * time.Millisecond, SilentAfter: 400 * time.Millisecond}
	for _, n := range c.Nodes {
		if n.Name != s.self {
			cfg.Peers = append(cfg.Peers, netip.AddrPortFrom(n.Address, membership.DefaultPort))
		}
	}
	spec := fmt.Sprintf("%v|%v|%v|%x", cfg.Bind, cfg.Peers, cfg.Witness, secret)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m != nil && s.spec == spec {
		return
	}
	if s.m != nil {
		s.m.Stop()
		s.m = nil
	}
	m, err := membership.Start(cfg)
	if err != nil {
		if s.failed != err.Error() {
			s.log.Error("cluster membership cannot start; retrying", zap.String(logging.KeyEvent, "membership-failed"), zap.Error(err))
		}
		s.failed, s.spec = err.Error(), ""
		return
	}
	s.m, s.spec, s.failed = m, spec, ""
	s.log.Info("cluster membership started", zap.String(logging.KeyEvent, "membership-start"),
		zap.String("bind", netip.AddrPortFrom(cfg.Bind, membership.DefaultPort).String()))
}

func (s *memberSet) setFailed(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != why {
		s.log.Error("cluster membership cannot start", zap.String(logging.KeyEvent, "membership-failed"), zap.String(logging.KeyReason, why))
	}
	s.failed = why
}

func (s *memberSet) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m != nil {
		s.m.Stop()
		s.m = nil
	}
}

func (s *memberSet) view() []membership.Member {
	s.mu.Lock()
	m := s.m
	s.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.View()
}

// seen reports whether node is heard on the cluster network now.
func (s *memberSet) seen(node string) bool {
	for _, m := range s.view() {
		if m.Name == node {
			return m.Status == membership.StatusAlive && !m.Silent
		}
	}
	return false
}

// publish hands this node's state to the membership.
func (s *memberSet) publish(ns api.NodeState) {
	s.mu.Lock()
	m := s.m
	s.mu.Unlock()
	if m == nil {
		return
	}
	b, err := json.Marshal(ns)
	if err == nil {
		err = m.SetState(b)
	}
	if err != nil {
		s.log.Warn("publishing this node's state", zap.Error(err))
	}
}

// summarize is what a node tells the others about itself: small enough
// for a heartbeat.
func summarize(st api.Status) api.NodeState {
	ns := api.NodeState{VRRP: map[string]string{}, Volumes: map[string]string{}, Groups: map[string]string{}}
	for _, v := range st.VRRP {
		if v.State != api.StateNotMember {
			ns.VRRP[v.Name] = v.State
		}
	}
	for _, v := range st.Volumes {
		if v.Disk != "" {
			ns.Volumes[v.Name] = v.Role + "/" + v.DiskState + "/" + v.Connection
		}
	}
	for _, g := range st.Groups {
		if g.State != api.StateNotMember {
			s := g.State
			if g.Held != "" {
				s += " (held: " + g.Held + ")"
			}
			ns.Groups[g.Name] = s
		}
	}
	return ns
}

// fill adds what the membership knows of every node to st.
func (s *memberSet) fill(st *api.Status, now time.Time) {
	s.mu.Lock()
	failed := s.failed
	running := s.m != nil
	s.mu.Unlock()
	byName := map[string]membership.Member{}
	for _, m := range s.view() {
		byName[m.Name] = m
	}
	for i := range st.Nodes {
		n := &st.Nodes[i]
		switch {
		case n.Self && running:
			n.Membership = "self"
			continue
		case n.Self:
			n.Membership = "not running: " + failed
			continue
		}
		m, ok := byName[n.Name]
		if !ok {
			n.Membership = "unknown"
			continue
		}
		n.Membership = m.Status.String()
		if m.Silent && m.Status == membership.StatusAlive {
			n.Membership = "silent"
		}
		if !m.LastHeard.IsZero() {
			ms := now.Sub(m.LastHeard).Milliseconds()
			n.LastHeardMS = &ms
		}
		var ns api.NodeState
		if len(m.State) > 0 && json.Unmarshal(m.State, &ns) == nil {
			n.State = &ns
		}
	}
}

// fillPaths says, for every other node, how this node hears it on each
// path: the membership, each volume's replication link, each VRRP
// instance's adverts. The gate promotes only when all are silent.
func (a *Agent) fillPaths(st *api.Status) {
	conf, self := a.snapshot()
	now := a.opts.Now()
	byAddr := map[string]string{}
	for _, n := range conf.Nodes {
		byAddr[n.Address.String()] = n.Name
		for _, v := range conf.VRRP {
			if src, ok := v.UnicastSource[n.Name]; ok {
				byAddr[src.String()] = n.Name
			}
		}
	}
	for i := range st.Nodes {
		n := &st.Nodes[i]
		if n.Name == self {
			continue
		}
		paths := map[string]string{}
		if n.Membership != "" {
			p := n.Membership
			if n.LastHeardMS != nil {
				p += fmt.Sprintf(", heard %d ms ago", *n.LastHeardMS)
			}
			paths["membership"] = p
		}
		for _, v := range st.Volumes {
			if v.Peer != n.Name {
				continue
			}
			switch v.Connection {
			case "Connected", "SyncSource", "SyncTarget":
				paths["replication "+v.Name] = "up (" + v.Connection + ")"
			default:
				paths["replication "+v.Name] = "down (" + v.Connection + ")"
			}
		}
		for _, v := range conf.VRRP {
			in := a.vrrp.instance(v.Name)
			if in == nil || v.Priority[n.Name] == 0 {
				continue
			}
			rs := in.Status()
			switch {
			case byAddr[rs.LastAdvertFrom] == n.Name && now.Sub(rs.LastAdvertAt) < time.Second:
				paths["vrrp "+v.Name] = fmt.Sprintf("advert %d ms ago", now.Sub(rs.LastAdvertAt).Milliseconds())
			case rs.State == "master":
				paths["vrrp "+v.Name] = "silent (this node is Master)"
			default:
				paths["vrrp "+v.Name] = "silent"
			}
		}
		if len(paths) > 0 {
			n.Paths = paths
		}
	}
}
