package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/internal/lab"
)

// Fault injection on replicated volumes (research/replication.md §10):
// agents are killed, stopped and partitioned while a verifying writer
// writes to the Primary's block device from the test process, and every
// case ends with a check of each replica against what the writer was told
// was written, and a block-by-block comparison of both replicas with the
// agents stopped.

const (
	vfBlock      = 4096     // the writer's unit
	vfArea       = 16 << 20 // the writer writes within the first 16 MiB
	vfAreaBlocks = vfArea / vfBlock
)

// vfMagic starts every block the writer writes.
var vfMagic = [8]byte{'h', 'a', 'c', 't', 'l', 'V', 'F', '1'}

// vfWrite is one block of one write as the writer submitted it.
type vfWrite struct {
	seq    uint64
	writer int
	// start and end are the ledger's clock right before the pwrite and
	// right after it returned; end 0: it never returned.
	start, end uint64
	acked      bool
	sum        [32]byte
}

// vfLedger records every block write: what a replica may hold.
//
// A block may hold the data of write X only if no acknowledged write Y of
// the block was submitted after X completed (Y.start > X.end): that is,
// the last acknowledged version or one attempted after (or concurrently
// with) it — never an older one, never something nobody wrote. A block
// nobody acknowledged a write for may still read as zeroes (the disks
// start zeroed).
type vfLedger struct {
	clock, seq *atomic.Uint64 // shared with clones: sequence numbers stay unique
	mu         sync.Mutex
	blocks     map[uint64][]*vfWrite
}

func newVFLedger() *vfLedger {
	return &vfLedger{clock: new(atomic.Uint64), seq: new(atomic.Uint64), blocks: map[uint64][]*vfWrite{}}
}

// now is the ledger's clock: writes submitted later start after it.
func (l *vfLedger) now() uint64 { return l.clock.Load() }

// clone is an independent copy (for the two sides of a split brain).
func (l *vfLedger) clone() *vfLedger {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := &vfLedger{clock: l.clock, seq: l.seq, blocks: make(map[uint64][]*vfWrite, len(l.blocks))}
	for b, ws := range l.blocks {
		cs := make([]*vfWrite, len(ws))
		for i, w := range ws {
			cw := *w
			cs[i] = &cw
		}
		c.blocks[b] = cs
	}
	return c
}

// begin records a write of the blocks from first whose contents are in
// buf, and starts its clock.
func (l *vfLedger) begin(first uint64, buf []byte, seq uint64, writer int) []*vfWrite {
	n := len(buf) / vfBlock
	recs := make([]*vfWrite, n)
	for i := range n {
		recs[i] = &vfWrite{seq: seq, writer: writer, sum: sha256.Sum256(buf[i*vfBlock : (i+1)*vfBlock])}
	}
	l.mu.Lock()
	start := l.clock.Add(1)
	for i, r := range recs {
		r.start = start
		l.blocks[first+uint64(i)] = append(l.blocks[first+uint64(i)], r)
	}
	l.mu.Unlock()
	return recs
}

func (l *vfLedger) finish(recs []*vfWrite, acked bool) {
	l.mu.Lock()
	end := l.clock.Add(1)
	for _, r := range recs {
		r.end, r.acked = end, acked
	}
	l.mu.Unlock()
}

// distinct counts the blocks with a write for which pred holds.
func (l *vfLedger) distinct(pred func(*vfWrite) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ws := range l.blocks {
		for _, w := range ws {
			if pred(w) {
				n++
				break
			}
		}
	}
	return n
}

// writes counts the acknowledged block writes.
func (l *vfLedger) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ws := range l.blocks {
		for _, w := range ws {
			if w.acked {
				n++
			}
		}
	}
	return n
}

// check compares img, the first len(img)/4096 blocks of a replica, with
// the ledger; it returns one line per bad block.
func (l *vfLedger) check(img []byte) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var bad []string
	var zero [vfBlock]byte
	for b := uint64(0); b < uint64(len(img)/vfBlock); b++ {
		data := img[b*vfBlock : (b+1)*vfBlock]
		ws := l.blocks[b]
		var last *vfWrite // the last acknowledged write
		for _, w := range ws {
			if w.acked && (last == nil || w.end > last.end) {
				last = w
			}
		}
		lastText := "none acknowledged"
		if last != nil {
			lastText = fmt.Sprintf("last acknowledged seq %d (clock %d-%d)", last.seq, last.start, last.end)
		}
		if bytes.Equal(data, zero[:]) {
			if last != nil {
				bad = append(bad, fmt.Sprintf("block %d reads as zeroes; %s, %d writes attempted", b, lastText, len(ws)))
			}
			continue
		}
		if !bytes.Equal(data[:8], vfMagic[:]) {
			bad = append(bad, fmt.Sprintf("block %d holds garbage (starts %x); %s", b, data[:16], lastText))
			continue
		}
		hb, seq := binary.BigEndian.Uint64(data[8:]), binary.BigEndian.Uint64(data[16:])
		if hb != b {
			bad = append(bad, fmt.Sprintf("block %d holds the data of block %d (seq %d); %s", b, hb, seq, lastText))
			continue
		}
		var w *vfWrite
		for _, x := range ws {
			if x.seq == seq {
				w = x
			}
		}
		if w == nil {
			bad = append(bad, fmt.Sprintf("block %d holds seq %d, which was never written to it on this side; %s", b, seq, lastText))
			continue
		}
		if sha256.Sum256(data) != w.sum {
			bad = append(bad, fmt.Sprintf("block %d holds seq %d with a wrong checksum (torn or corrupt); %s", b, seq, lastText))
			continue
		}
		if w.end == 0 {
			continue // never completed: may have landed at any time
		}
		for _, y := range ws {
			if y.acked && y.start > w.end {
				bad = append(bad, fmt.Sprintf("block %d is stale: holds seq %d (clock %d-%d, acked %v) but seq %d was submitted after it completed (clock %d-%d) and acknowledged",
					b, seq, w.start, w.end, w.acked, y.seq, y.start, y.end))
				break
			}
		}
	}
	return bad
}

// vfFill writes block b's version seq into p: the header and a
// pseudo-random fill derived from it.
func vfFill(p []byte, b, seq uint64, writer int) {
	copy(p, vfMagic[:])
	binary.BigEndian.PutUint64(p[8:], b)
	binary.BigEndian.PutUint64(p[16:], seq)
	binary.BigEndian.PutUint64(p[24:], uint64(writer))
	x := b*0x9e3779b97f4a7c15 ^ seq*0xbf58476d1ce4e5b9 ^ uint64(writer)
	for i := 32; i+8 <= vfBlock; i += 8 {
		// splitmix64
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(p[i:], z^(z>>31))
	}
}

