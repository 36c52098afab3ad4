package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/replicate/decide"
	"github.com/hactl/hactl/replicate/meta"
	"github.com/hactl/hactl/replicate/txlog"
	"github.com/hactl/hactl/replicate/wire"
)

// peerConn is one established link to the peer, from the connect-time
// decision until the teardown.
type peerConn struct {
	v    *Volume
	link *wire.Link
	log  *zap.Logger

	ctx    context.Context // ends when the link fails or the volume closes
	cancel context.CancelCauseFunc
	pinger *wire.Pinger

	// Under v.mu: the peer's state as it last told us.
	peerRole Role
	peerDisk wire.DiskState
	peerGen  wire.Generations
	state    ConnState

	ackMu sync.Mutex
	acked uint64        // highest barrier-acked epoch
	ackCh chan struct{} // closed (and replaced) on each barrier ack

	// Secondary side, owned by the data receiver: writes and extent
	// references of the epoch being received, released at its barrier.
	epochWrites uint32
	epochExts   []uint32
	flushq      chan barrierJob // closed epochs for the flusher
	flushCh     chan struct{}   // closed (and replaced) after each epoch synced, under ackMu

	rs     *resync       // nil unless resyncing
	verify *verifyRun    // the verify this node runs on the link, under v.mu
	gone   chan struct{} // closed when the teardown is complete
}

// Run keeps the volume connected to its peer until ctx ends or the volume
// is closed: it asks Config.Connect for a link, with a backoff between
// failed attempts, and serves each link until it breaks. Without a
// Connect it just waits. It returns nil.
func (v *Volume) Run(ctx context.Context) error {
	v.mu.Lock()
	if v.closed || v.running {
		v.mu.Unlock()
		return nil
	}
	v.running = true
	v.mu.Unlock()
	defer close(v.runDone)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(v.ctx, cancel)
	defer stop()
	if v.cfg.Connect == nil {
		<-ctx.Done()
		return nil
	}
	bo := wire.Backoff{Min: 100 * time.Millisecond, Max: 3 * time.Second}
	for ctx.Err() == nil {
		wc := wire.Config{Secret: v.cfg.Secret, Local: v.hello, PeerNode: v.cfg.Peer}
		link, err := v.cfg.Connect(ctx, wc)
		if ctx.Err() != nil {
			if link != nil {
				_ = link.Disconnect(wire.ReasonShutdown, "volume closing")
			}
			break
		}
		if err != nil {
			v.linkFailed("connect", err)
			v.waitRetry(ctx, &bo)
			continue
		}
		if v.serve(ctx, link) {
			bo.Reset()
		}
		if ctx.Err() == nil {
			v.waitRetry(ctx, &bo)
		}
	}
	v.mu.Lock()
	v.conn = StandAlone
	v.mu.Unlock()
	return nil
}

// standAloneRetry is how often a node whose last link was refused for
// split brain or unrelated data tries again: the peer may have been
// resolved (hactl volume resolve works from either node).
const standAloneRetry = 5 * time.Second

// waitRetry waits before the next connection attempt: the backoff, or
// standAloneRetry while StandAlone; Resolve cuts either short.
func (v *Volume) waitRetry(ctx context.Context, bo *wire.Backoff) {
	v.mu.Lock()
	standAlone := v.standAlone
	if standAlone {
		v.conn = StandAlone
	}
	v.mu.Unlock()
	d := bo.Next()
	if standAlone {
		d = standAloneRetry
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-v.kick:
		bo.Reset()
	case <-ctx.Done():
	}
}

