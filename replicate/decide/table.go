package decide

import (
	"fmt"

	"github.com/hactl/hactl/replicate/meta"
)

// uuid helpers over masked values.

// none reports a UUID naming no data generation: 0 or just-created.
func none(u uint64) bool { return u == 0 || meta.Same(u, meta.UUIDJustCreated) }

// inHistory reports whether u equals a non-zero history entry of g.
func inHistory(u uint64, g meta.GI) bool {
	for _, h := range g.History {
		if !none(h) && meta.Same(u, h) {
			return true
		}
	}
	return false
}

// table evaluates rows 1–16 of §9.2 from self's viewpoint, first match
// wins. Rule 6 and 7 tie-breaks use the shared node-id key.
func table(self, peer Side) Decision {
	s, p := self.GI.Masked(), peer.GI.Masked()
	off := meta.UUIDNewBitmapOffset
	switch {
	case none(s.Current) && none(p.Current):
		return Decision{Kind: NoSync, Rule: 1, Reason: "neither side has a data generation yet (just created); waiting for the operator to start the initial sync"}
	case none(s.Current):
		return Decision{Kind: Target, Full: true, Rule: 2, Reason: fmt.Sprintf("this node has no data generation, %s has %016X", peer.Node, p.Current)}
	case none(p.Current):
		return Decision{Kind: Source, Full: true, Rule: 3, Reason: fmt.Sprintf("%s has no data generation, this node has %016X", peer.Node, s.Current)}
	case s.Current == p.Current:
		return equalCurrents(self, peer, s, p)
	case s.Current == p.Bitmap:
		return Decision{Kind: Target, Rule: 8, Reason: fmt.Sprintf("our current generation %016X is %s's bitmap generation: %s moved on, resync its changes by bitmap", s.Current, peer.Node, peer.Node)}
	case s.Current == p.History[0] && p.Bitmap == p.History[0]+off:
		return Decision{Kind: Target, Rule: 9, Reason: fmt.Sprintf("%s started a resync as source but its sync UUID never reached us; undo its rotation, resync by bitmap", peer.Node)}
	case inHistory(s.Current, p):
		return Decision{Kind: Target, Full: true, Rule: 10, Reason: fmt.Sprintf("our current generation %016X is in %s's history: its bitmap is too new to use, full resync", s.Current, peer.Node)}
	case !none(s.Bitmap) && s.Bitmap == p.Current:
		return Decision{Kind: Source, Rule: 11, Reason: fmt.Sprintf("%s's current generation %016X is our bitmap generation: we moved on, resync our changes by bitmap", peer.Node, p.Current)}
	case s.Bitmap == s.History[0]+off && !none(s.History[0]) && s.History[0] == p.Current:
		return Decision{Kind: Source, Rule: 12, Reason: fmt.Sprintf("we started a resync as source but our sync UUID never reached %s; undo our rotation, resync by bitmap", peer.Node)}
	case inHistory(p.Current, s):
		return Decision{Kind: Source, Full: true, Rule: 13, Reason: fmt.Sprintf("%s's current generation %016X is in our history: our bitmap is too new to use, full resync", peer.Node, p.Current)}
	case !none(s.Bitmap) && s.Bitmap == p.Bitmap:
		return Decision{Kind: SplitBrain, Rule: 14, Reason: fmt.Sprintf("split brain: both sides started new generations (%016X, %016X) from the common parent %016X", s.Current, p.Current, s.Bitmap)}
	case sharedHistory(s, p):
		return Decision{Kind: SplitBrain, Rule: 15, Reason: "split brain: the two sides share only an older ancestor in their histories; not recoverable automatically"}
	default:
		return Decision{Kind: Unrelated, Rule: 16, Reason: fmt.Sprintf("unrelated data: generations %s and %s share no history; refusing to connect", s, p)}
	}
}

// sharedHistory is row 15: a non-zero ancestor in common. §9.2 says
// history entries only; the bitmap UUIDs count as ancestors too, so that
// a side whose sync-start rotation moved the common parent from Bitmap
// into History is recognised as diverged rather than unrelated (the
// outcome is a refusal either way, but a split brain can be resolved with
// discard-my-data, unrelated data cannot).
func sharedHistory(s, p meta.GI) bool {
	as := []uint64{s.Bitmap, s.History[0], s.History[1]}
	bs := []uint64{p.Bitmap, p.History[0], p.History[1]}
	for _, a := range as {
		for _, b := range bs {
			if !none(a) && a == b {
				return true
			}
		}
	}
	return false
}

// equalCurrents is rows 4–7: both sides name the same generation.
func equalCurrents(self, peer Side, s, p meta.GI) Decision {
	switch {
	case !none(s.Bitmap) && none(p.Bitmap):
		return Decision{Kind: Source, Rule: 4, Reason: "same generation, only we still hold a bitmap generation: we missed \"resync finished\" as source; resync by bitmap"}
	case none(s.Bitmap) && !none(p.Bitmap):
		return Decision{Kind: Target, Rule: 5, Reason: fmt.Sprintf("same generation, only %s still holds a bitmap generation: it missed \"resync finished\" as source; resync by bitmap", peer.Node)}
	case !self.CrashedPrimary && !peer.CrashedPrimary:
		return rule6(self, peer)
	default:
		return rule7(self, peer)
	}
}

// rule6: equal currents, no crashed primary. In sync unless a bitmap is
// non-empty (LinBIT/drbd#145): then resync the union of the bitmaps from
// the Primary, else the UpToDate side, else the side with dirty bits,
// else the lower node id.
func rule6(self, peer Side) Decision {
	if self.Dirty == 0 && peer.Dirty == 0 {
		return Decision{Kind: NoSync, Rule: 6, Reason: "same generation, empty bitmaps, no crashed primary: in sync"}
	}
	var src bool
	var why string
	switch {
	case (self.Role == Primary) != (peer.Role == Primary):
		src, why = self.Role == Primary, "the Primary"
	case self.upToDate() != peer.upToDate():
		src, why = self.upToDate(), "the UpToDate side"
	case (self.Dirty > 0) != (peer.Dirty > 0):
		src, why = self.Dirty > 0, "the side with dirty bits"
	default:
		src, why = tieBreakSelfSource(self, peer), "the lower node id (tie-break)"
	}
	return Decision{Kind: sourceIf(src), Rule: 6, Reason: fmt.Sprintf(
		"same generation but bitmaps not empty (%d here, %d on %s): resync the union from %s", self.Dirty, peer.Dirty, peer.Node, why)}
}

// rule7: equal currents, a crashed primary is involved.
func rule7(self, peer Side) Decision {
	sp, pp := self.Role == Primary, peer.Role == Primary
	switch {
	case sp && pp:
		return Decision{Kind: SplitBrain, Rule: 7, Reason: "same generation after a primary crash but both sides are Primary now: split brain, cannot resolve"}
	case sp != pp:
		return Decision{Kind: sourceIf(sp), Rule: 7, Reason: "same generation after a primary crash: the current Primary is the source, resync by bitmap"}
	case self.CrashedPrimary != peer.CrashedPrimary:
		return Decision{Kind: sourceIf(self.CrashedPrimary), Rule: 7, Reason: "same generation, both Secondary: the crashed primary is the source for its activity-log extents, resync by bitmap"}
	default:
		return Decision{Kind: sourceIf(tieBreakSelfSource(self, peer)), Rule: 7, Reason: "same generation, both crashed as primary: the lower node id is the source (tie-break), resync by bitmap"}
	}
}
