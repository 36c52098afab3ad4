package replicate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/internal/netnstest"
	"github.com/hactl/hactl/replicate/meta"
	"github.com/hactl/hactl/replicate/wire"
)

// The resync benchmarks run two engines over TCP on backing files in the
// temporary directory's file system, as the agents do (meta = "internal"),
// so that pread, pwrite and fdatasync cost what they cost on this host.
// HACTL_BENCH_RESYNC_MIB sets the backing size (default 256 MiB). Besides
// ns/op (which includes starting the engines and connecting), they report
// resync-MiB/s: the bytes out of sync over the target's own resync time,
// as the lab benchmark (cmd/hactl) takes it.

type fileNode struct {
	name  string
	path  string
	f     *os.File
	cfg   Config
	vol   *Volume
	stopR context.CancelFunc
	done  chan struct{}
	logs  *observer.ObservedLogs
}

// took sums the durations of the "resync finished" lines logged so far
// and forgets them: the resync's own time, from the link's connect-time
// decision on, as the lab benchmark takes it.
func (n *fileNode) took() time.Duration {
	var d time.Duration
	for _, e := range n.logs.TakeAll() {
		if e.Message == "resync finished" {
			d += e.ContextMap()["took"].(time.Duration)
		}
	}
	return d
}

func benchBacking(b *testing.B) int64 {
	if s := os.Getenv("HACTL_BENCH_RESYNC_MIB"); s != "" {
		var n int64
		if _, err := fmt.Sscan(s, &n); err == nil && n >= 32 {
			return n << 20
		}
		b.Fatalf("HACTL_BENCH_RESYNC_MIB=%q: want a whole number ≥ 32", s)
	}
	return 256 << 20
}