// kickRetry cuts a reconnect wait short: a role change can change the
// connect-time decision (a split-brain policy counts Primaries).
func (v *Volume) kickRetry() {
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// linkFailed records why a connection attempt or a link ended, logging a
// reason only when it changes (a peer that is down is retried every few
// seconds).
func (v *Volume) linkFailed(what string, err error) {
	msg := fmt.Sprintf("%s: %v", what, err)
	v.mu.Lock()
	changed := v.lastErr != msg
	v.lastErr = msg
	v.mu.Unlock()
	if changed {
		lvl := v.log.Info
		if errors.Is(err, wire.ErrAuth) || errors.Is(err, wire.ErrProtocol) || errors.Is(err, wire.ErrWrongPeer) ||
			errors.Is(err, wire.ErrWrongVolume) || errors.Is(err, wire.ErrSizeMismatch) || errors.Is(err, wire.ErrVersion) {
			lvl = v.log.Error
		}
		lvl("replication link not up", zap.String("event", "link-"+what+"-failed"), zap.String("peer", v.cfg.Peer), zap.Error(err))
	}
}

// hello is what this node announces in a handshake. The announcement is
// remembered: the connect-time decision must use exactly what the peer saw.
func (v *Volume) hello() wire.Hello {
	v.mu.Lock()
	defer v.mu.Unlock()
	h := v.helloLocked()
	v.sent = h
	return h
}

func (v *Volume) helloLocked() wire.Hello {
	sb := v.m.Super()
	flags := toWireFlags(sb.Flags)
	switch v.discard {
	case "":
	case v.cfg.Node:
		flags |= wire.FlagDiscardMyData
	default:
		flags |= wire.FlagDiscardPeer
	}
	return wire.Hello{
		Node:   v.cfg.Node,
		Volume: v.cfg.Volume,
		Size:   uint64(v.size),
		Gen:    toWire(sb.GI),
		Dirty:  v.m.Bitmap().Count(),
		Flags:  flags,
		Role:   v.role.wire(),
		Disk:   v.disk,
	}
}

func toWire(g meta.GI) wire.Generations {
	return wire.Generations{Current: g.Current, Bitmap: g.Bitmap, History: g.History}
}

func fromWire(g wire.Generations) meta.GI {
	return meta.GI{Current: g.Current, Bitmap: g.Bitmap, History: g.History}
}

func toWireFlags(f meta.Flags) wire.StateFlags {
	var w wire.StateFlags
	if f.Has(meta.FlagConsistent) {
		w |= wire.FlagConsistent
	}
	if f.Has(meta.FlagWasUpToDate) {
		w |= wire.FlagWasUpToDate
	}
	if f.Has(meta.FlagCrashedPrimary) {
		w |= wire.FlagCrashedPrimary
	}
	if f.Has(meta.FlagPeerOutdated) {
		w |= wire.FlagPeerOutdated
	}
	return w
}

func roleOf(r wire.Role) Role {
	if r == wire.RolePrimary {
		return Primary
	}
	return Secondary
}

// side is a Hello as input to the connect-time decision.
func side(h wire.Hello) decide.Side {
	role := decide.Secondary
	if h.Role == wire.RolePrimary {
		role = decide.Primary
	}
	return decide.Side{
		Node:           h.Node,
		GI:             fromWire(h.Gen),
		Dirty:          h.Dirty,
		Role:           role,
		CrashedPrimary: h.Flags&wire.FlagCrashedPrimary != 0,
		Inconsistent:   h.Disk == wire.DiskInconsistent || h.Flags&wire.FlagConsistent == 0,
		Outdated:       h.Disk == wire.DiskOutdated,
		DiscardMyData:  h.Flags&wire.FlagDiscardMyData != 0,
	}
}

// serve runs one link: the decision, then replication until the link
// breaks. It reports whether the link got past the decision.
func (v *Volume) serve(ctx context.Context, link *wire.Link) bool {
	peer := link.Peer()
	pcCtx, cancel := context.WithCancelCause(ctx)
	pc := &peerConn{
		v: v, link: link, ctx: pcCtx, cancel: cancel,
		log:      v.log.With(zap.String("peer", peer.Node)),
		peerRole: roleOf(peer.Role), peerDisk: peer.Disk, peerGen: peer.Gen,
		ackCh: make(chan struct{}), gone: make(chan struct{}),
		flushq: make(chan barrierJob, 64), flushCh: make(chan struct{}),
		pinger: wire.NewPinger(link.Meta, v.cfg.PingInterval, v.cfg.PingTimeout),
	}
	defer cancel(nil)

	reason, text, err := v.install(pc, peer)
	if err != nil {
		_ = link.Disconnect(reason, text)
		v.linkFailed("decision", err)
		return false
	}
	pc.log.Info("replication link up", zap.String("event", "connected"), zap.String("state", string(pc.state)),
		zap.String("peer_role", pc.peerRole.String()), zap.String("peer_disk", peer.Disk.String()))

	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	pinger := pc.pinger
	run(func() { pc.receiveMeta(pinger) })
	run(func() { pc.receiveData() })
	run(func() {
		if err := pinger.Run(pc.ctx); err != nil && pc.ctx.Err() == nil {
			pc.fail(err)
		}
	})
	run(pc.epochTimer)
	run(pc.flusher)
	if pc.rs != nil {
		run(pc.rs.run)
	}

	<-pc.ctx.Done()
	cause := context.Cause(pc.ctx)
	if ctx.Err() != nil {
		_ = link.Disconnect(wire.ReasonShutdown, "volume closing")
	} else {
		_ = link.Close()
	}
	wg.Wait()
	v.teardown(pc, cause)
	return true
}

// install makes the connect-time decision for a new link and, unless it
// refuses the link, installs it as the volume's peer connection.
func (v *Volume) install(pc *peerConn, peer wire.Hello) (wire.Reason, string, error) {
	v.roleMu.Lock()
	defer v.roleMu.Unlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return wire.ReasonShutdown, "volume closing", ErrClosed
	}
	self := v.sent
	if now := v.helloLocked(); now.Role != self.Role || now.Gen != self.Gen || now.Disk != self.Disk || now.Flags != self.Flags {
		// The peer decides on what we announced: start over.
		return wire.ReasonShutdown, "state changed during the handshake", errors.New("state changed during the handshake; reconnecting")
	}
	// An operator's resolution counts whichever node it was given on.
	selfSide, peerSide := side(self), side(peer)
	selfSide.DiscardMyData = selfSide.DiscardMyData || peer.Flags&wire.FlagDiscardPeer != 0
	peerSide.DiscardMyData = peerSide.DiscardMyData || self.Flags&wire.FlagDiscardPeer != 0
	d := decide.Decide(decide.Input{Volume: v.cfg.Volume, Self: selfSide, Peer: peerSide, Policy: v.cfg.Policy})
	v.splitBrain = d.SplitBrain
	if d.SplitBrain != nil {
		v.sbChanged = map[string]uint64{self.Node: self.Dirty * meta.BlockSize, peer.Node: peer.Dirty * meta.BlockSize}
	}
	// Two Primaries never connect. When both wrote, that is the split
	// brain the decision reports (with what resolves it); otherwise a
	// plain refusal.
	if self.Role == wire.RolePrimary && peer.Role == wire.RolePrimary && d.Kind != decide.SplitBrain && d.Kind != decide.Unrelated {
		return wire.ReasonPolicy, "both nodes are Primary", errors.New("refused: both nodes are Primary; demote one of them")
	}
	switch d.Kind {
	case decide.SplitBrain:
		v.standAlone = true
		v.log.Error("split brain: both nodes changed the data while disconnected; nothing is overwritten until an operator decides",
			zap.String("event", "split-brain"), zap.String("reason", d.Reason), zap.Strings("resolve", d.SplitBrain.Resolve),
			zap.Uint64("changed_bytes_here", self.Dirty*meta.BlockSize), zap.Uint64("changed_bytes_peer", peer.Dirty*meta.BlockSize))
		return wire.ReasonSplitBrain, d.Reason, errors.New(d.Reason)
	case decide.Unrelated:
		v.standAlone = true
		return wire.ReasonUnrelated, d.Reason, errors.New(d.Reason)
	case decide.Refuse:
		return wire.ReasonPolicy, d.Reason, fmt.Errorf("refused: %s", d.Reason)
	}
	v.splitBrain, v.standAlone, v.discard = nil, false, ""
	if d.SplitBrain != nil {
		lost := d.SplitBrain.Discard
		v.log.Warn("split brain resolved: the changes of "+lost+" are discarded",
			zap.String("event", "split-brain-resolved"), zap.String("policy", d.SplitBrain.Policy),
			zap.String("discard", lost), zap.Uint64("discarded_bytes_at_most", v.sbChanged[lost]),
			zap.Uint64("changed_bytes_here", self.Dirty*meta.BlockSize), zap.Uint64("changed_bytes_peer", peer.Dirty*meta.BlockSize),
			zap.String("reason", d.Reason))
	}

	err := v.m.Update(func(s *meta.Superblock) error {
		switch d.Rule {
		case 4:
			s.GI = s.GI.FinishSyncSource()
		case 12:
			s.GI = s.GI.UndoSyncStart()
		}
		// Connected again: an outdate of the peer is superseded by what
		// this handshake decides.
		s.Flags |= meta.FlagConnected
		s.Flags &^= meta.FlagPeerOutdated
		switch d.Kind {
		case decide.NoSync:
			if s.Flags.Has(meta.FlagConsistent) && !side(peer).Inconsistent {
				s.Flags |= meta.FlagWasUpToDate
				s.Flags &^= meta.FlagOutdated | meta.FlagCrashedPrimary
			}
		case decide.Target:
			// Inconsistent from the first resync write until the last.
			s.Flags &^= meta.FlagConsistent | meta.FlagWasUpToDate
			if d.Full {
				s.Flags |= meta.FlagFullSync
			}
		}
		return nil
	})
	if err != nil {
		v.diskFailedLocked("metadata", err)
		return wire.ReasonIOError, "metadata write failed", err
	}
	switch d.Kind {
	case decide.NoSync:
		pc.state = Connected
		if v.m.Super().Flags.Has(meta.FlagConsistent) && peer.Disk >= wire.DiskOutdated && !side(peer).Inconsistent {
			v.disk = wire.DiskUpToDate
			if peer.Disk != wire.DiskOutdated {
				pc.peerDisk = wire.DiskUpToDate
			}
		}
	case decide.Source:
		pc.state = SyncSource
		v.disk = wire.DiskUpToDate
		pc.peerDisk = wire.DiskInconsistent
		pc.rs = newResync(pc, true, d.Full)
	case decide.Target:
		pc.state = SyncTarget
		v.disk = wire.DiskInconsistent
		pc.rs = newResync(pc, false, d.Full)
	}
	v.log.Info("connect-time decision", zap.String("event", "decision"), zap.String("decision", d.Kind.String()),
		zap.Bool("full", d.Full), zap.Int("rule", d.Rule), zap.String("reason", d.Reason))
	v.pc = pc
	v.fenced, v.lostPeer = false, false
	v.conn = pc.state
	v.lastErr = ""
	return 0, "", nil
}

