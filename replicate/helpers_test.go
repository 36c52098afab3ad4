package replicate

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hactl/hactl/internal/netnstest"
	"github.com/hactl/hactl/replicate/meta"
	"github.com/hactl/hactl/replicate/txlog"
	"github.com/hactl/hactl/replicate/wire"
)

// The link tests use real TCP in a network namespace of their own.
const testAddr = "198.51.100.1"

func TestMain(m *testing.M) { netnstest.Main(m, testAddr+"/32") }

const testBacking = 32 << 20 // bytes per node: data plus internal metadata

var portSeq atomic.Int32

// node is one side of a test volume: its disk (data and internal
// metadata on one MemDevice, as with meta = "internal") and the open
// Volume.
type node struct {
	t      *testing.T
	name   string
	peer   string
	dev    *meta.MemDevice
	vol    *Volume
	cancel context.CancelFunc
	done   chan struct{}
	lis    *Listener
	cfg    Config
}

type pairOpts struct {
	proto        txlog.Protocol
	secretA      string
	secretB      string
	noStartBravo bool
	tune         func(*Config) // changes both nodes' Config before they start
}

// newPair makes the two nodes of a fresh volume, alpha dialing bravo,
// and starts them.
func newPair(t *testing.T, o pairOpts) (*node, *node) {
	t.Helper()
	netnstest.Require(t)
	if o.proto == 0 {
		o.proto = txlog.ProtocolC
	}
	if o.secretA == "" {
		o.secretA = "s3cret"
	}
	if o.secretB == "" {
		o.secretB = o.secretA
	}
	addr := fmt.Sprintf("%s:%d", testAddr, 17000+portSeq.Add(1))
	a := &node{t: t, name: "alpha", peer: "bravo", dev: meta.NewMemDevice(testBacking)}
	b := &node{t: t, name: "bravo", peer: "alpha", dev: meta.NewMemDevice(testBacking)}
	for _, n := range []*node{a, b} {
		m, err := meta.Create(n.metaConfig(), meta.CreateOptions{NodeName: n.name, VolumeName: "data", NodeID: uint32(len(n.name))})
		if err != nil {
			t.Fatal(err)
		}
		n.cfg = Config{
			Volume: "data", Node: n.name, Peer: n.peer, Protocol: o.proto, Disk: n.dev, Meta: m,
			Log: zaptest.NewLogger(t).Named(n.name), PingInterval: 200 * time.Millisecond, PingTimeout: 2 * time.Second,
			EpochInterval: 50 * time.Millisecond,
		}
	}
	a.cfg.Secret, b.cfg.Secret = []byte(o.secretA), []byte(o.secretB)
	if o.tune != nil {
		o.tune(&a.cfg)
		o.tune(&b.cfg)
	}
	a.cfg.Connect = Dial(addr)
	b.lis = NewListener(addr)
	b.cfg.Connect = b.lis.Connect
	t.Cleanup(func() { b.lis.Close() })
	a.start()
	if !o.noStartBravo {
		b.start()
	}
	return a, b
}

func (n *node) metaConfig() meta.Config {
	return meta.Config{Device: n.dev, Internal: true, BackingSize: testBacking}
}

// start opens the volume on the node's disk and runs it.
func (n *node) start() {
	n.t.Helper()
	if n.cfg.Meta == nil {
		m, err := meta.Open(n.metaConfig())
		if err != nil {
			n.t.Fatal(err)
		}
		n.cfg.Meta = m
	}
	v, err := Open(n.cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	n.vol = v
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	go func() { defer close(n.done); _ = v.Run(ctx) }()
	n.t.Cleanup(n.stop)
}

// stop closes the volume cleanly.
func (n *node) stop() {
	if n.vol == nil {
		return
	}
	if err := n.vol.Close(); err != nil {
		n.t.Errorf("%s: close: %v", n.name, err)
	}
	n.cancel()
	<-n.done
	n.vol, n.cfg.Meta = nil, nil
}

// crash drops the volume as a power loss would: no clean close, and the
// disk keeps only what was synced.
func (n *node) crash() {
	v := n.vol
	n.vol, n.cfg.Meta = nil, nil
	n.dev.Crash()
	// Stop the engine's goroutines; nothing they write after the crash
	// may count, so the device is replaced by its post-crash image.
	img := n.dev.Clone()
	v.cancel()
	n.cancel()
	<-n.done
	n.dev = img
	n.cfg.Disk = img
}

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (n *node) status() Status { return n.vol.Status() }

func waitConnected(t *testing.T, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, n.name+" Connected", func() bool { return n.status().Connection == string(Connected) })
	}
}

// dataOf is the node's data area (the volume's bytes).
func (n *node) dataOf(size int64) []byte {
	b := make([]byte, size)
	if _, err := n.dev.ReadAt(b, 0); err != nil {
		n.t.Fatal(err)
	}
	return b
}

func sameData(t *testing.T, a, b *node) {
	t.Helper()
	size := a.vol.Size()
	da, db := a.dataOf(size), b.dataOf(size)
	if !bytes.Equal(da, db) {
		for i := range da {
			if da[i] != db[i] {
				t.Fatalf("replicas differ first at byte %d (block %d)", i, i/meta.BlockSize)
			}
		}
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// promoteFresh makes alpha the Primary of a fresh pair and waits for the
// initial full sync to finish.
func promoteFresh(t *testing.T, a, b *node) {
	t.Helper()
	waitConnected(t, a, b)
	if err := a.vol.Promote(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, a, b)
	waitFor(t, "bravo UpToDate", func() bool { return b.status().Disk == wire.DiskUpToDate.String() })
	waitFor(t, "alpha sees bravo UpToDate", func() bool { return a.status().PeerDisk == wire.DiskUpToDate.String() })
}
