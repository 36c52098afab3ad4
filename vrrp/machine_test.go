package vrrp

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"
)

// The machine never reads a clock: every test drives it with plain
// time.Time values counted from t0, so all timings below are exact.

var (
	t0       = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	self     = netip.MustParseAddr("192.0.2.11")
	peerHigh = netip.MustParseAddr("192.0.2.12") // a higher address than ours
	peerLow  = netip.MustParseAddr("192.0.2.10") // a lower one
)

// Worked values of RFC 5798 §6.1 for priority 100, written out by hand
// rather than computed with the code under test.
const (
	v2Skew100 = 609375 * time.Microsecond   // (256−100)/256 s
	v2Down100 = 3609375 * time.Microsecond  // 3 × 1 s + skew
	v3Skew100 = 60937500 * time.Nanosecond  // (256−100) × 100 ms / 256
	v3Down100 = 360937500 * time.Nanosecond // 3 × 100 ms + skew
	v2Down255 = 3003906250 * time.Nanosecond
)

func v2cfg(prio uint8) Config {
	return Config{VRID: 51, Version: 2, Priority: prio, AdvertInterval: time.Second, Preempt: true, Address: self, GARPCount: 5}
}

func v3cfg(prio uint8) Config {
	c := v2cfg(prio)
	c.Version, c.AdvertInterval = 3, 100*time.Millisecond
	return c
}

func cfgWith(c Config, f func(*Config)) Config { f(&c); return c }

func adv(from netip.Addr, prio uint8, interval time.Duration) AdvertReceived {
	return AdvertReceived{From: from, Priority: prio, Interval: interval}
}

// tr is an expected Transition; its Reason only has to be contained in the
// real one.
func tr(from, to State, reason string) Transition {
	return Transition{From: from, To: to, Reason: reason}
}

func acts(a ...Action) []Action { return a }

// takeover is what becoming master with GARPCount 5 looks like.
func takeover(prio uint8, from State, reason string) []Action {
	return acts(SendAdvert{prio}, AddVIPs{}, SendGARP{5}, tr(from, StateMaster, reason))
}

func matchAction(got, want Action) bool {
	if w, ok := want.(Transition); ok {
		g, ok := got.(Transition)
		return ok && g.From == w.From && g.To == w.To && g.Reason != "" && strings.Contains(g.Reason, w.Reason)
	}
	return got == want
}

func matchActions(got, want []Action) error {
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = matchAction(got[i], want[i])
	}
	if !ok {
		return fmt.Errorf("actions\n got %+v\nwant %+v", got, want)
	}
	return nil
}

// checkInvariants holds after every Step of every test: the deadline is
// never in the past, Init and Fault run no timer, Backup and Master always
// run one.
func checkInvariants(t *testing.T, m *Machine, now time.Time) {
	t.Helper()
	d := m.Deadline()
	if !d.IsZero() && d.Before(now) {
		t.Errorf("at %v: deadline %v is in the past", now.Sub(t0), d.Sub(t0))
	}
	switch m.State() {
	case StateInit, StateFault:
		if !d.IsZero() {
			t.Errorf("at %v: %v with a timer at %v", now.Sub(t0), m.State(), d.Sub(t0))
		}
	case StateBackup, StateMaster:
		if d.IsZero() {
			t.Errorf("at %v: %v without a timer", now.Sub(t0), m.State())
		}
	}
}

// step is one line of a script: feed ev at t0+at, expect exactly want
// (nil: nothing), then state, then Deadline at t0+next (0: not checked;
// noTimer: no timer), then anything check looks at.
type step struct {
	at    time.Duration
	ev    Event
	want  []Action
	state State
	next  time.Duration
	check func(t *testing.T, s Snapshot)
}

const noTimer = -1

func runSteps(t *testing.T, m *Machine, steps []step) {
	t.Helper()
	for i, s := range steps {
		now := t0.Add(s.at)
		got := m.Step(s.ev, now)
		where := fmt.Sprintf("step %d (%T%+v at %v)", i, s.ev, s.ev, s.at)
		if err := matchActions(got, s.want); err != nil {
			t.Errorf("%s: %v", where, err)
		}
		if m.State() != s.state {
			t.Errorf("%s: state %v, want %v", where, m.State(), s.state)
		}
		checkInvariants(t, m, now)
		switch d := m.Deadline(); {
		case s.next == noTimer && !d.IsZero():
			t.Errorf("%s: deadline %v, want noTimer", where, d.Sub(t0))
		case s.next > 0 && !d.Equal(t0.Add(s.next)):
			t.Errorf("%s: deadline %v, want %v", where, d.Sub(t0), s.next)
		}
		if s.check != nil {
			s.check(t, m.Snapshot())
		}
	}
}

// toMaster starts a non-owner and lets its master-down timer run out.
func toMaster(prio uint8, down, interval time.Duration) []step {
	return []step{
		{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "started")), state: StateBackup, next: down},
		{at: down, ev: Timeout{}, want: takeover(prio, StateBackup, "master down timer expired"), state: StateMaster, next: down + interval},
	}
}

func steps(prefix []step, rest ...step) []step { return append(append([]step{}, prefix...), rest...) }