// fail breaks the link; the first cause wins.
func (pc *peerConn) fail(err error) { pc.cancel(err) }

// epochTimer closes the open epoch every EpochInterval, so extents do not
// stay hot (and flushes do not have to close huge epochs) under an
// application that rarely flushes.
func (pc *peerConn) epochTimer() {
	t := time.NewTicker(pc.v.cfg.EpochInterval)
	defer t.Stop()
	for {
		select {
		case <-pc.ctx.Done():
			return
		case <-t.C:
			pc.v.closeEpoch()
		}
	}
}

// waitEpoch waits until epoch n is barrier-acked or the link is gone.
func (pc *peerConn) waitEpoch(n uint64) {
	for {
		pc.ackMu.Lock()
		if pc.acked >= n {
			pc.ackMu.Unlock()
			return
		}
		ch := pc.ackCh
		pc.ackMu.Unlock()
		select {
		case <-ch:
		case <-pc.ctx.Done():
			// The teardown puts the epoch's writes into the bitmap
			// before the volume serves anything else; wait for it.
			<-pc.gone
			return
		}
	}
}

func (pc *peerConn) setAcked(n uint64) {
	pc.ackMu.Lock()
	pc.acked = n
	close(pc.ackCh)
	pc.ackCh = make(chan struct{})
	pc.ackMu.Unlock()
}

