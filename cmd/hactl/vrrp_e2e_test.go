package main

import (
	"strings"
	"testing"
	"time"
)

// The VRRP tests run hactl agents (and keepalived) as real processes in
// lab nodes, cut links with the lab, and look from the client. They assert
// what happens, never how fast: timing is the benchmark's job and the
// state machine's unit tests pin the timer formulas with a fake clock.

func v3fast(prio map[string]int, extra string) vrrpConf {
	return vrrpConf{Version: 3, Interval: "100ms", Priorities: prio, Extra: extra}
}

// TestVRRPElectionFailoverAndReturn: election by priority, silent loss of
// the master, its return (preempt), and a graceful resign.
func TestVRRPElectionFailoverAndReturn(t *testing.T) {
	v := newVRRPLab(t)
	v.configure(v3fast(map[string]int{"alpha": 100, "bravo": 90}, `  garp_repeat_delay = "0s"`))
	alpha := v.agent("alpha")
	v.agent("bravo")

	a := v.waitState("alpha", "master")
	v.waitState("bravo", "backup")
	v.waitHolder(vip, "alpha")
	if a.EffectivePriority != 100 || a.Master != "192.0.2.11" {
		t.Errorf("alpha as master reports priority %d, master %q", a.EffectivePriority, a.Master)
	}
	b, _ := v.instance("bravo")
	if b.Master != "192.0.2.11" || b.MasterPriority != 100 || b.AdvertIntervalInUse != "100ms" {
		t.Errorf("bravo sees master %q prio %d interval %q; want 192.0.2.11, 100, 100ms", b.Master, b.MasterPriority, b.AdvertIntervalInUse)
	}
	if !v.pingOnce(vip) {
		t.Fatal("the client cannot ping the VIP")
	}
	if got, want := v.clientNeighbour(vip), v.mac("alpha"); got != want {
		t.Errorf("client's neighbour entry for the VIP is %q, want alpha's %q", got, want)
	}

	// Silent loss: alpha's switch port stops forwarding; its carrier stays.
	if err := v.l.Isolate("alpha", "service"); err != nil {
		t.Fatal(err)
	}
	b = v.waitState("bravo", "master")
	if b.LastTransition == nil || !strings.Contains(b.LastTransition.Reason, "master down") {
		t.Errorf("bravo's takeover reason = %+v, want the master-down timer", b.LastTransition)
	}
	v.eventually("the client to reach the VIP on bravo", func() bool {
		return v.pingOnce(vip) && v.clientNeighbour(vip) == v.mac("bravo")
	})

	// alpha returns: it has the higher priority and preempts; bravo, hearing
	// it, resigns and removes the VIP.
	if err := v.l.Rejoin("alpha", "service"); err != nil {
		t.Fatal(err)
	}
	v.waitState("bravo", "backup")
	v.waitState("alpha", "master")
	v.waitHolder(vip, "alpha")
	v.eventually("the client's neighbour entry back on alpha", func() bool {
		return v.pingOnce(vip) && v.clientNeighbour(vip) == v.mac("alpha")
	})

	// Graceful resign: SIGTERM makes alpha send priority 0 and drop the VIP.
	if err := alpha.term(t); err != nil {
		t.Fatalf("alpha's agent exit after SIGTERM: %v", err)
	}
	b = v.waitState("bravo", "master")
	if b.LastTransition == nil || !strings.Contains(b.LastTransition.Reason, "priority 0") {
		t.Errorf("bravo's takeover reason after alpha resigned = %+v, want the priority 0 advert", b.LastTransition)
	}
	v.waitHolder(vip, "bravo")
	if n := len(logEvents(alpha.logs.String(), "transition")); n < 2 {
		t.Errorf("alpha logged %d transitions, want at least init→backup→master→init", n)
	}
}

// TestVRRPNoPreempt: with preempt off, a returning higher-priority node
// leaves the running master alone.
func TestVRRPNoPreempt(t *testing.T) {
	v := newVRRPLab(t)
	v.configure(v3fast(map[string]int{"alpha": 100, "bravo": 90}, "  preempt = false"))
	v.agent("bravo")
	v.waitState("bravo", "master")
	v.agent("alpha")
	v.waitState("alpha", "backup")
	// Ten master-down intervals later nothing has moved.
	time.Sleep(10 * 361 * time.Millisecond)
	if a, _ := v.instance("alpha"); a.State != "backup" {
		t.Errorf("alpha is %s with preempt off, want backup", a.State)
	}
	v.waitHolder(vip, "bravo")
}