// newFilePair makes two backing files filled with random (and different)
// data, so that every block is allocated, and fresh metadata on both.
func newFilePair(b *testing.B, backing int64, tune func(*Config)) (a, z *fileNode) {
	b.Helper()
	netnstest.Require(b)
	dir := b.TempDir()
	addr := fmt.Sprintf("%s:%d", testAddr, 17000+portSeq.Add(1))
	a = &fileNode{name: "alpha", path: filepath.Join(dir, "alpha")}
	z = &fileNode{name: "bravo", path: filepath.Join(dir, "bravo")}
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	for _, n := range []*fileNode{a, z} {
		f, err := os.OpenFile(n.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		for off := int64(0); off < backing; off += int64(len(buf)) {
			for i := 0; i < len(buf); i += 8 {
				v := r.Uint64()
				for j := range 8 {
					buf[i+j] = byte(v >> (8 * j))
				}
			}
			if _, err := f.WriteAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		n.f = f
		n.freshMeta(b, backing)
		core, logs := observer.New(zapcore.InfoLevel)
		n.logs = logs
		n.cfg = Config{
			Volume: "data", Node: n.name, Disk: NewFileDisk(f), Log: zap.New(core),
			PingInterval: time.Second, PingTimeout: 10 * time.Second,
		}
		if tune != nil {
			tune(&n.cfg)
		}
	}
	a.cfg.Peer, z.cfg.Peer = z.name, a.name
	a.cfg.Secret, z.cfg.Secret = []byte("s3cret"), []byte("s3cret")
	a.cfg.Connect = Dial(addr)
	lis := NewListener(addr)
	z.cfg.Connect = lis.Connect
	b.Cleanup(func() { lis.Close() })
	return a, z
}

func (n *fileNode) metaConfig(backing int64) meta.Config {
	return meta.Config{Device: n.f, Internal: true, BackingSize: backing}
}

func (n *fileNode) freshMeta(b *testing.B, backing int64) {
	b.Helper()
	_, err := meta.Create(n.metaConfig(backing), meta.CreateOptions{NodeName: n.name, VolumeName: "data", NodeID: uint32(len(n.name)), Force: true})
	if err != nil {
		b.Fatal(err)
	}
}

func (n *fileNode) start(b *testing.B, backing int64) {
	b.Helper()
	m, err := meta.Open(n.metaConfig(backing))
	if err != nil {
		b.Fatal(err)
	}
	n.cfg.Meta = m
	v, err := Open(n.cfg)
	if err != nil {
		b.Fatal(err)
	}
	n.vol = v
	ctx, cancel := context.WithCancel(context.Background())
	n.stopR, n.done = cancel, make(chan struct{})
	go func() { defer close(n.done); _ = v.Run(ctx) }()
}

func (n *fileNode) stop(b *testing.B) {
	if n.vol == nil {
		return
	}
	if err := n.vol.Close(); err != nil {
		b.Errorf("%s: close: %v", n.name, err)
	}
	n.stopR()
	<-n.done
	n.vol, n.cfg.Meta = nil, nil
}

// dropCache writes back and drops the file's cached pages, as the lab
// benchmark does before each resync.
func (n *fileNode) dropCache(b *testing.B) {
	b.Helper()
	if err := n.f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := unix.Fadvise(int(n.f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
}

func benchWait(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (n *fileNode) upToDate() bool {
	st := n.vol.Status()
	return st.Disk == wire.DiskUpToDate.String() && st.Connection == string(Connected)
}

// fullSync promotes alpha with force over fresh metadata and waits for
// bravo to be UpToDate; it returns the bytes synced.
func fullSync(b *testing.B, a, z *fileNode, backing int64) int64 {
	b.Helper()
	a.start(b, backing)
	z.start(b, backing)
	benchWait(b, "connected", func() bool {
		return a.vol.Status().Connection == string(Connected) && z.vol.Status().Connection == string(Connected)
	})
	if err := a.vol.Promote(context.Background(), true); err != nil {
		b.Fatal(err)
	}
	benchWait(b, "bravo UpToDate", z.upToDate)
	return a.vol.Size()
}

// BenchmarkResyncFull is a full sync of allocated, different data.
func BenchmarkResyncFull(b *testing.B) { benchFull(b, false) }

// BenchmarkResyncChecksumSame is a full checksum sync of identical data.
func BenchmarkResyncChecksumSame(b *testing.B) { benchFull(b, true) }

func benchFull(b *testing.B, checksum bool) {
	backing := benchBacking(b)
	a, z := newFilePair(b, backing, func(c *Config) { c.ResyncChecksum = checksum })
	if checksum {
		// Make the data areas identical first.
		fullSync(b, a, z, backing)
		a.stop(b)
		z.stop(b)
	}
	var size int64
	var took time.Duration
	z.took()
	for b.Loop() {
		b.StopTimer()
		a.stop(b)
		z.stop(b)
		a.freshMeta(b, backing)
		z.freshMeta(b, backing)
		a.dropCache(b)
		z.dropCache(b)
		b.StartTimer()
		size = fullSync(b, a, z, backing)
		took += z.took()
		if st := a.vol.Status(); checksum && st.Resynced != st.ResyncSame {
			b.Logf("checksum resync of identical data sent %d of %d bytes", st.Resynced-st.ResyncSame, st.Resynced)
		}
	}
	b.StopTimer()
	reportResync(b, size, took)
	a.stop(b)
	z.stop(b)
	b.SetBytes(size)
}

// BenchmarkResyncScattered4K and 64K: a bitmap resync after a quarter of
// the volume's blocks changed while bravo was away.
func BenchmarkResyncScattered4K(b *testing.B)  { benchScattered(b, 4<<10) }
func BenchmarkResyncScattered64K(b *testing.B) { benchScattered(b, 64<<10) }

func benchScattered(b *testing.B, unit int) {
	backing := benchBacking(b)
	a, z := newFilePair(b, backing, nil)
	fullSync(b, a, z, backing)
	size := a.vol.Size()
	units := int(size) / unit
	r := rand.New(rand.NewPCG(5, 6))
	p := make([]byte, unit)
	for i := range p {
		p[i] = byte(i)
	}
	var dirty uint64
	var took time.Duration
	z.took()
	for b.Loop() {
		b.StopTimer()
		z.stop(b)
		benchWait(b, "alpha disconnected", func() bool { return a.vol.Status().Connection == string(Connecting) })
		// A random quarter of the units, each once.
		for _, u := range r.Perm(units)[:units/4] {
			if _, err := a.vol.WriteAt(p, int64(u)*int64(unit), false); err != nil {
				b.Fatal(err)
			}
		}
		dirty = a.vol.Status().OutOfSync
		a.dropCache(b)
		z.dropCache(b)
		b.StartTimer()
		z.start(b, backing)
		benchWait(b, "bravo UpToDate", z.upToDate)
		took += z.took()
	}
	b.StopTimer()
	b.SetBytes(int64(dirty))
	reportResync(b, int64(dirty), took)
	a.stop(b)
	z.stop(b)
}

// reportResync reports the rate by the target's own resync time, per run.
func reportResync(b *testing.B, bytes int64, took time.Duration) {
	if took > 0 {
		b.ReportMetric(float64(bytes)*float64(b.N)/(1<<20)/took.Seconds(), "resync-MiB/s")
	}
}