// teardown ends a link: every write the peer has not acknowledged
// durably goes into the bitmap, and a Primary that lost the peer's disk
// starts a new data generation, so the peer is recognisable as behind.
func (v *Volume) teardown(pc *peerConn, cause error) {
	v.mu.Lock()
	ws := v.tl.Fail()
	for _, w := range ws {
		v.m.Bitmap().Set(meta.Blocks(int64(w.Offset), int64(w.Length)))
	}
	was := pc.state
	if v.role == Primary && v.disk == wire.DiskUpToDate && (was == Connected || was == SyncSource) && v.failed == nil {
		// The new generation starts with the first write that completes
		// without the peer (fence.go), not here: a Primary that loses
		// the link and writes nothing more (it lost quorum, or it is
		// demoted) has not diverged, and must not look as if it had.
		v.lostPeer = true
		if err := v.m.Update(func(s *meta.Superblock) error {
			s.Flags &^= meta.FlagConnected
			return nil
		}); err != nil {
			v.diskFailedLocked("metadata", err)
		}
	}
	if was == SyncTarget {
		// Still Inconsistent; what is left is in the bitmap.
		_ = v.m.Bitmap().Flush()
	}
	v.pc = nil
	if v.conn != StandAlone {
		v.conn = Connecting
	}
	msg := "link lost"
	if cause != nil {
		msg = cause.Error()
	}
	v.lastErr = msg
	v.mu.Unlock()
	v.peerDone(ws, false)
	close(pc.gone)
	// Extents the Secondary held for the unfinished epoch, and for closed
	// epochs the flusher never got to.
	pc.releaseExts(pc.epochExts)
	pc.epochExts = nil
	for len(pc.flushq) > 0 {
		pc.releaseExts((<-pc.flushq).exts)
	}
	lvl := v.log.Warn
	if errors.Is(cause, context.Canceled) {
		lvl = v.log.Info
	}
	lvl("replication link down", zap.String("event", "disconnected"), zap.String("peer", pc.link.Peer().Node),
		zap.String("was", string(was)), zap.Int("unacked_writes", len(ws)), zap.String("reason", msg))
}