func TestMachine(t *testing.T) {
	v2Master := toMaster(100, v2Down100, time.Second)
	v3Master := toMaster(100, v3Down100, 100*time.Millisecond)
	const d = v2Down100 // when v2Master has become master

	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		// RFC 5798 §6.4.1 Initialize.
		{
			name: "6.4.1 init: start → backup, v2 1 s prio 100 waits Master_Down_Interval = 3.609375 s",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "started")), state: StateBackup, next: v2Down100,
					check: func(t *testing.T, s Snapshot) {
						if s.MasterDown != v2Down100 || s.MasterInterval != time.Second || s.MasterAddr.IsValid() {
							t.Errorf("snapshot %+v", s)
						}
					}},
				{at: v2Down100 - 1, ev: Timeout{}, state: StateBackup, next: v2Down100},
				{at: v2Down100, ev: Timeout{}, want: takeover(100, StateBackup, "master down timer expired (no advert for 3.609s)"),
					state: StateMaster, next: v2Down100 + time.Second,
					check: func(t *testing.T, s Snapshot) {
						if s.MasterAddr != self || s.MasterPriority != 100 || s.LastTransition != t0.Add(v2Down100) {
							t.Errorf("snapshot %+v", s)
						}
					}},
			},
		},
		{
			name: "6.4.1 init: start → backup, v3 100 ms prio 100 waits Master_Down_Interval = 360.9375 ms",
			cfg:  v3cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "started")), state: StateBackup, next: v3Down100},
				{at: v3Down100, ev: Timeout{}, want: takeover(100, StateBackup, "master down timer expired (no advert for 361ms)"),
					state: StateMaster, next: v3Down100 + 100*time.Millisecond},
			},
		},
		{
			name: "6.4.1 init: the address owner (255) becomes master at once",
			cfg:  v2cfg(255),
			steps: []step{
				{at: 0, ev: Start{}, want: takeover(255, StateInit, "address owner"), state: StateMaster, next: time.Second},
				{at: time.Second, ev: Timeout{}, want: acts(SendAdvert{255}), state: StateMaster, next: 2 * time.Second},
			},
		},
		{
			name: "6.4.1 init: events before Start do nothing; Start twice is ignored",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Timeout{}, state: StateInit, next: noTimer},
				{at: 0, ev: adv(peerHigh, 150, time.Second), state: StateInit, next: noTimer},
				{at: 0, ev: Shutdown{}, state: StateInit, next: noTimer},
				{at: 0, ev: SetPriority{Priority: 120}, state: StateInit, next: noTimer},
				{at: time.Second, ev: Start{}, want: acts(tr(StateInit, StateBackup, "started")), state: StateBackup,
					// 3 s + (256−120)/256 s: the priority set before Start counts.
					next: time.Second + 3531250*time.Microsecond},
				{at: 2 * time.Second, ev: Start{}, state: StateBackup, next: time.Second + 3531250*time.Microsecond},
			},
		},

		// RFC 5798 §6.4.2 Backup.
		{
			name: "6.4.2 backup: an advert with priority ≥ ours resets Master_Down_Timer",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				{at: time.Second, ev: adv(peerHigh, 150, time.Second), state: StateBackup, next: time.Second + v2Down100,
					check: func(t *testing.T, s Snapshot) {
						if s.MasterAddr != peerHigh || s.MasterPriority != 150 {
							t.Errorf("snapshot %+v", s)
						}
					}},
				// Equal priority from a lower address still counts in Backup.
				{at: 2 * time.Second, ev: adv(peerLow, 100, time.Second), state: StateBackup, next: 2*time.Second + v2Down100},
				{at: 2*time.Second + v2Down100, ev: Timeout{}, want: takeover(100, StateBackup, "no advert for 3.609s"), state: StateMaster},
			},
		},
		{
			name: "6.4.2 backup: v3 learns Master_Adver_Interval from the master; as master it uses its own again",
			cfg:  v3cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v3Down100},
				// 1 s adverts: 3 s + 156 × 1 s / 256.
				{at: 50 * time.Millisecond, ev: adv(peerHigh, 150, time.Second), state: StateBackup, next: 50*time.Millisecond + v2Down100,
					check: func(t *testing.T, s Snapshot) {
						if s.MasterInterval != time.Second || s.MasterDown != v2Down100 {
							t.Errorf("snapshot %+v", s)
						}
					}},
				{at: 50*time.Millisecond + v2Down100, ev: Timeout{}, want: takeover(100, StateBackup, "no advert for 3.609s"),
					state: StateMaster, next: 150*time.Millisecond + v2Down100,
					check: func(t *testing.T, s Snapshot) {
						if s.MasterInterval != 100*time.Millisecond || s.MasterDown != v3Down100 {
							t.Errorf("snapshot %+v", s)
						}
					}},
			},
		},
		{
			name: "6.4.2 backup: v2 ignores the advertised interval and uses its own",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				{at: time.Second, ev: adv(peerHigh, 150, 3*time.Second), state: StateBackup, next: time.Second + v2Down100,
					check: func(t *testing.T, s Snapshot) {
						if s.MasterInterval != time.Second {
							t.Errorf("snapshot %+v", s)
						}
					}},
			},
		},
		{
			name: "6.4.2 backup: priority 0 advert → Skew_Time (v2)",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				{at: time.Second, ev: adv(peerHigh, 150, time.Second), state: StateBackup, next: time.Second + v2Down100},
				{at: 1500 * time.Millisecond, ev: adv(peerHigh, PriorityStop, time.Second), state: StateBackup, next: 1500*time.Millisecond + v2Skew100,
					check: func(t *testing.T, s Snapshot) {
						if s.MasterAddr.IsValid() || s.MasterPriority != 0 {
							t.Errorf("a resigned master is still shown: %+v", s)
						}
					}},
				{at: 1500*time.Millisecond + v2Skew100, ev: Timeout{},
					want:  takeover(100, StateBackup, "master 192.0.2.12 resigned (priority 0 advert); took over after skew time 609ms"),
					state: StateMaster},
			},
		},
		{
			name: "6.4.2 backup: priority 0 advert → Skew_Time from the learned interval (v3)",
			cfg:  v3cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v3Down100},
				// 200 ms adverts: down 600 ms + 121.875 ms.
				{at: 100 * time.Millisecond, ev: adv(peerHigh, 150, 200*time.Millisecond), state: StateBackup, next: 821875 * time.Microsecond},
				// The priority 0 advert's interval is not learned (§6.4.2).
				{at: 300 * time.Millisecond, ev: adv(peerHigh, PriorityStop, time.Second), state: StateBackup, next: 421875 * time.Microsecond},
				{at: 421875 * time.Microsecond, ev: Timeout{}, want: takeover(100, StateBackup, "resigned"), state: StateMaster,
					next: 521875 * time.Microsecond},
			},
		},
		{
			name: "6.4.2 backup: preempt ignores a lower-priority master and takes over when the timer runs out",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				{at: time.Second, ev: adv(peerLow, 90, time.Second), state: StateBackup, next: v2Down100},
				{at: 2 * time.Second, ev: adv(peerLow, 90, time.Second), state: StateBackup, next: v2Down100},
				{at: 3 * time.Second, ev: adv(peerLow, 90, time.Second), state: StateBackup, next: v2Down100,
					check: func(t *testing.T, s Snapshot) {
						if s.MasterAddr != peerLow || s.MasterPriority != 90 {
							t.Errorf("the live lower master is not shown: %+v", s)
						}
					}},
				{at: v2Down100, ev: Timeout{}, want: takeover(100, StateBackup, "preempting lower-priority master 192.0.2.10 (prio 90)"), state: StateMaster},
			},
		},
		{
			name: "6.4.2 backup: nopreempt accepts a lower-priority master",
			cfg:  cfgWith(v2cfg(100), func(c *Config) { c.Preempt = false }),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				{at: time.Second, ev: adv(peerLow, 90, time.Second), state: StateBackup, next: time.Second + v2Down100},
				{at: 2 * time.Second, ev: adv(peerLow, 90, time.Second), state: StateBackup, next: 2*time.Second + v2Down100},
			},
		},
		{
			name: "6.1 Preempt_Mode: the address owner preempts even with nopreempt",
			cfg:  cfgWith(v2cfg(255), func(c *Config) { c.Preempt = false }),
			steps: []step{
				// Out of Fault an owner goes to Backup like anyone else.
				{at: 0, ev: SetFault{Fault: true, Reason: "eth0 down"}, state: StateInit, next: noTimer},
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateFault, "started with a fault: eth0 down")), state: StateFault, next: noTimer},
				{at: time.Second, ev: SetFault{Fault: false, Reason: "eth0 up"}, want: acts(tr(StateFault, StateBackup, "fault cleared: eth0 up")),
					state: StateBackup, next: time.Second + v2Down255},
				{at: 2 * time.Second, ev: adv(peerLow, 100, time.Second), state: StateBackup, next: time.Second + v2Down255},
				{at: time.Second + v2Down255, ev: Timeout{}, want: takeover(255, StateBackup, "preempting"), state: StateMaster},
			},
		},
		{
			name: "6.4.2 backup: a timer overdue when an advert arrives fires first",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				// The runner was late: the timer had run out before the
				// advert came, so we were master when it arrived.
				{at: v2Down100 + 10*time.Millisecond, ev: adv(peerHigh, 150, time.Second),
					want: append(takeover(100, StateBackup, "no advert for 3.619s"),
						RemoveVIPs{}, tr(StateMaster, StateBackup, "higher-priority master")),
					state: StateBackup, next: v2Down100 + 10*time.Millisecond + v2Down100},
			},
		},
		{
			name: "6.4.2 backup: shutdown → init",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				// Overdue, but shutting down does not take over first.
				{at: 2 * v2Down100, ev: Shutdown{}, want: acts(tr(StateBackup, StateInit, "shutdown")), state: StateInit, next: noTimer},
				{at: 2 * v2Down100, ev: Timeout{}, state: StateInit, next: noTimer},
			},
		},

		// RFC 5798 §6.4.3 Master.
		{
			name: "6.4.3 master: Adver_Timer sends an advert every Advertisement_Interval, re-armed from when it fired",
			cfg:  v2cfg(255),
			steps: []step{
				{at: 0, ev: Start{}, want: takeover(255, StateInit, ""), state: StateMaster, next: time.Second},
				{at: 999 * time.Millisecond, ev: Timeout{}, state: StateMaster, next: time.Second},
				{at: time.Second, ev: Timeout{}, want: acts(SendAdvert{255}), state: StateMaster, next: 2 * time.Second},
				// A late runner: the next advert is an interval after the
				// late one, never a burst to catch up.
				{at: 5*time.Second + 50*time.Millisecond, ev: Timeout{}, want: acts(SendAdvert{255}), state: StateMaster,
					next: 6*time.Second + 50*time.Millisecond},
			},
		},
		{
			name: "6.4.3 master: priority 0 advert → send an advert at once and re-arm",
			cfg:  v2cfg(255),
			steps: []step{
				{at: 0, ev: Start{}, want: takeover(255, StateInit, ""), state: StateMaster, next: time.Second},
				{at: 500 * time.Millisecond, ev: adv(peerLow, PriorityStop, time.Second), want: acts(SendAdvert{255}), state: StateMaster,
					next: 1500 * time.Millisecond},
			},
		},
		{
			name: "6.4.3 master: higher priority → backup with the learned interval (v3)",
			cfg:  v3cfg(100),
			steps: steps(v3Master,
				step{at: v3Down100 + 50*time.Millisecond, ev: adv(peerHigh, 150, 200*time.Millisecond),
					want:  acts(RemoveVIPs{}, tr(StateMaster, StateBackup, "higher-priority master 192.0.2.12 (prio 150)")),
					state: StateBackup, next: v3Down100 + 50*time.Millisecond + 721875*time.Microsecond, // 600 ms + 156 × 200 ms / 256
					check: func(t *testing.T, s Snapshot) {
						if s.MasterAddr != peerHigh || s.MasterPriority != 150 || s.MasterInterval != 200*time.Millisecond {
							t.Errorf("snapshot %+v", s)
						}
					}},
			),
		},
		{
			name: "6.4.3 master: equal priority from a higher address → backup",
			cfg:  v2cfg(100),
			steps: steps(v2Master,
				step{at: d + 500*time.Millisecond, ev: adv(peerHigh, 100, time.Second),
					want:  acts(RemoveVIPs{}, tr(StateMaster, StateBackup, "master 192.0.2.12 has the same priority (100) and a higher address")),
					state: StateBackup, next: d + 500*time.Millisecond + v2Down100},
			),
		},
		{
			name: "6.4.3 master: equal priority from a lower address → stay master and re-assert",
			cfg:  v2cfg(100),
			steps: steps(v2Master,
				step{at: d + 500*time.Millisecond, ev: adv(peerLow, 100, time.Second), want: acts(SendAdvert{100}, SendGARP{5}),
					state: StateMaster, next: d + 1500*time.Millisecond},
			),
		},
		{
			name: "keepalived split-brain heal: a master hearing a lower priority sends an advert and a GARP burst at once",
			cfg:  v2cfg(100),
			steps: steps(v2Master,
				step{at: d + 300*time.Millisecond, ev: adv(peerHigh, 50, time.Second), want: acts(SendAdvert{100}, SendGARP{5}),
					state: StateMaster, next: d + 1300*time.Millisecond},
				step{at: d + 1300*time.Millisecond, ev: Timeout{}, want: acts(SendAdvert{100}), state: StateMaster, next: d + 2300*time.Millisecond},
			),
		},
		{
			name: "keepalived own-advert check: our looped-back advert is ignored in any state",
			cfg:  v2cfg(100),
			steps: steps(v2Master,
				step{at: d + 300*time.Millisecond, ev: adv(self, 100, time.Second), state: StateMaster, next: d + time.Second},
				step{at: d + 400*time.Millisecond, ev: adv(self, 200, time.Second), state: StateMaster, next: d + time.Second},
				step{at: d + 500*time.Millisecond, ev: Shutdown{}, want: acts(SendAdvert{0}, RemoveVIPs{}, tr(StateMaster, StateInit, "")),
					state: StateInit, next: noTimer},
				step{at: d + 600*time.Millisecond, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup,
					next: d + 600*time.Millisecond + v2Down100},
				step{at: d + 700*time.Millisecond, ev: adv(self, 100, time.Second), state: StateBackup, next: d + 600*time.Millisecond + v2Down100},
			),
		},
		{
			name: "6.4.3 master: shutdown → priority 0 advert, VIPs removed, init; then only Start counts",
			cfg:  v2cfg(100),
			steps: steps(v2Master,
				step{at: d + time.Second, ev: Shutdown{}, want: acts(SendAdvert{PriorityStop}, RemoveVIPs{}, tr(StateMaster, StateInit, "shutdown")),
					state: StateInit, next: noTimer,
					check: func(t *testing.T, s Snapshot) {
						if s.MasterAddr.IsValid() || s.LastReason != "shutdown" || s.LastTransition != t0.Add(d+time.Second) {
							t.Errorf("snapshot %+v", s)
						}
					}},
				step{at: d + 2*time.Second, ev: Timeout{}, state: StateInit, next: noTimer},
				step{at: d + 2*time.Second, ev: adv(peerLow, 0, time.Second), state: StateInit, next: noTimer},
				step{at: d + 2*time.Second, ev: adv(peerHigh, 200, time.Second), state: StateInit, next: noTimer},
				step{at: d + 2*time.Second, ev: Shutdown{}, state: StateInit, next: noTimer},
				step{at: d + 3*time.Second, ev: Start{}, want: acts(tr(StateInit, StateBackup, "started")), state: StateBackup,
					next: d + 3*time.Second + v2Down100},
			),
		},

		// Faults (keepalived's FAULT state; not in the RFC).
		{
			name: "fault: a master resigns with priority 0 and removes its VIPs; nothing runs in fault",
			cfg:  v2cfg(100),
			steps: steps(v2Master,
				step{at: d + time.Second, ev: SetFault{Fault: true, Reason: "interface eth0 down"},
					want:  acts(SendAdvert{PriorityStop}, RemoveVIPs{}, tr(StateMaster, StateFault, "fault: interface eth0 down")),
					state: StateFault, next: noTimer},
				step{at: d + 2*time.Second, ev: adv(peerLow, 50, time.Second), state: StateFault, next: noTimer},
				step{at: d + 2*time.Second, ev: Timeout{}, state: StateFault, next: noTimer},
				step{at: d + 2*time.Second, ev: SetPriority{Priority: 200}, state: StateFault, next: noTimer},
				step{at: d + 3*time.Second, ev: SetFault{Fault: false, Reason: "interface eth0 up"},
					want: acts(tr(StateFault, StateBackup, "fault cleared: interface eth0 up")), state: StateBackup,
					next: d + 3*time.Second + 3218750*time.Microsecond}, // prio 200: 3 s + 56/256 s
			),
		},
		{
			name: "fault: backup → fault stops the master-down timer, even an overdue one",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				{at: v2Down100 + time.Second, ev: SetFault{Fault: true, Reason: "check web failing"},
					want: acts(tr(StateBackup, StateFault, "fault: check web failing")), state: StateFault, next: noTimer},
				{at: v2Down100 + 2*time.Second, ev: Shutdown{}, want: acts(tr(StateFault, StateInit, "shutdown")), state: StateInit, next: noTimer},
			},
		},
		{
			name: "fault: repeated identical SetFault is a no-op",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				{at: time.Second, ev: SetFault{Fault: false}, state: StateBackup, next: v2Down100},
				{at: time.Second, ev: SetFault{Fault: true}, want: acts(tr(StateBackup, StateFault, "fault: no reason given")), state: StateFault, next: noTimer},
				{at: 2 * time.Second, ev: SetFault{Fault: true, Reason: "another"}, state: StateFault, next: noTimer},
			},
		},
		{
			name: "fault: remembered across shutdown and start",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				{at: time.Second, ev: Shutdown{}, want: acts(tr(StateBackup, StateInit, "")), state: StateInit, next: noTimer},
				{at: time.Second, ev: SetFault{Fault: true, Reason: "eth0 down"}, state: StateInit, next: noTimer},
				{at: 2 * time.Second, ev: Start{}, want: acts(tr(StateInit, StateFault, "started with a fault: eth0 down")), state: StateFault, next: noTimer},
			},
		},

		// Effective priority (check weights).
		{
			name: "track: a master whose priority changes advertises at once and does not resign",
			cfg:  v2cfg(100),
			steps: steps(v2Master,
				step{at: d + 200*time.Millisecond, ev: SetPriority{Priority: 50, Reason: "check web -50"}, want: acts(SendAdvert{50}),
					state: StateMaster, next: d + 1200*time.Millisecond,
					check: func(t *testing.T, s Snapshot) {
						if s.Priority != 50 || s.MasterPriority != 50 {
							t.Errorf("snapshot %+v", s)
						}
					}},
				step{at: d + 300*time.Millisecond, ev: SetPriority{Priority: 50}, state: StateMaster, next: d + 1200*time.Millisecond},
				// 0 would mean "resigning" on the wire.
				step{at: d + 400*time.Millisecond, ev: SetPriority{Priority: 0}, want: acts(SendAdvert{1}), state: StateMaster,
					next: d + 1400*time.Millisecond},
				step{at: d + 1400*time.Millisecond, ev: Timeout{}, want: acts(SendAdvert{1}), state: StateMaster},
			),
		},
		{
			name: "track: a backup's priority sets Skew_Time from the next advert",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				{at: 500 * time.Millisecond, ev: SetPriority{Priority: 200}, state: StateBackup, next: v2Down100},
				{at: time.Second, ev: adv(peerHigh, 250, time.Second), state: StateBackup, next: time.Second + 3218750*time.Microsecond,
					check: func(t *testing.T, s Snapshot) {
						if s.Priority != 200 || s.MasterDown != 3218750*time.Microsecond {
							t.Errorf("snapshot %+v", s)
						}
					}},
			},
		},
		{
			name: "track: a backup whose priority falls below a live lower master accepts it",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				{at: time.Second, ev: adv(peerLow, 90, time.Second), state: StateBackup, next: v2Down100},
				// Now 80: judged as of its advert at 1 s, 3 s + 176/256 s.
				{at: 2 * time.Second, ev: SetPriority{Priority: 80}, state: StateBackup, next: 4687500 * time.Microsecond},
				{at: 3 * time.Second, ev: adv(peerLow, 90, time.Second), state: StateBackup, next: 6687500 * time.Microsecond},
			},
		},
		{
			name: "track: a lower master accepted after a priority drop is timed from its last advert",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				{at: time.Second, ev: adv(peerLow, 90, time.Second), state: StateBackup, next: v2Down100},
				{at: 2 * time.Second, ev: SetPriority{Priority: 80}, state: StateBackup, next: 4687500 * time.Microsecond},
				{at: 4687500 * time.Microsecond, ev: Timeout{}, want: takeover(80, StateBackup, "master down timer expired (no advert for 3.688s)"),
					state: StateMaster},
			},
		},
		{
			name: "track: a priority drop never shortens the wait for a higher master heard since",
			cfg:  v2cfg(100),
			steps: []step{
				{at: 0, ev: Start{}, want: acts(tr(StateInit, StateBackup, "")), state: StateBackup, next: v2Down100},
				{at: time.Second, ev: adv(peerLow, 90, time.Second), state: StateBackup, next: v2Down100},
				{at: 2 * time.Second, ev: adv(peerHigh, 150, time.Second), state: StateBackup, next: 2*time.Second + v2Down100},
				// The lower master heard before no longer matters.
				{at: 3 * time.Second, ev: SetPriority{Priority: 80}, state: StateBackup, next: 2*time.Second + v2Down100},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSteps(t, New(tt.cfg), tt.steps)
		})
	}
}

