package meta

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
)

// Generation identifiers (GI), as in DRBD 8.4: a data generation is named
// by a random 64-bit UUID. Current names the generation the local data
// belongs to; Bitmap names the generation the peer had when the dirty
// bitmap started recording (0 while connected and in sync); History holds
// the two previous bitmap UUIDs, newest first. Comparing two nodes' tuples
// at connect time tells whether they are in sync, who is ahead, whether a
// bitmap resync suffices, and whether they diverged (split brain) or share
// no history at all (research/replication.md §2).
//
// Bit 0 of a UUID is not part of its identity: on Current it says this
// node is (or was, when the generation was saved) Primary. When a new
// generation starts, the old Current moves to Bitmap with its bit, so
// Bitmap's bit 0 records whether this node was Primary when the data
// diverged, which the discard-younger/older-primary split-brain policies
// use. Every comparison must therefore mask the bit: use Same, or Masked.

// GI is a generation-identifier tuple. Its methods are the transitions;
// they return a new tuple and never touch the receiver.
type GI struct {
	Current uint64
	Bitmap  uint64
	History [2]uint64 // History[0] is the newest
}

const (
	// UUIDJustCreated is the Current UUID of metadata that Create just
	// initialised: no data generation yet. Two nodes that both have it
	// need an operator's decision (an initial sync or SkipInitialSync).
	UUIDJustCreated uint64 = 4
	// UUIDNewBitmapOffset is added to the Bitmap UUID when a resync
	// starts, so a resync that was interrupted before the target learnt
	// the sync UUID can be recognised and undone (decision rules 51/71).
	UUIDNewBitmapOffset uint64 = 0x0001000000000000
	// uuidRoleBit is bit 0: set on Current while Primary.
	uuidRoleBit uint64 = 1
)

// Same reports whether two UUIDs name the same generation (bit 0 masked).
func Same(a, b uint64) bool { return a&^uuidRoleBit == b&^uuidRoleBit }

// NewUUID returns a random generation UUID from r (crypto/rand.Reader when
// nil) with bit 0 clear. It never returns 0 (no generation) or
// UUIDJustCreated, which have meanings of their own.
func NewUUID(r io.Reader) (uint64, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [8]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, fmt.Errorf("meta: new generation UUID: %w", err)
		}
		u := binary.BigEndian.Uint64(b[:]) &^ uuidRoleBit
		if u != 0 && !Same(u, UUIDJustCreated) {
			return u, nil
		}
	}
}

// Masked returns the tuple with bit 0 cleared everywhere, for comparing.
func (g GI) Masked() GI {
	g.Current &^= uuidRoleBit
	g.Bitmap &^= uuidRoleBit
	for i := range g.History {
		g.History[i] &^= uuidRoleBit
	}
	return g
}

// Primary reports the role bit of Current.
func (g GI) Primary() bool { return g.Current&uuidRoleBit != 0 }

// JustCreated reports whether no data generation was started yet.
func (g GI) JustCreated() bool { return Same(g.Current, UUIDJustCreated) }

// noBitmap reports whether Bitmap holds no generation. The just-created
// value counts as none: it names no data either side could sync from.
func (g GI) noBitmap() bool { return g.Bitmap&^uuidRoleBit == 0 || Same(g.Bitmap, UUIDJustCreated) }

func setRole(u uint64, primary bool) uint64 {
	if primary {
		return u | uuidRoleBit
	}
	return u &^ uuidRoleBit
}

// pushHistory moves u into History[0], shifting the older entry out.
func (g GI) pushHistory(u uint64) GI {
	g.History[1] = g.History[0]
	g.History[0] = u
	return g
}

// NewCurrent starts a new data generation: Bitmap takes Current and
// Current becomes uuid, with the role bit for primary. It is the raw step;
// Promote and LosePeer decide when it applies.
func (g GI) NewCurrent(uuid uint64, primary bool) GI {
	g.Bitmap = g.Current
	g.Current = setRole(uuid, primary)
	return g
}

// Promote is the transition when this node becomes Primary. If the peer
// is not connected (or its disk failed) and the bitmap holds no
// generation yet, the writes to come start a new generation, so the peer
// will be recognisable as behind (or as diverged, if it is promoted too).
// If the bitmap already names a generation (we were disconnected before
// and are still), that remains the last one both sides share and only the
// role bit changes. uuid must come from NewUUID.
func (g GI) Promote(uuid uint64, peerConnected bool) GI {
	if !peerConnected && g.noBitmap() {
		return g.NewCurrent(uuid, true)
	}
	g.Current = setRole(g.Current, true)
	return g
}