// receiveMeta reads acks and pings.
func (pc *peerConn) receiveMeta(pinger *wire.Pinger) {
	v := pc.v
	for {
		m, err := pc.link.Meta.Recv()
		if err != nil {
			pc.fail(fmt.Errorf("meta connection: %w", err))
			return
		}
		switch m := m.(type) {
		case *wire.Ping:
			if err := pc.link.Meta.Send(&wire.PingAck{Nonce: m.Nonce}); err != nil {
				pc.fail(err)
				return
			}
		case *wire.PingAck:
			pinger.Acked(m)
		case *wire.RecvAck:
			err = pc.ack(txlog.AckRecv, m.BlockID, m.Offset, m.Length)
		case *wire.WriteAck:
			err = pc.ack(txlog.AckWrite, m.BlockID, m.Offset, m.Length)
		case *wire.NegAck:
			v.m.Bitmap().Set(meta.Blocks(int64(m.Offset), int64(m.Length)))
			pc.log.Warn("peer failed a write; its blocks are out of sync", zap.String("event", "neg-ack"),
				zap.Uint64("offset", m.Offset), zap.Uint32("length", m.Length), zap.Uint32("status", uint32(m.Status)))
			err = pc.ack(txlog.AckNeg, m.BlockID, m.Offset, m.Length)
		case *wire.BarrierAck:
			var ws []txlog.Write
			ws, err = v.tl.BarrierAck(m.Epoch, m.Writes)
			if err == nil {
				v.peerDone(ws, true)
				pc.setAcked(m.Epoch)
			}
		case *wire.VerifyAck:
			v.mu.RLock()
			vr := pc.verify
			v.mu.RUnlock()
			if vr == nil {
				err = fmt.Errorf("%w: VerifyAck without a verify", wire.ErrUnexpected)
			} else {
				err = vr.onAck(m)
			}
		case *wire.ResyncAck:
			if pc.rs == nil || !pc.rs.source {
				err = fmt.Errorf("%w: ResyncAck without a resync", wire.ErrUnexpected)
			} else {
				err = pc.rs.onAck(m)
			}
		case *wire.Disconnect:
			pc.fail(fmt.Errorf("peer disconnected: %v", m.Reason.Err()))
			return
		default:
			err = fmt.Errorf("%w: %v on the meta connection", wire.ErrUnexpected, m.Type())
		}
		if err != nil {
			pc.fail(err)
			return
		}
	}
}

