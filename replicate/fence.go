package replicate

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/replicate/meta"
	"github.com/hactl/hactl/replicate/wire"
)

// ErrNoQuorum fails a write that would complete without the peer on a node
// that may not write alone (Config.Fence said so).
var ErrNoQuorum = errors.New("replicate: the peer did not get this write and this node may not write alone")

// completeAlone is called by a write that the peer did not get, after the
// local write and before the write completes: it asks Fence (once per
// disconnection) and starts the new data generation on the first such
// write. An error fails the write.
func (v *Volume) completeAlone() error {
	v.aloneMu.Lock()
	defer v.aloneMu.Unlock()
	v.mu.RLock()
	fenced := v.fenced
	v.mu.RUnlock()
	if !fenced && v.cfg.Fence != nil {
		// Without holding mu: Fence may block while the peer is outdated.
		if err := v.cfg.Fence(v.ctx); err != nil {
			return fmt.Errorf("%w: %v", ErrNoQuorum, err)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pc != nil {
		// The link came back meanwhile; the handshake decided what the
		// peer lacks (the write is in the bitmap).
		return nil
	}
	v.fenced = true
	if !v.lostPeer {
		return nil
	}
	uuid, err := v.newUUID()
	if err != nil {
		return err
	}
	if err := v.m.Update(func(s *meta.Superblock) error {
		s.GI = s.GI.LosePeer(uuid, true)
		return nil
	}); err != nil {
		return v.diskFailedLocked("metadata", err)
	}
	v.lostPeer = false
	v.log.Info("new data generation: the first write completed without the peer", zap.String("event", "new-generation"),
		zap.String("gi", v.m.Super().GI.String()))
	return nil
}

// Outdate marks this node's data Outdated (persisted) when its Primary
// peer asks through another path while the replication link is down: the
// peer goes on writing, so this node must not be promoted until it has
// resynced. It refuses on a Primary and while connected.
func (v *Volume) Outdate() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.role == Primary:
		return fmt.Errorf("%w: refusing to outdate a Primary", ErrPeerPrimary)
	case v.pc != nil:
		return errors.New("replicate: connected to the peer: nothing to outdate")
	case v.disk == wire.DiskOutdated || v.disk == wire.DiskInconsistent:
		return nil // already behind, and known to be
	}
	if err := v.m.Update(func(s *meta.Superblock) error {
		s.Flags |= meta.FlagOutdated
		return nil
	}); err != nil {
		return v.diskFailedLocked("metadata", err)
	}
	v.disk = wire.DiskOutdated
	v.log.Warn("data marked Outdated at the peer's request: promotion refused until resynced", zap.String("event", "outdated"))
	return nil
}

// MarkPeerOutdated records (persisted) that the peer acknowledged being
// Outdated, so this Primary may write alone; the next handshake clears it.
func (v *Volume) MarkPeerOutdated() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pc != nil {
		return nil
	}
	if err := v.m.Update(func(s *meta.Superblock) error {
		s.Flags |= meta.FlagPeerOutdated
		return nil
	}); err != nil {
		return v.diskFailedLocked("metadata", err)
	}
	return nil
}

// ProbePeer asks the replication link for a sign of life within timeout,
// sooner than the next regular ping: a link that does not answer is torn
// down (and the volume counts as disconnected) at once. The orchestrator
// calls it when the peer's VRRP adverts and membership heartbeats stopped
// while the link still looks up — so the gate need not wait out the ping
// interval. It never blocks.
func (v *Volume) ProbePeer(timeout time.Duration) {
	v.mu.RLock()
	pc := v.pc
	v.mu.RUnlock()
	if pc != nil {
		pc.pinger.Probe(timeout)
	}
}
