package replicate

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/replicate/meta"
	"github.com/hactl/hactl/replicate/txlog"
	"github.com/hactl/hactl/replicate/wire"
)

// resync is one resync on a link: both sides exchange their bitmaps and
// OR them, so both know the union of what differs; the SyncSource then
// reads those blocks in device order and sends them, and clears a bit only
// when the SyncTarget has acknowledged writing its block. The target is
// Inconsistent (persisted before its first resync write) until the source
// says the resync is complete.
//
// Application writes during a resync are replicated as usual, and since a
// resync read takes the same in-flight lock as a write, the target gets
// every block's data in the order the source had it.
type resync struct {
	pc     *peerConn
	v      *Volume
	source bool
	full   bool

	bitmapDone chan struct{} // the peer's last bitmap chunk arrived
	walkDone   chan struct{} // closed when the resync finished here
	started    bool          // target: the sync UUID is applied (under v.mu)
	finished   bool          // under v.mu
	// source: finishing is set (under v.mu) once the end was offered to
	// the target; targetDone closes when the target confirms it.
	finishing  bool
	targetDone chan struct{}

	winMu    sync.Mutex
	inflight int64
	winCh    chan struct{}
	budget   int64 // bytes the pacer allows to send now (source)
	limited  bool  // the budget applies (a rate is in force)

	// Target: resync ranges received and not yet applied, in arrival
	// order (see resync_target.go).
	order txlog.InFlight
	jobs  chan rsJob

	// Target: ranges written by the resync whose bits are cleared only at
	// the next checkpoint, after the data is synced: a bit cleared on disk
	// must never stand for data that a crash can still lose.
	clearMu sync.Mutex
	toClear [][2]uint64 // first block, count
	cpMu    sync.Mutex  // one checkpoint at a time

	total, done atomic.Uint64 // bytes
	startedAt   time.Time
}

func newResync(pc *peerConn, source, full bool) *resync {
	return &resync{pc: pc, v: pc.v, source: source, full: full, bitmapDone: make(chan struct{}), walkDone: make(chan struct{}), winCh: make(chan struct{}), targetDone: make(chan struct{}),
		jobs: make(chan rsJob, resyncQueue), startedAt: time.Now()}
}

// run is the resync's own goroutine: send our bitmap and, on the source,
// the blocks.
func (rs *resync) run() {
	v, pc := rs.v, rs.pc
	bm := v.m.Bitmap()
	if rs.source && rs.full {
		bm.SetAll()
		if err := bm.Flush(); err != nil {
			pc.fail(v.diskFailed("bitmap", err))
			return
		}
	}
	if err := rs.sendBitmap(); err != nil {
		pc.fail(fmt.Errorf("sending the bitmap: %w", err))
		return
	}
	if !rs.source {
		wg := rs.startTarget()
		rs.checkpointLoop()
		wg.Wait()
		if rs.pc.ctx.Err() != nil {
			// Whatever reached the disk before the link went is kept.
			_ = rs.checkpoint(rs.v.diskFailed)
		}
		return
	}
	select {
	case <-rs.bitmapDone:
	case <-pc.ctx.Done():
		return
	}
	ctl := newResyncRate(v.cfg.ResyncRate, v.cfg.ResyncMinRate, v.cfg.ResyncMaxRate, rateTick)
	rs.winMu.Lock()
	rs.budget, rs.limited = ctl.next(false)
	rs.winMu.Unlock()
	pacerDone := make(chan struct{})
	defer func() { <-pacerDone }()
	go func() { defer close(pacerDone); rs.pace(ctl) }()
	uuid, err := v.newUUID()
	if err != nil {
		pc.fail(err)
		return
	}
	v.mu.Lock()
	err = v.m.Update(func(s *meta.Superblock) error {
		s.GI, _ = s.GI.StartSyncSource(uuid)
		return nil
	})
	sc := v.stateChangeLocked(v.role)
	v.mu.Unlock()
	if err != nil {
		pc.fail(v.diskFailed("metadata", err))
		return
	}
	if err := pc.link.Data.Send(sc); err != nil {
		pc.fail(err)
		return
	}
	rs.total.Store(bm.Count() * meta.BlockSize)
	pc.log.Info("resync started", zap.String("event", "resync-start"), zap.String("role", "SyncSource"),
		zap.Bool("full", rs.full), zap.Uint64("bytes", rs.total.Load()))

	// Walk until nothing is left: a NegAck during the resync can set bits
	// behind the walk.
	for pass := 0; bm.Count() > 0; pass++ {
		if err := rs.walk(); err != nil {
			if pc.ctx.Err() == nil {
				pc.fail(err)
			}
			return
		}
		if err := rs.drain(); err != nil {
			return
		}
	}
	rs.finishSource()
}

