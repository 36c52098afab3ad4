package replicate

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hactl/hactl/replicate/meta"
	"github.com/hactl/hactl/replicate/txlog"
	"github.com/hactl/hactl/replicate/wire"
)

// opKind is what a write does to its range.
type opKind uint8

const (
	opWrite opKind = iota
	opTrim
	opZero
)

func (o opKind) String() string {
	return [...]string{"write", "trim", "write-zeroes"}[o]
}

// request is a write on the Primary from submission until both its sides
// are done: the local write, and the peer's (acked as its protocol says,
// and its epoch barrier-acked, or failed by a disconnect). Its
// activity-log extents are released when the last side lets go, so the
// log names every extent that may differ between the replicas after a
// crash of either node.
type request struct {
	id          uint64
	off, length int64
	first, last uint32 // activity-log extents

	refs     atomic.Int32 // local side + peer side
	doneOnce sync.Once
	done     chan struct{} // closed when the peer side is complete (or failed)
	// acked: the peer got the write (its protocol's ack, or its epoch's
	// barrier ack; sent, for protocol A), not failed by a teardown.
	acked atomic.Bool
}

func (r *request) complete() { r.doneOnce.Do(func() { close(r.done) }) }

// beginIO admits one I/O: only a Primary with a working disk serves any.
// The caller calls v.io.Done when the I/O is over.
func (v *Volume) beginIO() error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	switch {
	case v.closed:
		return ErrClosed
	case v.failed != nil:
		return fmt.Errorf("%w: %v", ErrDiskFailed, v.failed)
	case v.role != Primary:
		return ErrNotPrimary
	}
	v.io.Add(1)
	return nil
}

// ReadAt reads from the local disk; only a Primary serves reads.
func (v *Volume) ReadAt(p []byte, off int64) (int, error) {
	if err := v.beginIO(); err != nil {
		return 0, err
	}
	defer v.io.Done()
	n, err := v.cfg.Disk.ReadAt(p, off)
	if err != nil {
		return n, v.diskFailed("read", err)
	}
	v.stats.mu.Lock()
	v.stats.reads++
	v.stats.readBytes += uint64(n)
	v.stats.mu.Unlock()
	return n, nil
}

