package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/internal/lab"
)

// TestResyncBenchmark measures how fast a volume resyncs over the lab's
// replication link: a bitmap-based resync after a quarter of the volume's
// 4 KiB blocks changed while the peer was away (scattered single blocks,
// and 64 KiB extents), set against the raw rates of the link (one TCP
// stream) and of the backing files measured in the same run, and a
// checksum resync of two identical replicas. It writes a Markdown section
// to $HACTL_BENCH_RESYNC_OUT. `make bench` runs it; `make test` skips it.
func TestResyncBenchmark(t *testing.T) {
	out := os.Getenv("HACTL_BENCH_RESYNC_OUT")
	if out == "" {
		t.Skip("skipping: the resync benchmark runs with make bench (HACTL_BENCH_RESYNC_OUT names the output)")
	}
	reps := 5
	if s := os.Getenv("HACTL_BENCH_RESYNC_REPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("HACTL_BENCH_RESYNC_REPS=%q: want a whole number of repetitions", s)
		}
		reps = n
	}
	requireLab(t, "fio")

	b := &rsBench{replBench: &replBench{t: t, v: newVolumeLab(t, 1<<30)}, reps: reps, bitmap: map[string][]rsbRun{}}
	alpha, _ := b.v.l.Node("alpha")
	bravo, _ := b.v.l.Node("bravo")
	b.alpha, b.bravo = alpha, bravo
	b.disk = alpha.Disk
	b.dataSize = replDataSize(t, alpha.Disk)
	// A quarter of the data area, in whole 64 KiB extents (so whole 4 KiB
	// blocks too).
	b.dirty = b.dataSize / 4 &^ (64<<10 - 1)
	for _, n := range []string{"alpha", "bravo"} {
		b.v.waitVolume(n, "volume connected", connected)
	}

	// The raw write rate of bravo's backing file, before its first sync
	// (which overwrites all of it): one pass to allocate the blocks, then
	// the measured overwrites — the resync's writes are overwrites too.
	b.diskFio("bravo", bravo.Disk, "write", "allocate bravo's backing file")
	for range reps {
		b.rawWrite = append(b.rawWrite, b.diskFio("bravo", bravo.Disk, "write", "raw write"))
	}

	// The initial full sync of the fresh volume (alpha's file is all holes).
	tx := b.txBytes()
	b.v.hactl("alpha", "volume", "primary", lab.VolumeName, "--force")
	b.initial = b.waitResync(b.proc("alpha"), 0, b.proc("bravo"), 0, 10*time.Minute)
	b.initial.linkBytes = b.txBytes() - tx
	t.Logf("initial full sync: %s", b.initial)
	b.waitLong("bravo", "the initial sync", time.Minute, func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.DiskState == "UpToDate" && vs.PeerRole == "Primary"
	})
	// Fill the data area through the volume, so that both replicas hold
	// data on allocated blocks rather than holes.
	start := time.Now()
	b.fio("alpha", "fill", nbdURI(), 30*time.Minute,
		"--ioengine=nbd", "--rw=write", "--bs=1M", "--iodepth=8", fmt.Sprintf("--size=%d", b.dataSize))
	t.Logf("filled the %d MiB data area through the volume in %v", b.dataSize>>20, time.Since(start).Round(time.Millisecond))
	b.waitLong("bravo", "the fill replicated", time.Minute, func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.DiskState == "UpToDate" && vs.OutOfSync == 0
	})

	// The raw read rate of alpha's backing file, and the link's.
	for range reps {
		b.rawRead = append(b.rawRead, b.diskFio("alpha", alpha.Disk, "read", "raw read"))
	}
	// The raw rate of the resync's write pattern: a quarter of a file of
	// the data area's size, allocated, overwritten at random in 4 KiB or
	// 64 KiB blocks, then fsynced — on a scratch file beside the backing
	// files (the replicas must stay equal).
	scratch := filepath.Join(filepath.Dir(bravo.Disk), "rsb-scratch")
	scratchSize := (b.dataSize + 1<<20 - 1) &^ (1<<20 - 1) // fio writes whole blocks
	b.fioRun("bravo", "allocate the scratch file", true, scratchSize, "--rw=write", "--bs=1M", fmt.Sprintf("--size=%d", scratchSize),
		"--end_fsync=1", "--filename="+scratch)
	b.rawRand = map[string][]rsbRate{}
	for _, p := range rsbPatterns {
		for rep := range reps {
			b.rawRand[p.bs] = append(b.rawRand[p.bs], b.fioRun("bravo", "raw random write "+p.bs, true, b.dirty, "--rw=randwrite", "--bs="+p.bs,
				fmt.Sprintf("--size=%d", b.dataSize), fmt.Sprintf("--io_size=%d", b.dirty), fmt.Sprintf("--randseed=%d", 2000+rep),
				"--end_fsync=1", "--filename="+scratch))
		}
	}
	if err := os.Remove(scratch); err != nil {
		t.Fatal(err)
	}
	for range reps {
		b.link = append(b.link, b.linkRate(1<<30))
	}
	for range reps {
		b.sha = append(b.sha, rsbHashRate(1<<30))
	}
	t.Logf("SHA-256 in this process: %.2f GiB/s (median)", rsbMedianRate(b.sha).mibps()/1024)

	// Bitmap-based resyncs after a quarter of the blocks changed.
	for _, p := range rsbPatterns {
		for rep := range reps {
			r := b.bitmapResync(p, rep)
			t.Logf("%s, run %d: %s", p.name, rep+1, r)
			b.bitmap[p.name] = append(b.bitmap[p.name], r)
		}
	}

	// Checksum resyncs of identical replicas: fresh metadata on both
	// nodes over the same data, then a full sync comparing hashes.
	b.stopAgent("alpha")
	b.stopAgent("bravo")
	if ha, hb := b.v.dataHash("alpha"), b.v.dataHash("bravo"); ha != hb {
		t.Fatalf("the replicas differ before the checksum resync: alpha %s, bravo %s", ha, hb)
	}
	hcl, err := os.ReadFile(b.v.l.ClusterFile)
	if err != nil {
		t.Fatal(err)
	}
	const attach = `attach   = "loop"`
	if strings.Count(string(hcl), attach) != 1 {
		t.Fatalf("the lab's cluster file does not have exactly one `%s`:\n%s", attach, hcl)
	}
	withChecksum := strings.Replace(string(hcl), attach, attach+"\n  resync {\n    checksum = true\n  }", 1)
	if err := b.v.l.SetClusterFile(withChecksum); err != nil {
		t.Fatal(err)
	}
	for rep := range reps {
		r := b.checksumResync(rep)
		t.Logf("checksum resync, run %d: %s", rep+1, r)
		b.checksum = append(b.checksum, r)
	}

	section := b.report()
	if err := os.WriteFile(out, []byte(section), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s:\n%s", out, section)
}