func TestMachineSkewAndMasterDown(t *testing.T) {
	tests := []struct {
		name       string
		version    int
		interval   time.Duration
		prio       uint8
		skew, down time.Duration
	}{
		{"6.1 v2 skew formula: 1 s, prio 100", 2, time.Second, 100, v2Skew100, v2Down100},
		{"6.1 v2 skew formula: 1 s, prio 255", 2, time.Second, 255, 3906250 * time.Nanosecond, v2Down255},
		{"6.1 v2 skew formula: 1 s, prio 1", 2, time.Second, 1, 996093750 * time.Nanosecond, 3996093750 * time.Nanosecond},
		{"6.1 v2 skew formula: skew does not scale with a 3 s interval", 2, 3 * time.Second, 100, v2Skew100, 9609375 * time.Microsecond},
		{"6.1 v3 skew formula: 100 ms, prio 100", 3, 100 * time.Millisecond, 100, v3Skew100, v3Down100},
		{"6.1 v3 skew formula: 1 s, prio 100", 3, time.Second, 100, v2Skew100, v2Down100},
		{"6.1 v3 skew formula: 100 ms, prio 255", 3, 100 * time.Millisecond, 255, 390625 * time.Nanosecond, 300390625 * time.Nanosecond},
		// 255 × 40.95 s / 256 = 40.7900390625 s, truncated to the nanosecond.
		{"6.1 v3 skew formula: 40.95 s, prio 1", 3, 40950 * time.Millisecond, 1, 40790039062, 163640039062},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Config{Version: tt.version, Priority: tt.prio, AdvertInterval: tt.interval, Address: self})
			if got := m.skew(); got != tt.skew {
				t.Errorf("Skew_Time = %v, want %v", got, tt.skew)
			}
			if got := m.Snapshot().MasterDown; got != tt.down {
				t.Errorf("Master_Down_Interval = %v, want %v", got, tt.down)
			}
		})
	}
}

