package decide

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/replicate/meta"
)

const (
	jc  = meta.UUIDJustCreated
	off = meta.UUIDNewBitmapOffset
	uX  = uint64(0x1111000000000010)
	uY  = uint64(0x2222000000000020)
	uZ  = uint64(0x3333000000000030)
	uW  = uint64(0x4444000000000040)
	uV  = uint64(0x5555000000000050)
)

func gi(cur, bm, h0, h1 uint64) meta.GI {
	return meta.GI{Current: cur, Bitmap: bm, History: [2]uint64{h0, h1}}
}

// side builds a Secondary, UpToDate side.
func side(node string, g meta.GI, opts ...func(*Side)) Side {
	s := Side{Node: node, GI: g}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func primary(s *Side)            { s.Role = Primary }
func crashed(s *Side)            { s.CrashedPrimary = true }
func inconsistent(s *Side)       { s.Inconsistent = true }
func outdated(s *Side)           { s.Outdated = true }
func discardMine(s *Side)        { s.DiscardMyData = true }
func dirty(n uint64) func(*Side) { return func(s *Side) { s.Dirty = n } }

func swap(in Input) Input { in.Self, in.Peer = in.Peer, in.Self; return in }

// checkMirror fails unless the two viewpoints agree.
func checkMirror(t *testing.T, in Input) (Decision, Decision) {
	t.Helper()
	d, m := Decide(in), Decide(swap(in))
	if d.Kind.mirror() != m.Kind || d.Full != m.Full {
		t.Fatalf("not antisymmetric:\n self %s: %v\n peer %s: %v", in.Self.Node, d, in.Peer.Node, m)
	}
	if (d.SplitBrain == nil) != (m.SplitBrain == nil) {
		t.Fatalf("split-brain outcome on one side only:\n %v\n %v", d, m)
	}
	if d.SplitBrain != nil && (d.SplitBrain.Discard != m.SplitBrain.Discard || !reflect.DeepEqual(d.SplitBrain.Resolve, m.SplitBrain.Resolve)) {
		t.Fatalf("split-brain outcomes differ:\n %+v\n %+v", *d.SplitBrain, *m.SplitBrain)
	}
	if d.Reason == "" || m.Reason == "" {
		t.Fatalf("decision without a reason: %v / %v", d, m)
	}
	return d, m
}

type want struct {
	kind    Kind
	full    bool
	rule    int
	step    Step
	discard string // split brain: the discarded node ("" when none)
	reason  string // substring of Reason
}

type tcase struct {
	name string
	in   Input
	want want
}

func runCases(t *testing.T, cases []tcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.Volume == "" {
				tc.in.Volume = "vol0"
			}
			d, _ := checkMirror(t, tc.in)
			w := tc.want
			if d.Kind != w.kind || d.Full != w.full || d.Rule != w.rule || d.Step != w.step {
				t.Fatalf("got %v (step %d), want %s full=%v rule %d step %d", d, d.Step, w.kind, w.full, w.rule, w.step)
			}
			var disc string
			if d.SplitBrain != nil {
				disc = d.SplitBrain.Discard
			}
			if disc != w.discard {
				t.Fatalf("discard = %q, want %q (%v)", disc, w.discard, d)
			}
			if !strings.Contains(d.Reason, w.reason) {
				t.Fatalf("reason %q does not contain %q", d.Reason, w.reason)
			}
		})
	}
}

func pair(a, b Side) Input { return Input{Self: a, Peer: b} }