// TestVRRPTrackingAndChecks: a tracked interface going down puts the
// master in fault and hands over; a failing check with a weight lowers the
// priority below the peer's and hands over.
func TestVRRPTrackingAndChecks(t *testing.T) {
	v := newVRRPLab(t)
	v.configure(v3fast(map[string]int{"alpha": 100, "bravo": 90}, `  track_interface = ["eth1"]
  check "flag" {
    exec     = ["/bin/sh", "-c", "! test -e /run/hactl/fail"]
    interval = "1s"
    timeout  = "1s"
    fall     = 1
    rise     = 1
    weight   = -20
  }`))
	v.agent("alpha")
	v.agent("bravo")
	v.waitState("alpha", "master")
	v.waitState("bravo", "backup")

	// eth1's cable pulled: fault, priority-0 resign, bravo takes over.
	if err := v.l.SetCable("alpha", "replication", false); err != nil {
		t.Fatal(err)
	}
	a := v.waitState("alpha", "fault")
	if !strings.Contains(a.Fault, "eth1") {
		t.Errorf("alpha's fault reason %q does not name eth1", a.Fault)
	}
	v.waitState("bravo", "master")
	v.waitHolder(vip, "bravo")
	if err := v.l.SetCable("alpha", "replication", true); err != nil {
		t.Fatal(err)
	}
	v.waitState("alpha", "master")
	v.waitHolder(vip, "alpha")

	// The check fails: 100 − 20 = 80 < 90, bravo preempts.
	v.run("alpha", "touch", "/run/hactl/fail")
	v.waitState("bravo", "master")
	a = v.waitState("alpha", "backup")
	if a.EffectivePriority != 80 || a.Priority != 100 {
		t.Errorf("alpha's priority with the check failing: effective %d configured %d; want 80, 100", a.EffectivePriority, a.Priority)
	}
	if len(a.Checks) != 1 || !a.Checks[0].Failing {
		t.Errorf("alpha's checks = %+v, want flag failing", a.Checks)
	}
	v.waitHolder(vip, "bravo")
	v.run("alpha", "rm", "/run/hactl/fail")
	v.waitState("alpha", "master")
	v.waitHolder(vip, "alpha")
}

// TestVRRPTrackWeight: a tracked interface with a weight lowers the
// priority while it is down instead of faulting, and the peer preempts.
func TestVRRPTrackWeight(t *testing.T) {
	v := newVRRPLab(t)
	v.configure(v3fast(map[string]int{"alpha": 100, "bravo": 90}, `  track_interface = { eth1 = -20 }`))
	v.agent("alpha")
	v.agent("bravo")
	v.waitState("alpha", "master")
	v.waitState("bravo", "backup")

	if err := v.l.SetCable("alpha", "replication", false); err != nil {
		t.Fatal(err)
	}
	v.waitState("bravo", "master")
	a := v.waitState("alpha", "backup")
	if a.EffectivePriority != 80 || a.Fault != "" {
		t.Errorf("alpha with eth1 down: effective priority %d, fault %q; want 80 and none", a.EffectivePriority, a.Fault)
	}
	if len(a.Tracks) != 1 || a.Tracks[0].Up || a.Tracks[0].Weight != -20 {
		t.Errorf("alpha's tracked interfaces = %+v, want eth1 down with weight -20", a.Tracks)
	}
	v.waitHolder(vip, "bravo")
	if err := v.l.SetCable("alpha", "replication", true); err != nil {
		t.Fatal(err)
	}
	v.waitState("alpha", "master")
	v.waitHolder(vip, "alpha")
}

// TestVRRPPlainChecksum: two hactl nodes in RFC 9568 checksum mode (no
// pseudo-header) elect and fail over like in keepalived's default mode.
// keepalived 2.2.7 cannot be the peer here: its v3_checksum_as_v2 arrived
// in 2.2.8.
func TestVRRPPlainChecksum(t *testing.T) {
	v := newVRRPLab(t)
	v.configure(v3fast(map[string]int{"alpha": 100, "bravo": 90}, `  v3_checksum_pseudo_header = false`))
	alpha := v.agent("alpha")
	v.agent("bravo")
	v.waitState("alpha", "master")
	b := v.waitState("bravo", "backup")
	if b.Counters == nil || b.Counters.AdvertsReceived == 0 || len(b.Counters.Invalid) != 0 {
		t.Errorf("bravo's counters in plain checksum mode: %+v", b.Counters)
	}
	if err := alpha.term(t); err != nil {
		t.Errorf("alpha exit: %v", err)
	}
	v.waitState("bravo", "master")
	v.waitHolder(vip, "bravo")
}

// TestVRRPVMAC: with vmac the VIP answers from 00:00:5e:00:01:VRID on
// whichever node is master, so the client's neighbour entry never changes.
func TestVRRPVMAC(t *testing.T) {
	v := newVRRPLab(t)
	v.configure(v3fast(map[string]int{"alpha": 100, "bravo": 90}, `  vmac = true`))
	alpha := v.agent("alpha")
	v.agent("bravo")
	v.waitState("alpha", "master")
	v.waitState("bravo", "backup")
	const vmac = "00:00:5e:00:01:33" // VRID 51
	// A single ping (one second to answer) is occasionally lost while the
	// lab's interfaces are new (IPv6 DAD still runs); each round may try a
	// few times. What the test is about is the neighbour entry.
	ping := func() bool {
		for range 3 {
			if v.pingOnce(vip) {
				return true
			}
		}
		return false
	}
	for range 3 {
		if !ping() {
			t.Fatal("the client cannot ping the VIP")
		}
		if got := v.clientNeighbour(vip); got != vmac {
			t.Fatalf("client's neighbour entry for the VIP = %s, want the VMAC %s", got, vmac)
		}
	}
	if err := v.l.Isolate("alpha", "service"); err != nil {
		t.Fatal(err)
	}
	v.waitState("bravo", "master")
	v.eventually("the VIP to answer from bravo's VMAC", func() bool { return v.pingOnce(vip) })
	if got := v.clientNeighbour(vip); got != vmac {
		t.Errorf("after failover the client's neighbour entry = %s, want the VMAC %s", got, vmac)
	}
	// A stopped instance removes its VMAC and puts arp_ignore back.
	if err := alpha.term(t); err != nil {
		t.Errorf("alpha exit: %v", err)
	}
	if out := v.run("alpha", "ip", "-br", "link"); strings.Contains(out, "vrrp.51") {
		t.Errorf("alpha kept its VMAC interface:\n%s", out)
	}
	for _, key := range []string{"arp_ignore", "arp_announce"} {
		if got := strings.TrimSpace(v.run("alpha", "cat", "/proc/sys/net/ipv4/conf/eth0/"+key)); got != "0" {
			t.Errorf("alpha's eth0 %s = %s after stop, want 0 again", key, got)
		}
	}
}

