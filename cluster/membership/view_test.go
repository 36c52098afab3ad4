package membership

import (
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func hb(node string, boot, seq uint64, state string) message {
	h := message{Kind: kindHeartbeat, Node: node, Boot: boot, Seq: seq}
	if state != "" {
		h.State = []byte(state)
	}
	return h
}

func find(t *testing.T, v []Member, name string) Member {
	t.Helper()
	for _, m := range v {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no member %q in %+v", name, v)
	return Member{}
}

func TestTableHeartbeats(t *testing.T) {
	tb := newTable("a", 600*time.Millisecond)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	steps := []struct {
		name              string
		h                 message
		ms                int
		accepted, changed bool
		state             string
		heardMs           int
	}{
		{"first heartbeat", hb("b", 7, 1, "s1"), 0, true, true, "s1", 0},
		{"same state", hb("b", 7, 2, "s1"), 200, true, false, "s1", 200},
		{"duplicate seq", hb("b", 7, 2, "old"), 250, false, false, "s1", 200},
		{"older seq", hb("b", 7, 1, "old"), 260, false, false, "s1", 200},
		{"new state", hb("b", 7, 5, "s2"), 400, true, true, "s2", 400},
		{"own name ignored", hb("a", 1, 1, "x"), 410, false, false, "s2", 400},
		{"restart: new boot, seq from 1", hb("b", 9, 1, "s2"), 600, true, true, "s2", 600},
		{"late packet of the old run", hb("b", 7, 6, "s3"), 610, false, false, "s2", 600},
		{"restarted run continues", hb("b", 9, 2, ""), 800, true, true, "", 800},
	}
	for _, s := range steps {
		acc, ch := tb.message(s.h, at(s.ms))
		if acc != s.accepted || ch != s.changed {
			t.Errorf("%s: accepted, changed = %v, %v; want %v, %v", s.name, acc, ch, s.accepted, s.changed)
		}
		m := find(t, tb.view(at(s.ms)), "b")
		if string(m.State) != s.state || !m.LastHeard.Equal(at(s.heardMs)) {
			t.Errorf("%s: state %q heard %v; want %q %v", s.name, m.State, m.LastHeard, s.state, at(s.heardMs))
		}
	}
	if v := tb.view(at(800)); len(v) != 1 {
		t.Errorf("view has %d members, want only b: %+v", len(v), v)
	}
	if m := find(t, tb.view(at(800)), "b"); m.State == nil || m.Boot != 9 {
		t.Errorf("heard member with empty state: State %v (want non-nil empty), Boot %d", m.State, m.Boot)
	}
}

func TestTableStateIsCopied(t *testing.T) {
	tb := newTable("a", time.Second)
	h := hb("b", 1, 1, "abc")
	tb.message(h, t0)
	h.State[0] = 'X' // memberlist reuses its buffer
	v := tb.view(t0)
	if got := string(find(t, v, "b").State); got != "abc" {
		t.Fatalf("state %q, want abc", got)
	}
	v[0].State[1] = 'Y' // callers may scribble on their copy
	if got := string(find(t, tb.view(t0), "b").State); got != "abc" {
		t.Fatalf("state %q after caller modified its view, want abc", got)
	}
}

func TestTableSilence(t *testing.T) {
	tb := newTable("a", 600*time.Millisecond)
	addr := netip.MustParseAddrPort("192.0.2.2:7946")
	if !tb.member("b", addr, false, StatusAlive) {
		t.Error("new member: no change reported")
	}
	m := find(t, tb.view(t0), "b")
	if !m.Silent || !m.LastHeard.IsZero() || m.State != nil {
		t.Errorf("never heard: %+v, want silent with zero LastHeard and nil state", m)
	}
	if _, ch := tb.message(hb("b", 1, 1, ""), t0); !ch {
		t.Error("first heartbeat: no change")
	}
	for _, tc := range []struct {
		ms      int
		changed bool
		silent  bool
	}{
		{100, false, false},
		{600, false, false}, // exactly SilentAfter is still fresh
		{601, true, true},
		{900, false, true},
	} {
		now := t0.Add(time.Duration(tc.ms) * time.Millisecond)
		if ch := tb.tick(now); ch != tc.changed {
			t.Errorf("tick at %d ms: changed %v, want %v", tc.ms, ch, tc.changed)
		}
		if m := find(t, tb.view(now), "b"); m.Silent != tc.silent {
			t.Errorf("at %d ms: silent %v, want %v", tc.ms, m.Silent, tc.silent)
		}
	}
	// Heard again: reported by heartbeat even with the same state.
	if _, ch := tb.message(hb("b", 1, 2, ""), t0.Add(time.Second)); !ch {
		t.Error("heard again after silence: no change")
	}
	if m := find(t, tb.view(t0.Add(time.Second)), "b"); m.Silent {
		t.Error("still silent after a heartbeat")
	}
}

func TestTableMembers(t *testing.T) {
	tb := newTable("a", time.Second)
	a := netip.MustParseAddrPort("192.0.2.1:7946")
	b := netip.MustParseAddrPort("192.0.2.2:7946")
	w := netip.MustParseAddrPort("192.0.2.3:7946")
	steps := []struct {
		name    string
		node    string
		addr    netip.AddrPort
		witness bool
		st      Status
		changed bool
	}{
		{"self ignored", "a", a, false, StatusAlive, false},
		{"b joins", "b", b, false, StatusAlive, true},
		{"b again", "b", b, false, StatusAlive, false},
		{"witness joins", "w", w, true, StatusAlive, true},
		{"b dead", "b", b, false, StatusDead, true},
		{"b back", "b", b, false, StatusAlive, true},
		{"b left", "b", b, false, StatusLeft, true},
	}
	for _, s := range steps {
		if ch := tb.member(s.node, s.addr, s.witness, s.st); ch != s.changed {
			t.Errorf("%s: changed %v, want %v", s.name, ch, s.changed)
		}
	}
	v := tb.view(t0)
	if len(v) != 2 || v[0].Name != "b" || v[1].Name != "w" {
		t.Fatalf("view = %+v, want b and w in order", v)
	}
	if v[0].Status != StatusLeft || v[0].Addr != b || v[1].Status != StatusAlive || !v[1].Witness {
		t.Errorf("view = %+v", v)
	}
	if tb.aliveAt(b) || !tb.aliveAt(w) || tb.aliveAt(a) {
		t.Errorf("aliveAt: b %v w %v a %v, want false true false", tb.aliveAt(b), tb.aliveAt(w), tb.aliveAt(a))
	}
	// Heard before memberlist reported it: status unknown, no address.
	tb.message(hb("c", 1, 1, "x"), t0)
	if m := find(t, tb.view(t0), "c"); m.Status != StatusUnknown || m.Addr.IsValid() || m.Silent {
		t.Errorf("heard-only member = %+v", m)
	}
}

func TestTableLeave(t *testing.T) {
	tb := newTable("a", time.Second)
	b := netip.MustParseAddrPort("192.0.2.2:7946")
	leave := func(boot, seq uint64) message { return message{Kind: kindLeave, Node: "b", Boot: boot, Seq: seq} }
	tb.member("b", b, false, StatusAlive)
	tb.message(hb("b", 5, 1, "s"), t0)

	if acc, ch := tb.message(leave(5, 1), t0); acc || ch {
		t.Errorf("replayed leave: accepted %v changed %v", acc, ch)
	}
	if acc, ch := tb.message(leave(5, 2), t0.Add(time.Millisecond)); !acc || !ch {
		t.Errorf("leave: accepted %v changed %v", acc, ch)
	}
	m := find(t, tb.view(t0), "b")
	if m.Status != StatusLeft || !m.LastHeard.Equal(t0) || string(m.State) != "s" {
		t.Errorf("after leave: %+v, want left with LastHeard and state of the last heartbeat", m)
	}
	if _, ch := tb.message(leave(5, 3), t0); ch {
		t.Error("second leave reported a change")
	}
	// memberlist reports the leave as a failure.
	if ch := tb.member("b", b, false, StatusDead); ch {
		t.Error("dead after leave reported a change")
	}
	if st := find(t, tb.view(t0), "b").Status; st != StatusLeft {
		t.Errorf("dead after leave: status %v, want left", st)
	}
	// A restart: the new run's heartbeat clears the leave, and memberlist
	// then reports it alive.
	if _, ch := tb.message(hb("b", 6, 1, "s2"), t0.Add(time.Second)); !ch {
		t.Error("restart: no change")
	}
	if st := find(t, tb.view(t0), "b").Status; st != StatusUnknown {
		t.Errorf("restarted before memberlist noticed: status %v, want unknown", st)
	}
	tb.member("b", b, false, StatusAlive)
	// Now a failure is a failure.
	tb.member("b", b, false, StatusDead)
	if st := find(t, tb.view(t0), "b").Status; st != StatusDead {
		t.Errorf("failure after restart: status %v, want dead", st)
	}
	// A dead node that never said goodbye stays dead.
	tb.member("c", netip.MustParseAddrPort("192.0.2.3:7946"), false, StatusDead)
	if st := find(t, tb.view(t0), "c").Status; st != StatusDead {
		t.Errorf("c: status %v, want dead", st)
	}
}

func TestStatusString(t *testing.T) {
	for st, want := range map[Status]string{StatusUnknown: "unknown", StatusAlive: "alive", StatusDead: "dead", StatusLeft: "left", 99: "unknown"} {
		if st.String() != want {
			t.Errorf("Status(%d) = %q, want %q", st, st.String(), want)
		}
	}
}