func TestRows(t *testing.T) {
	runCases(t, []tcase{
		{"1: both just created → NoSync, wait for operator",
			pair(side("a", gi(jc, 0, 0, 0)), side("b", gi(jc, 0, 0, 0))), want{kind: NoSync, rule: 1, reason: "initial sync"}},
		{"1: just created vs zero → NoSync",
			pair(side("a", gi(jc, 0, 0, 0)), side("b", gi(0, 0, 0, 0))), want{kind: NoSync, rule: 1}},
		{"2: self fresh, peer not → Target, full",
			pair(side("a", gi(jc, 0, 0, 0)), side("b", gi(uX, 0, 0, 0))), want{kind: Target, full: true, rule: 2}},
		{"2: self zero, peer not → Target, full",
			pair(side("a", gi(0, 0, 0, 0)), side("b", gi(uX|1, 0, 0, 0))), want{kind: Target, full: true, rule: 2}},
		{"3: peer fresh, self not → Source, full",
			pair(side("a", gi(uX, 0, 0, 0)), side("b", gi(jc, 0, 0, 0))), want{kind: Source, full: true, rule: 3}},
		{"4: cur equal, self.bm≠0, peer.bm==0 → Source, bitmap",
			pair(side("a", gi(uX, uY+off, uY, 0)), side("b", gi(uX, 0, uY+off, uY))), want{kind: Source, rule: 4, reason: "resync finished"}},
		{"5: cur equal, self.bm==0, peer.bm≠0 → Target, bitmap",
			pair(side("a", gi(uX, 0, uY+off, uY)), side("b", gi(uX|1, uY+off, uY, 0))), want{kind: Target, rule: 5}},
		{"6: cur equal, no crash, empty bitmaps → NoSync",
			pair(side("a", gi(uX|1, 0, uY, 0), primary), side("b", gi(uX, 0, uY, 0))), want{kind: NoSync, rule: 6}},
		{"6: cur equal, no crash, dirty bits → Source from the Primary",
			pair(side("a", gi(uX|1, 0, 0, 0), primary, dirty(7)), side("b", gi(uX, 0, 0, 0))), want{kind: Source, rule: 6, reason: "the Primary"}},
		{"6: cur equal, no crash, dirty bits → Source from the UpToDate side",
			pair(side("a", gi(uX, 0, 0, 0), outdated), side("b", gi(uX, 0, 0, 0), dirty(3))), want{kind: Target, rule: 6, reason: "UpToDate"}},
		{"6: cur equal, no crash, dirty on one side → it is Source",
			pair(side("a", gi(uX, 0, 0, 0)), side("b", gi(uX, 0, 0, 0), dirty(3))), want{kind: Target, rule: 6, reason: "dirty bits"}},
		{"6: cur equal, no crash, dirty on both → lower node id is Source",
			pair(side("b", gi(uX, 0, 0, 0), dirty(1)), side("a", gi(uX, 0, 0, 0), dirty(3))), want{kind: Target, rule: 6, reason: "tie-break"}},
		{"7: crashed primary, peer Primary now → Target, bitmap",
			pair(side("a", gi(uX|1, 0, 0, 0), crashed), side("b", gi(uX|1, 0, 0, 0), primary)), want{kind: Target, rule: 7}},
		{"7: crashed primary, both Secondary → crashed one is Source",
			pair(side("a", gi(uX|1, 0, 0, 0), crashed), side("b", gi(uX, 0, 0, 0))), want{kind: Source, rule: 7, reason: "activity-log"}},
		{"7: both crashed, both Secondary → lower node id is Source",
			pair(side("b", gi(uX|1, 0, 0, 0), crashed), side("a", gi(uX|1, 0, 0, 0), crashed)), want{kind: Target, rule: 7, reason: "tie-break"}},
		{"7: crashed primary, both Primary → SplitBrain, disconnect",
			pair(side("a", gi(uX|1, 0, 0, 0), crashed, primary), side("b", gi(uX|1, 0, 0, 0), primary)), want{kind: SplitBrain, rule: 7, reason: "hactl volume resolve vol0 --discard a or hactl volume resolve vol0 --discard b"}},
		{"8: self.cur == peer.bm → Target, bitmap",
			pair(side("a", gi(uX|1, 0, 0, 0), crashed), side("b", gi(uZ|1, uX, 0, 0), primary)), want{kind: Target, rule: 8}},
		{"9: self.cur == peer.hist[0], peer.bm == hist[0]+OFFSET → Target, bitmap (undo peer rotation)",
			pair(side("a", gi(uX, 0, 0, 0)), side("b", gi(uY, uX+off, uX, 0))), want{kind: Target, rule: 9, reason: "undo"}},
		{"10: self.cur in peer.hist → Target, full",
			pair(side("a", gi(uX, 0, 0, 0)), side("b", gi(uY, uZ, 0, uX))), want{kind: Target, full: true, rule: 10}},
		{"11: self.bm == peer.cur → Source, bitmap",
			pair(side("a", gi(uY|1, uX, 0, 0), primary), side("b", gi(uX, 0, 0, 0))), want{kind: Source, rule: 11}},
		{"12: self.hist[0] == peer.cur, self.bm == hist[0]+OFFSET → Source, bitmap (undo own rotation)",
			pair(side("a", gi(uY, uX+off, uX, 0)), side("b", gi(uX, 0, 0, 0))), want{kind: Source, rule: 12}},
		{"13: peer.cur in self.hist → Source, full",
			pair(side("a", gi(uY, uZ, uX, 0)), side("b", gi(uX, 0, 0, 0))), want{kind: Source, full: true, rule: 13}},
		{"14: self.bm == peer.bm ≠ 0 → SplitBrain (default policy disconnect)",
			pair(side("a", gi(uY, uX, 0, 0)), side("b", gi(uZ, uX, 0, 0))), want{kind: SplitBrain, rule: 14, reason: "hactl volume resolve vol0 --discard a"}},
		{"15: shared history only → SplitBrain, disconnect",
			Input{Self: side("a", gi(uY, uZ, uX, 0)), Peer: side("b", gi(uW, uV, uX, 0)), Policy: Policies{After0Pri: PolicyDiscardLeastChanges}},
			want{kind: SplitBrain, rule: 15, reason: "no automatic recovery"}},
		{"15: zero history slots are no common ancestor → Unrelated",
			pair(side("a", gi(uY, uZ, 0, 0)), side("b", gi(uW, uV, 0, 0))), want{kind: Unrelated, rule: 16}},
		{"16: nothing shared → Unrelated",
			pair(side("a", gi(uX, 0, 0, 0)), side("b", gi(uY, 0, 0, 0))), want{kind: Unrelated, rule: 16, reason: "unrelated"}},
		{"0: same node id → Refuse",
			pair(side("a", gi(uX, 0, 0, 0)), side("a", gi(uX, 0, 0, 0))), want{kind: Refuse, rule: 0, reason: "node id"}},
		{"contradiction: each side's current is the other's bitmap → Refuse",
			pair(side("a", gi(uX, uY, 0, 0)), side("b", gi(uY, uX, 0, 0))), want{kind: Refuse, rule: 8, step: StepConflict, reason: "contradict"}},
	})
}