// The source's walk pipelines the resync: sourceWorkers ranges are read
// and sent at once (one read at a time left the walk waiting on the disk
// and the target idle), the next readAheadRanges ranges are already being
// read ahead into the page cache, and dirty runs at most resyncGapBlocks
// apart go as one range — the clean blocks between them are equal on
// both sides, so sending them is harmless, and scattered blocks no longer
// cost a message each. The target applies ranges on resyncWorkers
// goroutines (resync_target.go).
const (
	resyncWorkers   = 4
	sourceWorkers   = 8
	readAheadRanges = 32
	resyncGapBlocks = 8
)

// walk sends every dirty block once, in device order (ranges are handed
// out in order; up to sourceWorkers are in progress at a time).
func (rs *resync) walk() error {
	ctx, cancel := context.WithCancel(rs.pc.ctx)
	defer cancel()
	ranges := make(chan [2]int64, readAheadRanges)
	errc := make(chan error, sourceWorkers)
	var wg sync.WaitGroup
	for range sourceWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range ranges {
				if err := rs.sendRange(ctx, r[0], r[1]); err != nil {
					errc <- err
					cancel()
					return
				}
			}
		}()
	}
	err := rs.produce(ctx, ranges)
	close(ranges)
	wg.Wait()
	select {
	case e := <-errc:
		return e
	default:
		return err
	}
}

// produce hands out the dirty ranges, coalesced, in chunks of at most
// wire.MaxData.
func (rs *resync) produce(ctx context.Context, ranges chan<- [2]int64) error {
	bm := rs.v.m.Bitmap()
	const chunkBlocks = wire.MaxData / meta.BlockSize
	emit := func(s, e uint64) error {
		for b := s; b < e; {
			n := min(e-b, chunkBlocks)
			// Before it waits for a free worker: the read-ahead runs
			// while the workers read the ranges before it.
			readAhead(rs.v.cfg.Disk, int64(b*meta.BlockSize), int64(n*meta.BlockSize))
			select {
			case ranges <- [2]int64{int64(b * meta.BlockSize), int64(n * meta.BlockSize)}:
			case <-ctx.Done():
				return ctx.Err()
			}
			b += n
		}
		return nil
	}
	var cs, ce uint64
	have := false
	for from := uint64(0); ; {
		s, e, ok := bm.NextRange(from)
		if !ok {
			break
		}
		if have && s-ce <= resyncGapBlocks && e-cs <= chunkBlocks {
			ce = e
		} else {
			if have {
				if err := emit(cs, ce); err != nil {
					return err
				}
			}
			cs, ce, have = s, e, true
		}
		from = e
	}
	if have {
		return emit(cs, ce)
	}
	return nil
}

// sendRange reads one range under the write lock and sends it (or, in a
// checksum resync, its hash).
func (rs *resync) sendRange(ctx context.Context, off, length int64) error {
	v, pc := rs.v, rs.pc
	if err := rs.acquire(length); err != nil {
		return err
	}
	if err := rs.takeBudget(length); err != nil {
		rs.release(length)
		return err
	}
	release, err := v.inflight.Acquire(ctx, uint64(off), uint64(length))
	if err != nil {
		return err
	}
	defer release()
	bp := getResyncBuf(int(length))
	defer putResyncBuf(bp) // Send is done with it when it returns
	buf := *bp
	if _, err := v.cfg.Disk.ReadAt(buf, off); err != nil {
		return v.diskFailed("resync read", err)
	}
	if v.cfg.ResyncChecksum {
		// The target compares and asks for the data only if its copy
		// differs.
		return pc.link.Data.Send(&wire.ResyncHash{Offset: uint64(off), Length: uint32(length), Hash: sha256.Sum256(buf)})
	}
	return pc.link.Data.Send(&wire.ResyncData{Offset: uint64(off), Payload: buf})
}

func (rs *resync) acquire(n int64) error {
	return rs.waitWindow(func() bool { return rs.inflight == 0 || rs.inflight+n <= rs.v.cfg.ResyncWindow }, n)
}