// rsbPattern is how the quarter of the volume is made dirty.
type rsbPattern struct {
	name  string
	bs    string
	depth int
}

var rsbPatterns = []rsbPattern{
	{"bitmap resync, 25 % dirty as scattered 4 KiB blocks", "4k", 32},
	{"bitmap resync, 25 % dirty as scattered 64 KiB extents", "64k", 8},
}

type rsBench struct {
	*replBench
	reps         int
	alpha, bravo lab.Node
	dirty        int64 // bytes fio writes to make a quarter dirty

	rawRead, rawWrite, link, sha []rsbRate
	rawRand                      map[string][]rsbRate // by block size
	initial                      rsbRun
	bitmap                       map[string][]rsbRun
	checksum                     []rsbRun
}

// rsbRate is one raw transfer.
type rsbRate struct {
	bytes int64
	secs  float64
}

func (r rsbRate) mibps() float64 { return float64(r.bytes) / (1 << 20) / r.secs }

// rsbRun is one resync as the agents logged it.
type rsbRun struct {
	dirty       uint64        // the source's out_of_sync_bytes before it started
	bytes       uint64        // what the source's "resync finished" counts
	srcTook     time.Duration // the source's resync, until its last ack
	tgtTook     time.Duration // the target's, until its data is synced and UpToDate
	linkBytes   uint64        // alpha's replication interface: bytes sent meanwhile
	cpuA, cpuB  float64       // the agents' CPU over the resync, % of one core
	hostBusy    float64       // the whole machine's busy CPU meanwhile, % of one core
	steal       float64       // time the hypervisor ran something else, % of one core
	startedFull bool
}

// secs is the resync's duration: the target's, which ends only once the
// data is durable on it (the source's ends at its last ack).
func (r rsbRun) secs() float64 { return max(r.tgtTook, r.srcTook).Seconds() }
func (r rsbRun) mibps() float64 {
	if r.secs() == 0 {
		return 0
	}
	return float64(r.bytes) / (1 << 20) / r.secs()
}

func (r rsbRun) String() string {
	return fmt.Sprintf("%d bytes (full %v, %d out of sync before) in %v at the target, %v at the source: %.1f MiB/s; %d bytes sent on the link; CPU alpha %.0f%%, bravo %.0f%%, machine %.0f%% busy, %.0f%% steal",
		r.bytes, r.startedFull, r.dirty, r.tgtTook, r.srcTook, r.mibps(), r.linkBytes, r.cpuA, r.cpuB, r.hostBusy, r.steal)
}

// proc is the running agent of a node.
func (b *rsBench) proc(name string) *node {
	b.t.Helper()
	var found *node
	for _, p := range b.v.procs {
		if p.name == name && !p.stopping {
			found = p
		}
	}
	if found == nil {
		b.t.Fatalf("no running agent in %s", name)
	}
	return found
}

