package vrrpnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/vrrp"
)

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
	// A v3 advert of VRID 51, priority 150, 10 cs, VIP 192.0.2.100: the
	// shape of keepalived's in the captures (the checksum does not matter
	// here).
	advert = []byte{0x31, 0x33, 0x96, 0x01, 0x00, 0x0a, 0x11, 0x57, 192, 0, 2, 100}
)

func isVRRPFrame(f []byte) bool {
	return len(f) >= 34 && binary.BigEndian.Uint16(f[12:14]) == unix.ETH_P_IP && f[14+9] == vrrp.IPProtocol
}

func TestMulticast(t *testing.T) {
	requireNetRoot(t)
	p := newPair(t)
	capture := openPacketSocket(t, p.B, "b0", unix.ETH_P_IP)
	cb := listenIn(t, p.B, "b0", ConnOptions{})
	ca := listenIn(t, p.A, "a0", ConnOptions{})
	if ca.Source() != addrA {
		t.Fatalf("Source() = %v, want the primary address %v", ca.Source(), addrA)
	}
	macA := macIn(t, p.A, "a0")

	for i := range 2 {
		if err := ca.Send(vrrp.MulticastGroup, advert); err != nil {
			t.Fatal(err)
		}
		got := receive(t, cb, 2*time.Second)
		want := vrrp.Packet{Src: addrA, Dst: vrrp.MulticastGroup, TTL: vrrp.TTL, Payload: advert}
		if got.Src != want.Src || got.Dst != want.Dst || got.TTL != want.TTL || !bytes.Equal(got.Payload, want.Payload) {
			t.Fatalf("received %+v, want %+v", got, want)
		}

		// The frame on the wire: what keepalived sends.
		f := capture.next(t, 2*time.Second, isVRRPFrame)
		eth, ip := f[:14], f[14:]
		if !bytes.Equal(eth[0:6], net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}) || !bytes.Equal(eth[6:12], macA) {
			t.Errorf("ethernet dst %x src %x, want 01005e000012 %s", eth[0:6], eth[6:12], macA)
		}
		if ip[0] != 0x45 || ip[1] != vrrp.TOS || ip[8] != vrrp.TTL {
			t.Errorf("version/ihl %#x tos %#x ttl %d, want 0x45 0xc0 255", ip[0], ip[1], ip[8])
		}
		if tot := binary.BigEndian.Uint16(ip[2:4]); int(tot) != 20+len(advert) {
			t.Errorf("total length %d, want %d", tot, 20+len(advert))
		}
		if id := binary.BigEndian.Uint16(ip[4:6]); id != uint16(i+1) {
			t.Errorf("packet %d: IP id %d, want %d (ours, incrementing)", i, id, i+1)
		}
		if ff := binary.BigEndian.Uint16(ip[6:8]); ff != 0 {
			t.Errorf("flags/fragment %#04x, want 0 (DF clear)", ff)
		}
		if ipChecksum(ip[:20]) != 0 || binary.BigEndian.Uint16(ip[10:12]) == 0 {
			t.Errorf("header checksum %#04x is not valid", binary.BigEndian.Uint16(ip[10:12]))
		}
		if !bytes.Equal(ip[12:16], addrA.AsSlice()) || !bytes.Equal(ip[16:20], vrrp.MulticastGroup.AsSlice()) {
			t.Errorf("addresses %v > %v", net.IP(ip[12:16]), net.IP(ip[16:20]))
		}
		if !bytes.Equal(ip[20:], advert) {
			t.Errorf("payload on the wire %x, want %x", ip[20:], advert)
		}
	}

	// Multicast loopback is off: A's socket did not queue its own two
	// packets, so the first thing it receives is B's.
	if err := cb.Send(vrrp.MulticastGroup, advert); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, ca, 2*time.Second); got.Src != addrB {
		t.Fatalf("A received a packet from %v first, want B's (%v): own packets looped back?", got.Src, addrB)
	}
}

func TestReceiveReportsTTL(t *testing.T) {
	requireNetRoot(t)
	p := newPair(t)
	cb := listenIn(t, p.B, "b0", ConnOptions{})
	ca := listenIn(t, p.A, "a0", ConnOptions{})
	ca.ttl = 254 // as if it had crossed a router
	if err := ca.Send(vrrp.MulticastGroup, advert); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, cb, 2*time.Second); got.TTL != 254 || !bytes.Equal(got.Payload, advert) {
		t.Fatalf("received TTL %d payload %x, want TTL 254 (reported, rejected later by the filter)", got.TTL, got.Payload)
	}
}

func TestUnicast(t *testing.T) {
	requireNetRoot(t)
	p := newPair(t)
	cb := listenIn(t, p.B, "b0", ConnOptions{Unicast: true})
	ca := listenIn(t, p.A, "a0", ConnOptions{Unicast: true})
	// Another instance in B joins the group: B's unicast socket must still
	// not see multicast.
	listenIn(t, p.B, "b0", ConnOptions{})
	if err := ca.Send(vrrp.MulticastGroup, []byte("multicast")); err != nil {
		t.Fatal(err)
	}
	if err := ca.Send(addrB, advert); err != nil {
		t.Fatal(err)
	}
	got := receive(t, cb, 2*time.Second)
	if got.Src != addrA || got.Dst != addrB || got.TTL != vrrp.TTL || !bytes.Equal(got.Payload, advert) {
		t.Fatalf("received %+v, want %v > %v TTL 255 payload %x", got, addrA, addrB, advert)
	}
}

