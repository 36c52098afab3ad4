package replicate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/replicate/meta"
	"github.com/hactl/hactl/replicate/wire"
)

// PromoteTimeout bounds how long a connected promotion waits for the
// peer's answer.
const PromoteTimeout = 10 * time.Second

// Promote makes this node Primary. While connected it asks the peer first
// and fails if the peer is (or is becoming) Primary; so two connected
// nodes are never both Primary. It needs UpToDate data, or Consistent data
// while disconnected (whether the peer's silence makes that safe is the
// orchestrator's promotion gate, not the engine's). force promotes
// Inconsistent or Outdated data — the first promotion of a fresh volume:
// its data becomes a new generation, and a connected peer without
// UpToDate data is resynced from it in full.
func (v *Volume) Promote(ctx context.Context, force bool) error {
	v.roleMu.Lock()
	defer v.roleMu.Unlock()
	// A link that breaks while we ask the peer says nothing about the
	// peer's answer: wait for its teardown and decide again, as
	// disconnected or on the next link.
	for attempt := 1; ; attempt++ {
		pc, err := v.promote(ctx, force)
		if !errors.Is(err, errLinkChanged) || attempt == 3 {
			return err
		}
		select {
		case <-pc.gone:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// errLinkChanged: the link broke or changed during a connected promotion.
var errLinkChanged = errors.New("the replication link went down while asking the peer; try again")

// promote is one attempt of Promote, with roleMu held. On errLinkChanged
// it returns the link that changed.
func (v *Volume) promote(ctx context.Context, force bool) (*peerConn, error) {
	v.mu.Lock()
	if err := v.usableLocked(); err != nil {
		v.mu.Unlock()
		return nil, err
	}
	if v.role == Primary {
		v.mu.Unlock()
		return nil, nil
	}
	pc := v.pc
	if pc != nil {
		switch {
		case pc.peerRole == Primary:
			v.mu.Unlock()
			return nil, fmt.Errorf("%w (%s): demote it first, or use hactl failover", ErrPeerPrimary, pc.link.Peer().Node)
		case pc.state == SyncTarget:
			v.mu.Unlock()
			return nil, fmt.Errorf("%w: this node is the resync target and Inconsistent until the resync finishes", ErrNoUpToDateData)
		}
	}
	forced := false
	switch v.disk {
	case wire.DiskUpToDate, wire.DiskConsistent:
	case wire.DiskInconsistent, wire.DiskOutdated:
		if !force {
			gi := v.m.Super().GI
			v.mu.Unlock()
			switch {
			case gi.JustCreated():
				return nil, fmt.Errorf("%w: the disk is %v; for the first promotion of a fresh volume use --force (its data becomes the volume's)", ErrNoUpToDateData, v.disk)
			case v.disk == wire.DiskOutdated:
				return nil, fmt.Errorf("%w: the disk is Outdated (behind its peer); connect it to the peer so it resyncs", ErrNoUpToDateData)
			default:
				return nil, fmt.Errorf("%w: the disk is %v: a resync into it did not finish; connect it to the peer so the resync completes "+
					"(--force would make this half-synced data the volume's)", ErrNoUpToDateData, v.disk)
			}
		}
		if pc != nil && pc.peerDisk >= wire.DiskConsistent {
			v.mu.Unlock()
			return nil, fmt.Errorf("%w: the disk is %v and the connected peer %s has %v data; promote the peer, or let this node resync from it",
				ErrNoUpToDateData, v.disk, pc.link.Peer().Node, pc.peerDisk)
		}
		forced = true
	default:
		v.mu.Unlock()
		return nil, fmt.Errorf("%w: the disk is %v", ErrNoUpToDateData, v.disk)
	}

	if pc != nil {
		ch := make(chan error, 1)
		v.promoting = ch
		sc := v.stateChangeLocked(Primary)
		v.mu.Unlock()
		err := pc.link.Data.Send(sc)
		if err != nil {
			err = errLinkChanged
		} else {
			t := time.NewTimer(PromoteTimeout)
			select {
			case err = <-ch:
			case <-pc.ctx.Done():
				err = errLinkChanged
			case <-ctx.Done():
				err = ctx.Err()
			case <-t.C:
				err = fmt.Errorf("the peer did not answer within %v", PromoteTimeout)
			}
			t.Stop()
		}
		v.mu.Lock()
		if v.promoting == ch {
			v.promoting = nil
		}
		if err == nil && v.pc != pc {
			err = errLinkChanged
		}
		if err != nil {
			still := v.pc == pc
			v.mu.Unlock()
			if pc.ctx.Err() == nil && still {
				// Tell the peer we stay Secondary, so it does not hold
				// on to a half-made promotion.
				v.mu.Lock()
				sc := v.stateChangeLocked(Secondary)
				v.mu.Unlock()
				_ = pc.link.Data.Send(sc)
			}
			if errors.Is(err, errLinkChanged) {
				return pc, err
			}
			return nil, fmt.Errorf("promote: %w", err)
		}
	}
	uuid, err := v.newUUID()
	if err != nil {
		v.mu.Unlock()
		return nil, err
	}
	err = v.m.Update(func(s *meta.Superblock) error {
		if forced || s.GI.JustCreated() {
			s.GI = s.GI.NewCurrent(uuid, true)
		} else {
			s.GI = s.GI.Promote(uuid, pc != nil)
		}
		s.Flags |= meta.FlagPrimary
		if forced {
			s.Flags |= meta.FlagConsistent | meta.FlagWasUpToDate
			s.Flags &^= meta.FlagOutdated | meta.FlagFullSync
		}
		return nil
	})
	if err != nil {
		v.mu.Unlock()
		return nil, v.diskFailed("metadata", err)
	}
	v.role = Primary
	v.disk = wire.DiskUpToDate
	gi := v.m.Super().GI
	v.mu.Unlock()
	v.kickRetry()
	v.log.Info("promoted to Primary", zap.String("event", "promote"), zap.Bool("force", forced),
		zap.Bool("connected", pc != nil), zap.String("gi", gi.String()))
	if forced && pc != nil {
		// The peer has no UpToDate data: reconnect, so that the
		// connect-time decision starts a full resync from this node.
		pc.fail(errors.New("forced promotion: reconnecting to resync the peer"))
	}
	return nil, nil
}

// Demote makes this node Secondary: new I/O is refused at once, I/O in
// flight is waited for, the disk is synced, and the peer is told.
// Whoever has the device open must have closed it before (the caller
// checks and names them); Demote itself only drains the engine.
func (v *Volume) Demote(ctx context.Context) error {
	v.roleMu.Lock()
	defer v.roleMu.Unlock()
	v.mu.Lock()
	if v.role != Primary {
		v.mu.Unlock()
		return nil
	}
	v.role = Secondary
	v.mu.Unlock()

	drained := make(chan struct{})
	go func() { v.io.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
		// Writes are bounded by the link's timeouts; keep waiting but
		// tell the caller why it takes long.
		v.log.Warn("demotion waits for I/O in flight", zap.String("event", "demote-wait"))
		<-drained
	}
	v.closeEpoch()
	serr := v.cfg.Disk.Sync()

	v.mu.Lock()
	err := v.m.Update(func(s *meta.Superblock) error {
		s.GI = s.GI.Demote()
		s.Flags &^= meta.FlagPrimary
		return nil
	})
	pc := v.pc
	sc := v.stateChangeLocked(Secondary)
	v.mu.Unlock()
	if pc != nil {
		if err := pc.link.Data.Send(sc); err != nil {
			pc.fail(err)
		}
	}
	if err = errors.Join(serr, err); err != nil {
		return v.diskFailed("demote", err)
	}
	v.kickRetry()
	v.log.Info("demoted to Secondary", zap.String("event", "demote"))
	return nil
}

// usableLocked says why the volume cannot change role, if it cannot.
func (v *Volume) usableLocked() error {
	switch {
	case v.closed:
		return ErrClosed
	case v.failed != nil:
		return fmt.Errorf("%w: %v", ErrDiskFailed, v.failed)
	}
	return nil
}

// Resolve records an operator's split-brain resolution: the changes of
// node discard (this node or the peer) are to be thrown away at the next
// handshake, which makes it the resync target of the blocks either side
// changed. It may be given on either node: the Hello carries it. It only
// acts on a split brain and is forgotten once a link is up.
func (v *Volume) Resolve(discard string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.usableLocked(); err != nil {
		return err
	}
	switch discard {
	case v.cfg.Node:
		if v.role == Primary {
			return fmt.Errorf("this node is Primary: demote it before discarding its changes")
		}
	case v.cfg.Peer:
		if v.cfg.Peer == "" {
			return fmt.Errorf("volume %s has no peer", v.cfg.Volume)
		}
	default:
		return fmt.Errorf("node %q holds no disk of volume %s (its nodes: %s, %s)", discard, v.cfg.Volume, v.cfg.Node, v.cfg.Peer)
	}
	v.discard = discard
	v.log.Warn("split-brain resolution requested: the changes of "+discard+" will be discarded at the next handshake",
		zap.String("event", "split-brain-resolve"), zap.String("discard", discard))
	v.kickRetry()
	return nil
}
