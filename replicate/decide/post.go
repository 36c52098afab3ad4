package decide

import (
	"fmt"
	"strings"
)

// inconsistentOverride is post-step 1: when exactly one side is
// Inconsistent, the consistent side is Source whatever the table said
// (unrelated data excepted); full if the table said split brain or full.
func inconsistentOverride(in Input, d Decision) Decision {
	self, peer := in.Self, in.Peer
	if d.Kind == Unrelated || d.Kind == Refuse || self.Inconsistent == peer.Inconsistent {
		return d
	}
	full := d.Full || d.Kind == SplitBrain
	bad := self.Node
	if peer.Inconsistent {
		bad = peer.Node
	}
	d.Reason = fmt.Sprintf("%s; overridden: %s is Inconsistent, the consistent side is the source%s", d.Reason, bad, fullWord(full))
	d.Kind, d.Full, d.Step = sourceIf(!self.Inconsistent), full, StepInconsistent
	return d
}

// splitBrainPolicy is post-step 2: a split brain from a common parent
// (row 14) goes to the after-sb policy for the number of Primaries now.
// Rows 7 (both Primary after a crash) and 15 (ancestry only) are never
// resolved automatically.
func splitBrainPolicy(in Input, d Decision) Decision {
	if d.Kind != SplitBrain {
		return d
	}
	self, peer := in.Self, in.Peer
	prim := 0
	for _, s := range []Side{self, peer} {
		if s.Role == Primary {
			prim++
		}
	}
	out := &SplitBrainOutcome{Primaries: prim, Policy: PolicyDisconnect}
	d.SplitBrain = out
	unresolved := func(why string) Decision {
		out.Resolve = resolveCommands(in)
		d.Reason = fmt.Sprintf("%s; %s; resolve with: %s", d.Reason, why, strings.Join(out.Resolve, " or "))
		return d
	}
	if d.Rule != 14 {
		return unresolved("no automatic recovery for this kind of split brain, disconnecting")
	}
	var k Kind
	var ok bool
	var why string
	switch prim {
	case 0:
		out.Policy = orDisconnect(in.Policy.After0Pri)
		k, ok, why = asb0(out.Policy, self, peer)
	case 1:
		out.Policy = orDisconnect(in.Policy.After1Pri)
		k, ok, why = asb1(out.Policy, orDisconnect(in.Policy.After0Pri), self, peer)
	default:
		out.Policy = orDisconnect(in.Policy.After2Pri)
		k, ok, why = false0(out.Policy)
	}
	if !ok {
		return unresolved(fmt.Sprintf("%d primaries, after-sb-%dpri %s: %s", prim, prim, out.Policy, why))
	}
	out.Discard = discarded(k, self, peer)
	d.Kind, d.Step = k, StepSplitBrainPolicy
	d.Reason = fmt.Sprintf("%s; %d primaries, automatically resolved by after-sb-%dpri %s: %s, discarding the changes of %s", d.Reason, prim, prim, out.Policy, why, out.Discard)
	return d
}

func orDisconnect(p string) string {
	if p == "" {
		return PolicyDisconnect
	}
	return p
}

func false0(p string) (Kind, bool, string) {
	if p == PolicyDisconnect {
		return 0, false, "disconnect"
	}
	return 0, false, fmt.Sprintf("unknown policy %q, disconnecting", p)
}

// discarded names the node whose changes a Source/Target kind discards.
func discarded(k Kind, self, peer Side) string {
	if k == Target {
		return self.Node
	}
	return peer.Node
}

func resolveCommands(in Input) []string {
	a, b := in.Self.Node, in.Peer.Node
	if b < a {
		a, b = b, a
	}
	return []string{
		fmt.Sprintf("hactl volume resolve %s --discard %s", in.Volume, a),
		fmt.Sprintf("hactl volume resolve %s --discard %s", in.Volume, b),
	}
}

// wasPrimary reads bit 0 of the bitmap UUID: this node was Primary when
// the diverging generation started.
func wasPrimary(s Side) bool { return s.GI.Bitmap&1 != 0 }