func TestMachineDefaults(t *testing.T) {
	m := New(Config{})
	if m.cfg.Version != 2 || m.cfg.Priority != DefaultPriority || m.cfg.AdvertInterval != time.Second || m.cfg.GARPCount != 1 {
		t.Errorf("defaults: %+v", m.cfg)
	}
	s := m.Snapshot()
	if s.State != StateInit || s.Priority != DefaultPriority || s.MasterInterval != time.Second || s.MasterDown != v2Down100 {
		t.Errorf("snapshot: %+v", s)
	}
	if !m.Deadline().IsZero() {
		t.Errorf("deadline in init: %v", m.Deadline())
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{StateInit: "init", StateBackup: "backup", StateMaster: "master", StateFault: "fault", 9: "state(9)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", int(s), s.String(), want)
		}
	}
}

// timed is an event at t0+at.
type timed struct {
	at time.Duration
	ev Event
}

// record is an action produced at t0+at.
type record struct {
	at time.Duration
	a  Action
}

func (r record) String() string { return fmt.Sprintf("%v:%+v", r.at, r.a) }

// every repeats ev from from, each period, until (inclusive).
func every(from, period, until time.Duration, ev Event) []timed {
	var out []timed
	for at := from; at <= until; at += period {
		out = append(out, timed{at, ev})
	}
	return out
}

