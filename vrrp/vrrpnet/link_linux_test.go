package vrrpnet

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestAddresses(t *testing.T) {
	requireNetRoot(t)
	p := newPair(t)
	l := openLinkIn(t, p.A, "a0")
	if l.Name() != "a0" {
		t.Errorf("Name() = %q", l.Name())
	}
	if mac := macIn(t, p.A, "a0"); !bytes.Equal(l.MAC(), mac) {
		t.Errorf("MAC() = %s, want %s", l.MAC(), mac)
	}
	wantPrimary := func() {
		t.Helper()
		if a, err := l.PrimaryAddr(); err != nil || a != addrA {
			t.Fatalf("PrimaryAddr() = %v, %v; want %v", a, err, addrA)
		}
	}
	has := func(a netip.Addr, want bool) {
		t.Helper()
		if got, err := l.HasAddr(a); err != nil || got != want {
			t.Fatalf("HasAddr(%v) = %v, %v; want %v", a, got, err, want)
		}
	}
	wantPrimary()

	// A VIP in the subnet of the real address: the kernel makes it
	// secondary.
	vip := netip.MustParsePrefix("192.0.2.100/24")
	has(vip.Addr(), false)
	for range 2 {
		if err := l.AddAddr(vip); err != nil {
			t.Fatalf("AddAddr(%v): %v", vip, err)
		}
	}
	has(vip.Addr(), true)
	if line := addrLine(t, p.A, "a0", vip); !strings.Contains(line, " secondary a0") {
		t.Errorf("VIP not a secondary address labelled a0: %q", line)
	}
	wantPrimary()

	// A /32 VIP is a primary address of its own; PrimaryAddr still
	// ignores it because this Link added it.
	vip32 := netip.MustParsePrefix("198.51.100.7/32")
	if err := l.AddAddr(vip32); err != nil {
		t.Fatal(err)
	}
	has(vip32.Addr(), true)
	wantPrimary()
	// Listen picks the same source with the VIPs present.
	if c := listenIn(t, p.A, "a0", ConnOptions{}); c.Source() != addrA {
		t.Errorf("Listen source %v with VIPs present, want %v", c.Source(), addrA)
	}

	// The address owner's VIP is the interface address: adding it is a
	// no-op and it stays primary.
	if err := l.AddAddr(netip.MustParsePrefix("192.0.2.1/24")); err != nil {
		t.Fatal(err)
	}
	wantPrimary()

	for _, v := range []netip.Prefix{vip, vip32} {
		for range 2 {
			if err := l.DelAddr(v); err != nil {
				t.Fatalf("DelAddr(%v): %v", v, err)
			}
		}
		has(v.Addr(), false)
	}
	has(addrA, true)
	wantPrimary()

	// IPv6 VIPs work at once (no DAD).
	v6 := netip.MustParsePrefix("2001:db8::64/128")
	if err := l.AddAddr(v6); err != nil {
		t.Fatal(err)
	}
	has(v6.Addr(), true)
	if line := addrLine(t, p.A, "a0", v6); strings.Contains(line, "tentative") {
		t.Errorf("IPv6 VIP is tentative: %q", line)
	}
	if err := l.DelAddr(v6); err != nil {
		t.Fatal(err)
	}
	has(v6.Addr(), false)

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.AddAddr(vip); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("AddAddr after Close: %v, want net.ErrClosed", err)
	}
	if err := l.GARP(vip.Addr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("GARP after Close: %v, want net.ErrClosed", err)
	}
}

// addrLine is the line of `ip addr show` for p.
func addrLine(t *testing.T, ns, dev string, p netip.Prefix) string {
	t.Helper()
	for _, line := range strings.Split(ipCmd(t, "-n", ns, "addr", "show", "dev", dev), "\n") {
		if strings.Contains(line, " "+p.String()+" ") {
			return strings.TrimSpace(line)
		}
	}
	t.Fatalf("%v not on %s", p, dev)
	return ""
}