// ack applies a per-write ack to the transfer log and completes the write
// when it was the one its protocol waits for.
func (pc *peerConn) ack(k txlog.AckKind, id, off uint64, length uint32) error {
	v := pc.v
	_, completed, err := v.tl.Ack(k, id, off, uint64(length))
	if err != nil {
		return err
	}
	if completed {
		v.reqMu.Lock()
		r := v.reqs[id]
		v.reqMu.Unlock()
		if r != nil {
			if k != txlog.AckNeg {
				r.acked.Store(true)
			}
			r.complete()
		}
	}
	return nil
}

// receiveData reads the data connection: the Primary's writes and
// barriers, state changes, and resync traffic.
func (pc *peerConn) receiveData() {
	v := pc.v
	for {
		m, err := pc.link.Data.Recv()
		if err != nil {
			pc.fail(fmt.Errorf("data connection: %w", err))
			return
		}
		switch m := m.(type) {
		case *wire.Data:
			err = pc.apply(opWrite, m.BlockID, m.Offset, m.Payload, int64(len(m.Payload)), m.Flags)
			wire.Release(m)
		case *wire.Trim:
			err = pc.apply(opTrim, m.BlockID, m.Offset, nil, int64(m.Length), m.Flags)
		case *wire.WriteZeroes:
			err = pc.apply(opZero, m.BlockID, m.Offset, nil, int64(m.Length), m.Flags)
		case *wire.Barrier:
			err = pc.barrier(m.Epoch)
		case *wire.StateChange:
			err = v.onStateChange(pc, m)
		case *wire.BitmapChunk:
			if pc.rs == nil {
				err = fmt.Errorf("%w: bitmap without a resync", wire.ErrUnexpected)
			} else {
				err = pc.rs.onBitmap(m)
			}
			wire.Release(m)
		case *wire.ResyncData:
			if pc.rs == nil || pc.rs.source {
				err = fmt.Errorf("%w: resync data without being the sync target", wire.ErrUnexpected)
				wire.Release(m)
			} else {
				err = pc.rs.onData(m) // releases m once written
			}
		case *wire.ResyncHash:
			if pc.rs == nil || pc.rs.source {
				err = fmt.Errorf("%w: a resync hash without being the sync target", wire.ErrUnexpected)
			} else {
				err = pc.rs.dispatchHash(m)
			}
		case *wire.VerifyHash:
			err = pc.onVerifyHash(m)
		case *wire.ResyncRequest:
			if pc.rs == nil || !pc.rs.source {
				err = fmt.Errorf("%w: a resync request without being the sync source", wire.ErrUnexpected)
			} else {
				err = pc.rs.onRequest(m)
			}
		case *wire.Disconnect:
			text := m.Text
			pc.fail(fmt.Errorf("peer disconnected: %v %s", m.Reason.Err(), text))
			return
		default:
			err = fmt.Errorf("%w: %v not supported on the data connection", wire.ErrUnexpected, m.Type())
		}
		if err != nil {
			pc.fail(err)
			return
		}
	}
}

// apply is the Secondary's side of a replicated write: in arrival order
// (the Primary's order for overlapping writes), its extents hot in our
// activity log until the epoch's barrier, acked as the Primary asked.
func (pc *peerConn) apply(op opKind, id, off uint64, p []byte, length int64, flags wire.WriteFlags) error {
	v := pc.v
	v.mu.RLock()
	role, failed := v.role, v.failed
	v.mu.RUnlock()
	if role == Primary {
		return fmt.Errorf("%w: the peer sent a write to a Primary", wire.ErrUnexpected)
	}
	neg := func(st wire.Status) error {
		return pc.link.Meta.Send(&wire.NegAck{BlockID: id, Offset: off, Length: uint32(length), Status: st})
	}
	if err := pc.resyncOrder(off, length); err != nil {
		return err
	}
	if failed != nil {
		return neg(wire.StatusNoDisk)
	}
	if flags&wire.WriteAckRecv != 0 {
		if err := pc.link.Meta.Send(&wire.RecvAck{BlockID: id, Offset: off, Length: uint32(length)}); err != nil {
			return err
		}
	}
	first, last := meta.Extents(int64(off), length)
	if err := pc.activateSecondary(first, last); err != nil {
		return neg(wire.StatusIOError)
	}
	pc.epochExts = append(pc.epochExts, rangeOf(first, last)...)
	pc.epochWrites++
	var err error
	if flags&wire.WriteFlush != 0 {
		err = v.cfg.Disk.Sync()
	}
	if err == nil {
		err = applyLocal(v.cfg.Disk, op, p, int64(off), length)
	}
	if err == nil && flags&wire.WriteFUA != 0 {
		err = v.cfg.Disk.Sync()
	}
	if err != nil {
		_ = v.diskFailed("replicated "+op.String(), err)
		return neg(wire.StatusIOError)
	}
	if flags&wire.WriteAckWrite != 0 {
		return pc.link.Meta.Send(&wire.WriteAck{BlockID: id, Offset: off, Length: uint32(length)})
	}
	return nil
}

