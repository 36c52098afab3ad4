package decide

import (
	"testing"

	"github.com/hactl/hactl/replicate/meta"
)

// Scenarios of research/replication.md §10, with the tuples built by
// meta's transitions.

// inSync returns two nodes that completed their initial sync on uX.
func inSync() (a, b meta.GI) {
	a = meta.GI{Current: jc}.SkipInitialSync(uX)
	b = meta.GI{Current: jc}.FinishSyncTarget(a)
	return a, b
}

// expect checks the decision from both sides: a's kind, full and rule.
func expect(t *testing.T, in Input, kind Kind, full bool, rule int) Decision {
	t.Helper()
	if in.Volume == "" {
		in.Volume = "vol0"
	}
	d, _ := checkMirror(t, in)
	if d.Kind != kind || d.Full != full || d.Rule != rule {
		t.Fatalf("%s: got %v, want %s full=%v rule %d", in.Self.Node, d, kind, full, rule)
	}
	return d
}

func TestScenario01KillPrimary(t *testing.T) {
	a, b := inSync()
	a = a.Promote(uY, true) // connected: only the role bit
	// a is killed mid-write; b is promoted while disconnected.
	b = b.Promote(uZ, false)
	if !meta.Same(b.Bitmap, uX) {
		t.Fatalf("promotion did not start a generation: %v", b)
	}
	// a restarts Secondary with CRASHED_PRIMARY and its AL-hot extents.
	in := pair(side("a", a, crashed, dirty(12)), side("b", b, primary, dirty(300)))
	expect(t, in, Target, false, 8)
	expect(t, swap(in), Source, false, 11)
}

func TestScenario02KillPrimaryProtoA(t *testing.T) {
	a, b := inSync()
	a = a.Promote(uY, true)
	// Variant: b is not promoted; a restarts with CRASHED_PRIMARY.
	a = a.Demote()
	in := pair(side("a", a, crashed, dirty(12)), side("b", b))
	d := expect(t, in, Source, false, 7)
	if d.Step != StepNone {
		t.Fatalf("step %d", d.Step)
	}
}

func TestScenario03KillSecondary(t *testing.T) {
	a, b := inSync()
	a = a.Promote(uY, true)
	a = a.LosePeer(uW, true) // b died; a keeps writing
	in := pair(side("a", a, primary, dirty(100)), side("b", b))
	expect(t, in, Source, false, 11)
	expect(t, swap(in), Target, false, 8)
}

func TestScenario05BothPrimary(t *testing.T) {
	a, b := inSync()
	a = a.Promote(uY, true).LosePeer(uW, true)
	b = b.Promote(uZ, false) // forced promotion in the partition
	in := Input{Volume: "data", Self: side("a", a, primary, dirty(10)), Peer: side("b", b, primary, dirty(20))}
	d := expect(t, in, SplitBrain, false, 14)
	if d.SplitBrain.Primaries != 2 || d.SplitBrain.Resolve[1] != "hactl volume resolve data --discard b" {
		t.Fatalf("%+v", *d.SplitBrain)
	}
	// The operator demotes b and resolves with b as the victim: bitmap
	// union resync from a, not full.
	b = b.Demote()
	in.Peer = side("b", b, discardMine, dirty(20))
	d = expect(t, in, Source, false, 14)
	if d.SplitBrain.Discard != "b" || d.Step != StepDiscardMyData {
		t.Fatalf("%v %+v", d, *d.SplitBrain)
	}
}