// asb0 is after-sb-0pri. It returns Self's kind and whether the policy
// decided.
func asb0(policy string, self, peer Side) (Kind, bool, string) {
	switch {
	case policy == PolicyDiscardYoungerPrimary || policy == PolicyDiscardOlderPrimary:
		sw, pw := wasPrimary(self), wasPrimary(peer)
		if sw == pw {
			k, ok, why := leastChanges(self, peer)
			return k, ok, "younger/older primary undecidable, using discard-least-changes instead: " + why
		}
		if policy == PolicyDiscardYoungerPrimary {
			// The side that was not Primary at the split was promoted
			// later: it is the younger primary.
			return sourceIf(sw), true, "the younger primary is the one promoted after the split"
		}
		return sourceIf(!sw), true, "the older primary is the one that was Primary at the split"
	case policy == PolicyDiscardZeroChanges:
		switch {
		case self.Dirty == 0 && peer.Dirty == 0:
			return sourceIf(tieBreakSelfSource(self, peer)), true, "neither side changed anything, the lower node id is the source (tie-break)"
		case self.Dirty == 0 || peer.Dirty == 0:
			return sourceIf(self.Dirty != 0), true, "exactly one side made no changes"
		}
		return 0, false, "both sides made changes"
	case policy == PolicyDiscardLeastChanges:
		return leastChanges(self, peer)
	case strings.HasPrefix(policy, PolicyDiscardNodePrefix):
		name := strings.TrimPrefix(policy, PolicyDiscardNodePrefix)
		switch name {
		case self.Node:
			return Target, true, "configured to discard " + name
		case peer.Node:
			return Source, true, "configured to discard " + name
		}
		return 0, false, fmt.Sprintf("node %q is neither side", name)
	}
	return false0(policy)
}

func leastChanges(self, peer Side) (Kind, bool, string) {
	if self.Dirty == peer.Dirty {
		return sourceIf(tieBreakSelfSource(self, peer)), true, fmt.Sprintf("both sides changed %d blocks, the lower node id is the source (tie-break)", self.Dirty)
	}
	return sourceIf(self.Dirty > peer.Dirty), true, fmt.Sprintf("%d changed blocks here, %d on %s: the side with fewer changes is discarded", self.Dirty, peer.Dirty, peer.Node)
}

// asb1 is after-sb-1pri; exactly one side is Primary.
func asb1(policy, policy0 string, self, peer Side) (Kind, bool, string) {
	selfPrimary := self.Role == Primary
	switch policy {
	case PolicyDiscardSecondary:
		return sourceIf(selfPrimary), true, "the Secondary is discarded"
	case PolicyConsensus:
		k, ok, why := asb0(policy0, self, peer)
		if !ok {
			return 0, false, "after-sb-0pri " + policy0 + " did not decide: " + why
		}
		if (k == Target) == selfPrimary {
			return 0, false, "after-sb-0pri " + policy0 + " would discard the Primary"
		}
		return k, true, "after-sb-0pri " + policy0 + " discards the Secondary: " + why
	}
	return false0(policy)
}

// discardMyData is post-step 3: an unresolved split brain where exactly
// one side asked to discard its data. Full after row 15 (the bitmaps share
// no parent generation), by bitmap union otherwise.
func discardMyData(in Input, d Decision) Decision {
	self, peer := in.Self, in.Peer
	if d.Kind != SplitBrain || self.DiscardMyData == peer.DiscardMyData {
		return d
	}
	d.Kind, d.Full, d.Step = sourceIf(peer.DiscardMyData), d.Rule == 15, StepDiscardMyData
	if d.SplitBrain == nil {
		d.SplitBrain = &SplitBrainOutcome{}
	}
	d.SplitBrain.Policy = "discard-my-data"
	d.SplitBrain.Discard = discarded(d.Kind, self, peer)
	d.SplitBrain.Resolve = nil
	d.Reason = fmt.Sprintf("%s; resolved: %s asked to discard its data%s", d.Reason, d.SplitBrain.Discard, fullWord(d.Full))
	return d
}

// roles returns the would-be source and target, ok false if no resync.
func roles(in Input, d Decision) (src, tgt Side, ok bool) {
	switch d.Kind {
	case Source:
		return in.Self, in.Peer, true
	case Target:
		return in.Peer, in.Self, true
	}
	return Side{}, Side{}, false
}

func refuse(d Decision, step Step, why string) Decision {
	d.Reason = fmt.Sprintf("%s; refused: %s", d.Reason, why)
	d.Kind, d.Full, d.Step = Refuse, false, step
	return d
}

// refuseSource is post-step 4: an Inconsistent disk never sources a
// resync, nor an Outdated one to an UpToDate peer.
func refuseSource(in Input, d Decision) Decision {
	src, tgt, ok := roles(in, d)
	switch {
	case !ok:
		return d
	case src.Inconsistent:
		return refuse(d, StepSourceInconsistent, fmt.Sprintf("the would-be source %s is Inconsistent", src.Node))
	case src.Outdated && tgt.upToDate():
		return refuse(d, StepSourceInconsistent, fmt.Sprintf("the would-be source %s is Outdated and %s is UpToDate", src.Node, tgt.Node))
	}
	return d
}

// refuseTarget is post-step 5 (rr-conflict disconnect): a Primary with
// consistent data is never overwritten; demote it first.
func refuseTarget(in Input, d Decision) Decision {
	_, tgt, ok := roles(in, d)
	if ok && tgt.Role == Primary && !tgt.Inconsistent {
		return refuse(d, StepTargetPrimary, fmt.Sprintf("the would-be target %s is a Primary with consistent data (rr-conflict disconnect); demote it first", tgt.Node))
	}
	return d
}
