package vrrp

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	ours     = netip.MustParseAddr("192.0.2.10") // the local router
	peer     = lab11                             // keepalived
	stranger = netip.MustParseAddr("192.0.2.99")
	v6addr   = netip.MustParseAddr("2001:db8::11")
)

// filterCase is one local instance and one advert sent to it. Cases start
// from the v2 PASS multicast setup of the captures and change what they test.
type filterCase struct {
	f        Filter
	a        Advert   // as the peer sends it
	cs       Checksum // the peer's v3 checksum mode
	src, dst netip.Addr
	ttl      uint8
	// edit changes the marshalled message; the checksum is then
	// recomputed unless keepSum is set, so edit tests one thing.
	edit    func([]byte) []byte
	keepSum bool
}

func baseCase() filterCase {
	return filterCase{
		f: Filter{Version: 2, VRID: 51, Interval: time.Second, Addrs: []netip.Addr{vip100, vip101},
			AuthType: AuthPass, AuthPass: "secret1", Self: []netip.Addr{ours}},
		a: Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second,
			Addrs: []netip.Addr{vip100, vip101}, AuthType: AuthPass, AuthData: secret1()},
		src: peer,
		dst: MulticastGroup,
		ttl: TTL,
	}
}

// v3 turns the case into the v3-100ms capture's setup.
func v3(c *filterCase) {
	c.f.Version, c.f.AuthType, c.f.AuthPass, c.f.Interval = 3, AuthNone, "", 100*time.Millisecond
	c.a.Version, c.a.AuthType, c.a.AuthData, c.a.Interval = 3, AuthNone, [8]byte{}, 100*time.Millisecond
}

// unicast turns the case into unicast between ours and peer.
func unicast(c *filterCase) {
	c.f.Unicast, c.f.Peers = true, []netip.Addr{peer, netip.MustParseAddr("192.0.2.12")}
	c.dst, c.ttl = ours, 64
}

func (c *filterCase) packet(t *testing.T) Packet {
	t.Helper()
	// A sender with an IPv6 source would not get far; marshal as if IPv4
	// so the family check, not Marshal, is what the case tests.
	src, dst := c.src.Unmap(), c.dst.Unmap()
	if !src.Is4() {
		src = peer
	}
	if !dst.Is4() {
		dst = MulticastGroup
	}
	b := mustMarshal(t, &c.a, c.cs, src, dst)
	if c.edit != nil {
		b = c.edit(b)
		if !c.keepSum && len(b) >= headerLen {
			b = remarshalBytes(t, b, c.cs, src, dst)
		}
	}
	return Packet{Src: c.src, Dst: c.dst, TTL: c.ttl, Payload: b}
}

// filterReasons are all the reasons Accept can give.
var filterReasons = []Reason{
	ReasonAddrFamily, ReasonTruncated, ReasonLength, ReasonTTL, ReasonVersion,
	ReasonAuth, ReasonZeroInterval, ReasonInterval, ReasonType, ReasonChecksum,
	ReasonChecksumMode, ReasonDestination, ReasonOwnAdvert, ReasonSource,
	ReasonVRID, ReasonAddrList,
}