// waitWindow waits, with winMu released, until ok holds under winMu, then
// counts n more bytes in flight.
func (rs *resync) waitWindow(ok func() bool, n int64) error {
	rs.winMu.Lock()
	for !ok() {
		ch := rs.winCh
		rs.winMu.Unlock()
		select {
		case <-ch:
		case <-rs.pc.ctx.Done():
			return rs.pc.ctx.Err()
		}
		rs.winMu.Lock()
	}
	rs.inflight += n
	rs.winMu.Unlock()
	return nil
}

func (rs *resync) release(n int64) {
	rs.winMu.Lock()
	rs.inflight -= n
	close(rs.winCh)
	rs.winCh = make(chan struct{})
	rs.winMu.Unlock()
}

// drain waits until every resync block sent is acknowledged.
func (rs *resync) drain() error {
	return rs.waitWindow(func() bool { return rs.inflight == 0 }, 0)
}

// onAck is the source's side of a ResyncAck: the block is on the target,
// so its bits may go.
func (rs *resync) onAck(m *wire.ResyncAck) error {
	if m.Status != wire.StatusOK && m.Status != wire.StatusInSync {
		return fmt.Errorf("resync of %d bytes at %d failed on the peer (status %d)", m.Length, m.Offset, m.Status)
	}
	first, n := meta.Blocks(int64(m.Offset), int64(m.Length))
	rs.v.m.Bitmap().Clear(first, n)
	rs.done.Add(uint64(m.Length))
	rs.v.stats.mu.Lock()
	rs.v.stats.resyncedBytes += uint64(m.Length)
	if m.Status == wire.StatusInSync {
		rs.v.stats.resyncSameBytes += uint64(m.Length)
	}
	rs.v.stats.mu.Unlock()
	rs.release(int64(m.Length))
	return nil
}

// pace ticks the rate controller until the resync ends, refilling the
// budget the walk spends. Periodically it also flushes the source's bitmap
// (progress survives a crash of the source too).
func (rs *resync) pace(ctl resyncRate) {
	v := rs.v
	t := time.NewTicker(rateTick)
	defer t.Stop()
	lastFlush := time.Now()
	var lastWrites uint64
	for {
		select {
		case <-rs.pc.ctx.Done():
			return
		case <-rs.walkDone:
			return
		case <-t.C:
		}
		v.stats.mu.Lock()
		writes := v.stats.writes
		v.stats.mu.Unlock()
		appActive := writes != lastWrites
		lastWrites = writes
		allow, limited := ctl.next(appActive)
		rs.winMu.Lock()
		// Unused budget does not pile up into a burst later; a debt from
		// the last chunk is paid back first.
		rs.budget, rs.limited = min(rs.budget+allow, allow), limited
		close(rs.winCh)
		rs.winCh = make(chan struct{})
		rs.winMu.Unlock()
		if time.Since(lastFlush) >= v.cfg.ResyncCheckpoint {
			_ = v.m.Bitmap().Flush()
			lastFlush = time.Now()
		}
	}
}

// takeBudget waits until the pacer allows sending, then spends n bytes
// (the budget may go negative by one chunk: it is paid back first).
func (rs *resync) takeBudget(n int64) error {
	rs.winMu.Lock()
	for rs.limited && rs.budget <= 0 {
		ch := rs.winCh
		rs.winMu.Unlock()
		select {
		case <-ch:
		case <-rs.pc.ctx.Done():
			return rs.pc.ctx.Err()
		}
		rs.winMu.Lock()
	}
	rs.budget -= n
	rs.winMu.Unlock()
	return nil
}

// checkpointLoop is the target's: every ResyncCheckpoint it makes the
// resync's progress durable, until the resync ends.
func (rs *resync) checkpointLoop() {
	t := time.NewTicker(rs.v.cfg.ResyncCheckpoint)
	defer t.Stop()
	for {
		select {
		case <-rs.pc.ctx.Done():
			return // run checkpoints once the workers are done
		case <-rs.walkDone:
			return
		case <-t.C:
			if err := rs.checkpoint(rs.v.diskFailed); err != nil {
				rs.pc.fail(err)
				return
			}
		}
	}
}