// TestReceiveExactPayload injects a VRRP packet with IP options and
// Ethernet padding: Receive returns exactly tot_len minus the header.
func TestReceiveExactPayload(t *testing.T) {
	requireNetRoot(t)
	p := newPair(t)
	cb := listenIn(t, p.B, "b0", ConnOptions{})
	inj := openPacketSocket(t, p.A, "a0", unix.ETH_P_IP)
	macA := macIn(t, p.A, "a0")

	payload := []byte{0x21, 0x33, 0x96, 0x00} // short on purpose: padding follows
	ip := []byte{
		0x46, 0xc0, 0, 0, 0, 7, 0, 0, 255, vrrp.IPProtocol, 0, 0,
		192, 0, 2, 1, 224, 0, 0, 18,
		1, 1, 1, 1, // four NOP options: header length 24
	}
	binary.BigEndian.PutUint16(ip[2:4], uint16(len(ip)+len(payload)))
	binary.BigEndian.PutUint16(ip[10:12], ipChecksum(ip))
	frame := append([]byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}, macA...)
	frame = binary.BigEndian.AppendUint16(frame, unix.ETH_P_IP)
	frame = append(frame, ip...)
	frame = append(frame, payload...)
	for len(frame) < 60 {
		frame = append(frame, 0xee)
	}
	inj.send(t, frame, unix.ETH_P_IP)

	got := receive(t, cb, 2*time.Second)
	if !bytes.Equal(got.Payload, payload) || got.Src != addrA || got.TTL != 255 {
		t.Fatalf("received %+v, want payload %x from %v", got, payload, addrA)
	}
}

func TestCloseUnblocksReceive(t *testing.T) {
	requireNetRoot(t)
	p := newPair(t)
	c := listenIn(t, p.A, "a0", ConnOptions{})
	ch := receiveAsync(c)
	time.Sleep(50 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		if !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("Receive after Close: %+v, %v; want net.ErrClosed", r.p, r.err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock Receive")
	}
	if _, err := c.Receive(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Receive on a closed Conn: %v, want net.ErrClosed", err)
	}
	if err := c.Send(vrrp.MulticastGroup, advert); err == nil {
		t.Fatal("Send on a closed Conn succeeded")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestListenErrors(t *testing.T) {
	requireNetRoot(t)
	ns := newNS(t, "e")
	ipCmd(t, "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	inNS(t, ns, func() {
		if _, err := Listen("nosuch0", ConnOptions{}); err == nil {
			t.Error("Listen on a missing interface succeeded")
		}
		// An interface without an address has no source to offer.
		if _, err := Listen("d0", ConnOptions{}); err == nil {
			t.Error("Listen without a source address succeeded")
		}
		c, err := Listen("d0", ConnOptions{Source: netip.MustParseAddr("198.51.100.9")})
		if err != nil {
			t.Fatalf("Listen with an explicit source: %v", err)
		}
		defer c.Close()
		if c.Source() != netip.MustParseAddr("198.51.100.9") {
			t.Errorf("Source() = %v", c.Source())
		}
	})
}

func TestParseIPv4(t *testing.T) {
	good := []byte{
		0x45, 0xc0, 0x00, 0x18, 0, 1, 0, 0, 255, 112, 0, 0,
		192, 0, 2, 1, 224, 0, 0, 18,
		1, 2, 3, 4,
		0, 0, 0, 0, // Ethernet padding a raw socket would not normally pass up
	}
	p, ok := parseIPv4(good)
	if !ok || !bytes.Equal(p.Payload, []byte{1, 2, 3, 4}) || p.TTL != 255 || p.Src != addrA || p.Dst != vrrp.MulticastGroup {
		t.Fatalf("parseIPv4(good) = %+v, %v", p, ok)
	}
	p.Payload[0] = 9
	if good[20] != 1 {
		t.Fatal("payload aliases the read buffer")
	}
	bad := map[string]func(b []byte) []byte{
		"short":            func(b []byte) []byte { return b[:19] },
		"version 6":        func(b []byte) []byte { b[0] = 0x65; return b },
		"ihl 4":            func(b []byte) []byte { b[0] = 0x44; return b },
		"ihl beyond total": func(b []byte) []byte { b[0] = 0x47; return b },
		"total beyond end": func(b []byte) []byte { b[3] = 0x30; return b },
		"total below ihl":  func(b []byte) []byte { b[3] = 0x10; return b },
		"protocol":         func(b []byte) []byte { b[9] = 17; return b },
	}
	for name, mangle := range bad {
		if p, ok := parseIPv4(mangle(append([]byte(nil), good...))); ok {
			t.Errorf("%s: accepted as %+v", name, p)
		}
	}
}
