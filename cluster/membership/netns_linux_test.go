package membership

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hactl/hactl/internal/netnstest"
)

// The whole test binary runs in a private network namespace (netnstest);
// it plays the switch: a bridge, and one veth pair per node whose other
// end lives in the node's own namespace. The node namespaces are unnamed,
// held only by file descriptors and sockets, so even a crashed run leaves
// nothing behind; interface names still carry the pid so that two runs in
// the same namespace could not clash. Addresses come from 192.0.2.0/24
// (TEST-NET-1) only.

// Generous bounds: they only keep a broken test from hanging.
const (
	waitConverge = 30 * time.Second
	waitDead     = 45 * time.Second
)

type testLab struct {
	t      *testing.T
	sw     *netlink.Handle // the switch namespace (this process's)
	bridge netlink.Link
	suffix string
}

type testNode struct {
	name    string
	ns      netns.NsHandle
	addr    netip.Addr
	swEnd   string // veth end on the bridge
	witness bool
	logs    *observer.ObservedLogs
	logger  *zap.Logger
}

func newTestLab(t *testing.T) *testLab {
	t.Helper()
	netnstest.Require(t)
	sw, err := netlink.NewHandle()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sw.Close)
	l := &testLab{t: t, sw: sw, suffix: fmt.Sprintf("%05x", os.Getpid()&0xfffff)}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "mbr" + l.suffix}}
	if err := sw.LinkAdd(br); err != nil {
		t.Fatalf("add bridge: %v", err)
	}
	t.Cleanup(func() { sw.LinkDel(br) })
	if l.bridge, err = sw.LinkByName(br.Name); err != nil {
		t.Fatal(err)
	}
	if err := sw.LinkSetUp(l.bridge); err != nil {
		t.Fatal(err)
	}
	return l
}

// addNode creates a namespace with one interface on the bridge holding
// addr/24.
func (l *testLab) addNode(name, addr string) *testNode {
	t := l.t
	t.Helper()
	n := &testNode{name: name, addr: netip.MustParseAddr(addr), swEnd: "ms" + l.suffix + name}
	if !netip.MustParsePrefix("192.0.2.0/24").Contains(n.addr) {
		t.Fatalf("test address %s outside 192.0.2.0/24", addr)
	}

	// netns.New moves the calling thread into the new namespace; move it
	// back, or let it die with the goroutine (t.Fatal while locked).
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	ns, err := netns.New()
	if serr := netns.Set(orig); serr != nil {
		t.Fatalf("restore network namespace: %v", serr)
	}
	orig.Close()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	n.ns = ns
	t.Cleanup(func() { ns.Close() })

	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: n.swEnd},
		PeerName:      "mn" + l.suffix + name,
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := l.sw.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	t.Cleanup(func() { l.sw.LinkDel(veth) })
	end, err := l.sw.LinkByName(n.swEnd)
	if err == nil {
		err = l.sw.LinkSetMaster(end, l.bridge)
	}
	if err == nil {
		err = l.sw.LinkSetUp(end)
	}
	if err != nil {
		t.Fatalf("attach %s: %v", n.swEnd, err)
	}

	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up: %v", err)
	}
	in, err := h.LinkByName(veth.PeerName)
	if err != nil {
		t.Fatal(err)
	}
	ipn := &net.IPNet{IP: n.addr.AsSlice(), Mask: net.CIDRMask(24, 32)}
	if err := h.AddrAdd(in, &netlink.Addr{IPNet: ipn}); err != nil {
		t.Fatalf("add address: %v", err)
	}
	if err := h.LinkSetUp(in); err != nil {
		t.Fatal(err)
	}

	core, logs := observer.New(zapcore.DebugLevel)
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	shown := zapcore.NewCore(enc, zapcore.AddSync(newTestWriter(t)), zapcore.InfoLevel)
	n.logs = logs
	n.logger = zap.New(zapcore.NewTee(core, shown)).With(zap.String("test_node", name))
	return n
}

