package replicate

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/replicate/meta"
	"github.com/hactl/hactl/replicate/wire"
)

// Online verify (DRBD's verify): while the volume stays in use, the
// verifying node hashes every range of its copy in device order and sends
// the hash; the peer hashes its own copy of the range and answers "in
// sync" or "out of sync". A range that differs is marked out of sync on
// both nodes; when the verify ends with differences the link is re-made,
// so the connect-time decision resyncs them (the union of both bitmaps,
// from the Primary) at once.
//
// A range is hashed under the same in-flight lock as a write, and the hash
// travels on the data connection behind every write sent before it, so
// the peer compares the same version. A verify started on a Secondary
// can still see a Primary's write land in between and report a false
// difference; it only costs a resync of that range.

// ErrVerifyRunning: a verify is already running on the link.
var ErrVerifyRunning = errors.New("a verify is already running")

// VerifyStatus is the progress or result of the last online verify.
type VerifyStatus struct {
	Running   bool      `json:"running"`
	Total     uint64    `json:"total_bytes"`
	Done      uint64    `json:"done_bytes"`
	OutOfSync uint64    `json:"out_of_sync_bytes"` // found different so far
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// verifyRun is one verify on a link (the verifying side's state).
type verifyRun struct {
	pc *peerConn

	mu       sync.Mutex
	st       VerifyStatus
	inflight int64
	winCh    chan struct{}
}

// Verify starts an online verify against the connected peer and returns
// at once; Status().Verify shows its progress and result.
func (v *Volume) Verify() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.usableLocked(); err != nil {
		return err
	}
	pc := v.pc
	switch {
	case pc == nil:
		return fmt.Errorf("volume %s is not connected to its peer: nothing to verify against", v.cfg.Volume)
	case pc.state != Connected:
		return fmt.Errorf("volume %s is %s: verify after the resync", v.cfg.Volume, pc.state)
	case pc.verify != nil && pc.verify.status().Running:
		return ErrVerifyRunning
	}
	vr := &verifyRun{pc: pc, winCh: make(chan struct{})}
	vr.st = VerifyStatus{Running: true, Total: uint64(v.size), Started: time.Now()}
	pc.verify = vr
	v.lastVerify = vr
	go vr.run()
	return nil
}

func (vr *verifyRun) status() VerifyStatus {
	vr.mu.Lock()
	defer vr.mu.Unlock()
	return vr.st
}

func (vr *verifyRun) run() {
	pc := vr.pc
	v := pc.v
	v.log.Info("online verify started", zap.String("event", "verify-start"), zap.String("peer", pc.link.Peer().Node))
	err := vr.walk()
	if err == nil {
		err = vr.drain()
	}
	vr.mu.Lock()
	vr.st.Running = false
	vr.st.Finished = time.Now()
	if err != nil {
		vr.st.Error = err.Error()
	}
	st := vr.st
	vr.mu.Unlock()
	if err != nil {
		v.log.Warn("online verify did not finish", zap.String("event", "verify-failed"), zap.Error(err),
			zap.Uint64("done_bytes", st.Done), zap.Uint64("out_of_sync_bytes", st.OutOfSync))
		return
	}
	v.log.Info("online verify finished", zap.String("event", "verify-done"), zap.Uint64("bytes", st.Done),
		zap.Uint64("out_of_sync_bytes", st.OutOfSync), zap.Duration("took", st.Finished.Sub(st.Started)))
	if st.OutOfSync > 0 {
		_ = v.m.Bitmap().Flush()
		pc.fail(fmt.Errorf("online verify found %d bytes out of sync; reconnecting to resync them", st.OutOfSync))
	}
}