func TestFilterAccept(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*filterCase)
		want Reason // "" means accepted
	}{
		// Accepted.
		{name: "v2 pass multicast", mod: func(c *filterCase) {}},
		{name: "v2 addresses in another order", mod: func(c *filterCase) { c.a.Addrs = []netip.Addr{vip101, vip100} }},
		{name: "v2 priority 0", mod: func(c *filterCase) { c.a.Priority = PriorityStop }},
		{name: "v2 auth none ignores auth data", mod: func(c *filterCase) {
			c.f.AuthType, c.f.AuthPass = AuthNone, ""
			c.a.AuthType = AuthNone
		}},
		{name: "v2 4-in-6 source and destination", mod: func(c *filterCase) {
			c.src, c.dst = netip.AddrFrom16(peer.As16()), netip.AddrFrom16(MulticastGroup.As16())
		}},
		{name: "v3 pseudo-header", mod: v3},
		{name: "v3 plain", mod: func(c *filterCase) { v3(c); c.f.Checksum, c.cs = ChecksumPlain, ChecksumPlain }},
		{name: "v3 other interval", mod: func(c *filterCase) { v3(c); c.a.Interval = 40950 * time.Millisecond }},
		{name: "v3 reserved bits ignored", mod: func(c *filterCase) { v3(c); c.edit = func(b []byte) []byte { b[4] |= 0xf0; return b } }},
		{name: "v2 unicast ttl 64", mod: unicast},
		{name: "v3 unicast pseudo-header", mod: func(c *filterCase) { v3(c); unicast(c) }},
		{name: "v3 unicast ttl 1", mod: func(c *filterCase) { v3(c); unicast(c); c.ttl = 1 }},
		{name: "no addresses on either side", mod: func(c *filterCase) { c.f.Addrs, c.a.Addrs = nil, nil }},

		// Each reason.
		{name: "family source IPv6", mod: func(c *filterCase) { c.src = v6addr }, want: ReasonAddrFamily},
		{name: "family destination IPv6", mod: func(c *filterCase) { c.dst = netip.MustParseAddr("ff02::12") }, want: ReasonAddrFamily},
		{name: "family source missing", mod: func(c *filterCase) { c.src = netip.Addr{} }, want: ReasonAddrFamily},
		{name: "truncated header", mod: func(c *filterCase) { c.edit = func(b []byte) []byte { return b[:7] } }, want: ReasonTruncated},
		{name: "truncated empty", mod: func(c *filterCase) { c.edit = func(b []byte) []byte { return nil } }, want: ReasonTruncated},
		{name: "truncated v2 auth trailer cut", mod: func(c *filterCase) { c.edit = func(b []byte) []byte { return b[:len(b)-1] } }, want: ReasonTruncated},
		{name: "length trailing byte", mod: func(c *filterCase) { c.edit = func(b []byte) []byte { return append(b, 0) } }, want: ReasonLength},
		{name: "length ethernet padding", mod: func(c *filterCase) { c.edit = func(b []byte) []byte { return append(b, make([]byte, 6)...) } }, want: ReasonLength},
		{name: "truncated count says more", mod: func(c *filterCase) { c.edit = func(b []byte) []byte { b[3] = 4; return b } }, want: ReasonTruncated},
		{name: "length count says less", mod: func(c *filterCase) { c.edit = func(b []byte) []byte { b[3] = 1; return b } }, want: ReasonLength},
		{name: "ttl 254 multicast", mod: func(c *filterCase) { c.ttl = 254 }, want: ReasonTTL},
		{name: "ttl 0 multicast", mod: func(c *filterCase) { c.ttl = 0 }, want: ReasonTTL},
		{name: "version v3 advert to v2", mod: func(c *filterCase) {
			c.a.Version, c.a.AuthType, c.a.AuthData = 3, AuthNone, [8]byte{}
		}, want: ReasonVersion},
		{name: "version v2 advert to v3", mod: func(c *filterCase) { v3(c); c.a = baseCase().a }, want: ReasonVersion},
		{name: "version 15", mod: func(c *filterCase) { c.edit = func(b []byte) []byte { b[0] = 0xf1; return b } }, want: ReasonVersion},
		{name: "auth none to pass", mod: func(c *filterCase) { c.a.AuthType, c.a.AuthData = AuthNone, [8]byte{} }, want: ReasonAuth},
		{name: "auth pass to none", mod: func(c *filterCase) { c.f.AuthType = AuthNone }, want: ReasonAuth},
		{name: "auth wrong password", mod: func(c *filterCase) { c.a.AuthData[6] = '2' }, want: ReasonAuth},
		{name: "auth password not NUL-padded", mod: func(c *filterCase) { c.a.AuthData[7] = ' ' }, want: ReasonAuth},
		{name: "auth AH", mod: func(c *filterCase) { c.f.AuthType, c.a.AuthType = AuthAH, AuthAH }, want: ReasonAuth},
		{name: "auth unknown type", mod: func(c *filterCase) { c.a.AuthType = 3 }, want: ReasonAuth},
		{name: "interval v2 2s", mod: func(c *filterCase) { c.a.Interval = 2 * time.Second }, want: ReasonInterval},
		{name: "zero interval v2", mod: func(c *filterCase) { c.edit = func(b []byte) []byte { b[5] = 0; return b } }, want: ReasonZeroInterval},
		{name: "zero interval v3", mod: func(c *filterCase) { v3(c); c.edit = func(b []byte) []byte { b[4], b[5] = 0xf0, 0; return b } }, want: ReasonZeroInterval},
		{name: "type 0", mod: func(c *filterCase) { c.edit = func(b []byte) []byte { b[0] = 0x20; return b } }, want: ReasonType},
		{name: "type 15", mod: func(c *filterCase) { v3(c); c.edit = func(b []byte) []byte { b[0] = 0x3f; return b } }, want: ReasonType},
		{name: "checksum v2", mod: func(c *filterCase) { c.edit = func(b []byte) []byte { b[7]++; return b }; c.keepSum = true }, want: ReasonChecksum},
		{name: "checksum v3", mod: func(c *filterCase) { v3(c); c.edit = func(b []byte) []byte { b[2]++; return b }; c.keepSum = true }, want: ReasonChecksum},
		{name: "checksum v3 pseudo-header over another destination", mod: func(c *filterCase) {
			v3(c)
			unicast(c)
			c.edit = func(b []byte) []byte { return remarshalBytes(t, b, ChecksumPseudoHeader, peer, MulticastGroup) }
			c.keepSum = true
		}, want: ReasonChecksum},
		{name: "checksum mode plain to pseudo-header", mod: func(c *filterCase) { v3(c); c.cs = ChecksumPlain }, want: ReasonChecksumMode},
		{name: "checksum mode pseudo-header to plain", mod: func(c *filterCase) { v3(c); c.f.Checksum = ChecksumPlain }, want: ReasonChecksumMode},
		{name: "destination unicast to multicast instance", mod: func(c *filterCase) { c.dst = ours }, want: ReasonDestination},
		{name: "destination other group", mod: func(c *filterCase) { c.dst = netip.MustParseAddr("224.0.0.19") }, want: ReasonDestination},
		{name: "destination multicast to unicast instance", mod: func(c *filterCase) { unicast(c); c.dst = MulticastGroup }, want: ReasonDestination},
		{name: "own advert multicast", mod: func(c *filterCase) { c.src = ours }, want: ReasonOwnAdvert},
		{name: "own advert unicast", mod: func(c *filterCase) { unicast(c); c.src = ours; c.f.Peers = append(c.f.Peers, ours) }, want: ReasonOwnAdvert},
		{name: "source not a peer", mod: func(c *filterCase) { unicast(c); c.src = stranger }, want: ReasonSource},
		{name: "source any in multicast", mod: func(c *filterCase) { c.src = stranger }},
		{name: "vrid 52", mod: func(c *filterCase) { c.a.VRID = 52 }, want: ReasonVRID},
		{name: "vrid 52 v3", mod: func(c *filterCase) { v3(c); c.a.VRID = 52 }, want: ReasonVRID},
		{name: "addresses one missing", mod: func(c *filterCase) { c.a.Addrs = c.a.Addrs[:1] }, want: ReasonAddrList},
		{name: "addresses one extra", mod: func(c *filterCase) { c.a.Addrs = append(c.a.Addrs, stranger) }, want: ReasonAddrList},
		{name: "addresses one different", mod: func(c *filterCase) { c.a.Addrs = []netip.Addr{vip100, stranger} }, want: ReasonAddrList},
		{name: "addresses repeated", mod: func(c *filterCase) { c.a.Addrs = []netip.Addr{vip100, vip100} }, want: ReasonAddrList},
		{name: "addresses ours repeated", mod: func(c *filterCase) { c.f.Addrs = []netip.Addr{vip100, vip100} }, want: ReasonAddrList},
		{name: "addresses none sent", mod: func(c *filterCase) { c.a.Addrs = nil }, want: ReasonAddrList},

		// The first failing check wins, in keepalived's order.
		{name: "order family before length", mod: func(c *filterCase) { c.src = v6addr; c.edit = func(b []byte) []byte { b[3] = 9; return b } }, want: ReasonAddrFamily},
		{name: "order length before ttl", mod: func(c *filterCase) { c.ttl = 1; c.edit = func(b []byte) []byte { b[3] = 9; return b } }, want: ReasonTruncated},
		{name: "order ttl before version", mod: func(c *filterCase) { v3(c); c.a = baseCase().a; c.ttl = 1 }, want: ReasonTTL},
		{name: "order version before auth", mod: func(c *filterCase) { c.f.Version = 3 }, want: ReasonVersion},
		{name: "order auth before interval", mod: func(c *filterCase) { c.a.AuthData[0] = 'S'; c.a.Interval = 3 * time.Second }, want: ReasonAuth},
		{name: "order interval before type", mod: func(c *filterCase) {
			c.a.Interval = 3 * time.Second
			c.edit = func(b []byte) []byte { b[0] = 0x22; return b }
		}, want: ReasonInterval},
		{name: "order interval before checksum", mod: func(c *filterCase) {
			c.a.Interval = 3 * time.Second
			c.edit = func(b []byte) []byte { b[7]++; return b }
			c.keepSum = true
		}, want: ReasonInterval},
		{name: "order type before checksum", mod: func(c *filterCase) {
			c.edit = func(b []byte) []byte { b[0] = 0x22; b[7]++; return b }
			c.keepSum = true
		}, want: ReasonType},
		{name: "order checksum before destination", mod: func(c *filterCase) {
			c.dst = ours
			c.edit = func(b []byte) []byte { b[7]++; return b }
			c.keepSum = true
		}, want: ReasonChecksum},
		{name: "order destination before source", mod: func(c *filterCase) { unicast(c); c.dst = MulticastGroup; c.src = stranger }, want: ReasonDestination},
		{name: "order source before vrid", mod: func(c *filterCase) { unicast(c); c.src = stranger; c.a.VRID = 52 }, want: ReasonSource},
		{name: "order own advert before vrid", mod: func(c *filterCase) { c.src = ours; c.a.VRID = 52 }, want: ReasonOwnAdvert},
		{name: "order vrid before addresses", mod: func(c *filterCase) { c.a.VRID = 52; c.a.Addrs = nil }, want: ReasonVRID},
	}
	covered := make(map[Reason]bool)
	for _, tt := range tests {
		covered[tt.want] = true
	}
	for _, r := range filterReasons {
		if !covered[r] {
			t.Errorf("no case for %s", r)
		}
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseCase()
			tt.mod(&c)
			p := c.packet(t)
			a, err := c.f.Accept(p)
			wantReason(t, err, tt.want)
			if err != nil {
				if !equalAdvert(a, Advert{}) {
					t.Fatalf("rejected, but returned %+v", a)
				}
				return
			}
			if !equalAdvert(a, c.a) {
				t.Fatalf("Accept = %+v, want %+v", a, c.a)
			}
		})
	}
}