// vfWriterOpts shape a verifying writer's load.
type vfWriterOpts struct {
	Workers       int    // goroutines, each with one write in flight (default 4)
	First, Blocks uint64 // the blocks written (default: the whole area)
	MaxRun        int    // blocks per write at most (default 1)
	// Overlap lets writes to the same blocks be in flight at once;
	// otherwise a block has at most one write in flight.
	Overlap bool
	Pause   time.Duration // between one worker's writes
}

// vfWriter writes verifiable blocks to a block device with O_DIRECT from
// several goroutines, recording each write in a ledger. It stops on the
// first error or when told.
type vfWriter struct {
	t   *testing.T
	id  int
	dev string
	led *vfLedger
	o   vfWriterOpts
	fd  int

	stopCh    chan struct{}
	stopOnce  sync.Once
	closeOnce sync.Once
	wg        sync.WaitGroup
	done      chan struct{}

	mu   sync.Mutex
	busy map[uint64]bool
	err  error

	ok     atomic.Int64 // acknowledged writes
	maxLat atomic.Int64 // the longest write, in ns
}

func startVFWriter(t *testing.T, dev string, led *vfLedger, id int, o vfWriterOpts) *vfWriter {
	t.Helper()
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.Blocks == 0 {
		o.First, o.Blocks = 0, vfAreaBlocks
	}
	if o.MaxRun == 0 {
		o.MaxRun = 1
	}
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("writer %d: open %s: %v", id, dev, err)
	}
	w := &vfWriter{t: t, id: id, dev: dev, led: led, o: o, fd: fd, stopCh: make(chan struct{}), done: make(chan struct{}), busy: map[uint64]bool{}}
	for i := range o.Workers {
		buf, err := unix.Mmap(-1, 0, o.MaxRun*vfBlock, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			w.fail(err)
			break
		}
		w.wg.Add(1)
		go w.work(buf, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(id<<8|i))))
	}
	go func() { w.wg.Wait(); close(w.done) }()
	t.Cleanup(func() { _ = w.stop() })
	return w
}

func (w *vfWriter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.stopOnce.Do(func() { close(w.stopCh) })
}

// Err is the error that stopped the writer, if one did.
func (w *vfWriter) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *vfWriter) work(buf []byte, rng *rand.Rand) {
	defer w.wg.Done()
	defer func() { _ = unix.Munmap(buf) }()
	o := w.o
	for {
		select {
		case <-w.stopCh:
			return
		default:
		}
		run := uint64(1 + rng.IntN(o.MaxRun))
		b := o.First + rng.Uint64N(o.Blocks-run+1)
		if !o.Overlap {
			w.mu.Lock()
			free := true
			for i := b; i < b+run; i++ {
				free = free && !w.busy[i]
			}
			if free {
				for i := b; i < b+run; i++ {
					w.busy[i] = true
				}
			}
			w.mu.Unlock()
			if !free {
				continue
			}
		}
		seq := w.led.seq.Add(1)
		p := buf[:run*vfBlock]
		for i := uint64(0); i < run; i++ {
			vfFill(p[i*vfBlock:(i+1)*vfBlock], b+i, seq, w.id)
		}
		recs := w.led.begin(b, p, seq, w.id)
		t0 := time.Now()
		n, err := unix.Pwrite(w.fd, p, int64(b*vfBlock))
		if lat := int64(time.Since(t0)); lat > w.maxLat.Load() {
			w.maxLat.Store(lat) // racy max: good enough for a report
		}
		if err == nil && n != len(p) {
			err = fmt.Errorf("short write: %d of %d bytes", n, len(p))
		}
		w.led.finish(recs, err == nil)
		if !o.Overlap {
			w.mu.Lock()
			for i := b; i < b+run; i++ {
				delete(w.busy, i)
			}
			w.mu.Unlock()
		}
		if err != nil {
			w.fail(fmt.Errorf("writer %d: pwrite of %d blocks at block %d (seq %d) on %s: %w", w.id, run, b, seq, w.dev, err))
			return
		}
		w.ok.Add(1)
		if o.Pause > 0 {
			select {
			case <-w.stopCh:
				return
			case <-time.After(o.Pause):
			}
		}
	}
}