// bitmapResync stops bravo, writes a quarter of the volume's blocks
// through alpha's NBD socket, starts bravo again and measures the resync.
func (b *rsBench) bitmapResync(p rsbPattern, rep int) rsbRun {
	b.t.Helper()
	b.stopAgent("bravo")
	b.v.waitVolume("alpha", "the link to bravo gone", func(vs api.VolumeStatus) bool {
		return vs.Connection != "" && !connected(vs) && vs.Role == "Primary"
	})
	// fio's random map writes each block once; the seed differs per run.
	b.fio("alpha", "dirty "+p.bs, nbdURI(), 5*time.Minute,
		"--ioengine=nbd", "--rw=randwrite", "--bs="+p.bs, fmt.Sprintf("--iodepth=%d", p.depth),
		fmt.Sprintf("--size=%d", b.dataSize), fmt.Sprintf("--io_size=%d", b.dirty), fmt.Sprintf("--randseed=%d", 1000+rep))
	vs, ok := b.v.volume("alpha")
	if !ok {
		b.t.Fatal("no status from alpha")
	}
	b.dropCache()
	alphaP := b.proc("alpha")
	from := rsbLogLen(alphaP)
	tx := b.txBytes()
	b.v.agent("bravo")
	r := b.waitResync(alphaP, from, b.proc("bravo"), 0, 5*time.Minute)
	r.linkBytes = b.txBytes() - tx
	r.dirty = vs.OutOfSync
	if r.startedFull {
		b.t.Errorf("%s, run %d: the resync was a full one", p.name, rep+1)
	}
	b.waitLong("bravo", "resynced", time.Minute, func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.DiskState == "UpToDate" && vs.OutOfSync == 0
	})
	return r
}

// checksumResync gives both nodes fresh metadata over their identical
// data, promotes alpha and measures the full checksum resync.
func (b *rsBench) checksumResync(rep int) rsbRun {
	b.t.Helper()
	for _, n := range []string{"alpha", "bravo"} {
		for _, p := range b.v.procs {
			if p.name == n && !p.stopping {
				b.stopAgent(n)
			}
		}
	}
	for _, n := range []string{"alpha", "bravo"} {
		b.v.hactl(n, "volume", "create-md", lab.VolumeName, "--force")
	}
	b.v.agent("alpha")
	b.v.agent("bravo")
	for _, n := range []string{"alpha", "bravo"} {
		b.v.waitVolume(n, "volume connected", connected)
	}
	b.dropCache()
	tx := b.txBytes()
	b.v.hactl("alpha", "volume", "primary", lab.VolumeName, "--force")
	r := b.waitResync(b.proc("alpha"), 0, b.proc("bravo"), 0, 5*time.Minute)
	r.linkBytes = b.txBytes() - tx
	if !r.startedFull {
		b.t.Errorf("checksum run %d: the resync was not a full one", rep+1)
	}
	b.waitLong("bravo", "synced", time.Minute, func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.DiskState == "UpToDate" && vs.OutOfSync == 0
	})
	if r.linkBytes > uint64(b.dataSize)/10 {
		b.t.Errorf("checksum run %d: %d bytes sent on the link for identical replicas", rep+1, r.linkBytes)
	}
	return r
}

