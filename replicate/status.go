package replicate

import (
	"time"

	"github.com/hactl/hactl/replicate/decide"
	"github.com/hactl/hactl/replicate/meta"
)

// Status is a snapshot of a volume on this node, for hactl status.
type Status struct {
	Volume     string `json:"volume"`
	Node       string `json:"node"`
	Peer       string `json:"peer,omitempty"`
	Protocol   string `json:"protocol"`
	Size       int64  `json:"size_bytes"`
	Role       string `json:"role"`
	PeerRole   string `json:"peer_role,omitempty"` // "" when not connected
	Disk       string `json:"disk"`
	PeerDisk   string `json:"peer_disk,omitempty"`
	Connection string `json:"connection"`
	// OutOfSync is the bytes this node knows differ from the peer.
	OutOfSync uint64        `json:"out_of_sync_bytes"`
	Resync    *ResyncStatus `json:"resync,omitempty"`
	GI        string        `json:"generations"`
	Flags     string        `json:"flags"`
	// LastError says why the link is not up (or last went down).
	LastError  string                    `json:"last_error,omitempty"`
	SplitBrain *decide.SplitBrainOutcome `json:"split_brain,omitempty"`
	// SplitBrainChanged is the bytes each node changed while apart, as
	// seen when the split brain was detected.
	SplitBrainChanged map[string]uint64 `json:"split_brain_changed_bytes,omitempty"`
	// Discard is a pending split-brain resolution: the node whose changes
	// the next handshake discards.
	Discard string        `json:"discard_pending,omitempty"`
	Failed  string        `json:"disk_failure,omitempty"`
	Verify  *VerifyStatus `json:"verify,omitempty"` // the last online verify run here

	Writes     uint64 `json:"writes"`
	WriteBytes uint64 `json:"write_bytes"`
	Reads      uint64 `json:"reads"`
	ReadBytes  uint64 `json:"read_bytes"`
	Flushes    uint64 `json:"flushes"`
	ALCommits  uint64 `json:"al_commits"`
	// Resynced is the bytes resynced since the volume opened (as source),
	// ResyncSame the part a checksum found equal and did not send.
	Resynced   uint64 `json:"resynced_bytes"`
	ResyncSame uint64 `json:"resync_same_bytes"`
	InFlight   int    `json:"writes_in_flight"`
	Unacked    int    `json:"writes_unacked"`
}

// ResyncStatus is a running resync's progress.
type ResyncStatus struct {
	Direction string  `json:"direction"` // "source" or "target"
	Total     uint64  `json:"total_bytes"`
	Done      uint64  `json:"done_bytes"`
	Percent   float64 `json:"percent"`
	RateBps   float64 `json:"rate_bytes_per_second"`
	ETA       string  `json:"eta,omitempty"`
}

// Status returns the volume's state now.
func (v *Volume) Status() Status {
	v.mu.RLock()
	sb := v.m.Super()
	st := Status{
		Volume:     v.cfg.Volume,
		Node:       v.cfg.Node,
		Peer:       v.cfg.Peer,
		Protocol:   v.cfg.Protocol.String(),
		Size:       v.size,
		Role:       v.role.String(),
		Disk:       v.disk.String(),
		Connection: string(v.conn),
		OutOfSync:  v.m.Bitmap().Count() * meta.BlockSize,
		GI:         sb.GI.String(),
		Flags:      sb.Flags.String(),
		LastError:  v.lastErr,
		SplitBrain: v.splitBrain,
		Discard:    v.discard,
	}
	if v.splitBrain != nil {
		st.SplitBrainChanged = v.sbChanged
	}
	if v.failed != nil {
		st.Failed = v.failed.Error()
	}
	if v.lastVerify != nil {
		vs := v.lastVerify.status()
		st.Verify = &vs
	}
	if pc := v.pc; pc != nil {
		st.PeerRole = pc.peerRole.String()
		st.PeerDisk = pc.peerDisk.String()
		st.LastError = ""
		if rs := pc.rs; rs != nil && !rs.finished {
			st.Resync = rs.status()
		}
	}
	v.mu.RUnlock()
	v.stats.mu.Lock()
	st.Writes, st.WriteBytes = v.stats.writes, v.stats.writeBytes
	st.Reads, st.ReadBytes = v.stats.reads, v.stats.readBytes
	st.Flushes, st.ALCommits = v.stats.flushes, v.stats.alCommits
	st.Resynced, st.ResyncSame = v.stats.resyncedBytes, v.stats.resyncSameBytes
	v.stats.mu.Unlock()
	st.InFlight = v.inflight.Len()
	st.Unacked = v.tl.Len()
	return st
}

func (rs *resync) status() *ResyncStatus {
	s := &ResyncStatus{Direction: "target", Total: rs.total.Load(), Done: rs.done.Load()}
	if rs.source {
		s.Direction = "source"
	}
	if s.Total > 0 {
		s.Percent = 100 * float64(min(s.Done, s.Total)) / float64(s.Total)
	}
	if el := time.Since(rs.startedAt).Seconds(); el > 0 {
		s.RateBps = float64(s.Done) / el
		if s.RateBps > 0 && s.Total > s.Done {
			s.ETA = (time.Duration(float64(s.Total-s.Done)/s.RateBps) * time.Second).Round(time.Second).String()
		}
	}
	return s
}