// WriteAt writes p at off, replicated per the volume's protocol; with fua
// it is durable on both nodes when it returns.
func (v *Volume) WriteAt(p []byte, off int64, fua bool) (int, error) {
	if err := v.submit(opWrite, p, off, int64(len(p)), fua); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Trim deallocates the range on both nodes; it reads as zeroes afterwards
// on both, so the replicas stay identical.
func (v *Volume) Trim(off, length int64) error { return v.submit(opTrim, nil, off, length, false) }

// WriteZeroes zeroes the range on both nodes, keeping it allocated.
func (v *Volume) WriteZeroes(off, length int64, fua bool) error {
	return v.submit(opZero, nil, off, length, fua)
}

// sector is the wire's unit: offsets and lengths sent to the peer are
// whole sectors.
const sector = wire.SectorSize

// maxRangeOp bounds one Trim or WriteZeroes request on the wire, so that
// it activates a bounded number of extents.
const maxRangeOp = 64 << 20

// submit runs one write through the Primary's write path.
func (v *Volume) submit(op opKind, p []byte, off, length int64, fua bool) error {
	if err := v.beginIO(); err != nil {
		return err
	}
	defer v.io.Done()
	if length <= 0 {
		return nil
	}
	if off < 0 || off+length > v.size {
		return fmt.Errorf("replicate: %v of %d bytes at %d beyond the volume's %d bytes", op, length, off, v.size)
	}
	aOff, aEnd := off&^(sector-1), (off+length+sector-1)&^(sector-1)
	if aOff != off || aEnd != off+length {
		switch op {
		case opTrim:
			// Advisory: trim the whole sectors inside, the same on both
			// nodes.
			in, inEnd := aOff, aEnd
			if in != off {
				in += sector
			}
			if inEnd != off+length {
				inEnd -= sector
			}
			if inEnd <= in {
				return nil
			}
			off, length = in, inEnd-in
			aOff, aEnd = off, off+length
		case opZero:
			return v.zeroUnaligned(off, length, fua)
		}
	}
	// Overlapping writes one after the other, in the same order here and
	// on the peer.
	release, err := v.inflight.Acquire(v.ctx, uint64(aOff), uint64(aEnd-aOff))
	if err != nil {
		return ErrClosed
	}
	defer release()
	if op == opWrite && (aOff != off || aEnd != off+length) {
		// The peer takes whole sectors: complete the partial ones from the
		// local disk, which is the Primary's truth (the range is ours now).
		buf := make([]byte, aEnd-aOff)
		if _, err := v.cfg.Disk.ReadAt(buf[:sector], aOff); err != nil {
			return v.diskFailed("read-modify-write", err)
		}
		if _, err := v.cfg.Disk.ReadAt(buf[len(buf)-sector:], aEnd-sector); err != nil {
			return v.diskFailed("read-modify-write", err)
		}
		copy(buf[off-aOff:], p)
		p, off, length = buf, aOff, aEnd-aOff
	}

	chunk := int64(wire.MaxData)
	if op != opWrite {
		chunk = maxRangeOp
	}
	reqs := make([]*request, 0, (length+chunk-1)/chunk)
	defer func() {
		for _, r := range reqs {
			v.unref(r)
		}
	}()
	var sent []*request
	for o := int64(0); o < length; o += chunk {
		n := min(chunk, length-o)
		first, last := meta.Extents(off+o, n)
		if err := v.activate(first, last); err != nil {
			return err
		}
		r := &request{off: off + o, length: n, first: first, last: last, done: make(chan struct{})}
		r.refs.Store(1)
		reqs = append(reqs, r)
		var part []byte
		if op == opWrite {
			part = p[o : o+n]
		}
		if v.send(op, r, part, fua) {
			sent = append(sent, r)
		}
	}
	lerr := v.local(op, p, off, length, fua)
	alone := len(sent) < len(reqs)
	for _, r := range sent {
		<-r.done // resolved by an ack, or by the teardown of the link
		if !r.acked.Load() {
			alone = true
		}
	}
	if lerr != nil {
		return v.diskFailed(op.String(), lerr)
	}
	if alone {
		// The peer lacks this write (it is in the bitmap): it completes
		// only if this node may write alone.
		if err := v.completeAlone(); err != nil {
			return err
		}
	}
	v.stats.mu.Lock()
	v.stats.writes++
	v.stats.writeBytes += uint64(length)
	v.stats.mu.Unlock()
	return nil
}

// zeroUnaligned zeroes a range that does not start or end on a sector:
// the partial sectors as ordinary writes of zeroes, the rest as one
// WriteZeroes. The caller holds an I/O reference.
func (v *Volume) zeroUnaligned(off, length int64, fua bool) error {
	end := off + length
	headEnd := min(end, (off+sector-1)&^(sector-1))
	tailStart := max(headEnd, end&^(sector-1))
	if headEnd > off {
		if err := v.submit(opWrite, zeroes[:headEnd-off], off, headEnd-off, fua); err != nil {
			return err
		}
	}
	if tailStart > headEnd {
		if err := v.submit(opZero, nil, headEnd, tailStart-headEnd, fua); err != nil {
			return err
		}
	}
	if end > tailStart {
		return v.submit(opWrite, zeroes[:end-tailStart], tailStart, end-tailStart, fua)
	}
	return nil
}

// send hands the write to the peer when the link is up, and reports
// whether it did; otherwise the write's blocks go into the bitmap.
func (v *Volume) send(op opKind, r *request, p []byte, fua bool) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	pc := v.pc
	if pc == nil {
		v.m.Bitmap().Set(meta.Blocks(r.off, r.length))
		return false
	}
	proto := v.cfg.Protocol
	flags := proto.AckFlags()
	if fua {
		// Durable on both sides before the application hears back.
		proto = txlog.ProtocolC
		flags = wire.WriteFUA | txlog.ProtocolC.AckFlags()
	}

	v.sendMu.Lock()
	defer v.sendMu.Unlock()
	v.reqMu.Lock()
	v.ids++
	r.id = v.ids
	v.reqs[r.id] = r
	v.reqMu.Unlock()
	r.refs.Add(1)
	epoch, barrier, err := v.tl.Add(txlog.Write{ID: r.id, Offset: uint64(r.off), Length: uint64(r.length), Proto: proto})
	if err != nil {
		// Cannot happen with a fresh ID and a checked range; keep the
		// write safe anyway.
		v.forget(r)
		v.m.Bitmap().Set(meta.Blocks(r.off, r.length))
		return false
	}
	var msg wire.Msg
	switch op {
	case opWrite:
		msg = &wire.Data{BlockID: r.id, Epoch: epoch, Offset: uint64(r.off), Flags: flags, Payload: p}
	case opTrim:
		msg = &wire.Trim{BlockID: r.id, Epoch: epoch, Offset: uint64(r.off), Flags: flags, Length: uint32(r.length)}
	case opZero:
		msg = &wire.WriteZeroes{BlockID: r.id, Epoch: epoch, Offset: uint64(r.off), Flags: flags, Length: uint32(r.length)}
	}
	err = pc.link.Data.Send(msg)
	if err == nil && barrier {
		err = pc.link.Data.Send(&wire.Barrier{Epoch: epoch})
	}
	if err != nil {
		// The teardown fails every write in the log, this one included.
		pc.fail(fmt.Errorf("sending a write: %w", err))
		return true
	}
	if proto == txlog.ProtocolA {
		r.acked.Store(true)
		r.complete()
	}
	return true
}

