package replicate

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/hactl/hactl/replicate/meta"
	"github.com/hactl/hactl/replicate/wire"
)

// The SyncTarget applies resync traffic on resyncWorkers goroutines: one
// receiver writing one range at a time left the disk idle while it read
// the next frame, and the source's window idle while it wrote.
//
// Order is kept per block, as the serial receiver kept it: the receiver
// registers every resync range in rs.order (a txlog.InFlight) in arrival
// order before handing it to a worker, and a replicated application write
// waits there for the resync ranges before it that overlap it (see
// resyncOrder). A resync range that arrives after an application write is
// registered only once that write is on disk, since the receiver applies
// application writes itself. So both replicas see each block's data in
// the source's order.
//
// The queue is short: it bounds the set that InFlight scans, the payload
// buffers held, and how far the receiver runs ahead of the disk.
const resyncQueue = 2 * resyncWorkers

// rsJob is a range the receiver has registered and a worker applies:
// one of data and hash.
type rsJob struct {
	data    *wire.ResyncData
	hash    *wire.ResyncHash
	release func() // leaves rs.order
}

// startTarget starts the target's workers; run waits for them.
func (rs *resync) startTarget() *sync.WaitGroup {
	var wg sync.WaitGroup
	for range resyncWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs.targetWorker()
		}()
	}
	return &wg
}

func (rs *resync) targetWorker() {
	for {
		select {
		case j := <-rs.jobs:
			var err error
			if j.data != nil {
				err = rs.writeData(j.data)
				wire.Release(j.data)
			} else {
				err = rs.onHash(j.hash)
			}
			// Only after the ack: a replicated write to these blocks
			// (and a NegAck for it) then follows the ack on the meta
			// connection, so the source never clears a bit the NegAck
			// set.
			j.release()
			if err != nil {
				rs.pc.fail(err)
				return
			}
		case <-rs.pc.ctx.Done():
			return
		case <-rs.walkDone:
			return
		}
	}
}

// enqueue registers a range in arrival order and hands it to a worker.
// It is the receiver's, so it runs one at a time.
func (rs *resync) enqueue(off uint64, length int64, j rsJob) error {
	ctx := rs.pc.ctx
	select {
	case <-rs.walkDone:
		// The workers are gone; the source never sends after the end.
		return fmt.Errorf("%w: resync traffic after the resync finished", wire.ErrUnexpected)
	default:
	}
	release, err := rs.order.Acquire(ctx, off, uint64(length))
	if err != nil {
		return context.Cause(ctx)
	}
	j.release = release
	select {
	case rs.jobs <- j:
		return nil
	case <-ctx.Done():
		release()
		return context.Cause(ctx)
	}
}

// onData is the receiver's side of a ResyncData: the message, and its
// payload buffer, belong to the resync from here on.
func (rs *resync) onData(m *wire.ResyncData) error {
	return rs.enqueue(m.Offset, int64(len(m.Payload)), rsJob{data: m})
}

// dispatchHash is the receiver's side of a ResyncHash. The target's copy
// is read and hashed by a worker, up to resyncWorkers at once: that is the
// slow part, and the order of the answers does not matter (a range
// written after its hash arrived compares as different and is sent again,
// which is correct).
func (rs *resync) dispatchHash(m *wire.ResyncHash) error {
	readAhead(rs.v.cfg.Disk, int64(m.Offset), int64(m.Length))
	return rs.enqueue(m.Offset, int64(m.Length), rsJob{hash: m})
}

// resyncOrder makes a replicated application write wait for the resync
// ranges that arrived before it and overlap it (the receiver calls it
// before it applies the write). Nothing to wait for outside a resync, or
// on the source.
func (pc *peerConn) resyncOrder(off uint64, length int64) error {
	rs := pc.rs
	if rs == nil || rs.source || length <= 0 {
		return nil
	}
	select {
	case <-rs.walkDone:
		// Every range was written and acked before the source ended
		// the resync.
		return nil
	default:
	}
	release, err := rs.order.Acquire(pc.ctx, off, uint64(length))
	if err != nil {
		return context.Cause(pc.ctx)
	}
	// The receiver applies the write before it registers anything else.
	release()
	return nil
}

// writeData writes a range and acks it. Its bits are cleared at the next
// checkpoint, after the data is synced.
func (rs *resync) writeData(m *wire.ResyncData) error {
	v := rs.v
	if _, err := v.cfg.Disk.WriteAt(m.Payload, int64(m.Offset)); err != nil {
		_ = v.diskFailed("resync write", err)
		return rs.pc.link.Meta.Send(&wire.ResyncAck{Offset: m.Offset, Length: uint32(len(m.Payload)), Status: wire.StatusIOError})
	}
	startWriteback(v.cfg.Disk, int64(m.Offset), int64(len(m.Payload)))
	rs.written(m.Offset, uint64(len(m.Payload)))
	return rs.pc.link.Meta.Send(&wire.ResyncAck{Offset: m.Offset, Length: uint32(len(m.Payload)), Status: wire.StatusOK})
}

// onHash is the target's side of a checksum resync: a range whose own
// copy hashes the same is in sync without a transfer; otherwise it asks
// the source for the data.
func (rs *resync) onHash(m *wire.ResyncHash) error {
	v := rs.v
	bp := getResyncBuf(int(m.Length))
	defer putResyncBuf(bp)
	buf := *bp
	if _, err := v.cfg.Disk.ReadAt(buf, int64(m.Offset)); err != nil {
		_ = v.diskFailed("resync read", err)
		return rs.pc.link.Meta.Send(&wire.ResyncAck{Offset: m.Offset, Length: m.Length, Status: wire.StatusIOError})
	}
	if sha256.Sum256(buf) != m.Hash {
		return rs.pc.link.Data.Send(&wire.ResyncRequest{Offset: m.Offset, Length: m.Length})
	}
	rs.written(m.Offset, uint64(m.Length))
	return rs.pc.link.Meta.Send(&wire.ResyncAck{Offset: m.Offset, Length: m.Length, Status: wire.StatusInSync})
}

// written notes a range that is on the target's disk (written, or found
// equal) for the next checkpoint.
func (rs *resync) written(off, length uint64) {
	first, n := meta.Blocks(int64(off), int64(length))
	rs.clearMu.Lock()
	rs.toClear = append(rs.toClear, [2]uint64{first, n})
	rs.clearMu.Unlock()
	rs.done.Add(length)
}
