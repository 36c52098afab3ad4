package decide

import (
	"math/rand"
	"testing"

	"github.com/hactl/hactl/replicate/meta"
)

var policyChoices = []Policies{
	{},
	{After0Pri: PolicyDiscardYoungerPrimary, After1Pri: PolicyConsensus},
	{After0Pri: PolicyDiscardOlderPrimary, After1Pri: PolicyDiscardSecondary},
	{After0Pri: PolicyDiscardZeroChanges, After1Pri: PolicyConsensus},
	{After0Pri: PolicyDiscardLeastChanges, After1Pri: PolicyDiscardSecondary, After2Pri: PolicyDisconnect},
	{After0Pri: "discard-node-a", After1Pri: PolicyConsensus},
	{After0Pri: "discard-node-b", After1Pri: "bogus", After2Pri: "violently-as0p"},
}

// node is one simulated replica.
type node struct {
	gi                               meta.GI
	pri, crashed, inconsistent, outd bool
	dirty                            uint64
}

func (n node) side(name string, dmd bool) Side {
	s := Side{Node: name, GI: n.gi, Dirty: n.dirty, CrashedPrimary: n.crashed, Inconsistent: n.inconsistent, Outdated: n.outd, DiscardMyData: dmd}
	if n.pri {
		s.Role = Primary
	}
	return s
}

// uuidSrc feeds meta.NewUUID from r.
type uuidSrc struct{ r *rand.Rand }

func (u uuidSrc) Read(p []byte) (int, error) { return u.r.Read(p) }

// history plays a random but realistic life of a pair: promotions,
// partitions, crashes, resyncs (sometimes interrupted), and returns the
// two nodes at a random reconnect.
func history(r *rand.Rand) (a, b node) {
	newUUID := func() uint64 {
		u, err := meta.NewUUID(uuidSrc{r})
		if err != nil {
			panic(err)
		}
		return u
	}
	a.gi = meta.GI{Current: jc}
	b.gi = meta.GI{Current: jc}
	if r.Intn(8) == 0 {
		return a, b
	}
	a.gi = a.gi.SkipInitialSync(newUUID())
	b.gi = b.gi.FinishSyncTarget(a.gi)
	ns := []*node{&a, &b}
	for steps := r.Intn(12); steps >= 0; steps-- {
		x, y := ns[r.Intn(2)], ns[0]
		if x == y {
			y = ns[1]
		}
		switch r.Intn(7) {
		case 0: // promote x while disconnected
			if !x.inconsistent {
				x.gi, x.pri = x.gi.Promote(newUUID(), false), true
				x.dirty += uint64(r.Intn(3))
			}
		case 1: // x is a Primary that loses its peer and writes on
			if x.pri {
				x.gi = x.gi.LosePeer(newUUID(), true)
				x.dirty += uint64(r.Intn(50))
			}
		case 2: // x crashes
			x.crashed = x.crashed || x.pri
			x.pri = false
			x.gi = x.gi.Demote()
		case 3: // x demotes cleanly
			x.pri = false
			x.gi = x.gi.Demote()
		case 4, 5: // they connect and resync as the decision says
			d := Decide(Input{Self: x.side("x", false), Peer: y.side("y", false)})
			src, tgt := x, y
			switch d.Kind {
			case Target:
				src, tgt = y, x
			case Source:
			default:
				continue
			}
			// The fix-ups the rows name, as the engine applies them.
			switch d.Rule {
			case 4:
				x.gi = x.gi.FinishSyncSource()
			case 5:
				y.gi = y.gi.FinishSyncSource()
			case 9:
				y.gi = y.gi.UndoSyncStart()
			case 12:
				x.gi = x.gi.UndoSyncStart()
			}
			var sync uint64
			src.gi, sync = src.gi.StartSyncSource(newUUID())
			if r.Intn(4) == 0 {
				continue // source crashed before the target heard
			}
			tgt.gi, tgt.inconsistent = tgt.gi.StartSyncTarget(sync), true
			if r.Intn(4) == 0 {
				continue // interrupted mid-resync
			}
			done := src.gi.FinishSyncSource()
			switch r.Intn(4) {
			case 0: // source missed "finished"
			default:
				src.gi = done
			}
			if r.Intn(4) != 0 {
				tgt.gi, tgt.inconsistent, tgt.dirty = tgt.gi.FinishSyncTarget(done), false, 0
				src.dirty, src.crashed, tgt.crashed = 0, false, false
			}
		case 6: // x is fenced
			if !x.pri {
				x.outd = true
			}
		}
	}
	return a, b
}