// waitResync waits until the source (alpha) and the target (bravo) have
// both logged "resync finished" in their logs after the byte offsets
// given, and returns what they logged. The agents' and the machine's CPU
// use is read from the first "resync started" to the end. It polls the
// logs in memory and runs nothing in the nodes, to leave the CPU to the
// agents.
func (b *rsBench) waitResync(src *node, srcFrom int, tgt *node, tgtFrom int, timeout time.Duration) rsbRun {
	b.t.Helper()
	const started, done = `"event":"resync-start"`, `"event":"resync-done"`
	var cpu0 rsbCPU
	var t0 time.Time
	deadline := time.Now().Add(timeout)
	for {
		if t0.IsZero() && (rsbCount(src, srcFrom, started) > 0 || rsbCount(tgt, tgtFrom, started) > 0) {
			cpu0, t0 = b.cpuNow(), time.Now()
		}
		if rsbCount(src, srcFrom, done) > 0 && rsbCount(tgt, tgtFrom, done) > 0 {
			break
		}
		for _, p := range []*node{src, tgt} {
			select {
			case <-p.exited:
				b.t.Fatalf("waiting for a resync: the agent in %s exited: %v\n%s", p.name, p.err, p.logs.String())
			default:
			}
		}
		if time.Now().After(deadline) {
			vs, _ := b.v.volume(tgt.name)
			b.t.Fatalf("no resync finished within %v; %s: %+v", timeout, tgt.name, vs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cpu1, t1 := b.cpuNow(), time.Now()
	last := func(p *node, from int, event, role string) map[string]any {
		var m map[string]any
		for _, e := range logEvents(p.logs.String()[from:], event) {
			if e["role"] == role {
				m = e
			}
		}
		if m == nil {
			b.t.Fatalf("%s logged no %s as %s", p.name, event, role)
		}
		return m
	}
	took := func(m map[string]any) time.Duration {
		// The agent's JSON log has durations in seconds.
		switch v := m["took"].(type) {
		case float64:
			return time.Duration(v * float64(time.Second))
		case string:
			if d, err := time.ParseDuration(v); err == nil {
				return d
			}
		}
		b.t.Fatalf("resync took %v (%T): want seconds", m["took"], m["took"])
		return 0
	}
	srcDone, tgtDone := last(src, srcFrom, "resync-done", "SyncSource"), last(tgt, tgtFrom, "resync-done", "SyncTarget")
	srcStart := last(src, srcFrom, "resync-start", "SyncSource")
	// The blocks that were out of sync, not what went on the wire: the
	// source coalesces nearby dirty runs and sends the clean blocks
	// between them too.
	sent, _ := srcDone["bytes"].(float64)
	if oos, ok := srcDone["out_of_sync_bytes"].(float64); ok && oos > 0 {
		sent = oos
	}
	full, _ := srcStart["full"].(bool)
	r := rsbRun{bytes: uint64(sent), srcTook: took(srcDone), tgtTook: took(tgtDone), startedFull: full}
	if secs := t1.Sub(t0).Seconds(); !t0.IsZero() && secs > 0 {
		// Clock ticks are 1/100 s: ticks per second is % of one core.
		r.cpuA = float64(cpu1.agents[src.name]-cpu0.agents[src.name]) / secs
		r.cpuB = float64(cpu1.agents[tgt.name]-cpu0.agents[tgt.name]) / secs
	}
	if total := cpu1.total - cpu0.total; !t0.IsZero() && total > 0 {
		// Shares of all cores, as % of one core.
		n := float64(runtime.NumCPU())
		r.hostBusy = 100 * n * float64(cpu1.busy-cpu0.busy) / float64(total)
		r.steal = 100 * n * float64(cpu1.steal-cpu0.steal) / float64(total)
	}
	return r
}

// rsbLogLen is how many bytes an agent has logged so far.
func rsbLogLen(p *node) int {
	p.logs.mu.Lock()
	defer p.logs.mu.Unlock()
	return p.logs.b.Len()
}

// rsbCount counts sub in an agent's log from byte offset from on,
// without copying the log.
func rsbCount(p *node, from int, sub string) int {
	p.logs.mu.Lock()
	defer p.logs.mu.Unlock()
	return bytes.Count(p.logs.b.Bytes()[from:], []byte(sub))
}

// rsbHashRate hashes n bytes in 1 MiB buffers with crypto/sha256 on one
// goroutine: what one core of this machine can hash.
func rsbHashRate(n int64) rsbRate {
	buf := make([]byte, 1<<20)
	_, _ = rand.Read(buf)
	start := time.Now()
	for done := int64(0); done < n; done += int64(len(buf)) {
		sha256.Sum256(buf)
	}
	return rsbRate{bytes: n, secs: time.Since(start).Seconds()}
}

// rsbCPU is a reading of the agents' and the machine's CPU time.
type rsbCPU struct {
	agents             map[string]int64 // clock ticks by node
	busy, steal, total int64            // /proc/stat, all cores, clock ticks
}

func (b *rsBench) cpuNow() rsbCPU {
	c := rsbCPU{agents: b.agentCPU()}
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	// cpu user nice system idle iowait irq softirq steal ...
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return c
	}
	for i, x := range f[1:] {
		n, _ := strconv.ParseInt(x, 10, 64)
		if i >= 8 {
			break // guest time is already in user
		}
		c.total += n
		switch i {
		case 3, 4: // idle, iowait
		case 7:
			c.steal += n
		default:
			c.busy += n
		}
	}
	return c
}

// dropCache writes back and drops both backing files' cached pages, so
// that a resync starts from the disk as the raw reads do.
func (b *rsBench) dropCache() {
	b.t.Helper()
	for _, path := range []string{b.alpha.Disk, b.bravo.Disk} {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			b.t.Fatal(err)
		}
		err = f.Sync()
		if err == nil {
			err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		}
		f.Close()
		if err != nil {
			b.t.Fatalf("dropping the cache of %s: %v", path, err)
		}
	}
}

// txBytes is what alpha's replication interface has sent so far.
func (b *rsBench) txBytes() uint64 {
	b.t.Helper()
	ifname := ""
	for _, l := range b.alpha.Links {
		if l.Network == "replication" {
			ifname = l.NodeEnd
		}
	}
	if ifname == "" {
		b.t.Fatal("alpha has no replication link")
	}
	s := strings.TrimSpace(b.v.run("alpha", "cat", "/sys/class/net/"+ifname+"/statistics/tx_bytes"))
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		b.t.Fatalf("tx_bytes of %s in alpha: %q", ifname, s)
	}
	return n
}

// rsbFioJSON is the part of fio's JSON output a raw disk job needs.
type rsbFioJSON struct {
	Jobs []struct {
		Error int         `json:"error"`
		Read  rsbFioGroup `json:"read"`
		Write rsbFioGroup `json:"write"`
	} `json:"jobs"`
}

type rsbFioGroup struct {
	IOBytes int64 `json:"io_bytes"`
	Runtime int64 `json:"runtime"` // ms; with end_fsync it includes the fsync
}

// diskFio reads or writes the first b.dirty bytes of a backing file
// sequentially in 1 MiB buffered pread/pwrite calls, like the engine,
// in a node; a write ends with an fsync that the rate includes. The file's
// cached pages are written back and dropped first.
func (b *rsBench) diskFio(node, path, rw, what string) rsbRate {
	b.t.Helper()
	b.dropCache()
	args := []string{"--rw=" + rw, "--bs=1M", fmt.Sprintf("--size=%d", b.dirty), "--filename=" + path}
	if rw == "write" {
		args = append(args, "--end_fsync=1")
	}
	return b.fioRun(node, what, rw == "write", b.dirty, args...)
}

