package meta

import (
	"bytes"
	"encoding/binary"
	"testing"
)

const (
	uX   uint64 = 0x1111111111111110
	uY   uint64 = 0x2222222222222220
	uZ   uint64 = 0x3333333333333330
	uN   uint64 = 0x4444444444444440 // the "new" UUID handed to a transition
	uH0  uint64 = 0x5555555555555550
	uH1  uint64 = 0x6666666666666660
	off         = UUIDNewBitmapOffset
	role        = uuidRoleBit
)

func TestGITransitions(t *testing.T) {
	tests := []struct {
		name string
		in   GI
		do   func(GI) GI
		want GI
	}{
		{"promote disconnected starts a generation", GI{uX, 0, [2]uint64{uH0, uH1}},
			func(g GI) GI { return g.Promote(uN, false) }, GI{uN | role, uX, [2]uint64{uH0, uH1}}},
		{"promote disconnected keeps an existing bitmap UUID", GI{uY, uX, [2]uint64{uH0, uH1}},
			func(g GI) GI { return g.Promote(uN, false) }, GI{uY | role, uX, [2]uint64{uH0, uH1}}},
		{"promote connected only sets the role bit", GI{uX, 0, [2]uint64{}},
			func(g GI) GI { return g.Promote(uN, true) }, GI{uX | role, 0, [2]uint64{}}},
		{"forced first promotion of fresh data", GI{UUIDJustCreated, 0, [2]uint64{}},
			func(g GI) GI { return g.Promote(uN, false) }, GI{uN | role, UUIDJustCreated, [2]uint64{}}},
		{"promote when bitmap is just-created starts a generation", GI{uY, UUIDJustCreated, [2]uint64{}},
			func(g GI) GI { return g.Promote(uN, false) }, GI{uN | role, uY, [2]uint64{}}},
		{"demote clears the role bit", GI{uX | role, uY | role, [2]uint64{uH0, uH1}},
			func(g GI) GI { return g.Demote() }, GI{uX, uY | role, [2]uint64{uH0, uH1}}},
		{"demote of a secondary is a no-op", GI{uX, 0, [2]uint64{}},
			func(g GI) GI { return g.Demote() }, GI{uX, 0, [2]uint64{}}},
		{"primary loses peer", GI{uX | role, 0, [2]uint64{uH0, uH1}},
			func(g GI) GI { return g.LosePeer(uN, true) }, GI{uN | role, uX | role, [2]uint64{uH0, uH1}}},
		{"secondary under a diskless primary loses the peer's disk", GI{uX, 0, [2]uint64{}},
			func(g GI) GI { return g.LosePeer(uN, false) }, GI{uN, uX, [2]uint64{}}},
		{"lose peer again keeps the bitmap UUID", GI{uY | role, uX | role, [2]uint64{}},
			func(g GI) GI { return g.LosePeer(uN, true) }, GI{uY | role, uX | role, [2]uint64{}}},
		{"new current is the raw step", GI{uX, uY, [2]uint64{uH0, uH1}},
			func(g GI) GI { return g.NewCurrent(uN, false) }, GI{uN, uX, [2]uint64{uH0, uH1}}},
		{"sync source start rotates the bitmap UUID", GI{uY, uX, [2]uint64{uH0, uH1}},
			func(g GI) GI { g, _ = g.StartSyncSource(uN); return g }, GI{uY, uX + off, [2]uint64{uX, uH0}}},
		{"sync source start without bitmap UUID takes the new one", GI{uY, 0, [2]uint64{uH0, uH1}},
			func(g GI) GI { g, _ = g.StartSyncSource(uN | role); return g }, GI{uY, uN, [2]uint64{uH0, uH1}}},
		{"sync source start from just-created bitmap", GI{uY, UUIDJustCreated, [2]uint64{}},
			func(g GI) GI { g, _ = g.StartSyncSource(uN); return g }, GI{uY, uN, [2]uint64{}}},
		{"sync target start adopts the sync UUID", GI{uX, uZ, [2]uint64{uH0, uH1}},
			func(g GI) GI { return g.StartSyncTarget(uY | role) }, GI{uY, 0, [2]uint64{uH0, uH1}}},
		{"sync target start keeps its primary bit", GI{uX | role, 0, [2]uint64{}},
			func(g GI) GI { return g.StartSyncTarget(uY) }, GI{uY | role, 0, [2]uint64{}}},
		{"sync source finish moves bitmap into history", GI{uY, uX + off, [2]uint64{uX, uH0}},
			func(g GI) GI { return g.FinishSyncSource() }, GI{uY, 0, [2]uint64{uX + off, uX}}},
		{"sync source finish without bitmap is a no-op", GI{uY, 0, [2]uint64{uH0, uH1}},
			func(g GI) GI { return g.FinishSyncSource() }, GI{uY, 0, [2]uint64{uH0, uH1}}},
		{"sync source finish drops a just-created bitmap", GI{uY, UUIDJustCreated, [2]uint64{uH0, uH1}},
			func(g GI) GI { return g.FinishSyncSource() }, GI{uY, 0, [2]uint64{uH0, uH1}}},
		{"sync target finish adopts the source", GI{uX | role, 0, [2]uint64{}},
			func(g GI) GI { return g.FinishSyncTarget(GI{uY, 0, [2]uint64{uZ, uH0}}) }, GI{uY | role, 0, [2]uint64{uZ, uH0}}},
		{"sync target finish drops the source's primary bit", GI{uX, 0, [2]uint64{}},
			func(g GI) GI { return g.FinishSyncTarget(GI{uY | role, 0, [2]uint64{uZ, uH0}}) }, GI{uY, 0, [2]uint64{uZ, uH0}}},
		{"undo sync start", GI{uY, uX + off, [2]uint64{uX, uH0}},
			func(g GI) GI { return g.UndoSyncStart() }, GI{uY, uX, [2]uint64{uH0, uH0}}},
		{"skip initial sync from fresh", GI{UUIDJustCreated, 0, [2]uint64{}},
			func(g GI) GI { return g.SkipInitialSync(uN) }, GI{uN, 0, [2]uint64{}}},
		{"skip initial sync pushes the old current", GI{uX | role, uY, [2]uint64{uH0, uH1}},
			func(g GI) GI { return g.SkipInitialSync(uN) }, GI{uN | role, 0, [2]uint64{uX, uH0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			got := tt.do(in)
			if got != tt.want {
				t.Errorf("\n got %v\nwant %v", got, tt.want)
			}
			if in != tt.in {
				t.Errorf("receiver changed to %v", in)
			}
		})
	}
}

// TestGIStory replays research/replication.md §2.2's worked example and
// the crash cases of §10 with two nodes, checking the relations the
// connect-time decision will test.
func TestGIStory(t *testing.T) {
	a := GI{Current: uX}
	b := GI{Current: uX}

	// A is Primary while connected, then the link drops.
	a = a.Promote(uN, true)
	a = a.LosePeer(uY, true)
	if !Same(a.Current, uY) || !Same(a.Bitmap, uX) || !a.Primary() {
		t.Fatalf("A after losing the peer: %v", a)
	}
	// Rule 8/70: A's bitmap UUID is B's current: A is source, bitmap-based.
	if !Same(a.Bitmap, b.Current) {
		t.Fatalf("A.bitmap %x != B.current %x", a.Bitmap, b.Current)
	}

	// Split-brain variant: B is promoted meanwhile.
	bb := b.Promote(uZ, false)
	if !Same(a.Bitmap, bb.Bitmap) || a.Bitmap&^role == 0 || Same(a.Current, bb.Current) {
		t.Fatalf("split brain not recognisable: A %v, B %v", a, bb)
	}

	// The resync starts, but the sync UUID never reaches B (rule 71).
	a2, sync := a.StartSyncSource(uN)
	if !Same(a2.History[0], b.Current) || a2.Bitmap != a2.History[0]+off {
		t.Fatalf("interrupted sync start not recognisable: A %v, B %v", a2, b)
	}
	if undone := a2.UndoSyncStart(); !Same(undone.Bitmap, a.Bitmap) || !Same(undone.Current, a.Current) {
		t.Fatalf("undo: %v, want bitmap %x", undone, a.Bitmap)
	}

	// The resync runs to the end.
	b = b.StartSyncTarget(sync)
	if !Same(b.Current, a2.Bitmap) {
		t.Fatalf("B after sync start %v, A %v", b, a2)
	}
	a = a2.FinishSyncSource()
	b = b.FinishSyncTarget(a)
	if a.Masked() != b.Masked() || a.Bitmap != 0 || b.Primary() || !a.Primary() {
		t.Fatalf("after the resync: A %v, B %v", a, b)
	}
	// The common ancestry is in both histories.
	if !Same(a.History[1], uX) || !Same(b.History[0], sync) {
		t.Fatalf("histories: A %v, B %v", a, b)
	}
}

// fakeRand returns the given 64-bit values in turn.
type fakeRand struct{ vals []uint64 }

func (r *fakeRand) Read(p []byte) (int, error) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], r.vals[0])
	r.vals = r.vals[1:]
	return copy(p, b[:]), nil
}