// TestFilterDetail pins the Detail of the reasons an operator reads most.
func TestFilterDetail(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*filterCase)
		want   Reason
		detail string
	}{
		{name: "interval", mod: func(c *filterCase) { c.a.Interval = 2 * time.Second },
			want: ReasonInterval, detail: "interval 2s, ours 1s"},
		{name: "address count", mod: func(c *filterCase) { c.a.Addrs = c.a.Addrs[:1] },
			want: ReasonAddrList, detail: "expected 2 addresses [192.0.2.100 192.0.2.101], got 1 [192.0.2.100]"},
		{name: "address content", mod: func(c *filterCase) { c.a.Addrs[1] = stranger },
			want: ReasonAddrList, detail: "192.0.2.99 is not ours: expected [192.0.2.100 192.0.2.101], got [192.0.2.100 192.0.2.99]"},
		{name: "address repeated", mod: func(c *filterCase) { c.a.Addrs[1] = vip100 },
			want: ReasonAddrList, detail: "192.0.2.101 is missing: expected [192.0.2.100 192.0.2.101], got [192.0.2.100 192.0.2.100]"},
		{name: "vrid", mod: func(c *filterCase) { c.a.VRID = 7 },
			want: ReasonVRID, detail: "vrid 7, ours 51"},
		{name: "version", mod: func(c *filterCase) { c.f.Version = 3 },
			want: ReasonVersion, detail: "version 2, ours 3"},
		{name: "ttl", mod: func(c *filterCase) { c.ttl = 64 },
			want: ReasonTTL, detail: "ttl 64, want 255"},
		{name: "auth type", mod: func(c *filterCase) { c.f.AuthType = AuthNone },
			want: ReasonAuth, detail: "auth type 1, ours 0"},
		{name: "password is not in the detail", mod: func(c *filterCase) { c.f.AuthPass = "hunter2" },
			want: ReasonAuth, detail: "password differs"},
		{name: "checksum mode", mod: func(c *filterCase) { v3(c); c.cs = ChecksumPlain },
			want: ReasonChecksumMode, detail: "checksum 0xb3f5 is valid without the pseudo-header, we want 0x1157 with the pseudo-header (v3_checksum_as_v2 differs)"},
		{name: "source", mod: func(c *filterCase) { unicast(c); c.src = stranger },
			want: ReasonSource, detail: "source 192.0.2.99 is not one of our peers [192.0.2.11 192.0.2.12]"},
		{name: "destination", mod: func(c *filterCase) { c.dst = ours },
			want: ReasonDestination, detail: "destination 192.0.2.10, we use multicast 224.0.0.18"},
		{name: "truncated", mod: func(c *filterCase) { c.edit = func(b []byte) []byte { b[3] = 3; return b } },
			want: ReasonTruncated, detail: "24 bytes, a v2 message with 3 addresses is 28"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseCase()
			tt.mod(&c)
			_, err := c.f.Accept(c.packet(t))
			wantDetail(t, err, tt.want, tt.detail)
		})
	}
}