// arbitrary returns a side with tuples drawn from a small pool, so that
// coincidences between fields happen often.
func arbitrary(r *rand.Rand, name string) Side {
	pool := []uint64{0, jc, uX, uY, uZ, uX + off, uY + off, uX | 1, uY | 1, uZ + off, jc | 1}
	pick := func() uint64 {
		if r.Intn(10) == 0 {
			return r.Uint64()
		}
		return pool[r.Intn(len(pool))]
	}
	return fuzzSide(name, pick(), pick(), pick(), pick(), uint64(r.Intn(3)), uint8(r.Intn(64)))
}

func assertMirror(t testing.TB, in Input) {
	t.Helper()
	d, m := Decide(in), Decide(swap(in))
	if d.Kind.mirror() != m.Kind || d.Full != m.Full {
		t.Fatalf("not antisymmetric for %+v:\n self: %v\n peer: %v", in, d, m)
	}
	if (d.SplitBrain == nil) != (m.SplitBrain == nil) || d.SplitBrain != nil && d.SplitBrain.Discard != m.SplitBrain.Discard {
		t.Fatalf("split-brain outcomes differ for %+v:\n %v\n %v", in, d, m)
	}
	if d.Reason == "" {
		t.Fatalf("no reason: %v", d)
	}
	if d.Kind != Source && d.Kind != Target && d.Full {
		t.Fatalf("full without a resync: %v", d)
	}
}

func TestAntisymmetryProperty(t *testing.T) {
	r := rand.New(rand.NewSource(20261123))
	kinds := map[Kind]int{}
	rules := map[int]int{}
	for i := 0; i < 20000; i++ {
		var in Input
		in.Volume = "vol0"
		in.Policy = policyChoices[r.Intn(len(policyChoices))]
		if i%2 == 0 {
			a, b := history(r)
			in.Self, in.Peer = a.side("a", r.Intn(8) == 0), b.side("b", r.Intn(8) == 0)
		} else {
			in.Self, in.Peer = arbitrary(r, "a"), arbitrary(r, "b")
		}
		assertMirror(t, in)
		d := Decide(in)
		// Real histories never contradict themselves. (They can end up
		// Unrelated: repeated interrupted resyncs push the common
		// ancestor out of the two history slots, as in DRBD 8.4.)
		if i%2 == 0 && d.Step == StepConflict {
			t.Fatalf("a real history produced %v for %+v", d, in)
		}
		kinds[d.Kind]++
		rules[d.Rule]++
	}
	// The generators must reach every row and kind.
	for k := NoSync; k <= Refuse; k++ {
		if kinds[k] == 0 {
			t.Errorf("kind %s never produced", k)
		}
	}
	for row := 1; row <= 16; row++ {
		if rules[row] == 0 {
			t.Errorf("row %d never reached", row)
		}
	}
	t.Logf("kinds %v rules %v", kinds, rules)
}

// fuzzSide decodes a side: flags bit 0 Primary, 1 crashed primary,
// 2 Inconsistent, 3 Outdated, 4 discard-my-data.
func fuzzSide(name string, cur, bm, h0, h1, dirty uint64, flags uint8) Side {
	s := Side{Node: name, GI: gi(cur, bm, h0, h1), Dirty: dirty,
		CrashedPrimary: flags&2 != 0, Inconsistent: flags&4 != 0, Outdated: flags&8 != 0, DiscardMyData: flags&16 != 0}
	if flags&1 != 0 {
		s.Role = Primary
	}
	return s
}

func FuzzDecide(f *testing.F) {
	f.Add(uX, uint64(0), uint64(0), uint64(0), uint64(0), uint8(0), uY, uX, uint64(0), uint64(0), uint64(5), uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, ac, ab, ah0, ah1, ad uint64, af uint8, bc, bb, bh0, bh1, bd uint64, bf uint8, pol uint8) {
		in := Input{
			Volume: "vol0",
			Self:   fuzzSide("a", ac, ab, ah0, ah1, ad, af),
			Peer:   fuzzSide("b", bc, bb, bh0, bh1, bd, bf),
			Policy: policyChoices[int(pol)%len(policyChoices)],
		}
		if pol&0x80 != 0 {
			in.Peer.Node = "a" // equal keys must be refused on both sides
		}
		assertMirror(t, in)
	})
}