func (vr *verifyRun) walk() error {
	pc := vr.pc
	v := pc.v
	for off := int64(0); off < v.size; off += wire.MaxData {
		n := min(int64(wire.MaxData), v.size-off)
		if err := vr.acquire(n); err != nil {
			return err
		}
		release, err := v.inflight.Acquire(pc.ctx, uint64(off), uint64(n))
		if err != nil {
			return err
		}
		buf := make([]byte, n)
		_, err = v.cfg.Disk.ReadAt(buf, off)
		if err == nil {
			err = pc.link.Data.Send(&wire.VerifyHash{Offset: uint64(off), Length: uint32(n), Hash: sha256.Sum256(buf)})
		}
		release()
		if err != nil {
			return err
		}
	}
	return nil
}

func (vr *verifyRun) acquire(n int64) error {
	vr.mu.Lock()
	for vr.inflight > 0 && vr.inflight+n > vr.pc.v.cfg.ResyncWindow {
		ch := vr.winCh
		vr.mu.Unlock()
		select {
		case <-ch:
		case <-vr.pc.ctx.Done():
			return linkGone(vr.pc)
		}
		vr.mu.Lock()
	}
	vr.inflight += n
	vr.mu.Unlock()
	return nil
}

func (vr *verifyRun) drain() error {
	vr.mu.Lock()
	for vr.inflight > 0 {
		ch := vr.winCh
		vr.mu.Unlock()
		select {
		case <-ch:
		case <-vr.pc.ctx.Done():
			return linkGone(vr.pc)
		}
		vr.mu.Lock()
	}
	vr.mu.Unlock()
	return nil
}

// linkGone says why the link ended, for a verify cut short.
func linkGone(pc *peerConn) error {
	return fmt.Errorf("the replication link went down: %w", pc.ctx.Err())
}

// onAck is the verifier's side of a VerifyAck.
func (vr *verifyRun) onAck(m *wire.VerifyAck) error {
	v := vr.pc.v
	switch m.Status {
	case wire.StatusInSync:
	case wire.StatusOutOfSync:
		first, n := meta.Blocks(int64(m.Offset), int64(m.Length))
		v.m.Bitmap().Set(first, n)
		v.log.Warn("online verify: range differs from the peer's; marked out of sync", zap.String("event", "verify-out-of-sync"),
			zap.Uint64("offset", m.Offset), zap.Uint32("length", m.Length))
	default:
		return fmt.Errorf("verify of %d bytes at %d failed on the peer: %v", m.Length, m.Offset, m.Status)
	}
	vr.mu.Lock()
	vr.inflight -= int64(m.Length)
	vr.st.Done += uint64(m.Length)
	if m.Status == wire.StatusOutOfSync {
		vr.st.OutOfSync += uint64(m.Length)
	}
	close(vr.winCh)
	vr.winCh = make(chan struct{})
	vr.mu.Unlock()
	return nil
}

// onVerifyHash is the peer's side: compare with our copy, mark a
// difference, answer.
func (pc *peerConn) onVerifyHash(m *wire.VerifyHash) error {
	v := pc.v
	release, err := v.inflight.Acquire(pc.ctx, m.Offset, uint64(m.Length))
	if err != nil {
		return err
	}
	buf := make([]byte, m.Length)
	_, err = v.cfg.Disk.ReadAt(buf, int64(m.Offset))
	release()
	if err != nil {
		_ = v.diskFailed("verify read", err)
		return pc.link.Meta.Send(&wire.VerifyAck{Offset: m.Offset, Length: m.Length, Status: wire.StatusIOError})
	}
	st := wire.StatusInSync
	if sha256.Sum256(buf) != m.Hash {
		st = wire.StatusOutOfSync
		first, n := meta.Blocks(int64(m.Offset), int64(m.Length))
		v.m.Bitmap().Set(first, n)
		v.log.Warn("online verify: range differs from the peer's; marked out of sync", zap.String("event", "verify-out-of-sync"),
			zap.Uint64("offset", m.Offset), zap.Uint32("length", m.Length))
	}
	return pc.link.Meta.Send(&wire.VerifyAck{Offset: m.Offset, Length: m.Length, Status: st})
}