// waitAcked waits until the writer has n acknowledged writes; it fails
// the test if the writer stops first.
func (w *vfWriter) waitAcked(n int64, d time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for w.ok.Load() < n {
		select {
		case <-w.done:
			w.t.Fatalf("writer %d stopped after %d writes, waiting for %d: %v", w.id, w.ok.Load(), n, w.Err())
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("writer %d: only %d writes acknowledged in %v, waiting for %d (I/O hangs?)", w.id, w.ok.Load(), d, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitDone waits at most d for the writer to stop by itself.
func (w *vfWriter) waitDone(d time.Duration) bool {
	select {
	case <-w.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop stops the writer, waits for the writes in flight and closes the
// device. It returns the error that stopped it earlier, if any.
func (w *vfWriter) stop() error {
	w.stopOnce.Do(func() { close(w.stopCh) })
	if !w.waitDone(30 * time.Second) {
		w.t.Errorf("writer %d on %s: writes in flight did not return within 30s of the stop (hung I/O)", w.id, w.dev)
	}
	w.closeOnce.Do(func() { _ = unix.Close(w.fd) })
	return w.Err()
}

// vfReadArea reads the writer's area from a backing file or, with
// direct, from a block device with O_DIRECT.
func vfReadArea(path string, direct bool) ([]byte, error) {
	img := make([]byte, vfArea)
	if !direct {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if _, err := f.ReadAt(img, 0); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		return img, nil
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	const chunk = 1 << 20
	buf, err := unix.Mmap(-1, 0, chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	defer func() { _ = unix.Munmap(buf) }()
	for off := 0; off < vfArea; off += chunk {
		n, err := unix.Pread(fd, buf, int64(off))
		if err == nil && n != chunk {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, fmt.Errorf("read %s at %d: %w", path, off, err)
		}
		copy(img[off:], buf)
	}
	return img, nil
}

// vfVerify checks a replica, read from path, against the ledger and fails
// the test naming the bad blocks.
func vfVerify(t *testing.T, led *vfLedger, what, path string, direct bool) {
	t.Helper()
	img, err := vfReadArea(path, direct)
	if err != nil {
		t.Errorf("verify %s: %v", what, err)
		return
	}
	bad := led.check(img)
	if len(bad) == 0 {
		t.Logf("verify %s (%s): all %d blocks hold their last acknowledged version or a later attempt (%d acknowledged block writes)", what, path, vfAreaBlocks, led.acked())
		return
	}
	shown := bad
	if len(shown) > 25 {
		shown = shown[:25]
	}
	t.Errorf("verify %s (%s): %d of %d blocks are wrong:\n  %s", what, path, len(bad), vfAreaBlocks, strings.Join(shown, "\n  "))
}

// Lab helpers.

// newVolumeLabNoAgents is newVolumeLab without starting the agents.
func newVolumeLabNoAgents(t *testing.T, diskSize int64) *volumeLab {
	t.Helper()
	v := &volumeLab{&vrrpLab{t: t, l: newLab(t, lab.Options{Nodes: 2, DiskSize: diskSize}, "losetup", "mkfs.ext4", "mount", "sha256sum")}}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("skipping: needs /dev/fuse for attach = \"loop\"")
	}
	for _, n := range []string{"alpha", "bravo"} {
		v.hactl(n, "volume", "create-md", lab.VolumeName)
	}
	return v
}

// vfUp is a volume lab with alpha Primary after the initial full sync.
// It returns alpha's device.
func vfUp(t *testing.T, diskSize int64, edit ...func(string) string) (*volumeLab, string) {
	t.Helper()
	v := newVolumeLab(t, diskSize, edit...)
	for _, n := range []string{"alpha", "bravo"} {
		v.waitVolume(n, "volume connected", connected)
	}
	v.hactl("alpha", "volume", "primary", lab.VolumeName, "--force")
	v.vfWaitVolume("bravo", "initial sync done", 60*time.Second, func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.DiskState == "UpToDate" && vs.PeerRole == "Primary" && vs.OutOfSync == 0
	})
	dev := v.waitVolume("alpha", "attached", func(vs api.VolumeStatus) bool { return vs.Device != "" }).Device
	return v, dev
}

// vfProc is the agent running in a node now.
func (v *volumeLab) vfProc(name string) *node {
	v.t.Helper()
	for i := len(v.procs) - 1; i >= 0; i-- {
		p := v.procs[i]
		if p.name != name {
			continue
		}
		select {
		case <-p.exited:
		default:
			return p
		}
	}
	v.t.Fatalf("no agent running in %s", name)
	return nil
}

// vfWaitVolume is waitVolume with a timeout of its own; the last status
// seen is in the failure.
func (v *volumeLab) vfWaitVolume(node, what string, d time.Duration, cond func(api.VolumeStatus) bool) api.VolumeStatus {
	v.t.Helper()
	var last api.VolumeStatus
	seen := false
	deadline := time.Now().Add(d)
	for {
		vs, ok := v.volume(node)
		if ok {
			last, seen = vs, true
			if cond(vs) {
				return vs
			}
		}
		for _, n := range v.procs {
			select {
			case <-n.exited:
				if !n.stopping {
					v.t.Fatalf("waiting for %s: %s: %s exited: %v", node, what, n.name, n.err)
				}
			default:
			}
		}
		if time.Now().After(deadline) {
			if !seen {
				v.t.Fatalf("timed out after %v waiting for %s: %s; its agent never answered", d, node, what)
			}
			v.t.Fatalf("timed out after %v waiting for %s: %s; last seen: %s", d, node, what, vfShow(&last))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// vfShow formats a volume status for the log.
func vfShow(vs *api.VolumeStatus) string {
	s := fmt.Sprintf("%s/%s peer %s/%s %s oos=%d", vs.Role, vs.DiskState, vs.PeerRole, vs.PeerDisk, vs.Connection, vs.OutOfSync)
	if vs.Resync != nil {
		s += fmt.Sprintf(" resync %s %.0f%% of %d", vs.Resync.Direction, vs.Resync.Percent, vs.Resync.Total)
	}
	if vs.Problem != "" {
		s += fmt.Sprintf(" problem=%q", vs.Problem)
	}
	return s
}

// vfPrimary promotes a node and returns its device.
func (v *volumeLab) vfPrimary(node string, force bool) string {
	v.t.Helper()
	args := []string{"volume", "primary", lab.VolumeName}
	if force {
		args = append(args, "--force")
	}
	v.hactl(node, args...)
	return v.waitVolume(node, "attached", func(vs api.VolumeStatus) bool { return vs.Role == "Primary" && vs.Device != "" }).Device
}

// vfQuiesce stops every agent still running, cleanly.
func (v *volumeLab) vfQuiesce() {
	v.t.Helper()
	for _, p := range v.procs {
		select {
		case <-p.exited:
			continue // killed or stopped before
		default:
		}
		if err := p.term(v.t); err != nil {
			v.t.Errorf("%s: %v", p.name, err)
		}
	}
}

// vfSameData compares the replicas' data areas block by block (the agents
// are stopped) and checks both against the ledger.
func (v *volumeLab) vfSameData(led *vfLedger) {
	v.t.Helper()
	ha, hb := v.dataHash("alpha"), v.dataHash("bravo")
	if ha != hb {
		v.t.Errorf("replicas differ after quiescing: alpha %s, bravo %s; first differing blocks: %s", ha, hb, v.vfDiff())
	} else {
		v.t.Logf("replicas identical after quiescing (data area sha256 %s)", ha[:16])
	}
	if led != nil {
		for _, n := range []string{"alpha", "bravo"} {
			vfVerify(v.t, led, n+"'s backing file after quiescing", v.vfDisk(n), false)
		}
	}
}

// vfDiff lists the first blocks in which the two backing files differ.
func (v *volumeLab) vfDiff() string {
	a, errA := os.ReadFile(v.vfDisk("alpha"))
	b, errB := os.ReadFile(v.vfDisk("bravo"))
	if errA != nil || errB != nil {
		return fmt.Sprint(errA, errB)
	}
	var out []string
	for i := 0; i+vfBlock <= min(len(a), len(b)) && len(out) < 20; i += vfBlock {
		if !bytes.Equal(a[i:i+vfBlock], b[i:i+vfBlock]) {
			out = append(out, fmt.Sprint(i/vfBlock))
		}
	}
	return strings.Join(out, ", ")
}

func (v *volumeLab) vfDisk(node string) string {
	v.t.Helper()
	n, ok := v.l.Node(node)
	if !ok {
		v.t.Fatalf("no node %s", node)
	}
	return n.Disk
}

// vfBitmapResync checks from an agent's log that its last connect-time
// decision made it the sync target by bitmap (not in full, no split
// brain), and returns the bytes its resync started with.
func (v *volumeLab) vfBitmapResync(p *node) uint64 {
	v.t.Helper()
	logs := p.logs.String()
	if sb := logEvents(logs, "split-brain"); len(sb) > 0 {
		v.t.Errorf("%s detected a split brain: %v", p.name, sb)
	}
	ds := logEvents(logs, "decision")
	if len(ds) == 0 {
		v.t.Fatalf("%s logged no connect-time decision", p.name)
	}
	d := ds[len(ds)-1]
	if d["decision"] != "target" || d["full"] != false {
		v.t.Errorf("%s's connect-time decision: %v, want a bitmap-based resync as target", p.name, d)
	}
	var starts []map[string]any
	for _, e := range logEvents(logs, "resync-start") {
		if e["role"] == "SyncTarget" {
			starts = append(starts, e)
		}
	}
	if len(starts) == 0 {
		v.t.Fatalf("%s logged no resync start as SyncTarget", p.name)
	}
	s := starts[len(starts)-1]
	if s["full"] != false {
		v.t.Errorf("%s's resync was full: %v", p.name, s)
	}
	n, _ := s["bytes"].(float64)
	v.t.Logf("%s: decision %v (rule %v), resync of %d bytes", p.name, d["decision"], d["rule"], uint64(n))
	return uint64(n)
}

// vfWatch polls both nodes' status while it runs, collecting snapshots
// that claim the replicas are in sync while bits are still out of sync.
type vfWatch struct {
	stop, done chan struct{}
	mu         sync.Mutex
	polls      int
	bad        []string
}

func (v *volumeLab) vfWatchInSync() *vfWatch {
	w := &vfWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			for _, n := range []string{"alpha", "bravo"} {
				select {
				case <-w.stop:
					return
				default:
				}
				vs, ok := v.volume(n)
				if !ok {
					continue
				}
				w.mu.Lock()
				w.polls++
				if vs.Connection == "Connected" && vs.DiskState == "UpToDate" && vs.PeerDisk == "UpToDate" && vs.OutOfSync > 0 {
					w.bad = append(w.bad, fmt.Sprintf("%s at %s: %s", n, time.Now().Format("15:04:05.000"), vfShow(&vs)))
				}
				w.mu.Unlock()
			}
		}
	}()
	v.t.Cleanup(func() { w.finish() })
	return w
}

func (w *vfWatch) finish() (int, []string) {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.polls, w.bad
}

func vfMiB(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// #3: the Secondary's agent is killed while the Primary writes. The
// Primary goes on (degraded) and remembers what it wrote; the Secondary
// comes back and resyncs just those blocks (and its own activity log's).
func TestVolumeFaultKillSecondary(t *testing.T) {
	const size = 64 << 20
	v, dev := vfUp(t, size)
	led := newVFLedger()
	w := startVFWriter(t, dev, led, 1, vfWriterOpts{Workers: 4, Pause: 2 * time.Millisecond})
	w.waitAcked(300, 20*time.Second)

	killedAt := led.now()
	v.vfProc("bravo").kill9()
	v.vfWaitVolume("alpha", "the link is down", 15*time.Second, func(vs api.VolumeStatus) bool {
		return vs.Connection == "Connecting"
	})
	w.waitAcked(w.ok.Load()+400, 20*time.Second) // the Primary keeps writing, degraded
	vs, _ := v.volume("alpha")
	if vs.Role != "Primary" || vs.Connection != "Connecting" || vs.OutOfSync == 0 {
		t.Fatalf("alpha without its peer: %s; want Primary, Connecting, out of sync > 0", vfShow(&vs))
	}
	t.Logf("alpha degraded: %s", vfShow(&vs))

	restartAt := led.now()
	bravo := v.agent("bravo")
	v.vfWaitVolume("bravo", "resynced", 30*time.Second, func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.DiskState == "UpToDate" && vs.PeerDisk == "UpToDate" && vs.OutOfSync == 0
	})
	v.vfWaitVolume("alpha", "peer resynced", 10*time.Second, func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.PeerDisk == "UpToDate" && vs.OutOfSync == 0
	})
	w.waitAcked(w.ok.Load()+100, 20*time.Second) // still writing, replicated again
	if err := w.stop(); err != nil {
		t.Fatalf("the writer failed: %v", err)
	}

	resynced := v.vfBitmapResync(bravo)
	// Every block written while bravo was away is in the resync; nothing
	// outside the writer's area can be (bravo's own activity log covers
	// only extents the writer wrote).
	away := uint64(led.distinct(func(w *vfWrite) bool { return w.start > killedAt && w.start <= restartAt }))
	t.Logf("bravo away: %d distinct blocks written (%s); resync %s of a %s volume", away, vfMiB(away*vfBlock), vfMiB(resynced), vfMiB(size))
	if resynced < away*vfBlock || resynced > vfArea {
		t.Errorf("resync of %d bytes: want at least the %d bytes written while bravo was away and at most the writer's area (%d)", resynced, away*vfBlock, vfArea)
	}

	vfVerify(t, led, "alpha's device", dev, true)
	vfVerify(t, led, "bravo's backing file (Secondary, running)", v.vfDisk("bravo"), false)
	v.vfQuiesce()
	v.vfSameData(led)
}

// #1: the Primary's agent is killed during writes (protocol C). Every
// write acknowledged before is on the Secondary, which can be promoted;
// the old Primary returns as sync target of a bitmap-based resync.
func TestVolumeFaultKillPrimary(t *testing.T) {
	const size = 64 << 20
	v, dev := vfUp(t, size)
	led := newVFLedger()
	w := startVFWriter(t, dev, led, 1, vfWriterOpts{Workers: 8})
	w.waitAcked(1000, 20*time.Second)

	v.vfProc("alpha").kill9()
	if !w.waitDone(15 * time.Second) {
		t.Fatalf("the writer on alpha's %s got no error within 15s of the agent's death", dev)
	}
	werr := w.Err()
	if werr == nil || !errors.Is(werr, unix.EIO) {
		t.Errorf("writer stopped with %v, want EIO", werr)
	}
	_ = w.stop() // closes the device: the loop device is released (autoclear)
	t.Logf("writer on alpha stopped after %d acknowledged writes: %v", w.ok.Load(), werr)
	// What alpha's crash left: the FUSE mount in its mount namespace, and
	// the loop device, which autoclear releases once nobody holds it.
	loop := filepath.Base(dev)
	for end := time.Now().Add(3 * time.Second); vfLoopBound(loop) && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	staleLoop := vfLoopBound(loop)
	t.Logf("alpha after kill -9: FUSE mounts %q; %s bound after its last user closed it: %v",
		vfFuseMounts(v.run("alpha", "cat", "/proc/self/mounts")), dev, staleLoop)

	vs := v.vfWaitVolume("bravo", "lost alpha", 15*time.Second, func(vs api.VolumeStatus) bool { return vs.Connection == "Connecting" })
	if vs.DiskState != "UpToDate" {
		t.Errorf("bravo after losing its Primary: %s, want UpToDate data", vfShow(&vs))
	}
	out, err := v.hactlErr("bravo", "volume", "primary", lab.VolumeName)
	if err != nil {
		t.Fatalf("the engine refuses to promote bravo (UpToDate, disconnected) after its Primary died: %v\n%s", err, out)
	}
	devB := v.waitVolume("bravo", "attached", func(vs api.VolumeStatus) bool { return vs.Device != "" }).Device
	vfVerify(t, led, "bravo's device after failover", devB, true)

	t.Logf("bravo attached as %s", devB)

	// bravo, the new Primary, writes on while alpha comes back.
	w2 := startVFWriter(t, devB, led, 2, vfWriterOpts{Workers: 4, Pause: 2 * time.Millisecond})
	w2.waitAcked(300, 20*time.Second)
	alpha := v.agent("alpha")
	var sawPrimary []string
	notPrimary := func(vs api.VolumeStatus) {
		if vs.Role == "Primary" {
			sawPrimary = append(sawPrimary, vfShow(&vs))
		}
	}
	v.vfWaitVolume("alpha", "back as sync target", 15*time.Second, func(vs api.VolumeStatus) bool {
		notPrimary(vs)
		return vs.Connection == "SyncTarget" || connected(vs)
	})
	// The application's writes hold the resync at min_rate (1M): stop
	// them once the resync runs, so that it finishes at full speed.
	w2.waitAcked(w2.ok.Load()+50, 20*time.Second)
	if err := w2.stop(); err != nil {
		t.Fatalf("the writer on bravo failed: %v", err)
	}
	v.vfWaitVolume("alpha", "resynced from bravo", 30*time.Second, func(vs api.VolumeStatus) bool {
		notPrimary(vs)
		return connected(vs) && vs.DiskState == "UpToDate" && vs.OutOfSync == 0
	})
	if len(sawPrimary) > 0 {
		t.Errorf("the old Primary came back as Primary: %v", sawPrimary)
	}
	if m := vfFuseMounts(v.run("alpha", "cat", "/proc/self/mounts")); len(m) > 0 {
		t.Errorf("alpha's agent restarted but the stale FUSE mount is still there: %q", m)
	}
	if staleLoop && dev != devB && vfLoopBound(loop) {
		t.Errorf("alpha's agent restarted but the stale %s is still bound to %s", dev, vfLoopBacking(loop))
	}
	resynced := v.vfBitmapResync(alpha)
	if resynced > vfArea {
		t.Errorf("alpha resynced %s: more than the writer's area (%s), its activity log and bravo's writes lie within", vfMiB(resynced), vfMiB(vfArea))
	}
	vs, _ = v.volume("bravo")
	if vs.Role != "Primary" || vs.PeerRole != "Secondary" {
		t.Errorf("after alpha's return: bravo %s", vfShow(&vs))
	}
	vfVerify(t, led, "bravo's device after alpha's resync", devB, true)
	v.vfQuiesce()
	v.vfSameData(led)
}

// vfFuseMounts returns the FUSE mounts in a /proc/mounts text.
func vfFuseMounts(mounts string) []string {
	var out []string
	for _, l := range strings.Split(mounts, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && strings.HasPrefix(f[2], "fuse") && f[2] != "fusectl" {
			out = append(out, f[1]+" "+f[2])
		}
	}
	return out
}

func vfLoopBacking(loop string) string {
	b, err := os.ReadFile(filepath.Join("/sys/block", loop, "loop", "backing_file"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func vfLoopBound(loop string) bool { return vfLoopBacking(loop) != "" }

// #5: both nodes Primary while the replication link is cut, both write.
// On rejoin nothing is overwritten and the split brain is reported; the
// operator discards bravo's changes and bravo resyncs only the blocks
// either side changed.
func TestVolumeFaultSplitBrain(t *testing.T) {
	const size = 64 << 20
	v, devA := vfUp(t, size)
	led := newVFLedger()
	w := startVFWriter(t, devA, led, 1, vfWriterOpts{Workers: 4})
	w.waitAcked(500, 20*time.Second)
	if err := w.stop(); err != nil {
		t.Fatal(err)
	}

	// A total partition (both networks: with the cluster network up,
	// alpha would outdate bravo instead); alpha keeps writing in the first
	// half of the area, and notices the peer gone at the next ping.
	if err := vfPartition(v.l, "bravo"); err != nil {
		t.Fatal(err)
	}
	rejoined := false
	t.Cleanup(func() {
		if !rejoined {
			_ = vfRejoin(v.l, "bravo")
		}
	})
	half := uint64(vfAreaBlocks / 2)
	ledA := led.clone()
	splitAt := led.now()
	wa := startVFWriter(t, devA, ledA, 2, vfWriterOpts{Workers: 4, Blocks: half, Pause: time.Millisecond})
	start := time.Now()
	for _, n := range []string{"alpha", "bravo"} {
		v.vfWaitVolume(n, "the link is down", 20*time.Second, func(vs api.VolumeStatus) bool { return vs.Connection == "Connecting" })
	}
	t.Logf("partition noticed after %v", time.Since(start).Round(time.Millisecond))
	wa.waitAcked(wa.ok.Load()+300, 20*time.Second)
	if err := wa.stop(); err != nil {
		t.Fatalf("alpha's writer during the partition: %v", err)
	}
	t.Logf("alpha's writes stalled for up to %v while the link was silent", time.Duration(wa.maxLat.Load()).Round(time.Millisecond))

	// bravo's data is UpToDate and its peer is silent on every path: it
	// may be promoted (in a two-node cluster the gate would allow it too:
	// the split brain a total partition makes possible).
	ledB := led.clone()
	devB := v.vfPrimary("bravo", false)
	wb := startVFWriter(t, devB, ledB, 3, vfWriterOpts{Workers: 4, First: half, Blocks: vfAreaBlocks - half, Pause: time.Millisecond})
	wb.waitAcked(400, 20*time.Second)
	if err := wb.stop(); err != nil {
		t.Fatalf("bravo's writer during the partition: %v", err)
	}
	apartA := uint64(ledA.distinct(func(w *vfWrite) bool { return w.start > splitAt }))
	apartB := uint64(ledB.distinct(func(w *vfWrite) bool { return w.start > splitAt }))
	t.Logf("apart: alpha wrote %d distinct blocks, bravo %d", apartA, apartB)
	vfVerify(t, ledA, "alpha's device before the rejoin", devA, true)
	vfVerify(t, ledB, "bravo's device before the rejoin", devB, true)

	if err := vfRejoin(v.l, "bravo"); err != nil {
		t.Fatal(err)
	}
	rejoined = true

	// Both Primary: a split brain with two Primaries; the link must not
	// come up, and nobody's data moves.
	for _, n := range []string{"alpha", "bravo"} {
		vs := v.vfWaitVolume(n, "split brain with both Primary", 20*time.Second, func(vs api.VolumeStatus) bool {
			return vs.SplitBrain != nil
		})
		t.Logf("%s with both nodes Primary after the rejoin: %s", n, vfShow(&vs))
		if vs.SplitBrain.Primaries != 2 {
			t.Errorf("%s: split brain reports %d Primaries, want 2", n, vs.SplitBrain.Primaries)
		}
	}
	time.Sleep(3 * time.Second) // a reconnect attempt or two
	for _, n := range []string{"alpha", "bravo"} {
		if vs, _ := v.volume(n); connected(vs) || vs.Connection == "SyncSource" || vs.Connection == "SyncTarget" {
			t.Fatalf("%s connected with both nodes Primary after a split brain: %s", n, vfShow(&vs))
		}
	}
	vfVerify(t, ledA, "alpha's device, both Primary after the rejoin", devA, true)
	vfVerify(t, ledB, "bravo's device, both Primary after the rejoin", devB, true)

	// bravo, the victim, steps down: the split brain stays.
	v.hactl("bravo", "volume", "secondary", lab.VolumeName)
	for _, n := range []string{"alpha", "bravo"} {
		// The counts are those of the latest handshake (retried every
		// 5 s while StandAlone); wait for one that saw every write.
		vs := v.vfWaitVolume(n, "split brain reported with every change counted", 20*time.Second, func(vs api.VolumeStatus) bool {
			return vs.SplitBrain != nil && vs.SplitBrain.ChangedBytes["alpha"] >= apartA*vfBlock && vs.SplitBrain.ChangedBytes["bravo"] >= apartB*vfBlock
		})
		if vs.Connection == "Connected" || vs.Connection == "SyncSource" || vs.Connection == "SyncTarget" ||
			!strings.Contains(vs.Problem, "hactl volume resolve "+lab.VolumeName+" --discard") {
			t.Errorf("%s in split brain: %s; want not connected and the resolve command named", n, vfShow(&vs))
		}
		t.Logf("%s: problem %q; changed %v", n, vs.Problem, vs.SplitBrain.ChangedBytes)
		if vs.SplitBrain.ChangedBytes["alpha"] < apartA*vfBlock || vs.SplitBrain.ChangedBytes["bravo"] < apartB*vfBlock {
			t.Errorf("%s: split brain reports changes %v, but alpha wrote %d and bravo %d bytes apart", n, vs.SplitBrain.ChangedBytes, apartA*vfBlock, apartB*vfBlock)
		}
	}
	vfVerify(t, ledA, "alpha's device in split brain", devA, true)
	vfVerify(t, ledB, "bravo's backing file in split brain", v.vfDisk("bravo"), false)

	bravo := v.vfProc("bravo")
	v.hactl("alpha", "volume", "resolve", lab.VolumeName, "--discard", "bravo")
	v.vfWaitVolume("bravo", "resynced from alpha", 30*time.Second, func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.DiskState == "UpToDate" && vs.OutOfSync == 0 && vs.SplitBrain == nil
	})
	v.vfWaitVolume("alpha", "peer resynced", 10*time.Second, func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.PeerDisk == "UpToDate" && vs.OutOfSync == 0 && vs.SplitBrain == nil
	})
	logs := bravo.logs.String()
	ds := logEvents(logs, "decision")
	if len(ds) == 0 || ds[len(ds)-1]["decision"] != "target" || ds[len(ds)-1]["full"] != false {
		t.Errorf("bravo's decisions after the resolution: %v, want the last a bitmap-based resync as target", ds)
	}
	var resynced uint64
	if rs := logEvents(logs, "resync-start"); len(rs) == 0 || rs[len(rs)-1]["role"] != "SyncTarget" || rs[len(rs)-1]["full"] != false {
		t.Errorf("bravo's resyncs: %v; want the last a bitmap-based one as SyncTarget", rs)
	} else {
		n, _ := rs[len(rs)-1]["bytes"].(float64)
		resynced = uint64(n)
	}
	t.Logf("bravo resynced %s (alpha changed %d blocks, bravo %d)", vfMiB(resynced), apartA, apartB)
	if resynced < (apartA+apartB)*vfBlock || resynced > vfArea {
		t.Errorf("bravo resynced %d bytes: want the union of the changed blocks (at least %d bytes, disjoint halves) and at most the writer's area", resynced, (apartA+apartB)*vfBlock)
	}
	vfVerify(t, ledA, "alpha's device after the resolution", devA, true)
	vfVerify(t, ledA, "bravo's backing file after the resolution (alpha's data)", v.vfDisk("bravo"), false)
	v.vfQuiesce()
	v.vfSameData(ledA)
}

// #11: two nodes whose data never had anything in common (each promoted
// with --force on its own) must not connect, and neither disk is written.
func TestVolumeFaultUnrelatedData(t *testing.T) {
	v := newVolumeLabNoAgents(t, 32<<20)
	leds := map[string]*vfLedger{}
	for i, n := range []string{"alpha", "bravo"} {
		p := v.agent(n)
		v.vfWaitVolume(n, "running alone", 10*time.Second, func(vs api.VolumeStatus) bool { return vs.Connection == "Connecting" })
		dev := v.vfPrimary(n, true)
		leds[n] = newVFLedger()
		w := startVFWriter(t, dev, leds[n], i+1, vfWriterOpts{Workers: 4})
		w.waitAcked(300, 20*time.Second)
		if err := w.stop(); err != nil {
			t.Fatal(err)
		}
		if err := p.term(t); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]string{}
	for _, n := range []string{"alpha", "bravo"} {
		before[n] = v.dataHash(n)
		vfVerify(t, leds[n], n+"'s own data", v.vfDisk(n), false)
	}

	for _, n := range []string{"alpha", "bravo"} {
		v.agent(n)
	}
	for _, n := range []string{"alpha", "bravo"} {
		vs := v.vfWaitVolume(n, "refused as unrelated", 20*time.Second, func(vs api.VolumeStatus) bool {
			return strings.Contains(vs.Problem, "unrelated")
		})
		t.Logf("%s: %s", n, vfShow(&vs))
	}
	// At least one more attempt (StandAlone retries every 5s).
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range []string{"alpha", "bravo"} {
			if vs, ok := v.volume(n); ok && (vs.Connection != "Connecting" && vs.Connection != "StandAlone" || vs.PeerRole != "") {
				t.Fatalf("%s connected to a node with unrelated data: %s", n, vfShow(&vs))
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, n := range []string{"alpha", "bravo"} {
		if vs, _ := v.volume(n); vs.Role != "Secondary" || !strings.Contains(vs.Problem, "unrelated") {
			t.Errorf("%s after the refused connects: %s", n, vfShow(&vs))
		}
	}
	v.vfQuiesce()
	for _, n := range []string{"alpha", "bravo"} {
		if h := v.dataHash(n); h != before[n] {
			t.Errorf("%s's data changed across the refused connects: %s, was %s", n, h, before[n])
		}
		vfVerify(t, leds[n], n+"'s own data after the refused connects", v.vfDisk(n), false)
	}
}

// #13: writes to the same few blocks from many goroutines at once,
// some spanning several blocks: the Primary must hand overlapping writes
// to the peer in the order it applies them.
func TestVolumeFaultOverlappingWrites(t *testing.T) {
	v, dev := vfUp(t, 32<<20)
	led := newVFLedger()
	w := startVFWriter(t, dev, led, 1, vfWriterOpts{Workers: 8, Blocks: 16, MaxRun: 4, Overlap: true})
	time.Sleep(4 * time.Second)
	w.waitAcked(500, 10*time.Second)
	if err := w.stop(); err != nil {
		t.Fatalf("the writer failed: %v", err)
	}
	t.Logf("%d overlapping writes to 16 blocks acknowledged", w.ok.Load())
	vs, _ := v.volume("alpha")
	if !connected(vs) || vs.OutOfSync != 0 || vs.PeerDisk != "UpToDate" {
		t.Errorf("alpha after overlapping writes: %s", vfShow(&vs))
	}
	// The engine's own comparison agrees.
	if out, err := v.hactlErr("alpha", "volume", "verify", lab.VolumeName, "--wait"); err != nil {
		t.Errorf("online verify after overlapping writes: %v\n%s", err, out)
	} else {
		t.Logf("online verify: %s", strings.TrimSpace(out))
	}
	vfVerify(t, led, "alpha's device", dev, true)
	v.vfQuiesce()
	v.vfSameData(led)
}

// #17: the Secondary is stopped cleanly while the Primary writes, and
// started again: it must resync what it missed, and no node may claim
// in-sync data (Connected, UpToDate/UpToDate) while bits are out of sync.
func TestVolumeFaultCleanSecondaryRestart(t *testing.T) {
	const size = 64 << 20
	v, dev := vfUp(t, size)
	led := newVFLedger()
	w := startVFWriter(t, dev, led, 1, vfWriterOpts{Workers: 4, Pause: 3 * time.Millisecond})
	watch := v.vfWatchInSync()
	w.waitAcked(300, 20*time.Second)

	// A write acknowledged by bravo is also in alpha's bitmap if its
	// epoch was not barrier-acked when the link went: epochs close within
	// a second (EpochInterval). Writes completed before settledAt were.
	settledAt := led.now()
	time.Sleep(2 * time.Second)
	if err := v.vfProc("bravo").term(t); err != nil {
		t.Fatalf("bravo's agent stopping: %v", err)
	}
	goneAt := led.now()
	v.vfWaitVolume("alpha", "the link is down", 10*time.Second, func(vs api.VolumeStatus) bool { return vs.Connection == "Connecting" })
	w.waitAcked(w.ok.Load()+400, 20*time.Second)
	vs, _ := v.volume("alpha")
	t.Logf("alpha without bravo: %s", vfShow(&vs))
	if vs.OutOfSync == 0 {
		t.Errorf("alpha wrote without its peer but shows nothing out of sync: %s", vfShow(&vs))
	}

	restartAt := led.now()
	bravo := v.agent("bravo")
	v.vfWaitVolume("bravo", "resynced", 30*time.Second, func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.DiskState == "UpToDate" && vs.PeerDisk == "UpToDate" && vs.OutOfSync == 0
	})
	v.vfWaitVolume("alpha", "peer resynced", 10*time.Second, func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.PeerDisk == "UpToDate" && vs.OutOfSync == 0
	})
	syncedAt := led.now()
	w.waitAcked(w.ok.Load()+200, 20*time.Second) // go on writing, watched, after the resync
	if err := w.stop(); err != nil {
		t.Fatalf("the writer failed: %v", err)
	}
	polls, bad := watch.finish()
	t.Logf("%d status snapshots taken during the test", polls)
	if len(bad) > 0 {
		t.Errorf("%d snapshots claim Connected UpToDate/UpToDate with blocks out of sync:\n  %s", len(bad), strings.Join(bad, "\n  "))
	}
	for _, n := range []string{"alpha", "bravo"} {
		if vs, _ := v.volume(n); !connected(vs) || vs.DiskState != "UpToDate" || vs.PeerDisk != "UpToDate" || vs.OutOfSync != 0 {
			t.Errorf("%s at the end: %s", n, vfShow(&vs))
		}
	}

	resynced := v.vfBitmapResync(bravo)
	// At least every block written after bravo was gone; at most the
	// blocks of writes not barrier-acked when it was stopped, or
	// submitted until the resync ended.
	least := uint64(led.distinct(func(w *vfWrite) bool { return w.start > goneAt && w.start <= restartAt }))
	most := uint64(led.distinct(func(w *vfWrite) bool { return (w.end == 0 || w.end > settledAt) && w.start <= syncedAt }))
	t.Logf("resync %s; blocks written while bravo was away: at least %d, at most %d", vfMiB(resynced), least, most)
	if resynced < least*vfBlock || resynced > most*vfBlock {
		t.Errorf("resync of %d bytes: want between %d and %d (the dirty bits)", resynced, least*vfBlock, most*vfBlock)
	}
	vfVerify(t, led, "alpha's device", dev, true)
	v.vfQuiesce()
	v.vfSameData(led)
}

// #8: the sync target's agent is killed in the middle of a (full) resync:
// it stays Inconsistent, cannot be promoted, and resumes from what was
// left, not from the start.
func TestVolumeFaultSyncTargetCrash(t *testing.T) {
	const size = 256 << 20
	const rate = 16 << 20
	slow := func(s string) string {
		const attach = "  attach   = \"loop\"\n"
		if !strings.Contains(s, attach) {
			t.Fatalf("the lab's cluster file has no %q line:\n%s", attach, s)
		}
		return strings.Replace(s, attach, attach+"  resync {\n    rate = \"16M\"\n  }\n", 1)
	}
	v := newVolumeLab(t, size, slow)
	for _, n := range []string{"alpha", "bravo"} {
		v.waitVolume(n, "volume connected", connected)
	}
	dev := v.vfPrimary("alpha", true)
	led := newVFLedger()
	w := startVFWriter(t, dev, led, 1, vfWriterOpts{Workers: 2, Pause: 5 * time.Millisecond})

	var total, done uint64
	v.vfWaitVolume("bravo", "full resync half done", 30*time.Second, func(vs api.VolumeStatus) bool {
		if vs.Resync == nil || vs.Resync.Direction != "target" {
			return false
		}
		total, done = vs.Resync.Total, vs.Resync.Done
		return vs.Resync.Percent >= 55
	})
	v.vfProc("bravo").kill9()
	t.Logf("bravo killed with %s of %s resynced", vfMiB(done), vfMiB(total))
	if total < size/2 {
		t.Errorf("the initial resync is only %s; want a full one", vfMiB(total))
	}
	v.vfWaitVolume("alpha", "lost bravo", 10*time.Second, func(vs api.VolumeStatus) bool { return vs.Connection == "Connecting" })

	// bravo comes back cut off from alpha: what does it hold?
	if err := v.l.Isolate("bravo", "replication"); err != nil {
		t.Fatal(err)
	}
	rejoined := false
	t.Cleanup(func() {
		if !rejoined {
			_ = v.l.Rejoin("bravo", "replication")
		}
	})
	bravo := v.agent("bravo")
	vs := v.vfWaitVolume("bravo", "restarted", 10*time.Second, func(vs api.VolumeStatus) bool { return vs.Connection == "Connecting" })
	t.Logf("bravo restarted alone: %s", vfShow(&vs))
	if vs.DiskState != "Inconsistent" {
		t.Errorf("bravo after dying mid-resync: disk %s, want Inconsistent", vs.DiskState)
	}
	left := vs.OutOfSync
	// Progress is made durable every 2s; its activity log adds at most
	// the writer's area.
	slack := uint64(2*rate + 8<<20 + vfArea)
	if left == 0 || left > total-done+slack || left > total*4/5 {
		t.Errorf("bravo restarts with %s out of sync; %s of %s were done: want the rest (at most %s), not the whole",
			vfMiB(left), vfMiB(done), vfMiB(total), vfMiB(total-done+slack))
	}
	if out, err := v.hactlErr("bravo", "volume", "primary", lab.VolumeName); err == nil {
		t.Errorf("bravo, Inconsistent after an interrupted resync, was promoted:\n%s", out)
	} else {
		t.Logf("promotion refused: %s", strings.TrimSpace(out))
	}

	if err := v.l.Rejoin("bravo", "replication"); err != nil {
		t.Fatal(err)
	}
	rejoined = true
	v.vfWaitVolume("bravo", "resync resumed", 15*time.Second, func(vs api.VolumeStatus) bool { return vs.Connection == "SyncTarget" })
	v.vfWaitVolume("bravo", "resync finished", time.Duration(left/rate+20)*time.Second, func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.DiskState == "UpToDate" && vs.OutOfSync == 0
	})
	if err := w.stop(); err != nil {
		t.Fatalf("the writer failed: %v", err)
	}
	resumed := v.vfBitmapResync(bravo)
	if resumed > left+slack || resumed > total*4/5 {
		t.Errorf("the resumed resync is %s; %s were left of %s", vfMiB(resumed), vfMiB(left), vfMiB(total))
	}
	vfVerify(t, led, "alpha's device", dev, true)
	v.vfQuiesce()
	v.vfSameData(led)
}

// The checker itself: it must catch stale, lost, foreign, misplaced and
// corrupt blocks, and accept what overlapping or failed writes may leave.
func TestVolumeFaultLedgerCatchesBadReplicas(t *testing.T) {
	led := newVFLedger()
	img := make([]byte, vfArea)
	type op struct {
		seq  uint64
		recs []*vfWrite
	}
	begin := func(b uint64) op {
		seq := led.seq.Add(1)
		buf := make([]byte, vfBlock)
		vfFill(buf, b, seq, 1)
		return op{seq, led.begin(b, buf, seq, 1)}
	}
	write := func(b uint64, acked bool) uint64 {
		o := begin(b)
		led.finish(o.recs, acked)
		return o.seq
	}
	put := func(b, seq uint64) { vfFill(img[b*vfBlock:(b+1)*vfBlock], b, seq, 1) }

	s := write(1, true) // stale: a later acknowledged write exists
	write(1, true)
	put(1, s)
	write(2, true) // lost: reads as zeroes
	put(3, write(3, true))
	write(4, true) // a failed write after the acknowledged one may have landed
	put(4, write(4, false))
	put(5, write(5, true)) // garbage
	copy(img[5*vfBlock+8:], "garbage!")
	copy(img[5*vfBlock:], "not-ours")
	put(6, write(6, true)) // block 7's data in block 6
	vfFill(img[6*vfBlock:7*vfBlock], 7, write(7, true), 1)
	put(7, write(7, true))
	put(8, write(8, true)) // corrupt fill
	img[8*vfBlock+100] ^= 1
	write(9, false)              // nothing acknowledged: zeroes are fine
	x, y := begin(10), begin(10) // overlapping: either may win
	led.finish(y.recs, true)
	led.finish(x.recs, true)
	put(10, x.seq)
	put(11, write(11, true)) // a write from the other side of a split brain
	other := led.clone()
	put(11, write(11, true))

	want := map[string]bool{"1": true, "2": true, "5": true, "6": true, "8": true}
	got := map[string]bool{}
	for _, line := range led.check(img) {
		got[strings.Fields(line)[1]] = true
		t.Log(line)
	}
	for b := range want {
		if !got[b] {
			t.Errorf("block %s not reported", b)
		}
	}
	for b := range got {
		if !want[b] {
			t.Errorf("block %s reported wrongly", b)
		}
	}
	// The clone does not know the write made after it.
	if bad := other.check(img); len(bad) == 0 || !strings.Contains(strings.Join(bad, "\n"), "block 11 holds seq") {
		t.Errorf("a clone accepted a write it never saw: %v", bad)
	}
}

// vfPartition cuts node off both networks silently (a total partition:
// replication link, membership and VRRP alike); vfRejoin undoes it.
func vfPartition(l *lab.Lab, node string) error {
	for _, n := range []string{"replication", "service"} {
		if err := l.Isolate(node, n); err != nil {
			return err
		}
	}
	return nil
}

func vfRejoin(l *lab.Lab, node string) error {
	for _, n := range []string{"replication", "service"} {
		if err := l.Rejoin(node, n); err != nil {
			return err
		}
	}
	return nil
}