func TestPrimaryAddrNone(t *testing.T) {
	requireNetRoot(t)
	ns := newNS(t, "n")
	ipCmd(t, "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	l := openLinkIn(t, ns, "d0")
	if a, err := l.PrimaryAddr(); err == nil {
		t.Fatalf("PrimaryAddr() = %v on an interface without addresses", a)
	}
	// The only address is a VIP this Link added: still no primary.
	if err := l.AddAddr(netip.MustParsePrefix("203.0.113.5/32")); err != nil {
		t.Fatal(err)
	}
	if a, err := l.PrimaryAddr(); err == nil {
		t.Fatalf("PrimaryAddr() = %v, a VIP", a)
	}
	var err error
	inNS(t, ns, func() { _, err = OpenLink("nosuch0") })
	if err == nil {
		t.Fatal("OpenLink of a missing interface succeeded")
	}
}

// keepalivedGARP is the first GARP of the v3-100ms capture: keepalived
// 2.2.7 announcing 192.0.2.100 from 8a:fe:a1:0a:e4:dd.
const keepalivedGARP = "ffffffffffff8afea10ae4dd0806" + "0001080006040001" +
	"8afea10ae4dd" + "c0000264" + "ffffffffffff" + "c0000264"

func TestGARPFrame(t *testing.T) {
	want, _ := hex.DecodeString(keepalivedGARP)
	mac := net.HardwareAddr{0x8a, 0xfe, 0xa1, 0x0a, 0xe4, 0xdd}
	if got := garpFrame(mac, netip.MustParseAddr("192.0.2.100")); !bytes.Equal(got, want) {
		t.Fatalf("garpFrame\n got %x\nwant %x", got, want)
	}
}

// neighbour is B's neighbour entry for a as "lladdr STATE", or "".
func neighbour(t *testing.T, ns, dev string, a netip.Addr) string {
	t.Helper()
	out := strings.TrimSpace(ipCmd(t, "-n", ns, "neigh", "show", a.String(), "dev", dev))
	return strings.TrimSpace(strings.TrimPrefix(out, a.String()))
}

func TestGARP(t *testing.T) {
	requireNetRoot(t)
	p := newPair(t)
	capture := openPacketSocket(t, p.B, "b0", unix.ETH_P_ARP)
	l := openLinkIn(t, p.A, "a0")
	mac := l.MAC()
	known := netip.MustParseAddr("192.0.2.100")   // B has a stale entry for it
	unknown := netip.MustParseAddr("192.0.2.101") // B has none
	fresh := netip.MustParseAddr("192.0.2.102")   // B has a reachable one, set within locktime
	ipCmd(t, "-n", p.B, "neigh", "replace", known.String(), "lladdr", "02:00:00:00:00:99", "dev", "b0", "nud", "stale")
	// The kernel default, spelled out: the assertions below rely on it.
	if out, err := exec.Command("ip", "netns", "exec", p.B, "sysctl", "-n", "net.ipv4.conf.b0.arp_accept").Output(); err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Skipf("arp_accept on b0 is %q (%v), want the default 0", out, err)
	}

	for _, a := range []netip.Addr{known, unknown, fresh} {
		if a == fresh {
			ipCmd(t, "-n", p.B, "neigh", "replace", fresh.String(), "lladdr", "02:00:00:00:00:98", "dev", "b0", "nud", "reachable")
		}
		if err := l.GARP(a); err != nil {
			t.Fatal(err)
		}
		want, _ := hex.DecodeString(strings.ReplaceAll(keepalivedGARP, "8afea10ae4dd", hex.EncodeToString(mac)))
		copy(want[28:32], a.AsSlice())
		copy(want[38:42], a.AsSlice())
		got := capture.next(t, 2*time.Second, func(f []byte) bool { return bytes.Equal(f[6:12], mac) })
		// veth does not pad; a real NIC would pad to 60 bytes with zeros.
		if !bytes.Equal(got, want) {
			t.Fatalf("GARP for %v on the wire\n got %x\nwant %x", a, got, want)
		}
	}

	// Linux updates an existing entry from a gratuitous Request (to
	// STALE: it came as a broadcast), even one changed less than locktime
	// (1 s) ago, but with arp_accept=0 it creates none.
	want := "lladdr " + mac.String() + " STALE"
	for _, a := range []netip.Addr{known, fresh} {
		var got string
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if got = neighbour(t, p.B, "b0", a); got == want {
				break
			}
		}
		if got != want {
			t.Errorf("B's neighbour entry for %v is %q, want %q", a, got, want)
		}
	}
	if got := neighbour(t, p.B, "b0", unknown); got != "" {
		t.Errorf("B created a neighbour entry for %v from a GARP: %q", unknown, got)
	}
}