func TestScenario06PolicyMatrix(t *testing.T) {
	a0, b0 := inSync()
	a := a0.Promote(uY, true).LosePeer(uW, true)
	b := b0.Promote(uZ, false)
	for _, tc := range []struct {
		name           string
		pol            Policies
		aPri, bPri     bool
		aDirty, bDirty uint64
		kind           Kind
	}{
		{"0pri zero-changes, b wrote nothing", Policies{After0Pri: PolicyDiscardZeroChanges}, false, false, 5, 0, Source},
		{"0pri zero-changes, both wrote", Policies{After0Pri: PolicyDiscardZeroChanges}, false, false, 5, 1, SplitBrain},
		{"0pri least-changes", Policies{After0Pri: PolicyDiscardLeastChanges}, false, false, 5, 9, Target},
		{"0pri least-changes tie", Policies{After0Pri: PolicyDiscardLeastChanges}, false, false, 5, 5, Source},
		{"1pri discard-secondary keeps Primary b", Policies{After1Pri: PolicyDiscardSecondary}, false, true, 500, 1, Target},
		{"1pri consensus never discards Primary b", Policies{After0Pri: PolicyDiscardLeastChanges, After1Pri: PolicyConsensus}, false, true, 500, 1, SplitBrain},
		{"2pri default disconnect", Policies{After0Pri: PolicyDiscardLeastChanges, After1Pri: PolicyDiscardSecondary}, true, true, 1, 500, SplitBrain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sa := side("a", a, dirty(tc.aDirty))
			sb := side("b", b, dirty(tc.bDirty))
			if tc.aPri {
				sa.Role = Primary
			}
			if tc.bPri {
				sb.Role = Primary
			}
			d := expect(t, Input{Self: sa, Peer: sb, Policy: tc.pol}, tc.kind, false, 14)
			if tc.bPri && d.SplitBrain.Discard == "b" {
				t.Fatalf("discarded the Primary: %v", d)
			}
		})
	}
}

func TestScenario07CrashDuringResyncStart(t *testing.T) {
	a, b := inSync()
	a = a.Promote(uY, true).LosePeer(uW, true)
	// Reconnect: a is source; it rotates its UUIDs and crashes before b
	// received the sync UUID.
	a, _ = a.StartSyncSource(uV)
	in := pair(side("a", a, crashed, dirty(40)), side("b", b))
	expect(t, in, Source, false, 12)
	expect(t, swap(in), Target, false, 9)

	// Vice versa: b received the sync UUID (and is Inconsistent), then a
	// crashed before finishing.
	a2, b2 := inSync()
	a2 = a2.Promote(uY, true).LosePeer(uW, true)
	a2, sync := a2.StartSyncSource(uV)
	b2 = b2.StartSyncTarget(sync)
	in = pair(side("a", a2, crashed, dirty(40)), side("b", b2, inconsistent, dirty(40)))
	d := expect(t, in, Source, false, 11)
	if d.Step != StepInconsistent {
		t.Fatalf("step %d", d.Step)
	}
}

func TestScenario09MissedResyncFinished(t *testing.T) {
	a, b := inSync()
	a = a.Promote(uY, true).LosePeer(uW, true)
	a, sync := a.StartSyncSource(uV)
	b = b.StartSyncTarget(sync)
	// The last block is acked; b finishes, a is killed before it does.
	b = b.FinishSyncTarget(a.FinishSyncSource())
	in := pair(side("a", a.Demote(), crashed), side("b", b))
	expect(t, in, Source, false, 4)
	expect(t, swap(in), Target, false, 5)
	// And the other way round: a finished, b missed it.
	a3, b3 := inSync()
	a3 = a3.Promote(uY, true).LosePeer(uW, true)
	a3, sync = a3.StartSyncSource(uV)
	b3 = b3.StartSyncTarget(sync)
	a3 = a3.FinishSyncSource()
	in = pair(side("a", a3, primary), side("b", b3, inconsistent))
	// b never adopted a's tuple: b's current is the sync UUID, which a
	// now holds in history → full resync to b (rule 10 from b's side).
	expect(t, in, Source, true, 13)
}

func TestScenario11Unrelated(t *testing.T) {
	a, _ := inSync()
	c := meta.GI{Current: jc}.SkipInitialSync(uW) // independently initialised
	in := pair(side("a", a, primary), side("c", c))
	d := expect(t, in, Unrelated, false, 16)
	if d.SplitBrain != nil {
		t.Fatal(d)
	}
}

func TestScenario17EqualUUIDsDirtyBits(t *testing.T) {
	a, b := inSync()
	a = a.Promote(uY, true)
	// b shut down cleanly; a kept writing (through a witness) without a
	// new generation: equal currents, but a's bitmap has bits.
	in := pair(side("a", a, primary, dirty(64)), side("b", b))
	d := expect(t, in, Source, false, 6)
	if d.Kind == NoSync {
		t.Fatal("reported in sync with dirty bits")
	}
}