func merge(lists ...[]timed) []timed {
	var out []timed
	for _, l := range lists {
		out = append(out, l...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at < out[j].at })
	return out
}

// drive is the runner with a perfect clock: it feeds evs in order and a
// Timeout exactly at every deadline, until t0+end, and returns every
// action with its time.
func drive(t *testing.T, m *Machine, evs []timed, end time.Duration) []record {
	t.Helper()
	var recs []record
	for {
		at, ev := end+1, Event(nil)
		if d := m.Deadline(); !d.IsZero() {
			at, ev = d.Sub(t0), Timeout{}
		}
		if len(evs) > 0 && evs[0].at < at {
			at, ev = evs[0].at, evs[0].ev
			evs = evs[1:]
		}
		if at > end {
			return recs
		}
		now := t0.Add(at)
		for _, a := range m.Step(ev, now) {
			recs = append(recs, record{at, a})
		}
		checkInvariants(t, m, now)
	}
}

func isGARP(a Action) bool       { _, ok := a.(SendGARP); return ok }
func isTransition(a Action) bool { _, ok := a.(Transition); return ok }

func garpsAndTransitions(a Action) bool { return isGARP(a) || isTransition(a) }

func TestMachineTimers(t *testing.T) {
	const (
		s  = time.Second
		ms = time.Millisecond
		d  = v2Down100
	)
	garpCfg := func(prio uint8) Config {
		return cfgWith(v2cfg(prio), func(c *Config) { c.GARPRepeatDelay, c.GARPRefresh = 5*s, 2*s })
	}
	delayCfg := cfgWith(v2cfg(100), func(c *Config) { c.PreemptDelay = 10 * s })
	lowerAdverts := func(from, until time.Duration) []timed { return every(from, s, until, adv(peerLow, 90, s)) }

	tests := []struct {
		name string
		cfg  Config
		evs  []timed
		end  time.Duration
		keep func(Action) bool
		want []record
	}{
		{
			name: "keepalived garp_master_delay: a second GARP burst 5 s after becoming master",
			cfg:  cfgWith(v2cfg(255), func(c *Config) { c.GARPRepeatDelay = 5 * s }),
			evs:  []timed{{0, Start{}}},
			end:  20 * s,
			keep: isGARP,
			want: []record{{0, SendGARP{5}}, {5 * s, SendGARP{5}}},
		},
		{
			name: "keepalived garp_master_refresh: one GARP every refresh while master",
			cfg:  garpCfg(255),
			evs:  []timed{{0, Start{}}},
			end:  7 * s,
			keep: isGARP,
			want: []record{{0, SendGARP{5}}, {2 * s, SendGARP{1}}, {4 * s, SendGARP{1}}, {5 * s, SendGARP{5}}, {6 * s, SendGARP{1}}},
		},
		{
			name: "GARP timers: cancelled when a higher-priority master takes over",
			cfg:  garpCfg(100),
			evs:  merge([]timed{{0, Start{}}}, every(d+3*s, s, 30*s, adv(peerHigh, 150, s))),
			end:  30 * s,
			keep: garpsAndTransitions,
			want: []record{
				{0, tr(StateInit, StateBackup, "started")},
				{d, SendGARP{5}}, {d, tr(StateBackup, StateMaster, "master down timer expired")},
				{d + 2*s, SendGARP{1}},
				{d + 3*s, tr(StateMaster, StateBackup, "higher-priority master")},
			},
		},
		{
			name: "GARP timers: cancelled by a fault, restarted by the next takeover",
			cfg:  garpCfg(255),
			evs: []timed{{0, Start{}}, {3 * s, SetFault{Fault: true, Reason: "eth0 down"}},
				{4 * s, SetFault{Fault: false, Reason: "eth0 up"}}},
			end:  10 * s,
			keep: garpsAndTransitions,
			want: []record{
				{0, SendGARP{5}}, {0, tr(StateInit, StateMaster, "")},
				{2 * s, SendGARP{1}},
				{3 * s, tr(StateMaster, StateFault, "eth0 down")},
				{4 * s, tr(StateFault, StateBackup, "eth0 up")},
				{4*s + v2Down255, SendGARP{5}}, {4*s + v2Down255, tr(StateBackup, StateMaster, "")},
				{6*s + v2Down255, SendGARP{1}},
			},
		},
		{
			name: "GARP timers: cancelled by shutdown",
			cfg:  garpCfg(255),
			evs:  []timed{{0, Start{}}, {s, Shutdown{}}},
			end:  20 * s,
			keep: garpsAndTransitions,
			want: []record{{0, SendGARP{5}}, {0, tr(StateInit, StateMaster, "")}, {s, tr(StateMaster, StateInit, "shutdown")}},
		},
		{
			name: "6.4.2 preempt: a live lower master is replaced Master_Down_Interval after Start",
			cfg:  v2cfg(100),
			evs:  merge([]timed{{0, Start{}}}, lowerAdverts(250*ms, 30*s)),
			end:  30 * s,
			keep: isTransition,
			want: []record{{0, tr(StateInit, StateBackup, "")}, {d, tr(StateBackup, StateMaster, "preempting lower-priority master 192.0.2.10 (prio 90)")}},
		},
		{
			name: "6.4.2 nopreempt: a live lower master is kept for as long as it advertises",
			cfg:  cfgWith(v2cfg(100), func(c *Config) { c.Preempt = false }),
			evs:  merge([]timed{{0, Start{}}}, lowerAdverts(250*ms, 30*s)),
			end:  30 * s,
			keep: isTransition,
			want: []record{{0, tr(StateInit, StateBackup, "")}},
		},
		{
			name: "keepalived preempt_delay: a live lower master is replaced PreemptDelay after we first heard it",
			cfg:  delayCfg,
			evs:  merge([]timed{{0, Start{}}}, lowerAdverts(250*ms, 30*s)),
			end:  30 * s,
			keep: isTransition,
			want: []record{{0, tr(StateInit, StateBackup, "")}, {10*s + 250*ms, tr(StateBackup, StateMaster, "preempting lower-priority master 192.0.2.10 (prio 90)")}},
		},
		{
			name: "keepalived preempt_delay: a lower master that falls silent is replaced Master_Down_Interval after its last advert",
			cfg:  delayCfg,
			evs:  merge([]timed{{0, Start{}}}, lowerAdverts(250*ms, 2*s+250*ms)),
			end:  30 * s,
			keep: isTransition,
			want: []record{{0, tr(StateInit, StateBackup, "")}, {2*s + 250*ms + d, tr(StateBackup, StateMaster, "master down timer expired (no advert for 3.609s)")}},
		},
		{
			name: "keepalived preempt_delay: with no master at all we take over at Master_Down_Interval",
			cfg:  delayCfg,
			evs:  []timed{{0, Start{}}},
			end:  30 * s,
			keep: isTransition,
			want: []record{{0, tr(StateInit, StateBackup, "")}, {d, tr(StateBackup, StateMaster, "master down timer expired")}},
		},
		{
			name: "keepalived preempt_delay: a resigning lower master is replaced after Skew_Time",
			cfg:  delayCfg,
			evs:  merge([]timed{{0, Start{}}, {2*s + 500*ms, adv(peerLow, PriorityStop, s)}}, lowerAdverts(250*ms, 2*s+250*ms)),
			end:  30 * s,
			keep: isTransition,
			want: []record{{0, tr(StateInit, StateBackup, "")}, {2*s + 500*ms + v2Skew100, tr(StateBackup, StateMaster, "resigned")}},
		},
		{
			name: "keepalived preempt_delay: restarts when leaving fault (keepalived #1283 skipped it)",
			cfg:  delayCfg,
			evs: merge([]timed{{0, Start{}}, {5 * s, SetFault{Fault: true, Reason: "eth0 down"}}, {6 * s, SetFault{Fault: false, Reason: "eth0 up"}}},
				lowerAdverts(250*ms, 30*s)),
			end:  30 * s,
			keep: isTransition,
			want: []record{
				{0, tr(StateInit, StateBackup, "")}, {5 * s, tr(StateBackup, StateFault, "")}, {6 * s, tr(StateFault, StateBackup, "")},
				{16*s + 250*ms, tr(StateBackup, StateMaster, "preempting")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []record
			for _, r := range drive(t, New(tt.cfg), tt.evs, tt.end) {
				if tt.keep(r.a) {
					got = append(got, r)
				}
			}
			ok := len(got) == len(tt.want)
			for i := 0; ok && i < len(got); i++ {
				ok = got[i].at == tt.want[i].at && matchAction(got[i].a, tt.want[i].a)
			}
			if !ok {
				t.Errorf("\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

// lan wires machines together through an in-memory network with no delay:
// each SendAdvert is delivered at once as AdvertReceived to every other
// running node. A fake clock moves from one deadline to the next.
type lan struct {
	t     *testing.T
	now   time.Time
	nodes []*node
	log   []change
}

type node struct {
	name       string
	cfg        Config
	m          *Machine
	up         bool      // running: gets events and adverts
	vips       bool      // holds the virtual addresses
	lastAdvert time.Time // last advert sent with a priority above 0
}

type change struct {
	at       time.Duration
	node     string
	from, to State
	reason   string
}

func (c change) String() string {
	return fmt.Sprintf("%v %s %v→%v (%s)", c.at, c.node, c.from, c.to, c.reason)
}

func (l *lan) step(n *node, ev Event) {
	var sent []AdvertReceived
	for _, a := range n.m.Step(ev, l.now) {
		switch a := a.(type) {
		case SendAdvert:
			sent = append(sent, AdvertReceived{From: n.cfg.Address, Priority: a.Priority, Interval: n.cfg.AdvertInterval})
			if a.Priority != PriorityStop {
				n.lastAdvert = l.now
			}
		case AddVIPs:
			n.vips = true
		case RemoveVIPs:
			n.vips = false
		case Transition:
			l.log = append(l.log, change{l.now.Sub(t0), n.name, a.From, a.To, a.Reason})
		}
	}
	checkInvariants(l.t, n.m, l.now)
	for _, ad := range sent {
		for _, o := range l.nodes {
			if o != n && o.up {
				l.step(o, ad)
			}
		}
	}
}

// run fires every running node's timers up to t0+until.
func (l *lan) run(until time.Duration) {
	end := t0.Add(until)
	for {
		var next *node
		for _, n := range l.nodes {
			if d := n.m.Deadline(); n.up && !d.IsZero() && (next == nil || d.Before(next.m.Deadline())) {
				next = n
			}
		}
		if next == nil || next.m.Deadline().After(end) {
			l.now = end
			return
		}
		l.now = next.m.Deadline()
		l.step(next, Timeout{})
	}
}

// start (re)starts a node as a fresh process.
func (l *lan) start(n *node) {
	n.m, n.up, n.vips = New(n.cfg), true, false
	l.step(n, Start{})
}

// crash stops a node without a word, as a power cut would.
func (l *lan) crash(n *node) { n.up, n.vips = false, false }

func (l *lan) holders() []string {
	var out []string
	for _, n := range l.nodes {
		if n.vips {
			out = append(out, n.name)
		}
	}
	return out
}

// since returns the transitions logged from t0+from on.
func (l *lan) since(from time.Duration) []change {
	var out []change
	for _, c := range l.log {
		if c.at >= from {
			out = append(out, c)
		}
	}
	return out
}

func (l *lan) expect(from time.Duration, want ...change) {
	l.t.Helper()
	got := l.since(from)
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		g, w := got[i], want[i]
		ok = g.at == w.at && g.node == w.node && g.from == w.from && g.to == w.to && strings.Contains(g.reason, w.reason)
	}
	if !ok {
		l.t.Errorf("transitions since %v\n got %v\nwant %v", from, got, want)
	}
}

func (l *lan) expectHolders(want ...string) {
	l.t.Helper()
	if got := l.holders(); strings.Join(got, ",") != strings.Join(want, ",") {
		l.t.Errorf("at %v: VIPs held by %v, want %v", l.now.Sub(t0), got, want)
	}
}

func TestMachineScenario(t *testing.T) {
	const phase = 10 * time.Second
	tests := []struct {
		name       string
		version    int
		interval   time.Duration
		preemptA   bool
		downA      time.Duration // Master_Down_Interval of A (prio 150)
		downB      time.Duration // and of B (prio 100)
		skewA      time.Duration
		skewB      time.Duration
		wantReturn bool // A takes the VIPs back when it returns
	}{
		{"v2 1 s, A preempts on return", 2, time.Second, true, 3414062500, v2Down100, 414062500, v2Skew100, true},
		{"v2 1 s, A nopreempt", 2, time.Second, false, 3414062500, v2Down100, 414062500, v2Skew100, false},
		{"v3 100 ms, A preempts on return", 3, 100 * time.Millisecond, true, 341406250, v3Down100, 41406250, v3Skew100, true},
		{"v3 100 ms, A nopreempt", 3, 100 * time.Millisecond, false, 341406250, v3Down100, 41406250, v3Skew100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{VRID: 51, Version: tt.version, AdvertInterval: tt.interval, GARPCount: 5, GARPRepeatDelay: 5 * time.Second}
			a := &node{name: "A", cfg: cfgWith(cfg, func(c *Config) { c.Priority, c.Preempt, c.Address = 150, tt.preemptA, peerLow })}
			b := &node{name: "B", cfg: cfgWith(cfg, func(c *Config) { c.Priority, c.Preempt, c.Address = 100, true, peerHigh })}
			l := &lan{t: t, now: t0, nodes: []*node{a, b}}

			// Election by priority: both start as backups, A's shorter
			// Skew_Time makes it master first and B hears it in time.
			l.start(a)
			l.start(b)
			l.run(phase)
			l.expect(0,
				change{0, "A", StateInit, StateBackup, "started"},
				change{0, "B", StateInit, StateBackup, "started"},
				change{tt.downA, "A", StateBackup, StateMaster, "master down timer expired"})
			l.expectHolders("A")
			if s := b.m.Snapshot(); s.MasterAddr != a.cfg.Address || s.MasterPriority != 150 {
				t.Errorf("B does not know its master: %+v", s)
			}

			// Silent master loss: B takes over exactly Master_Down_Interval
			// after A's last advert.
			l.crash(a)
			lastA := a.lastAdvert.Sub(t0)
			l.run(2 * phase)
			l.expect(phase, change{lastA + tt.downB, "B", StateBackup, StateMaster, "master down timer expired"})
			l.expectHolders("B")

			// A returns.
			l.start(a)
			l.run(3 * phase)
			master, backup, skew := b, a, tt.skewA
			if tt.wantReturn {
				l.expect(2*phase,
					change{2 * phase, "A", StateInit, StateBackup, "started"},
					change{2*phase + tt.downA, "A", StateBackup, StateMaster, "preempting lower-priority master 192.0.2.12 (prio 100)"},
					change{2*phase + tt.downA, "B", StateMaster, StateBackup, "higher-priority master 192.0.2.10 (prio 150)"})
				l.expectHolders("A")
				master, backup, skew = a, b, tt.skewB
			} else {
				l.expect(2*phase, change{2 * phase, "A", StateInit, StateBackup, "started"})
				l.expectHolders("B")
				if s := a.m.Snapshot(); s.MasterAddr != b.cfg.Address || s.MasterPriority != 100 {
					t.Errorf("A does not know its master: %+v", s)
				}
			}

			// Graceful resign: the priority 0 advert hands over after the
			// backup's Skew_Time instead of Master_Down_Interval.
			l.step(master, Shutdown{})
			l.run(4 * phase)
			l.expect(3*phase,
				change{3 * phase, master.name, StateMaster, StateInit, "shutdown"},
				change{3*phase + skew, backup.name, StateBackup, StateMaster, "resigned (priority 0 advert)"})
			l.expectHolders(backup.name)
		})
	}
}

// Two routers with the same priority that start together both become
// master at the same instant; the advert exchange settles it for the
// higher address, and the loser's VIPs go away at once.
func TestMachineScenarioTieBreak(t *testing.T) {
	for _, order := range [][2]int{{0, 1}, {1, 0}} {
		t.Run(fmt.Sprintf("6.4.3 tie break: equal priority, higher address wins (start order %v)", order), func(t *testing.T) {
			cfg := v3cfg(100)
			lo := &node{name: "lo", cfg: cfgWith(cfg, func(c *Config) { c.Address = peerLow })}
			hi := &node{name: "hi", cfg: cfgWith(cfg, func(c *Config) { c.Address = peerHigh })}
			nodes := []*node{lo, hi}
			l := &lan{t: t, now: t0, nodes: []*node{nodes[order[0]], nodes[order[1]]}}
			for _, n := range l.nodes {
				l.start(n)
			}
			l.run(time.Second)
			l.expectHolders("hi")
			if lo.m.State() != StateBackup || hi.m.State() != StateMaster {
				t.Errorf("lo %v, hi %v; log %v", lo.m.State(), hi.m.State(), l.log)
			}
			// Whoever yielded did so at the takeover instant.
			last := l.log[len(l.log)-1]
			if last.at != v3Down100 || last.to != StateBackup {
				t.Errorf("log %v", l.log)
			}
		})
	}
}