// fioRun runs one buffered psync fio job in a node and returns the rate
// of what it read or wrote (a write job's time includes its end_fsync);
// it fails unless the job moved at least want bytes. The caller drops
// caches where it matters.
func (b *rsBench) fioRun(node, what string, write bool, want int64, args ...string) rsbRate {
	b.t.Helper()
	argv := append([]string{"fio", "--name=raw", "--output-format=json", "--ioengine=psync", "--direct=0"}, args...)
	stdout, stderr, err := b.exec(node, 5*time.Minute, argv...)
	if err != nil {
		b.t.Fatalf("%s: %s: %v\n%s%s", what, strings.Join(argv, " "), err, stderr, stdout)
	}
	var res rsbFioJSON
	if err := json.Unmarshal([]byte(fioDoc(stdout)), &res); err != nil || len(res.Jobs) != 1 || res.Jobs[0].Error != 0 {
		b.t.Fatalf("%s: fio's output (%v):\n%s\n%s", what, err, stdout, stderr)
	}
	g := res.Jobs[0].Read
	if write {
		g = res.Jobs[0].Write
	}
	// fio rounds the size up to whole blocks.
	if g.IOBytes < want || g.Runtime <= 0 {
		b.t.Fatalf("%s: fio moved %d bytes in %d ms, want at least %d bytes", what, g.IOBytes, g.Runtime, want)
	}
	r := rsbRate{bytes: g.IOBytes, secs: float64(g.Runtime) / 1000}
	b.t.Logf("%s in %s (%s): %.1f MiB/s", what, node, strings.Join(args, " "), r.mibps())
	return r
}

// linkRate sends n bytes over one TCP connection from alpha to bravo's
// replication address and measures until the receiver has read them all.
// Both ends are sockets of this process made in the nodes' network
// namespaces; the sender writes 1 MiB buffers, the receiver reads into
// 1 MiB and discards.
func (b *rsBench) linkRate(n int64) rsbRate {
	b.t.Helper()
	var ln net.Listener
	err := rsbInNetns(b.bravo.Netns, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(b.bravo.ReplicationAddress().String(), "0"))
		return err
	})
	if err != nil {
		b.t.Fatalf("listening in bravo: %v", err)
	}
	defer ln.Close()
	type result struct {
		n   int64
		end time.Time
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		buf := make([]byte, 1<<20)
		var total int64
		for {
			k, err := c.Read(buf)
			total += int64(k)
			if errors.Is(err, io.EOF) {
				got <- result{n: total, end: time.Now()}
				return
			}
			if err != nil {
				got <- result{n: total, err: err}
				return
			}
		}
	}()
	var conn net.Conn
	err = rsbInNetns(b.alpha.Netns, func() (err error) {
		conn, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		return err
	})
	if err != nil {
		b.t.Fatalf("connecting from alpha to bravo: %v", err)
	}
	buf := make([]byte, 1<<20)
	_, _ = rand.Read(buf)
	start := time.Now()
	for sent := int64(0); sent < n; {
		k, err := conn.Write(buf[:min(int64(len(buf)), n-sent)])
		sent += int64(k)
		if err != nil {
			b.t.Fatalf("sending to bravo: %v", err)
		}
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	var res result
	select {
	case res = <-got:
	case <-time.After(2 * time.Minute):
		b.t.Fatal("the receiver in bravo did not finish within 2 minutes")
	}
	conn.Close()
	if res.err != nil || res.n != n {
		b.t.Fatalf("bravo received %d of %d bytes: %v", res.n, n, res.err)
	}
	r := rsbRate{bytes: n, secs: res.end.Sub(start).Seconds()}
	b.t.Logf("link: %d MiB over one TCP connection in %.3f s: %.1f MiB/s", n>>20, r.secs, r.mibps())
	return r
}

// rsbInNetns runs fn on a thread of its own in a network namespace (a
// name under /run/netns). The thread is never unlocked, so it ends with
// fn's goroutine instead of going back to the runtime in that namespace;
// sockets fn makes stay in the namespace wherever they are used later.
func rsbInNetns(netns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/run/netns", netns))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", netns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// rsbMedianRate is the median of raw rates by MiB/s.
func rsbMedianRate(rs []rsbRate) rsbRate {
	s := append([]rsbRate(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].mibps() < s[j].mibps() })
	return s[len(s)/2]
}

// rsbMedianRun is the run with the median rate.
func rsbMedianRun(rs []rsbRun) rsbRun {
	s := append([]rsbRun(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].mibps() < s[j].mibps() })
	return s[len(s)/2]
}

func rsbSpread(rs []rsbRun, unit func(float64) string) string {
	lo, hi := rs[0].mibps(), rs[0].mibps()
	for _, r := range rs {
		lo, hi = min(lo, r.mibps()), max(hi, r.mibps())
	}
	return fmt.Sprintf("%s–%s", unit(lo), unit(hi))
}

func rsbSpreadRate(rs []rsbRate, gibs bool) string {
	lo, hi := rs[0].mibps(), rs[0].mibps()
	for _, r := range rs {
		lo, hi = min(lo, r.mibps()), max(hi, r.mibps())
	}
	if gibs {
		return fmt.Sprintf("%.2f–%.2f GiB/s", lo/1024, hi/1024)
	}
	return fmt.Sprintf("%.0f–%.0f MiB/s", lo, hi)
}