// sb is a row-14 split brain: a was Primary when it diverged (bitmap bit 0).
func sb(pol Policies, a, b []func(*Side)) Input {
	return Input{Self: side("a", gi(uY, uX|1, 0, 0), a...), Peer: side("b", gi(uZ, uX, 0, 0), b...), Policy: pol}
}

func opts(o ...func(*Side)) []func(*Side) { return o }

func TestPostSteps(t *testing.T) {
	p0 := func(p string) Policies { return Policies{After0Pri: p} }
	runCases(t, []tcase{
		{"post 1: inconsistent peer → consistent self is Source (bitmap)",
			pair(side("a", gi(uX, 0, 0, 0)), side("b", gi(uY, uX, 0, 0), inconsistent)), want{kind: Source, rule: 8, step: StepInconsistent}},
		{"post 1: inconsistent peer in split brain → Source, full",
			sb(Policies{}, nil, opts(inconsistent)), want{kind: Source, full: true, rule: 14, step: StepInconsistent}},
		{"post 1: inconsistent self, table said full Source → Target, full",
			pair(side("a", gi(uY, uZ, uX, 0), inconsistent), side("b", gi(uX, 0, 0, 0))), want{kind: Target, full: true, rule: 13, step: StepInconsistent}},
		{"post 1: unrelated data is not overridden",
			pair(side("a", gi(uX, 0, 0, 0), inconsistent), side("b", gi(uY, 0, 0, 0))), want{kind: Unrelated, rule: 16}},
		{"post 2: 0pri disconnect → SplitBrain",
			sb(p0(PolicyDisconnect), nil, nil), want{kind: SplitBrain, rule: 14, reason: "after-sb-0pri disconnect"}},
		{"post 2: 0pri discard-younger-primary → the one promoted later is Target",
			sb(p0(PolicyDiscardYoungerPrimary), nil, nil), want{kind: Source, rule: 14, step: StepSplitBrainPolicy, discard: "b"}},
		{"post 2: 0pri discard-older-primary → the one Primary at the split is Target",
			sb(p0(PolicyDiscardOlderPrimary), nil, nil), want{kind: Target, rule: 14, step: StepSplitBrainPolicy, discard: "a"}},
		{"post 2: 0pri discard-younger-primary undecidable → least changes",
			Input{Self: side("a", gi(uY, uX, 0, 0), dirty(2)), Peer: side("b", gi(uZ, uX, 0, 0), dirty(9)), Policy: p0(PolicyDiscardYoungerPrimary)},
			want{kind: Target, rule: 14, step: StepSplitBrainPolicy, discard: "a", reason: "least-changes instead"}},
		{"post 2: 0pri discard-zero-changes, one side unchanged → it is Target",
			sb(p0(PolicyDiscardZeroChanges), opts(dirty(5)), nil), want{kind: Source, rule: 14, step: StepSplitBrainPolicy, discard: "b"}},
		{"post 2: 0pri discard-zero-changes, none changed → lower node id is Source",
			sb(p0(PolicyDiscardZeroChanges), nil, nil), want{kind: Source, rule: 14, step: StepSplitBrainPolicy, discard: "b", reason: "tie-break"}},
		{"post 2: 0pri discard-zero-changes, both changed → SplitBrain",
			sb(p0(PolicyDiscardZeroChanges), opts(dirty(1)), opts(dirty(2))), want{kind: SplitBrain, rule: 14, reason: "both sides made changes"}},
		{"post 2: 0pri discard-least-changes → fewer changes is Target",
			sb(p0(PolicyDiscardLeastChanges), opts(dirty(1)), opts(dirty(2))), want{kind: Target, rule: 14, step: StepSplitBrainPolicy, discard: "a"}},
		{"post 2: 0pri discard-least-changes tie → lower node id is Source",
			sb(p0(PolicyDiscardLeastChanges), opts(dirty(4)), opts(dirty(4))), want{kind: Source, rule: 14, step: StepSplitBrainPolicy, discard: "b"}},
		{"post 2: 0pri discard-node-a → a is Target",
			sb(p0("discard-node-a"), nil, nil), want{kind: Target, rule: 14, step: StepSplitBrainPolicy, discard: "a"}},
		{"post 2: 0pri discard-node-c (neither side) → SplitBrain",
			sb(p0("discard-node-c"), nil, nil), want{kind: SplitBrain, rule: 14, reason: "neither side"}},
		{"post 2: 1pri discard-secondary → the Secondary is Target",
			sb(Policies{After1Pri: PolicyDiscardSecondary}, nil, opts(primary)), want{kind: Target, rule: 14, step: StepSplitBrainPolicy, discard: "a"}},
		{"post 2: 1pri consensus, 0pri discards the Secondary → applied",
			sb(Policies{After0Pri: PolicyDiscardLeastChanges, After1Pri: PolicyConsensus}, opts(dirty(1)), opts(primary, dirty(8))),
			want{kind: Target, rule: 14, step: StepSplitBrainPolicy, discard: "a"}},
		{"post 2: 1pri consensus, 0pri would discard the Primary → SplitBrain",
			sb(Policies{After0Pri: PolicyDiscardLeastChanges, After1Pri: PolicyConsensus}, opts(dirty(9)), opts(primary, dirty(8))),
			want{kind: SplitBrain, rule: 14, reason: "would discard the Primary"}},
		{"post 2: 1pri disconnect (default) → SplitBrain",
			sb(Policies{After0Pri: PolicyDiscardLeastChanges}, nil, opts(primary)), want{kind: SplitBrain, rule: 14, reason: "after-sb-1pri disconnect"}},
		{"post 2: 2pri disconnect → SplitBrain",
			sb(Policies{After2Pri: PolicyDisconnect}, opts(primary), opts(primary)), want{kind: SplitBrain, rule: 14, reason: "2 primaries"}},
		{"post 2: 2pri unknown policy → SplitBrain",
			sb(Policies{After2Pri: "violently-as0p"}, opts(primary), opts(primary)), want{kind: SplitBrain, rule: 14, reason: "unknown policy"}},
		{"post 3: discard-my-data on self → Target, bitmap",
			sb(Policies{}, opts(discardMine), nil), want{kind: Target, rule: 14, step: StepDiscardMyData, discard: "a"}},
		{"post 3: discard-my-data on peer after ancestry-only split brain → Source, full",
			Input{Self: side("a", gi(uY, uZ, uX, 0)), Peer: side("b", gi(uW, uV, uX, 0), discardMine)}, want{kind: Source, full: true, rule: 15, step: StepDiscardMyData, discard: "b"}},
		{"post 3: discard-my-data on both → SplitBrain",
			sb(Policies{}, opts(discardMine), opts(discardMine)), want{kind: SplitBrain, rule: 14}},
		{"post 4: would-be source Inconsistent → Refuse",
			pair(side("a", gi(uX, 0, 0, 0), inconsistent), side("b", gi(uY, uX, 0, 0), inconsistent)), want{kind: Refuse, rule: 8, step: StepSourceInconsistent, reason: "is Inconsistent"}},
		{"post 4: would-be source Outdated, target UpToDate → Refuse",
			pair(side("a", gi(uY, uX, 0, 0), outdated), side("b", gi(uX, 0, 0, 0))), want{kind: Refuse, rule: 11, step: StepSourceInconsistent, reason: "Outdated"}},
		{"post 5: would-be target a consistent Primary → Refuse (rr-conflict)",
			pair(side("a", gi(uX|1, 0, 0, 0), primary), side("b", gi(uY, uX, 0, 0))), want{kind: Refuse, rule: 8, step: StepTargetPrimary, reason: "rr-conflict"}},
		{"post 5: would-be target an Inconsistent Primary → allowed",
			pair(side("a", gi(uX|1, 0, 0, 0), primary, inconsistent), side("b", gi(uY, uX, 0, 0))), want{kind: Target, rule: 8, step: StepInconsistent}},
		{"post 5: discard-my-data on a Primary → Refuse",
			sb(Policies{}, opts(discardMine, primary), nil), want{kind: Refuse, rule: 14, step: StepTargetPrimary, discard: "a"}},
	})
}

func TestResolveCommand(t *testing.T) {
	d := Decide(Input{Volume: "data", Self: side("n2", gi(uY, uX, 0, 0)), Peer: side("n1", gi(uZ, uX, 0, 0))})
	want := []string{"hactl volume resolve data --discard n1", "hactl volume resolve data --discard n2"}
	if d.Kind != SplitBrain || d.SplitBrain == nil || !reflect.DeepEqual(d.SplitBrain.Resolve, want) {
		t.Fatalf("got %v %+v, want resolve %q", d, d.SplitBrain, want)
	}
}

func TestPoliciesConvertFromConfig(t *testing.T) {
	// Only the test imports config: the package stays free of its HCL
	// dependencies, and this fails to compile if the fields drift apart.
	p := Policies(config.SplitBrain{After0Pri: PolicyDiscardZeroChanges})
	if p.After0Pri != PolicyDiscardZeroChanges {
		t.Fatal(p)
	}
}