// testWriter passes log lines to t.Log until the test's cleanup. memberlist
// does not wait for all its goroutines in Shutdown (a fallback TCP ping may
// still be running), and t.Log after the test ends panics.
type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func newTestWriter(t *testing.T) *testWriter {
	w := &testWriter{t: t}
	// Registered before the node is started, so it runs after Stop.
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// setLink pulls or plugs the node's cable.
func (l *testLab) setLink(n *testNode, up bool) {
	l.t.Helper()
	end, err := l.sw.LinkByName(n.swEnd)
	if err == nil {
		if up {
			err = l.sw.LinkSetUp(end)
		} else {
			err = l.sw.LinkSetDown(end)
		}
	}
	if err != nil {
		l.t.Fatalf("link %s up=%v: %v", n.swEnd, up, err)
	}
}

// inNetns runs f on a thread inside ns. If the thread cannot be moved
// back it is never unlocked, so the runtime discards it with its goroutine
// rather than reuse it in the wrong namespace.
func inNetns(ns netns.NsHandle, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		panic(fmt.Sprintf("cannot restore network namespace: %v", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// dialIn is a Config.dial that opens sockets inside ns.
func dialIn(ns netns.NsHandle) func(string, time.Duration) (net.Conn, error) {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		var c net.Conn
		err := inNetns(ns, func() (err error) {
			c, err = net.DialTimeout("tcp", addr, timeout)
			return err
		})
		return c, err
	}
}

func (n *testNode) ap() netip.AddrPort { return netip.AddrPortFrom(n.addr, DefaultPort) }

func (n *testNode) start(t *testing.T, secret []byte, peers ...*testNode) *Membership {
	t.Helper()
	cfg := Config{
		Node:    n.name,
		Bind:    n.addr,
		Secret:  secret,
		Witness: n.witness,
		Log:     n.logger,
		dial:    dialIn(n.ns),
	}
	for _, p := range peers {
		cfg.Peers = append(cfg.Peers, p.ap())
	}
	var m *Membership
	err := inNetns(n.ns, func() (err error) {
		m, err = Start(cfg)
		return err
	})
	if err != nil {
		t.Fatalf("start %s: %v", n.name, err)
	}
	t.Cleanup(m.Stop)
	return m
}

// waitFor polls cond until it holds or the bound passes; cond returns
// what it is still waiting for.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		missing := cond()
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %v: %s", what, bound, missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func memberOf(m *Membership, name string) (Member, bool) {
	for _, x := range m.View() {
		if x.Name == name {
			return x, true
		}
	}
	return Member{}, false
}

// sees reports what observer does not yet see of node: alive, heard
// recently, with the given state.
func sees(observer *Membership, obsName, node, state string) string {
	x, ok := memberOf(observer, node)
	switch {
	case !ok:
		return fmt.Sprintf("%s does not know %s", obsName, node)
	case x.Status != StatusAlive:
		return fmt.Sprintf("%s sees %s %s", obsName, node, x.Status)
	case x.Silent:
		return fmt.Sprintf("%s hears nothing from %s", obsName, node)
	case string(x.State) != state:
		return fmt.Sprintf("%s sees %s's state %q, want %q", obsName, node, x.State, state)
	}
	return ""
}

func randomSecret(t *testing.T) []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return []byte(hex.EncodeToString(b) + "\n")
}

// logsFrom counts n's log entries containing snippet that name addr as
// the remote end.
func logsFrom(n *testNode, snippet string, addr netip.Addr) int {
	return n.logs.Filter(func(e observer.LoggedEntry) bool {
		peer, _ := e.ContextMap()["peer_addr"].(string)
		return strings.Contains(e.Message, snippet) && strings.HasPrefix(peer, addr.String()+":")
	}).Len()
}

func TestClusterOverNetns(t *testing.T) {
	l := newTestLab(t)
	na := l.addNode("a", "192.0.2.11")
	nb := l.addNode("b", "192.0.2.12")
	nc := l.addNode("c", "192.0.2.13")
	nc.witness = true
	secret := randomSecret(t)

	ma := na.start(t, secret, nb, nc)
	mb := nb.start(t, secret, na, nc)
	mc := nc.start(t, secret, na, nb)
	nodes := []*testNode{na, nb, nc}
	ms := map[string]*Membership{"a": ma, "b": mb, "c": mc}
	state := map[string]string{"a": "a-1", "b": "b-1", "c": "c-1"}
	for name, m := range ms {
		if err := m.SetState([]byte(state[name])); err != nil {
			t.Fatal(err)
		}
	}
	allSeeAll := func() string {
		for _, o := range nodes {
			for _, x := range nodes {
				if o != x {
					if s := sees(ms[o.name], o.name, x.name, state[x.name]); s != "" {
						return s
					}
				}
			}
		}
		return ""
	}
	waitFor(t, waitConverge, "three nodes converge", allSeeAll)

	t.Run("listeners in node namespace", func(t *testing.T) {
		// memberlist binds in Create, so the sockets belong to the
		// namespace Start ran in: there the port is taken...
		for _, n := range nodes {
			err := inNetns(n.ns, func() error {
				c, err := net.ListenPacket("udp", n.ap().String())
				if err == nil {
					c.Close()
				}
				return err
			})
			if !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("%s: binding %s in its namespace: %v, want EADDRINUSE", n.name, n.ap(), err)
			}
		}
		// ...and the switch namespace does not even have the address.
		c, err := net.ListenPacket("udp", na.ap().String())
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Errorf("binding %s in the switch namespace: %v, want EADDRNOTAVAIL", na.ap(), err)
		}
	})

	t.Run("members carry address and witness flag", func(t *testing.T) {
		x, _ := memberOf(ma, "b")
		if x.Addr != nb.ap() || x.Witness || x.Boot == 0 {
			t.Errorf("a's view of b = %+v", x)
		}
		if x, _ := memberOf(mb, "c"); x.Addr != nc.ap() || !x.Witness {
			t.Errorf("b's view of the witness c = %+v", x)
		}
	})

	t.Run("SetState propagates and wakes Changes", func(t *testing.T) {
		for len(mb.Changes()) > 0 {
			<-mb.Changes()
		}
		state["a"] = "a-2 " + strings.Repeat("x", 1000)
		if err := ma.SetState([]byte(state["a"])); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(waitConverge)
		for sees(mb, "b", "a", state["a"]) != "" {
			select {
			case <-mb.Changes():
			case <-deadline:
				t.Fatalf("no change notification: %s", sees(mb, "b", "a", state["a"]))
			}
		}
		waitFor(t, waitConverge, "c sees a's new state", func() string { return sees(mc, "c", "a", state["a"]) })
		if err := ma.SetState(make([]byte, MaxStateSize+1)); err == nil {
			t.Error("SetState accepted an oversize blob")
		}
	})

	t.Run("link down and up", func(t *testing.T) {
		l.setLink(nc, false)
		waitFor(t, waitConverge, "a and b hear nothing from c", func() string {
			for _, o := range []*Membership{ma, mb} {
				if x, _ := memberOf(o, "c"); !x.Silent {
					return "c still heard"
				}
			}
			return ""
		})
		heardA, _ := memberOf(ma, "c")
		heardB, _ := memberOf(mb, "c")
		waitFor(t, waitDead, "memberlist declares c dead on a and b", func() string {
			for name, o := range map[string]*Membership{"a": ma, "b": mb} {
				if x, _ := memberOf(o, "c"); x.Status != StatusDead {
					return fmt.Sprintf("%s sees c %s", name, x.Status)
				}
			}
			return ""
		})
		// All the while nothing was heard from c...
		if x, _ := memberOf(ma, "c"); !x.LastHeard.Equal(heardA.LastHeard) {
			t.Errorf("a's LastHeard for c moved while the link was down: %v → %v", heardA.LastHeard, x.LastHeard)
		}
		if x, _ := memberOf(mb, "c"); !x.LastHeard.Equal(heardB.LastHeard) {
			t.Errorf("b's LastHeard for c moved while the link was down: %v → %v", heardB.LastHeard, x.LastHeard)
		}
		// ...while a and b still heard each other, and c heard no one.
		if s := sees(ma, "a", "b", state["b"]); s != "" {
			t.Errorf("during c's outage: %s", s)
		}
		for _, name := range []string{"a", "b"} {
			if x, _ := memberOf(mc, name); !x.Silent {
				t.Errorf("c still hears %s with its link down", name)
			}
		}

		l.setLink(nc, true)
		waitFor(t, waitDead, "c rejoins", allSeeAll)
		if x, _ := memberOf(ma, "c"); !x.LastHeard.After(heardA.LastHeard) {
			t.Errorf("a's LastHeard for c did not advance after the link came back")
		}
	})

	t.Run("wrong secret is refused", func(t *testing.T) {
		nd := l.addNode("d", "192.0.2.14")
		md := nd.start(t, randomSecret(t), na, nb, nc)
		// d's heartbeats and join streams reach a and are dropped there
		// undecrypted; d's own joins fail.
		waitFor(t, waitConverge, "a drops d's traffic", func() string {
			switch {
			case logsFrom(na, "Decrypt packet failed", nd.addr) < 3:
				return "fewer than 3 packets from d refused by a"
			case logsFrom(na, "failed to receive", nd.addr) < 1:
				return "no join stream from d refused by a"
			case nd.logs.FilterMessage("join failed").Len() < 3:
				return "d has not failed 3 joins yet"
			}
			return ""
		})
		for name, m := range ms {
			if x, ok := memberOf(m, "d"); ok {
				t.Errorf("%s knows the wrong-secret node: %+v", name, x)
			}
		}
		for _, x := range md.View() {
			if x.Status == StatusAlive || !x.Silent {
				t.Errorf("wrong-secret node sees %+v", x)
			}
		}
		md.Stop()
	})

	t.Run("plaintext is refused", func(t *testing.T) {
		np := l.addNode("p", "192.0.2.15")
		var ml *memberlist.Memberlist
		err := inNetns(np.ns, func() error {
			c := memberlist.DefaultLANConfig()
			c.Name = "p"
			c.BindAddr = np.addr.String()
			c.AdvertiseAddr = np.addr.String()
			c.TCPTimeout = 2 * time.Second
			c.Logger = zap.NewStdLog(np.logger)
			nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
				BindAddrs: []string{c.BindAddr}, BindPort: c.BindPort, Logger: c.Logger,
			})
			if err != nil {
				return err
			}
			c.Transport = &dialTransport{NetTransport: nt, dial: dialIn(np.ns)}
			ml, err = memberlist.Create(c)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer ml.Shutdown()
		if _, err := ml.Join([]string{na.ap().String()}); err == nil {
			t.Error("plaintext join succeeded")
		}
		// A well-formed heartbeat, unencrypted.
		msg := mustEncode(t, message{Kind: kindHeartbeat, Boot: 1, Seq: 1, Node: "p", State: []byte("forged")})
		waitFor(t, waitConverge, "a drops plaintext", func() string {
			if err := ml.SendToAddress(memberlist.Address{Addr: na.ap().String()}, msg); err != nil {
				return err.Error()
			}
			if logsFrom(na, "Decrypt packet failed", np.addr) < 1 {
				return "no plaintext packet refused by a yet"
			}
			if logsFrom(na, "failed to receive", np.addr) < 1 {
				return "no plaintext stream refused by a yet"
			}
			return ""
		})
		if x, ok := memberOf(ma, "p"); ok {
			t.Errorf("a accepted the plaintext node: %+v", x)
		}
	})

	t.Run("stop leaves gracefully", func(t *testing.T) {
		mb.Stop()
		waitFor(t, waitConverge, "a and c see b leave", func() string {
			for name, o := range map[string]*Membership{"a": ma, "c": mc} {
				if x, _ := memberOf(o, "b"); x.Status != StatusLeft {
					return fmt.Sprintf("%s sees b %s", name, x.Status)
				}
			}
			return ""
		})
		if _, open := <-mb.Changes(); open {
			// A pending notification may be buffered; the next read
			// must see the channel closed.
			if _, open := <-mb.Changes(); open {
				t.Error("Changes still open after Stop")
			}
		}
		mb.Stop() // idempotent
		if s := sees(ma, "a", "c", state["c"]); s != "" {
			t.Errorf("after b left: %s", s)
		}
	})
}