func TestFilterAuthData(t *testing.T) {
	tests := []struct {
		name string
		f    Filter
		want [8]byte
	}{
		{name: "pass padded", f: Filter{AuthType: AuthPass, AuthPass: "secret1"}, want: secret1()},
		{name: "pass exactly 8", f: Filter{AuthType: AuthPass, AuthPass: "12345678"}, want: [8]byte([]byte("12345678"))},
		{name: "pass cut to 8", f: Filter{AuthType: AuthPass, AuthPass: "123456789"}, want: [8]byte([]byte("12345678"))},
		{name: "pass empty", f: Filter{AuthType: AuthPass}},
		{name: "none ignores a password", f: Filter{AuthType: AuthNone, AuthPass: "secret1"}},
		{name: "AH", f: Filter{AuthType: AuthAH, AuthPass: "secret1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.AuthData(); got != tt.want {
				t.Fatalf("AuthData = %q, want %q", got[:], tt.want[:])
			}
		})
	}

	// Our own adverts, built with AuthData, are accepted by a peer
	// configured like us; a password longer than 8 bytes matches its cut.
	c := baseCase()
	c.f.AuthPass = "secret1-and-more"
	c.a.AuthData = c.f.AuthData()
	other := c.f
	other.AuthPass = "secret1-"
	if _, err := other.Accept(c.packet(t)); err != nil {
		t.Fatal(err)
	}
}

// TestFilterDoesNotModify: Accept must not reorder or keep the caller's
// slices (the runner reuses its buffers).
func TestFilterDoesNotModify(t *testing.T) {
	c := baseCase()
	c.a.Addrs = []netip.Addr{vip101, vip100}
	p := c.packet(t)
	payload := slices.Clone(p.Payload)
	addrs := slices.Clone(c.f.Addrs)
	a, err := c.f.Accept(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Payload, payload) || !slices.Equal(c.f.Addrs, addrs) {
		t.Fatal("Accept modified its inputs")
	}
	clear(p.Payload)
	if !slices.Equal(a.Addrs, []netip.Addr{vip101, vip100}) {
		t.Fatalf("the advert aliases the payload: %v", a.Addrs)
	}
}