func rangeOf(first, last uint32) []uint32 {
	out := make([]uint32, 0, last-first+1)
	for e := first; e <= last; e++ {
		out = append(out, e)
	}
	return out
}

// activateSecondary is activate for the receiver: it cannot wait for a
// barrier (it is the one that would process it), so when the log is full
// it makes the current epoch durable early and lets go of its extents.
func (pc *peerConn) activateSecondary(first, last uint32) error {
	v := pc.v
	al := v.m.AL()
	need := false
	for e := first; e <= last; e++ {
		if al.Activate(e) {
			need = true
		}
	}
	for need {
		v.alMu.Lock()
		if v.allActive(first, last) {
			v.alMu.Unlock()
			return nil
		}
		err := al.Commit()
		v.alMu.Unlock()
		switch {
		case err == nil:
		case errors.Is(err, meta.ErrALFull) && len(pc.epochExts) == 0:
			// Every hot extent belongs to epochs the flusher is syncing.
			pc.ackMu.Lock()
			ch := pc.flushCh
			pc.ackMu.Unlock()
			select {
			case <-ch:
			case <-pc.ctx.Done():
				v.releaseExtents(first, last)
				return context.Cause(pc.ctx)
			}
		case errors.Is(err, meta.ErrALFull) && len(pc.epochExts) > 0:
			if err := v.cfg.Disk.Sync(); err != nil {
				v.releaseExtents(first, last)
				return v.diskFailed("sync", err)
			}
			for _, e := range pc.epochExts {
				al.Release(e)
			}
			pc.epochExts = pc.epochExts[:0]
		default:
			v.releaseExtents(first, last)
			return v.diskFailed("activity log", err)
		}
	}
	return nil
}

// barrierJob is a closed epoch on the Secondary waiting for its sync.
type barrierJob struct {
	epoch  uint64
	writes uint32
	exts   []uint32
}

// barrier completes an epoch on the Secondary: the flusher makes every
// write of it durable before it acks, and only then do its extents turn
// cold. The receiver goes on applying the next epoch meanwhile: a sync of
// a large dirty page cache takes hundreds of milliseconds, and the
// Primary's stream must not stall behind it. (A sync that also catches
// writes of the next epoch only makes them durable earlier.)
func (pc *peerConn) barrier(epoch uint64) error {
	job := barrierJob{epoch: epoch, writes: pc.epochWrites, exts: pc.epochExts}
	pc.epochExts, pc.epochWrites = nil, 0
	select {
	case pc.flushq <- job:
		return nil
	case <-pc.ctx.Done():
		pc.releaseExts(job.exts)
		return context.Cause(pc.ctx)
	}
}

// flusher syncs closed epochs in order and acks their barriers.
func (pc *peerConn) flusher() {
	v := pc.v
	for {
		var job barrierJob
		select {
		case job = <-pc.flushq:
		case <-pc.ctx.Done():
			for {
				select {
				case job := <-pc.flushq:
					pc.releaseExts(job.exts)
				default:
					return
				}
			}
		}
		if err := v.cfg.Disk.Sync(); err != nil {
			_ = v.diskFailed("sync", err)
			_ = pc.link.Disconnect(wire.ReasonIOError, "sync failed")
			pc.releaseExts(job.exts)
			pc.fail(fmt.Errorf("barrier %d: sync: %w", job.epoch, err))
			continue
		}
		err := pc.link.Meta.Send(&wire.BarrierAck{Epoch: job.epoch, Writes: job.writes})
		pc.releaseExts(job.exts)
		pc.flushed()
		if err != nil {
			pc.fail(err)
		}
	}
}