// checkpoint syncs the data the target has written, then clears their
// bits and writes the bitmap. The workers go on writing meanwhile: the
// ranges they finish during the sync wait for the next checkpoint.
// failed is v.diskFailed, or v.diskFailedLocked for a caller holding v.mu.
func (rs *resync) checkpoint(failed func(op string, err error) error) error {
	v := rs.v
	rs.cpMu.Lock()
	defer rs.cpMu.Unlock()
	rs.clearMu.Lock()
	done := rs.toClear
	rs.toClear = nil
	rs.clearMu.Unlock()
	if len(done) == 0 {
		return nil
	}
	if err := v.cfg.Disk.Sync(); err != nil {
		rs.clearMu.Lock()
		rs.toClear = append(rs.toClear, done...)
		rs.clearMu.Unlock()
		return failed("sync", err)
	}
	for _, r := range done {
		v.m.Bitmap().Clear(r[0], r[1])
	}
	if err := v.m.Bitmap().Flush(); err != nil {
		return failed("bitmap", err)
	}
	return nil
}

// onRequest is the source's answer to a target whose hash differed.
func (rs *resync) onRequest(m *wire.ResyncRequest) error {
	v, pc := rs.v, rs.pc
	release, err := v.inflight.Acquire(pc.ctx, m.Offset, uint64(m.Length))
	if err != nil {
		return err
	}
	defer release()
	bp := getResyncBuf(int(m.Length))
	defer putResyncBuf(bp)
	buf := *bp
	if _, err := v.cfg.Disk.ReadAt(buf, int64(m.Offset)); err != nil {
		return v.diskFailed("resync read", err)
	}
	return pc.link.Data.Send(&wire.ResyncData{Offset: m.Offset, Payload: buf})
}

// sendBitmap sends our whole dirty bitmap in chunks.
func (rs *resync) sendBitmap() error {
	bm := rs.v.m.Bitmap()
	words := (bm.Len() + 63) / 64
	buf := make([]byte, max(words, 1)*8)
	for from := uint64(0); ; {
		s, e, ok := bm.NextRange(from)
		if !ok {
			break
		}
		for i := s; i < e; i++ {
			buf[i/8] |= 1 << (i % 8)
		}
		from = e
	}
	for start := 0; start < len(buf); start += wire.MaxData {
		end := min(len(buf), start+wire.MaxData)
		m := &wire.BitmapChunk{Start: uint64(start) * 8, Last: end == len(buf), Bits: buf[start:end]}
		if err := rs.pc.link.Data.Send(m); err != nil {
			return err
		}
	}
	return nil
}

// onBitmap ORs a chunk of the peer's bitmap into ours.
func (rs *resync) onBitmap(m *wire.BitmapChunk) error {
	bm := rs.v.m.Bitmap()
	nbits := bm.Len()
	runStart, inRun := uint64(0), false
	for i := uint64(0); i < uint64(len(m.Bits))*8; i++ {
		bit := m.Start + i
		set := m.Bits[i/8]&(1<<(i%8)) != 0 && bit < nbits
		switch {
		case set && !inRun:
			runStart, inRun = bit, true
		case !set && inRun:
			bm.Set(runStart, bit-runStart)
			inRun = false
		}
	}
	if inRun {
		bm.Set(runStart, min(m.Start+uint64(len(m.Bits))*8, nbits)-runStart)
	}
	if m.Last {
		select {
		case <-rs.bitmapDone:
			return fmt.Errorf("%w: a second last bitmap chunk", wire.ErrUnexpected)
		default:
		}
		if !rs.source && rs.full {
			// The full sync's bits are on disk now: the pending intent
			// (set every bit on attach) can go, and progress from here
			// on is kept by the checkpoints.
			if err := bm.Flush(); err != nil {
				return rs.v.diskFailed("bitmap", err)
			}
			if err := rs.v.m.Update(func(s *meta.Superblock) error {
				s.Flags &^= meta.FlagFullSync
				return nil
			}); err != nil {
				return rs.v.diskFailed("metadata", err)
			}
		}
		close(rs.bitmapDone)
	}
	return nil
}

// finishTimeout bounds the wait for the target's confirmation of the end.
const finishTimeout = 30 * time.Second