func TestNewUUID(t *testing.T) {
	r := &fakeRand{vals: []uint64{0, 1, UUIDJustCreated, UUIDJustCreated | 1, 0xABCD}}
	u, err := NewUUID(r)
	if err != nil {
		t.Fatal(err)
	}
	if u != 0xABCC {
		t.Errorf("NewUUID = %x, want abcc (0, 1, 4 and 5 skipped, bit 0 cleared)", u)
	}
	if _, err := NewUUID(bytes.NewReader([]byte{1, 2, 3})); err == nil {
		t.Error("NewUUID with a short reader succeeded")
	}
	seen := map[uint64]bool{}
	for range 1000 {
		u, err := NewUUID(nil)
		if err != nil {
			t.Fatal(err)
		}
		if u&role != 0 || u == 0 || Same(u, UUIDJustCreated) || seen[u] {
			t.Fatalf("NewUUID = %x", u)
		}
		seen[u] = true
	}
}

func TestGIHelpers(t *testing.T) {
	g := GI{uX | role, uY | role, [2]uint64{uH0 | role, uH1}}
	if m := g.Masked(); m != (GI{uX, uY, [2]uint64{uH0, uH1}}) {
		t.Errorf("Masked = %v", m)
	}
	if !g.Primary() || g.Demote().Primary() {
		t.Error("Primary")
	}
	if !(GI{Current: UUIDJustCreated | role}).JustCreated() || g.JustCreated() {
		t.Error("JustCreated")
	}
	if got := (GI{1, 2, [2]uint64{3, 0xFFFFFFFFFFFFFFFF}}).String(); got != "0000000000000001:0000000000000002:0000000000000003:FFFFFFFFFFFFFFFF" {
		t.Errorf("String = %s", got)
	}
}