// Demote is the transition when this node becomes Secondary: the role bit
// is cleared.
func (g GI) Demote() GI {
	g.Current = setRole(g.Current, false)
	return g
}

// LosePeer is the transition when the peer's disk stops receiving our
// writes (the link went down, or the peer's disk failed) while the local
// disk is UpToDate and either this node is Primary, or the peer is a
// still-connected Primary writing through us after its own disk failed.
// The caller checks those conditions; a Secondary that merely lost the
// link to a Primary must not call it (both sides would start a
// generation and look diverged). As in Promote, a new generation starts
// unless the bitmap already names one. primary is this node's role now.
func (g GI) LosePeer(uuid uint64, primary bool) GI {
	if g.noBitmap() {
		return g.NewCurrent(uuid, primary)
	}
	g.Current = setRole(g.Current, primary)
	return g
}

// StartSyncSource is the transition on the resync source when a resync
// starts. The old Bitmap UUID moves into history and Bitmap becomes the
// sync UUID: the old Bitmap plus UUIDNewBitmapOffset, or uuid (from
// NewUUID) when there was none. The sync UUID is sent to the target, which
// applies StartSyncTarget.
func (g GI) StartSyncSource(uuid uint64) (next GI, syncUUID uint64) {
	if g.noBitmap() {
		g.Bitmap = uuid &^ uuidRoleBit
		return g, g.Bitmap
	}
	old := g.Bitmap
	g = g.pushHistory(old)
	g.Bitmap = old + UUIDNewBitmapOffset
	return g, g.Bitmap
}

// StartSyncTarget is the transition on the resync target when it receives
// the sync UUID: its data now belongs to that (unfinished) generation and
// its own bitmap UUID is dropped, keeping its role bit. The target stays
// Inconsistent until FinishSyncTarget.
func (g GI) StartSyncTarget(syncUUID uint64) GI {
	g.Current = setRole(syncUUID, g.Primary())
	g.Bitmap = 0
	return g
}

// FinishSyncSource is the transition on the source when the resync
// completed: the bitmap UUID moves into history and Bitmap becomes 0 (the
// peer has everything). It is also the fix-up for a source that missed
// "resync finished" (decision rule 34).
func (g GI) FinishSyncSource() GI {
	if g.noBitmap() {
		g.Bitmap = 0
		return g
	}
	g = g.pushHistory(g.Bitmap)
	g.Bitmap = 0
	return g
}

// FinishSyncTarget is the transition on the target when the resync
// completed: it adopts the source's tuple (as the source has it after
// FinishSyncSource), keeping its own role bit.
func (g GI) FinishSyncTarget(source GI) GI {
	primary := g.Primary()
	g = source
	g.Current = setRole(g.Current, primary)
	return g
}

// UndoSyncStart reverts StartSyncSource on a node whose sync UUID never
// reached the target (decision rules 51 and 71): Bitmap takes History[0]
// back and History[0] takes History[1]. History[1] is kept: the entry
// shifted out by StartSyncSource is gone, and keeping the older one is
// the conservative choice for ancestry checks.
func (g GI) UndoSyncStart() GI {
	g.Bitmap = g.History[0]
	g.History[0] = g.History[1]
	return g
}

// SkipInitialSync is the transition for an operator declaring two freshly
// created replicas identical without copying (DRBD's new-current-uuid
// --clear-bitmap): a new Current, the old one pushed into history and no
// bitmap. The peer adopts the result with FinishSyncTarget.
func (g GI) SkipInitialSync(uuid uint64) GI {
	old := g.Current &^ uuidRoleBit
	if !Same(old, UUIDJustCreated) && old != 0 {
		g = g.pushHistory(old)
	}
	g.Current = setRole(uuid, g.Primary())
	g.Bitmap = 0
	return g
}

// String is the tuple as DRBD prints it: current:bitmap:history0:history1
// in hex.
func (g GI) String() string {
	return fmt.Sprintf("%016X:%016X:%016X:%016X", g.Current, g.Bitmap, g.History[0], g.History[1])
}