// finishSource completes the resync: the target first, then the source.
// The source offers the generations it will have once finished; the
// target persists its end and answers; only then does the source persist
// its own. A crash in between leaves the two cases the connect-time
// decision resumes from without a full resync: the target not finished
// (a resync with what is left), or the target finished and the source
// not (equal current generations, the source's bitmap generation set:
// the fix-up of rules 4/5 and an empty resync). The other order — the
// source first — left a target whose current generation only the
// source's history knew: a full resync (research §10 #9).
func (rs *resync) finishSource() {
	v, pc := rs.v, rs.pc
	if err := v.m.Bitmap().Flush(); err != nil {
		pc.fail(v.diskFailed("bitmap", err))
		return
	}
	v.mu.Lock()
	offer := v.stateChangeLocked(v.role)
	offer.Gen = toWire(v.m.Super().GI.FinishSyncSource())
	offer.Disk = wire.DiskUpToDate
	rs.finishing = true
	v.mu.Unlock()
	if err := pc.link.Data.Send(offer); err != nil {
		pc.fail(err)
		return
	}
	t := time.NewTimer(finishTimeout)
	defer t.Stop()
	select {
	case <-rs.targetDone:
	case <-pc.ctx.Done():
		return
	case <-t.C:
		pc.fail(fmt.Errorf("the sync target did not confirm the end of the resync within %v", finishTimeout))
		return
	}
	v.mu.Lock()
	err := v.m.Update(func(s *meta.Superblock) error {
		s.GI = s.GI.FinishSyncSource()
		s.Flags |= meta.FlagConsistent | meta.FlagWasUpToDate
		s.Flags &^= meta.FlagCrashedPrimary | meta.FlagFullSync | meta.FlagOutdated
		return nil
	})
	if err == nil {
		rs.finished = true
		close(rs.walkDone)
		pc.state = Connected
		v.conn = Connected
	}
	v.mu.Unlock()
	if err != nil {
		pc.fail(v.diskFailed("metadata", err))
		return
	}
	pc.log.Info("resync finished", zap.String("event", "resync-done"), zap.String("role", "SyncSource"),
		zap.Uint64("bytes", rs.done.Load()), zap.Uint64("out_of_sync_bytes", rs.total.Load()),
		zap.Duration("took", time.Since(rs.startedAt)))
}

// onPeerState is the resync's part of a StateChange from the peer (under
// v.mu): on the target, the source's sync UUID starts the resync and its
// cleared bitmap UUID ends it. It returns our state to send back, if any.
func (rs *resync) onPeerState(m *wire.StateChange) (*wire.StateChange, error) {
	v, pc := rs.v, rs.pc
	if rs.source {
		if rs.finishing && !rs.finished && m.Disk == wire.DiskUpToDate && m.Gen.Bitmap == 0 {
			select {
			case <-rs.targetDone:
			default:
				close(rs.targetDone)
			}
		}
		return nil, nil
	}
	if rs.finished {
		return nil, nil
	}
	switch {
	case !rs.started && m.Gen.Bitmap != 0:
		err := v.m.Update(func(s *meta.Superblock) error {
			s.GI = s.GI.StartSyncTarget(m.Gen.Bitmap)
			return nil
		})
		if err != nil {
			return nil, v.diskFailedLocked("metadata", err)
		}
		rs.started = true
		rs.total.Store(v.m.Bitmap().Count() * meta.BlockSize)
		pc.log.Info("resync started", zap.String("event", "resync-start"), zap.String("role", "SyncTarget"),
			zap.Bool("full", rs.full), zap.Uint64("bytes", rs.total.Load()))
	case rs.started && m.Gen.Bitmap == 0 && m.Disk == wire.DiskUpToDate:
		if err := rs.checkpoint(v.diskFailedLocked); err != nil {
			return nil, err
		}
		if left := v.m.Bitmap().Count(); left != 0 {
			return nil, fmt.Errorf("the sync source says the resync is complete, but %d blocks were never sent", left)
		}
		if err := v.cfg.Disk.Sync(); err != nil {
			return nil, v.diskFailedLocked("sync", err)
		}
		if err := v.m.Bitmap().Flush(); err != nil {
			return nil, v.diskFailedLocked("bitmap", err)
		}
		err := v.m.Update(func(s *meta.Superblock) error {
			s.GI = s.GI.FinishSyncTarget(fromWire(m.Gen))
			s.Flags |= meta.FlagConsistent | meta.FlagWasUpToDate
			s.Flags &^= meta.FlagCrashedPrimary | meta.FlagFullSync | meta.FlagOutdated
			return nil
		})
		if err != nil {
			return nil, v.diskFailedLocked("metadata", err)
		}
		rs.finished = true
		close(rs.walkDone)
		v.disk = wire.DiskUpToDate
		pc.state = Connected
		v.conn = Connected
		pc.log.Info("resync finished", zap.String("event", "resync-done"), zap.String("role", "SyncTarget"),
			zap.Uint64("bytes", rs.done.Load()), zap.Duration("took", time.Since(rs.startedAt)))
		return v.stateChangeLocked(v.role), nil
	}
	return nil, nil
}