// report is the Markdown section body: setup, table, goals, limits.
func (b *rsBench) report() string {
	link, rd, wr, sha := rsbMedianRate(b.link), rsbMedianRate(b.rawRead), rsbMedianRate(b.rawWrite), rsbMedianRate(b.sha)
	disk := min(rd.mibps(), wr.mibps())
	slower := min(link.mibps(), disk)
	slowerName := "the disk"
	if link.mibps() < disk {
		slowerName = "the link"
	}
	fsType := strings.TrimSpace(b.hostOutput("stat", "-f", "-c", "%T", filepath.Dir(b.disk)))
	fioVersion := strings.Replace(strings.TrimSpace(b.hostOutput("fio", "--version")), "fio-", "fio ", 1)
	mib := func(x float64) string { return fmt.Sprintf("%.0f", x) }
	gib := func(x float64) string { return fmt.Sprintf("%.2f", x/1024) }

	var s strings.Builder
	fmt.Fprintf(&s, "Two nodes in network namespaces (`internal/lab`) on one %d-core machine, replicating over each node's veth\n", runtime.NumCPU())
	fmt.Fprintf(&s, "into one bridge (198.51.100.0/24); a 1 GiB backing file per node (%d MiB of data, internal metadata) in the\n", b.dataSize>>20)
	fmt.Fprintf(&s, "host's file system (%s, as `stat -f` names it). After the initial sync, alpha (Primary) writes the whole data\n", fsType)
	s.WriteString("area once through the volume, so both replicas sit on allocated blocks. *Bitmap resync*: bravo's agent stops\n")
	fmt.Fprintf(&s, "(SIGTERM); %s in alpha writes %d MiB, a quarter of the data area, through the NBD socket at random\n", fioVersion, b.dirty>>20)
	s.WriteString("aligned offsets, each block once (`--rw=randwrite --io_size`, fio's random map, a new seed per run), as\n")
	s.WriteString("scattered 4 KiB blocks or as scattered 64 KiB extents; both backing files are fsynced and dropped from the\n")
	s.WriteString("page cache (`posix_fadvise(DONTNEED)`), and bravo's agent starts again. A resync's time is the larger of the\n")
	s.WriteString("`took` of the two `resync finished` log lines — the SyncTarget's, from the link's connect-time decision until\n")
	s.WriteString("bravo's data is synced to its file and bravo is UpToDate; its bytes are the SyncSource's. *Checksum resync*:\n")
	s.WriteString("both agents stop, the two data areas hash the same (SHA-256), both nodes get fresh metadata (`create-md\n")
	s.WriteString("--force`) and `resync { checksum = true }`, caches are dropped and alpha is promoted with `--force`: a full\n")
	s.WriteString("sync in which the source hashes each 1 MiB, the target hashes its own copy and answers \"in sync\".\n")
	s.WriteString("*Sent on the link* is what alpha's replication interface sent meanwhile (`tx_bytes`: frames, headers, bitmaps).\n")
	s.WriteString("*CPU* is user + system time from the first `resync started` line to the end, in % of one core: each agent's,\n")
	fmt.Fprintf(&s, "and the whole machine's busy time (at most %d00 %%; other work on the machine shows here).\n\n", runtime.NumCPU())
	s.WriteString("Raw rates, measured in the same run: *link* — one TCP connection from alpha to bravo's replication address,\n")
	s.WriteString("a Go sender writing 1 MiB buffers from memory and a receiver reading into 1 MiB and discarding (both sockets\n")
	s.WriteString("belong to the test process, made in the nodes' network namespaces), 1 GiB per run, until the last byte is\n")
	fmt.Fprintf(&s, "read; *disk* — fio psync, 1 MiB buffered sequential I/O over the first %d MiB of a backing file, its\n", rd.bytes>>20)
	s.WriteString("cache written back and dropped first: reads of alpha's file, and overwrites of bravo's ending with an fsync\n")
	s.WriteString("(`--end_fsync=1`, in the time); the raw disk rate is the lower of the two. *Random overwrites* — fio psync,\n")
	s.WriteString("4 KiB or 64 KiB buffered writes to a random quarter of an allocated scratch file of the data area's size\n")
	s.WriteString("beside the backing files (each block once), ending with an fsync in the time: the target's write pattern\n")
	s.WriteString("in a scattered resync, for comparison only (the goal is set against the sequential rate). *SHA-256* — Go's crypto/sha256\n")
	s.WriteString("over 1 MiB buffers on one goroutine, for the checksum resync. Each row is the median run; the last column\n")
	s.WriteString("is the range over the runs. *Ratio*: to the slower raw rate (link or disk) for the syncs, to the goal's\n")
	s.WriteString("1 GiB/s for the checksum resync.\n\n")

	s.WriteString("| what | bytes | seconds | rate | ratio | sent on the link | CPU: alpha, bravo, machine | runs: range |\n")
	s.WriteString("|---|---|---|---|---|---|---|---|\n")
	rawRow := func(what string, r rsbRate, all []rsbRate, gibs bool) {
		rate := fmt.Sprintf("%.0f MiB/s", r.mibps())
		if gibs {
			rate = fmt.Sprintf("%.2f GiB/s", r.mibps()/1024)
		}
		fmt.Fprintf(&s, "| %s | %d | %.3f | %s | — | — | — | %s (n=%d) |\n", what, r.bytes, r.secs, rate, rsbSpreadRate(all, gibs), len(all))
	}
	rawRow("raw link: one TCP stream alpha → bravo", link, b.link, false)
	rawRow("raw disk: sequential read of alpha's file", rd, b.rawRead, false)
	rawRow("raw disk: sequential write + fsync of bravo's file", wr, b.rawWrite, false)
	for _, p := range rsbPatterns {
		rawRow(fmt.Sprintf("raw disk: random %s overwrites of 25 %% of a %d MiB file + fsync", strings.TrimSuffix(p.bs, "k")+" KiB", b.dataSize>>20),
			rsbMedianRate(b.rawRand[p.bs]), b.rawRand[p.bs], false)
	}
	rawRow("raw SHA-256, one core", sha, b.sha, true)
	runRow := func(what string, r rsbRun, all []rsbRun, gibs bool) {
		rate, spread, ratio := fmt.Sprintf("%.0f MiB/s", r.mibps()), rsbSpread(all, mib)+" MiB/s", r.mibps()/slower
		if gibs {
			rate, spread, ratio = fmt.Sprintf("%.2f GiB/s", r.mibps()/1024), rsbSpread(all, gib)+" GiB/s", r.mibps()/1024
		}
		fmt.Fprintf(&s, "| %s | %d | %.3f | %s | %.2f | %.1f MiB | %.0f %%, %.0f %%, %.0f %% | %s (n=%d) |\n", what, r.bytes, r.secs(), rate,
			ratio, float64(r.linkBytes)/(1<<20), r.cpuA, r.cpuB, r.hostBusy, spread, len(all))
	}
	runRow("initial full sync, fresh volume (alpha's file all holes)", b.initial, []rsbRun{b.initial}, false)
	for _, p := range rsbPatterns {
		runRow(p.name, rsbMedianRun(b.bitmap[p.name]), b.bitmap[p.name], false)
	}
	cs := rsbMedianRun(b.checksum)
	runRow("checksum resync (full) of identical replicas", cs, b.checksum, true)
	s.WriteString("\n")
	// How much was dirty, as alpha counted it before each bitmap run.
	var dirt []string
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range rsbPatterns {
		for _, r := range b.bitmap[p.name] {
			x := 100 * float64(r.dirty) / float64(b.dataSize)
			lo, hi = min(lo, x), max(hi, x)
			dirt = append(dirt, fmt.Sprintf("%.2f %%", x))
		}
	}
	if fmt.Sprintf("%.2f", lo) == fmt.Sprintf("%.2f", hi) {
		fmt.Fprintf(&s, "Out of sync before every bitmap run (alpha's `out_of_sync_bytes`): %.2f %% of the data area.", lo)
	} else {
		fmt.Fprintf(&s, "Out of sync before each bitmap run (alpha's `out_of_sync_bytes`, in the table's order): %s of the data area.", strings.Join(dirt, ", "))
	}
	// Runs in which the machine was much busier than the two agents had
	// other processes competing (the bench shares the machine).
	busy, all := 0, append([]rsbRun{b.initial}, b.checksum...)
	for _, p := range rsbPatterns {
		all = append(all, b.bitmap[p.name]...)
	}
	for _, r := range all {
		if r.hostBusy > r.cpuA+r.cpuB+40 {
			busy++
		}
	}
	if busy > 0 {
		fmt.Fprintf(&s, "\nIn %d of the %d syncs the machine was busier than the two agents by more than 40 %% of a core: other\n", busy, len(all))
		s.WriteString("processes (kernel writeback, other work on the host) took CPU then; the ranges show the spread.")
	}
	s.WriteString("\n\n")

	fmt.Fprintf(&s, "- Goal: bitmap resync of 25 %% dirty blocks at ≥ 90 %% of the slower raw rate (%s, %.0f MiB/s):", slowerName, slower)
	var verdicts []string
	allMet := true
	for _, p := range rsbPatterns {
		x := rsbMedianRun(b.bitmap[p.name]).mibps() / slower
		allMet = allMet && x >= 0.9
		verdicts = append(verdicts, fmt.Sprintf(" %s **%.2f** — %s", strings.TrimPrefix(p.name, "bitmap resync, 25 % dirty as "), x, metOrNot(x >= 0.9)))
	}
	s.WriteString(strings.Join(verdicts, ";") + ".\n")
	csGiB := cs.mibps() / 1024
	fmt.Fprintf(&s, "- Goal: checksum resync of identical data ≥ 1 GiB/s: **%.2f GiB/s** — %s.\n", csGiB, metOrNot(csGiB >= 1))
	if allMet && csGiB >= 1 {
		return s.String()
	}

	s.WriteString("\nWhat limits these figures here:\n\n")
	if !allMet {
		small, big := rsbMedianRun(b.bitmap[rsbPatterns[0].name]), rsbMedianRun(b.bitmap[rsbPatterns[1].name])
		r4, r64 := rsbMedianRate(b.rawRand[rsbPatterns[0].bs]), rsbMedianRate(b.rawRand[rsbPatterns[1].bs])
		fmt.Fprintf(&s, "- A scattered resync writes scattered ranges on the target, so the disk-bound ceiling is the disk's\n")
		fmt.Fprintf(&s, "  random-write rate for that pattern, not its sequential rate: fio overwriting a random quarter of a\n")
		fmt.Fprintf(&s, "  %d MiB file in 4 KiB / 64 KiB blocks, then fsync, does %.0f / %.0f MiB/s here (%.2f / %.2f of the sequential\n",
			b.dataSize>>20, r4.mibps(), r64.mibps(), r4.mibps()/wr.mibps(), r64.mibps()/wr.mibps())
		fmt.Fprintf(&s, "  write). The resyncs reach %.0f / %.0f MiB/s of out-of-sync data: %.2f / %.2f of those rates.\n",
			small.mibps(), big.mibps(), small.mibps()/r4.mibps(), big.mibps()/r64.mibps())
		// A random quarter of n units forms about n·p·(1−p) runs of
		// 1/(1−p) units on average.
		runs4k, runs64k := float64(b.dataSize/4096)*0.25*0.75, float64(b.dataSize/(64<<10))*0.25*0.75
		fmt.Fprintf(&s, "- Scattered 4 KiB blocks form about %.0f runs of 1.33 blocks (5.3 KiB) on average. The source sends\n", runs4k)
		s.WriteString("  runs up to 32 KiB apart as one range, clean blocks between them included: far fewer and mostly\n")
		fmt.Fprintf(&s, "  sequential writes on the target, at the price of more bytes (%.0f MiB sent for %.0f MiB out of sync).\n",
			float64(small.linkBytes)/(1<<20), float64(small.bytes)/(1<<20))
		fmt.Fprintf(&s, "  64 KiB extents form about %.0f runs of 85 KiB, each a range of its own. Rates count the bytes that\n", runs64k)
		s.WriteString("  were out of sync, not the bytes sent.\n")
		s.WriteString("- The pipeline: the source reads 8 ranges at a time (the caches are dropped, so from the virtual disk)\n")
		s.WriteString("  with the next 32 read ahead (`posix_fadvise(WILLNEED)`) into reused buffers; the target receives on one\n")
		s.WriteString("  goroutine and writes on 4, starting the writeback of each range as it writes it (`sync_file_range`),\n")
		s.WriteString("  so that its checkpoints' and the last fdatasync find the data mostly on disk. A resync's time also\n")
		s.WriteString("  holds the connect-time exchange of bitmaps and the end: the source's bitmap flush and metadata\n")
		s.WriteString("  update (fsyncs, queued behind the target's writeback on the same disk), then the target's.\n")
		if big.hostBusy >= 75*float64(runtime.NumCPU()) {
			fmt.Fprintf(&s, "  In this run the machine was saturated (%.0f %% of %d00 %% busy in the 64 KiB case) while the agents got\n",
				big.hostBusy, runtime.NumCPU())
			fmt.Fprintf(&s, "  %.0f %% and %.0f %% of a core: other processes held the CPU, and every step of the pipeline waited for it.\n",
				big.cpuA, big.cpuB)
		} else {
			fmt.Fprintf(&s, "  CPU is not the bound: the agents use %.0f %% and %.0f %% of a core in the 64 KiB case (machine %.0f %% of %d00 %%).\n",
				big.cpuA, big.cpuB, big.hostBusy, runtime.NumCPU())
		}
	}
	if csGiB < 1 {
		// CPU-seconds the machine spent, and what hashing both copies at
		// the raw SHA-256 rate would take of them.
		spent := cs.hostBusy / 100 * cs.secs()
		hashing := 2 * float64(cs.bytes) / (1 << 20) / sha.mibps()
		fmt.Fprintf(&s, "- The checksum resync hashes every byte twice, on the source and on the target, and reads both copies.\n")
		fmt.Fprintf(&s, "  Go's SHA-256 does %.2f GiB/s on one core here, so with both nodes on %d shared cores 1 GiB/s needs about\n", sha.mibps()/1024, runtime.NumCPU())
		fmt.Fprintf(&s, "  %.0f %% of the machine for hashing alone, before reading and messages. Measured: %.2f GiB/s, the agents\n",
			100*2/(sha.mibps()/1024)/float64(runtime.NumCPU()), csGiB)
		fmt.Fprintf(&s, "  at %.0f %% and %.0f %% of a core, the machine %.0f %% of %d00 %% busy", cs.cpuA, cs.cpuB, cs.hostBusy, runtime.NumCPU())
		if cs.hostBusy >= 75*float64(runtime.NumCPU()) {
			fmt.Fprintf(&s, " — bound by CPU: of the %.1f CPU-seconds spent,\n", spent)
			fmt.Fprintf(&s, "  hashing both copies accounts for about %.1f; the rest went to reading both copies cold through the\n", hashing)
			s.WriteString("  page cache from the virtual disk (each side hashes up to 4–8 ranges in parallel into reused buffers,\n")
			s.WriteString("  reading ahead), the per-MiB hash and ack messages, and other processes. On two machines each node\n")
			s.WriteString("  would hash on cores of its own.\n")
		} else {
			s.WriteString(" — not bound by CPU: the reads of both\n")
			s.WriteString("  copies from the virtual disk and the per-MiB round trips set the rate.\n")
		}
	}
	return s.String()
}
