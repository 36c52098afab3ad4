package vrrpnet

import (
	"strings"
	"testing"
)

// TestSysctlsAndVMACsOn: SetSysctl acts in the namespace it is called in
// and returns what it replaced; VMACsOn sees the parent's VMACs.
func TestSysctlsAndVMACsOn(t *testing.T) {
	requireNetRoot(t)
	p := newPair(t)
	inA := func(fn func()) { inNS(t, p.A, fn) }

	var old, again int
	var err, err2 error
	inA(func() {
		old, err = SetSysctl("a0", "arp_announce", 2)
		again, err2 = SetSysctl("a0", "arp_announce", 2)
	})
	if err != nil || err2 != nil || old != 0 || again != 2 {
		t.Fatalf("SetSysctl = %d, %v then %d, %v; want 0 then 2", old, err, again, err2)
	}
	if got := strings.TrimSpace(ipCmd(t, "netns", "exec", p.A, "cat", "/proc/sys/net/ipv4/conf/a0/arp_announce")); got != "2" {
		t.Errorf("a0 arp_announce in its namespace = %s, want 2", got)
	}
	if got := strings.TrimSpace(ipCmd(t, "netns", "exec", p.B, "cat", "/proc/sys/net/ipv4/conf/b0/arp_announce")); got != "0" {
		t.Errorf("the peer namespace's b0 arp_announce = %s, want it untouched", got)
	}
	for _, bad := range [][2]string{{"../all", "arp_ignore"}, {"a0", "../../forwarding"}, {"", "arp_ignore"}, {"a0", ".."}} {
		inA(func() { _, err = SetSysctl(bad[0], bad[1], 1) })
		if err == nil {
			t.Errorf("SetSysctl(%q, %q) accepted", bad[0], bad[1])
		}
	}
	inA(func() { _, err = SetSysctl("nosuch0", "arp_ignore", 1) })
	if err == nil {
		t.Error("SetSysctl on a missing interface succeeded")
	}

	var on bool
	inA(func() { on, err = VMACsOn("a0") })
	if err != nil || on {
		t.Fatalf("VMACsOn before any VMAC = %v, %v", on, err)
	}
	inA(func() { _, err = AddVMAC("a0", 7) })
	if err != nil {
		t.Fatal(err)
	}
	inA(func() { on, err = VMACsOn("a0") })
	if err != nil || !on {
		t.Errorf("VMACsOn with vrrp.7 = %v, %v", on, err)
	}
	inA(func() { err = RemoveVMAC("a0", 7) })
	if err != nil {
		t.Fatal(err)
	}
	inA(func() { on, err = VMACsOn("a0") })
	if err != nil || on {
		t.Errorf("VMACsOn after removing it = %v, %v", on, err)
	}
}