// forget drops a request that never reached the transfer log.
func (v *Volume) forget(r *request) {
	v.reqMu.Lock()
	delete(v.reqs, r.id)
	v.reqMu.Unlock()
	r.refs.Add(-1)
}

// unref lets go of one side of r; the last releases its extents.
func (v *Volume) unref(r *request) {
	if r.refs.Add(-1) == 0 {
		v.releaseExtents(r.first, r.last)
	}
}

// peerDone resolves the peer side of the writes a barrier ack or a
// teardown returned from the transfer log.
func (v *Volume) peerDone(ws []txlog.Write, acked bool) {
	for _, w := range ws {
		v.reqMu.Lock()
		r := v.reqs[w.ID]
		delete(v.reqs, w.ID)
		v.reqMu.Unlock()
		if r == nil {
			continue
		}
		if acked {
			r.acked.Store(true)
		}
		r.complete()
		v.unref(r)
	}
}

// local applies a write to the local disk.
func (v *Volume) local(op opKind, p []byte, off, length int64, fua bool) error {
	err := applyLocal(v.cfg.Disk, op, p, off, length)
	if err == nil && fua {
		err = v.cfg.Disk.Sync()
	}
	return err
}

// zeroes is a shared source of zero bytes for disks without Discarder.
var zeroes = make([]byte, 1<<20)

func applyLocal(d Disk, op opKind, p []byte, off, length int64) error {
	switch op {
	case opWrite:
		_, err := d.WriteAt(p, off)
		return err
	case opTrim, opZero:
		if dc, ok := d.(Discarder); ok {
			if op == opTrim {
				return dc.PunchHole(off, length)
			}
			return dc.ZeroRange(off, length)
		}
		for length > 0 {
			n := min(length, int64(len(zeroes)))
			if _, err := d.WriteAt(zeroes[:n], off); err != nil {
				return err
			}
			off, length = off+n, length-n
		}
	}
	return nil
}

// Flush makes every write completed before it durable: the local disk is
// synced and the open epoch closed; it returns when the peer has
// acknowledged the epoch's barrier (every write of it on its stable
// storage), or, if the link goes down first, when those writes are in the
// bitmap.
func (v *Volume) Flush() error {
	if err := v.beginIO(); err != nil {
		return err
	}
	defer v.io.Done()
	pc, wait := v.flushEpoch()
	err := v.cfg.Disk.Sync()
	if pc != nil && wait != 0 {
		pc.waitEpoch(wait)
	}
	if err != nil {
		return v.diskFailed("flush", err)
	}
	v.stats.mu.Lock()
	v.stats.flushes++
	v.stats.mu.Unlock()
	return nil
}