func (pc *peerConn) releaseExts(exts []uint32) {
	for _, e := range exts {
		pc.v.m.AL().Release(e)
	}
}

// flushed signals an epoch made durable (activateSecondary may wait).
func (pc *peerConn) flushed() {
	pc.ackMu.Lock()
	close(pc.flushCh)
	pc.flushCh = make(chan struct{})
	pc.ackMu.Unlock()
}

// stateChange is our state as a StateChange message.
func (v *Volume) stateChangeLocked(role Role) *wire.StateChange {
	sb := v.m.Super()
	return &wire.StateChange{
		Role: role.wire(), Disk: v.disk, Flags: toWireFlags(sb.Flags),
		Gen: toWire(sb.GI), Dirty: v.m.Bitmap().Count(),
	}
}

// onStateChange handles the peer's StateChange: a promotion request or
// answer, a demotion, or the end of a resync.
func (v *Volume) onStateChange(pc *peerConn, m *wire.StateChange) error {
	v.mu.Lock()
	pc.peerDisk = m.Disk
	pc.peerGen = m.Gen
	var reply *wire.StateChange
	if m.Role == wire.RolePrimary && pc.peerRole != Primary {
		switch {
		case v.role == Primary:
			reply = v.stateChangeLocked(Primary) // refused: we are Primary
		case v.promoting != nil && v.cfg.Node < pc.link.Peer().Node:
			reply = v.stateChangeLocked(Primary) // both asked: the lower name wins
		default:
			if v.promoting != nil {
				v.promoting <- fmt.Errorf("%w: %s asked to become Primary at the same time (it wins the tie)", ErrPeerPrimary, pc.link.Peer().Node)
				v.promoting = nil
			}
			pc.peerRole = Primary
			reply = v.stateChangeLocked(Secondary)
		}
	} else if m.Role == wire.RoleSecondary {
		pc.peerRole = Secondary
		if v.promoting != nil {
			v.promoting <- nil
			v.promoting = nil
		}
	} else if m.Role == wire.RolePrimary && v.promoting != nil {
		// The peer is already Primary and answers our request.
		v.promoting <- fmt.Errorf("%w (%s)", ErrPeerPrimary, pc.link.Peer().Node)
		v.promoting = nil
	}
	var err error
	if pc.rs != nil {
		var r *wire.StateChange
		r, err = pc.rs.onPeerState(m)
		if r != nil && reply == nil {
			reply = r
		}
	}
	v.mu.Unlock()
	if err != nil {
		return err
	}
	if reply != nil {
		return pc.link.Data.Send(reply)
	}
	return nil
}

// Connect helpers.

// Dial returns a Config.Connect that dials the peer at addr ("host:port").
func Dial(addr string) func(context.Context, wire.Config) (*wire.Link, error) {
	return func(ctx context.Context, wc wire.Config) (*wire.Link, error) {
		return wire.Dial(ctx, addr, wc)
	}
}

// Listener is a Config.Connect that accepts the peer's links on one
// address; it listens on the first call and keeps listening between
// calls, so it may outlive one Volume and serve the next on the same
// address (each handshake announces the state of the Volume calling
// Connect now). Close it after the last volume.
type Listener struct {
	addr  string
	mu    sync.Mutex
	l     *wire.Listener
	local func() wire.Hello
}

// NewListener returns a Listener for addr ("host:port").
func NewListener(addr string) *Listener { return &Listener{addr: addr} }

// Connect waits for the next link from the peer.
func (l *Listener) Connect(ctx context.Context, wc wire.Config) (*wire.Link, error) {
	l.mu.Lock()
	l.local = wc.Local
	if l.l == nil {
		lc := wc
		lc.Local = func() wire.Hello {
			l.mu.Lock()
			f := l.local
			l.mu.Unlock()
			return f()
		}
		wl, err := wire.Listen(l.addr, lc)
		if err != nil {
			l.mu.Unlock()
			return nil, err
		}
		l.l = wl
	}
	wl := l.l
	l.mu.Unlock()
	return wl.Accept(ctx)
}

// Close stops listening.
func (l *Listener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.l == nil {
		return nil
	}
	err := l.l.Close()
	l.l = nil
	return err
}