// TestVRRPGratuitousARP: on takeover the client sees garp_count GARPs per
// VIP at once and as many again after garp_repeat_delay, in keepalived's
// format, and its neighbour entry follows.
func TestVRRPGratuitousARP(t *testing.T) {
	v := newVRRPLab(t, "tcpdump")
	c := v3fast(map[string]int{"alpha": 100, "bravo": 90}, `  garp_repeat_delay = "1s"`)
	c.VIPs = []string{vipPrefix, vip2 + "/24"}
	v.configure(c)
	v.agent("alpha")
	v.agent("bravo")
	v.waitState("alpha", "master")
	v.waitState("bravo", "backup")
	v.pingOnce(vip)
	v.pingOnce(vip2)
	// bravo may have been master for a moment at start (both began
	// together); count from here.
	before, _ := v.instance("bravo")

	arp := v.capture("arp")
	if err := v.l.Isolate("alpha", "service"); err != nil {
		t.Fatal(err)
	}
	v.waitState("bravo", "master")
	bravoMAC := v.mac("bravo")
	var gs []garp
	v.eventually("both GARP bursts from bravo", func() bool {
		gs = parseGARPs(arp.Output())
		return len(gs) >= 20
	})
	time.Sleep(500 * time.Millisecond) // anything beyond the two bursts would show now
	gs = parseGARPs(arp.Output())
	perVIP := map[string][]float64{}
	for _, g := range gs {
		if g.src != bravoMAC {
			t.Errorf("GARP for %s from %s, want bravo's %s", g.ip, g.src, bravoMAC)
		}
		perVIP[g.ip] = append(perVIP[g.ip], g.at)
	}
	for _, ip := range []string{vip, vip2} {
		times := perVIP[ip]
		if len(times) != 10 {
			t.Errorf("%d GARPs for %s, want 5 + 5", len(times), ip)
			continue
		}
		// Two bursts: the gap between the 5th and 6th is the repeat delay,
		// far longer than any gap inside a burst.
		gapBetween := times[5] - times[4]
		for i := 1; i < 5; i++ {
			if inBurst := times[i] - times[i-1]; inBurst >= gapBetween {
				t.Errorf("%s: GARPs not in two bursts of 5: %v", ip, times)
				break
			}
		}
	}
	if got := v.clientNeighbour(vip); got != bravoMAC {
		t.Errorf("client's neighbour entry for the VIP is %q after takeover, want bravo's %q", got, bravoMAC)
	}
	b, _ := v.instance("bravo")
	if sent := b.Counters.GARPsSent - before.Counters.GARPsSent; sent != 20 {
		t.Errorf("bravo counts %d GARPs for the takeover, want 20", sent)
	}
}

// TestVRRPKill9LeavesNoDuplicate: a master killed with SIGKILL leaves its
// VIP behind (nothing can remove it); the restarted agent removes it before
// it does anything else, so only one node answers for the VIP afterwards.
func TestVRRPKill9LeavesNoDuplicate(t *testing.T) {
	v := newVRRPLab(t, "arping")
	v.configure(v3fast(map[string]int{"alpha": 100, "bravo": 90}, "  preempt = false"))
	alpha := v.agent("alpha")
	v.waitState("alpha", "master")
	v.agent("bravo")
	v.waitState("bravo", "backup")

	alpha.kill9()
	v.waitState("bravo", "master")
	if !v.holds("alpha", vip) {
		t.Fatal("the killed agent's VIP is gone; the test cannot show the cleanup")
	}
	restarted := v.agent("alpha")
	v.waitState("alpha", "backup")
	v.waitHolder(vip, "bravo")
	owners := v.arpingOwners(vip)
	if len(owners) != 1 || owners[0] != v.mac("bravo") {
		t.Errorf("arping -D for the VIP answered by %v, want bravo (%s) alone", owners, v.mac("bravo"))
	}
	if len(logEvents(restarted.logs.String(), "stale-vip")) != 1 {
		t.Error("the restarted agent did not log removing the stale VIP")
	}
}
