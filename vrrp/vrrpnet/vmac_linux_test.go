package vrrpnet

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/vrrp"
)

func TestVMAC(t *testing.T) {
	requireNetRoot(t)
	p := newPair(t)
	inA := func(fn func()) { inNS(t, p.A, fn) }
	var (
		name string
		err  error
	)
	for range 2 { // the second call finds it in place
		inA(func() { name, err = AddVMAC("a0", 51) })
		if err != nil || name != "vrrp.51" {
			t.Fatalf("AddVMAC = %q, %v; want vrrp.51", name, err)
		}
	}
	t.Cleanup(func() { inA(func() { RemoveVMAC("a0", 51) }) })

	out := ipCmd(t, "-n", p.A, "-d", "link", "show", "vrrp.51")
	for _, want := range []string{"vrrp.51@a0:", ",UP,", "link/ether 00:00:5e:00:01:33 ", "macvlan mode private"} {
		if !strings.Contains(out, want) {
			t.Errorf("vrrp.51 lacks %q:\n%s", want, out)
		}
	}

	// GARPs for a VIP on the VMAC carry the virtual MAC.
	capture := openPacketSocket(t, p.B, "b0", unix.ETH_P_ARP)
	l := openLinkIn(t, p.A, "vrrp.51")
	vmac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 51}
	if !bytes.Equal(l.MAC(), vmac) {
		t.Fatalf("VMAC link MAC %s", l.MAC())
	}
	if err := l.GARP(addrA); err != nil {
		t.Fatal(err)
	}
	f := capture.next(t, 2*time.Second, func(f []byte) bool { return bytes.Equal(f[6:12], vmac) })
	if !bytes.Equal(f[22:28], vmac) {
		t.Errorf("GARP sender hardware address %x, want the VMAC", f[22:28])
	}
	// Adverts still leave from the parent (keepalived's default).
	cb := listenIn(t, p.B, "b0", ConnOptions{})
	ca := listenIn(t, p.A, "a0", ConnOptions{})
	if err := ca.Send(vrrp.MulticastGroup, advert); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, cb, 2*time.Second); got.Src != addrA {
		t.Errorf("advert from %v", got.Src)
	}
	l.Close()

	for range 2 {
		inA(func() { err = RemoveVMAC("a0", 51) })
		if err != nil {
			t.Fatalf("RemoveVMAC: %v", err)
		}
	}
	if out := ipCmd(t, "-n", p.A, "link", "show"); strings.Contains(out, "vrrp.51") {
		t.Fatalf("vrrp.51 still there:\n%s", out)
	}
}

func TestVMACConflict(t *testing.T) {
	requireNetRoot(t)
	p := newPair(t)
	// Something else already has the name: neither call touches it.
	ipCmd(t, "-n", p.A, "link", "add", "vrrp.52", "type", "veth", "peer", "name", "other")
	var err error
	inNS(t, p.A, func() { _, err = AddVMAC("a0", 52) })
	if err == nil {
		t.Error("AddVMAC over an unrelated vrrp.52 succeeded")
	}
	inNS(t, p.A, func() { err = RemoveVMAC("a0", 52) })
	if err == nil {
		t.Error("RemoveVMAC of an unrelated vrrp.52 succeeded")
	}
	inNS(t, p.A, func() {
		if _, lerr := netlink.LinkByName("vrrp.52"); lerr != nil {
			t.Errorf("vrrp.52 is gone: %v", lerr)
		}
		if _, err := AddVMAC("nosuch0", 53); err == nil {
			t.Error("AddVMAC on a missing parent succeeded")
		}
		if _, err := AddVMAC("a0", 0); err == nil {
			t.Error("AddVMAC with VRID 0 succeeded")
		}
	})
}