// flushEpoch closes the open epoch for a flush and returns the link and
// the epoch whose barrier ack completes the flush (0: nothing to wait for).
func (v *Volume) flushEpoch() (*peerConn, uint64) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	pc := v.pc
	if pc == nil {
		return nil, 0
	}
	v.sendMu.Lock()
	defer v.sendMu.Unlock()
	wait, barrier := v.tl.Flush()
	if barrier {
		if err := pc.link.Data.Send(&wire.Barrier{Epoch: wait}); err != nil {
			pc.fail(fmt.Errorf("sending a barrier: %w", err))
		}
	}
	return pc, wait
}

// closeEpoch closes the open epoch if it has writes (the epoch timer, and
// a write waiting for activity-log room).
func (v *Volume) closeEpoch() {
	v.mu.RLock()
	defer v.mu.RUnlock()
	pc := v.pc
	if pc == nil {
		return
	}
	v.sendMu.Lock()
	defer v.sendMu.Unlock()
	if n, ok := v.tl.CloseEpoch(); ok {
		if err := pc.link.Data.Send(&wire.Barrier{Epoch: n}); err != nil {
			pc.fail(fmt.Errorf("sending a barrier: %w", err))
		}
	}
}

// activate makes extents first..last hot, committing an activity-log
// transaction when one of them was cold, and holds a reference on each.
func (v *Volume) activate(first, last uint32) error {
	al := v.m.AL()
	need := false
	for e := first; e <= last; e++ {
		if al.Activate(e) {
			need = true
		}
	}
	if !need {
		return nil
	}
	for {
		v.alMu.Lock()
		if v.allActive(first, last) {
			v.alMu.Unlock()
			return nil
		}
		free := v.alFreeSignal()
		err := al.Commit()
		v.alMu.Unlock()
		switch {
		case err == nil:
			v.stats.mu.Lock()
			v.stats.alCommits++
			v.stats.mu.Unlock()
			continue
		case errors.Is(err, meta.ErrALFull):
			// Every hot extent has writes waiting for their barrier ack:
			// send the barrier and wait for a release.
			v.closeEpoch()
			select {
			case <-free:
				continue
			case <-v.ctx.Done():
				v.releaseExtents(first, last)
				return ErrClosed
			}
		default:
			v.releaseExtents(first, last)
			return v.diskFailed("activity log", err)
		}
	}
}

func (v *Volume) allActive(first, last uint32) bool {
	for e := first; e <= last; e++ {
		if !v.m.AL().IsActive(e) {
			return false
		}
	}
	return true
}

// alFreeSignal returns a channel closed at the next extent release.
func (v *Volume) alFreeSignal() <-chan struct{} {
	v.reqMu.Lock()
	defer v.reqMu.Unlock()
	v.alWaiting = true
	return v.alFree
}

func (v *Volume) releaseExtents(first, last uint32) {
	for e := first; e <= last; e++ {
		v.m.AL().Release(e)
	}
	// Every write releases its extents: wake (and replace the channel)
	// only when a write is waiting for room in the log.
	v.reqMu.Lock()
	if v.alWaiting {
		close(v.alFree)
		v.alFree = make(chan struct{})
		v.alWaiting = false
	}
	v.reqMu.Unlock()
}

// DeviceView adapts a Volume to replicate/attach's Device (and Zeroer).
type DeviceView struct{ v *Volume }

// Device returns the view of v that a loop attachment serves.
func (v *Volume) Device() DeviceView { return DeviceView{v} }

func (d DeviceView) Size() int64                              { return d.v.Size() }
func (d DeviceView) ReadAt(p []byte, off int64) (int, error)  { return d.v.ReadAt(p, off) }
func (d DeviceView) WriteAt(p []byte, off int64) (int, error) { return d.v.WriteAt(p, off, false) }
func (d DeviceView) Flush() error                             { return d.v.Flush() }

// WriteZeroes zeroes (mayTrim: deallocates) the range on both nodes.
func (d DeviceView) WriteZeroes(off, n int64, mayTrim bool) error {
	if mayTrim {
		return d.v.Trim(off, n)
	}
	return d.v.WriteZeroes(off, n, false)
}
