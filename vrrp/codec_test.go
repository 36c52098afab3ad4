package vrrp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	vip100 = netip.MustParseAddr("192.0.2.100")
	vip101 = netip.MustParseAddr("192.0.2.101")
	lab11  = netip.MustParseAddr("192.0.2.11") // keepalived in the captures
)

// ipPacket is one IPv4 packet from the golden data, with the header fields
// Filter.Accept needs.
type ipPacket struct {
	Packet
	header []byte
}

// parseIPv4 splits an IPv4 packet into header and payload, keeping exactly
// tot_len bytes as the runner does.
func parseIPv4(t *testing.T, b []byte) ipPacket {
	t.Helper()
	if len(b) < 20 || b[0]>>4 != 4 {
		t.Fatalf("not an IPv4 packet: % x", b)
	}
	hl := int(b[0]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(b[2:4]))
	if tot > len(b) || hl > tot {
		t.Fatalf("IPv4 total length %d, header %d, have %d bytes", tot, hl, len(b))
	}
	if b[9] != IPProtocol {
		t.Fatalf("IP protocol %d, want %d", b[9], IPProtocol)
	}
	return ipPacket{
		Packet: Packet{
			Src:     netip.AddrFrom4([4]byte(b[12:16])),
			Dst:     netip.AddrFrom4([4]byte(b[16:20])),
			TTL:     b[8],
			Payload: b[hl:tot],
		},
		header: b[:hl],
	}
}

// readCapture returns the VRRP packets in a `tcpdump -nn -v -xx` text dump:
// each packet is a summary line followed by tab-indented "0x0000:  hex"
// lines holding the Ethernet frame. Other protocols (the GARPs) are skipped.
func readCapture(t *testing.T, name string) []ipPacket {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var frames [][]byte
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		hexPart, ok := strings.CutPrefix(strings.TrimSpace(line), "0x")
		if !ok || !strings.HasPrefix(line, "\t") {
			if !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") {
				frames = append(frames, nil) // a new packet's summary line
			}
			continue
		}
		_, hexPart, _ = strings.Cut(hexPart, ":")
		b, err := hex.DecodeString(strings.ReplaceAll(hexPart, " ", ""))
		if err != nil {
			t.Fatalf("%s: %q: %v", name, line, err)
		}
		frames[len(frames)-1] = append(frames[len(frames)-1], b...)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}

	var pkts []ipPacket
	for _, fr := range frames {
		if len(fr) < 14 || binary.BigEndian.Uint16(fr[12:14]) != 0x0800 {
			continue // ARP
		}
		pkts = append(pkts, parseIPv4(t, fr[14:]))
	}
	return pkts
}

// readGolden returns the named IPv4 packets in testdata/golden.txt.
func readGolden(t *testing.T) map[string]ipPacket {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden.txt"))
	if err != nil {
		t.Fatal(err)
	}
	pkts := make(map[string]ipPacket)
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, h, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("golden.txt: bad line %q", line)
		}
		b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
		if err != nil {
			t.Fatalf("golden.txt: %s: %v", name, err)
		}
		pkts[name] = parseIPv4(t, b)
	}
	return pkts
}

func secret1() [8]byte { return [8]byte{'s', 'e', 'c', 'r', 'e', 't', '1', 0} }

// goldenCase is one golden packet (or all VRRP packets of a capture) and
// what it must decode to.
type goldenCase struct {
	name     string
	pkts     []ipPacket
	n        int // how many VRRP packets the capture holds
	cs       Checksum
	checksum uint16 // on the wire, as the capture or vrrp.md §2.2 states it
	want     Advert
	filter   Filter // a local instance that accepts it
}

func goldenCases(t *testing.T) []goldenCase {
	t.Helper()
	golden := readGolden(t)
	capture := func(name string) []ipPacket {
		return readCapture(t, filepath.Join("testdata", "captures", name+".txt"))
	}
	vip1099 := netip.MustParseAddr("10.99.0.100")
	labVIPs := []netip.Addr{vip100, vip101}

	return []goldenCase{
		{
			name:     "v2-noauth",
			pkts:     capture("v2-noauth"),
			n:        4,
			checksum: 0xc3fe,
			want: Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second,
				Addrs: labVIPs, AuthType: AuthNone},
			filter: Filter{Version: 2, VRID: 51, Interval: time.Second, Addrs: labVIPs},
		},
		{
			name:     "v2-pass",
			pkts:     capture("v2-pass"),
			n:        3,
			checksum: 0x55b2,
			want: Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second,
				Addrs: labVIPs, AuthType: AuthPass, AuthData: secret1()},
			filter: Filter{Version: 2, VRID: 51, Interval: time.Second, Addrs: labVIPs,
				AuthType: AuthPass, AuthPass: "secret1"},
		},
		{
			name:     "v3-100ms",
			pkts:     capture("v3-100ms"),
			n:        1,
			cs:       ChecksumPseudoHeader,
			checksum: 0x1157,
			want: Advert{Version: 3, VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
				Addrs: labVIPs},
			filter: Filter{Version: 3, VRID: 51, Interval: time.Second, Addrs: labVIPs},
		},
		{
			name:     "v2-10.99",
			n:        1,
			pkts:     []ipPacket{golden["v2-10.99"]},
			checksum: 0x3e03,
			want: Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second,
				Addrs: []netip.Addr{vip1099}},
			filter: Filter{Version: 2, VRID: 51, Interval: time.Second, Addrs: []netip.Addr{vip1099}},
		},
		{
			name:     "v3-10.99-pseudo",
			n:        1,
			pkts:     []ipPacket{golden["v3-10.99-pseudo"]},
			cs:       ChecksumPseudoHeader,
			checksum: 0x4307,
			want: Advert{Version: 3, VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
				Addrs: []netip.Addr{vip1099}},
			filter: Filter{Version: 3, VRID: 51, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip1099}},
		},
		{
			name:     "v3-10.99-plain",
			n:        1,
			pkts:     []ipPacket{golden["v3-10.99-plain"]},
			cs:       ChecksumPlain,
			checksum: 0x2dfa,
			want: Advert{Version: 3, VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
				Addrs: []netip.Addr{vip1099}},
			filter: Filter{Version: 3, VRID: 51, Interval: 100 * time.Millisecond, Addrs: []netip.Addr{vip1099},
				Checksum: ChecksumPlain},
		},
	}
}

func TestGoldenDecode(t *testing.T) {
	for _, tt := range goldenCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.pkts) != tt.n {
				t.Fatalf("%d VRRP packets in the golden data, want %d", len(tt.pkts), tt.n)
			}
			for i, p := range tt.pkts {
				// The IPv4 header checksum checks the test's parsing and
				// the checksum helpers against data we did not compute.
				if s := fold(sum(p.header, 0)); s != 0 {
					t.Errorf("packet %d: IPv4 header checksum does not verify (%#04x)", i, s)
				}
				if got := binary.BigEndian.Uint16(p.Payload[6:8]); got != tt.checksum {
					t.Fatalf("packet %d: checksum on the wire %#04x, golden data says %#04x", i, got, tt.checksum)
				}

				a, err := Unmarshal(p.Payload, tt.cs, p.Src, p.Dst)
				if err != nil {
					t.Fatalf("packet %d: Unmarshal: %v", i, err)
				}
				if !equalAdvert(a, tt.want) {
					t.Fatalf("packet %d: Unmarshal = %+v, want %+v", i, a, tt.want)
				}

				b, err := a.Marshal(tt.cs, p.Src, p.Dst)
				if err != nil {
					t.Fatalf("packet %d: Marshal: %v", i, err)
				}
				if !bytes.Equal(b, p.Payload) {
					t.Fatalf("packet %d: Marshal =\n% x\nwant\n% x", i, b, p.Payload)
				}

				if _, err := tt.filter.Accept(p.Packet); err != nil {
					t.Fatalf("packet %d: Accept: %v", i, err)
				}
			}
		})
	}
}

// TestGoldenChecksum takes the captured v3 packets to a peer of the other
// checksum mode, and corrupts them.
func TestGoldenChecksum(t *testing.T) {
	for _, tt := range goldenCases(t) {
		if tt.want.Version != 3 {
			continue
		}
		p := tt.pkts[0]
		other := ChecksumPlain
		if tt.cs == ChecksumPlain {
			other = ChecksumPseudoHeader
		}
		t.Run(tt.name+"/other-mode", func(t *testing.T) {
			_, err := Unmarshal(p.Payload, other, p.Src, p.Dst)
			wantReason(t, err, ReasonChecksumMode)
		})
		t.Run(tt.name+"/corrupted", func(t *testing.T) {
			b := bytes.Clone(p.Payload)
			b[len(b)-1] ^= 0x01 // last VIP 10.99.0.100 becomes .101
			for _, cs := range []Checksum{ChecksumPseudoHeader, ChecksumPlain} {
				_, err := Unmarshal(b, cs, p.Src, p.Dst)
				wantReason(t, err, ReasonChecksum)
			}
		})
	}

	// vrrp.md §2.2 quotes this message both ways; the Detail names them.
	g := readGolden(t)["v3-10.99-plain"]
	b := bytes.Clone(g.Payload)
	binary.BigEndian.PutUint16(b[6:8], 0x1234)
	_, err := Unmarshal(b, ChecksumPseudoHeader, g.Src, g.Dst)
	wantDetail(t, err, ReasonChecksum, "checksum 0x1234, want 0x4307 (pseudo-header)")
	_, err = Unmarshal(b, ChecksumPlain, g.Src, g.Dst)
	wantDetail(t, err, ReasonChecksum, "checksum 0x1234, want 0x2dfa (plain)")
}

func TestUnmarshalReasons(t *testing.T) {
	src, dst := lab11, MulticastGroup
	v2 := mustMarshal(t, &Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second,
		Addrs: []netip.Addr{vip100, vip101}}, ChecksumPseudoHeader, src, dst)
	v3 := mustMarshal(t, &Advert{Version: 3, VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
		Addrs: []netip.Addr{vip100, vip101}}, ChecksumPseudoHeader, src, dst)
	fix := func(b []byte) []byte { return remarshalBytes(t, b, ChecksumPseudoHeader, src, dst) }

	tests := []struct {
		name string
		b    []byte
		src  netip.Addr
		want Reason // "" means decoded
	}{
		{name: "v2 valid", b: v2},
		{name: "v3 valid", b: v3},
		{name: "empty", b: nil, want: ReasonTruncated},
		{name: "header cut", b: v2[:7], want: ReasonTruncated},
		{name: "v2 auth trailer missing", b: v2[:16], want: ReasonTruncated},
		{name: "v2 address cut", b: v2[:14], want: ReasonTruncated},
		{name: "v3 address cut", b: v3[:15], want: ReasonTruncated},
		{name: "v2 trailing byte", b: append(bytes.Clone(v2), 0), want: ReasonLength},
		{name: "v3 trailing address", b: append(bytes.Clone(v3), 192, 0, 2, 102), want: ReasonLength},
		{name: "v3 with a v2 auth trailer", b: append(bytes.Clone(v3), make([]byte, 8)...), want: ReasonLength},
		{name: "version 0", b: edit(v2, func(b []byte) { b[0] = 0x01 }), want: ReasonVersion},
		{name: "version 4", b: edit(v2, func(b []byte) { b[0] = 0x41 }), want: ReasonVersion},
		{name: "version 4 short", b: []byte{0x41, 0, 0, 0}, want: ReasonTruncated},
		{name: "type 0", b: edit(v2, func(b []byte) { b[0] = 0x20 }), want: ReasonType},
		{name: "type 2", b: edit(v3, func(b []byte) { b[0] = 0x32 }), want: ReasonType},
		{name: "v2 bad checksum", b: corrupt(v2), want: ReasonChecksum},
		{name: "v3 bad checksum", b: corrupt(v3), want: ReasonChecksum},
		{name: "v3 plain checksum", b: remarshal(t, v3, ChecksumPlain, src, dst), want: ReasonChecksumMode},
		{name: "v3 pseudo-header for another destination", b: remarshal(t, v3, ChecksumPseudoHeader, src, netip.MustParseAddr("192.0.2.12")), want: ReasonChecksum},
		{name: "v3 pseudo-header without IPv4 source", b: v3, src: netip.MustParseAddr("2001:db8::1"), want: ReasonAddrFamily},
		{name: "v2 zero interval", b: edit(v2, func(b []byte) { b[5] = 0 }), want: ReasonZeroInterval},
		{name: "v3 zero interval", b: edit(v3, func(b []byte) { b[4], b[5] = 0, 0 }), want: ReasonZeroInterval},
		{name: "v3 zero interval, reserved bits set", b: edit(v3, func(b []byte) { b[4], b[5] = 0xf0, 0 }), want: ReasonZeroInterval},
		{name: "v3 reserved bits ignored", b: fix(edit(v3, func(b []byte) { b[4] |= 0xf0 }))},
		{name: "v2 zero addresses", b: fix(edit(v2[:16], func(b []byte) { b[3] = 0 }))},
		{name: "v2 unknown auth type decodes", b: fix(edit(v2, func(b []byte) { b[4] = 9 }))},
		{name: "order: version before length", b: append(edit(v2, func(b []byte) { b[0] = 0x51 }), 0), want: ReasonVersion},
		{name: "order: zero interval before type", b: edit(v2, func(b []byte) { b[0], b[5] = 0x22, 0 }), want: ReasonZeroInterval},
		{name: "order: type before checksum", b: corrupt(edit(v2, func(b []byte) { b[0] = 0x22 })), want: ReasonType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := src
			if tt.src.IsValid() {
				s = tt.src
			}
			_, err := Unmarshal(tt.b, ChecksumPseudoHeader, s, dst)
			wantReason(t, err, tt.want)
		})
	}
}

// TestChecksumNegativeZero: a sender may write 0xffff where we compute
// 0x0000; both verify under RFC 1071, as in keepalived.
func TestChecksumNegativeZero(t *testing.T) {
	b := mustMarshal(t, &Advert{Version: 2, VRID: 1, Priority: 100, Interval: time.Second,
		Addrs: []netip.Addr{vip100}}, ChecksumPlain, lab11, MulticastGroup)
	// Putting the checksum into the last auth word makes the new one zero.
	copy(b[len(b)-2:], b[6:8])
	b = remarshalBytes(t, b, ChecksumPlain, lab11, MulticastGroup)
	if got := binary.BigEndian.Uint16(b[6:8]); got != 0 {
		t.Fatalf("crafted checksum %#04x, want 0", got)
	}
	binary.BigEndian.PutUint16(b[6:8], 0xffff)
	if _, err := Unmarshal(b, ChecksumPlain, lab11, MulticastGroup); err != nil {
		t.Fatalf("0xffff for a zero checksum: %v", err)
	}
}

func TestChecksumFunction(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want uint16
	}{
		{name: "empty", b: nil, want: 0xffff},
		{name: "RFC 1071 example", b: []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, want: ^uint16(0xddf2)},
		{name: "odd length pads the last byte", b: []byte{0x01}, want: 0xfeff},
		{name: "odd length tail", b: []byte{0x12, 0x34, 0x56}, want: ^uint16(0x1234 + 0x5600)},
		{name: "carry folds back", b: []byte{0xff, 0xff, 0x00, 0x02}, want: ^uint16(0x0002)},
		{name: "many carries", b: bytes.Repeat([]byte{0xff}, 4001), want: ^uint16(0xff00)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fold(sum(tt.b, 0)); got != tt.want {
				t.Fatalf("checksum = %#04x, want %#04x", got, tt.want)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	ok2 := Advert{Version: 2, VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip100}}
	ok3 := Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{vip100}}
	many := make([]netip.Addr, 256)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
	}
	v6 := netip.MustParseAddr("2001:db8::1")

	tests := []struct {
		name     string
		a        Advert
		cs       Checksum
		src, dst netip.Addr
		want     string // in the error; "" means no error
	}{
		{name: "v2 ok", a: ok2},
		{name: "v3 ok", a: ok3},
		{name: "v2 255s", a: with(ok2, func(a *Advert) { a.Interval = 255 * time.Second })},
		{name: "v3 10ms", a: with(ok3, func(a *Advert) { a.Interval = 10 * time.Millisecond })},
		{name: "v3 40.95s", a: with(ok3, func(a *Advert) { a.Interval = 40950 * time.Millisecond })},
		{name: "v2 zero addresses", a: with(ok2, func(a *Advert) { a.Addrs = nil })},
		{name: "v2 255 addresses", a: with(ok2, func(a *Advert) { a.Addrs = many[:255] })},
		{name: "v2 ignores src and dst", a: ok2, src: v6},
		{name: "v3 plain ignores src and dst", a: ok3, cs: ChecksumPlain},
		{name: "version 0", a: with(ok2, func(a *Advert) { a.Version = 0 }), want: "version 0"},
		{name: "version 4", a: with(ok2, func(a *Advert) { a.Version = 4 }), want: "version 4"},
		{name: "v2 interval 0", a: with(ok2, func(a *Advert) { a.Interval = 0 }), want: "v2 interval 0s"},
		{name: "v2 interval fraction", a: with(ok2, func(a *Advert) { a.Interval = 1500 * time.Millisecond }), want: "v2 interval 1.5s"},
		{name: "v2 interval 256s", a: with(ok2, func(a *Advert) { a.Interval = 256 * time.Second }), want: "v2 interval 4m16s"},
		{name: "v2 interval negative", a: with(ok2, func(a *Advert) { a.Interval = -time.Second }), want: "v2 interval -1s"},
		{name: "v3 interval 0", a: with(ok3, func(a *Advert) { a.Interval = 0 }), want: "v3 interval 0s"},
		{name: "v3 interval 5ms", a: with(ok3, func(a *Advert) { a.Interval = 5 * time.Millisecond }), want: "v3 interval 5ms"},
		{name: "v3 interval 105ms", a: with(ok3, func(a *Advert) { a.Interval = 105 * time.Millisecond }), want: "v3 interval 105ms"},
		{name: "v3 interval 40.96s", a: with(ok3, func(a *Advert) { a.Interval = 40960 * time.Millisecond }), want: "v3 interval 40.96s"},
		{name: "256 addresses", a: with(ok2, func(a *Advert) { a.Addrs = many }), want: "256 addresses"},
		{name: "IPv6 address", a: with(ok3, func(a *Advert) { a.Addrs = []netip.Addr{vip100, v6} }), want: "address 2001:db8::1"},
		{name: "4-in-6 address", a: with(ok2, func(a *Advert) { a.Addrs = []netip.Addr{netip.AddrFrom16(vip100.As16())} }), want: "address ::ffff:192.0.2.100"},
		{name: "zero address", a: with(ok2, func(a *Advert) { a.Addrs = []netip.Addr{{}} }), want: "address invalid IP"},
		{name: "v3 auth type", a: with(ok3, func(a *Advert) { a.AuthType = AuthPass }), want: "v3 has no authentication"},
		{name: "v3 auth data", a: with(ok3, func(a *Advert) { a.AuthData = secret1() }), want: "v3 has no authentication"},
		{name: "v3 pseudo-header IPv6 source", a: ok3, src: v6, want: "pseudo-header needs IPv4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := tt.src, tt.dst
			if !src.IsValid() {
				src = lab11
			}
			if !dst.IsValid() {
				dst = MulticastGroup
			}
			b, err := tt.a.Marshal(tt.cs, src, dst)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Marshal: %v", err)
				}
				if len(b) != msgLen(tt.a.Version, len(tt.a.Addrs)) {
					t.Fatalf("Marshal: %d bytes", len(b))
				}
				return
			}
			if err == nil {
				t.Fatalf("Marshal succeeded, want an error with %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Marshal: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestMarshalZeroAddrs: the source and destination may be left zero when
// no pseudo-header needs them, and not otherwise.
func TestMarshalZeroAddrs(t *testing.T) {
	v2 := Advert{Version: 2, VRID: 51, Priority: 100, Interval: time.Second}
	v3 := Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second}
	if _, err := v2.Marshal(ChecksumPseudoHeader, netip.Addr{}, netip.Addr{}); err != nil {
		t.Errorf("v2: %v", err)
	}
	if _, err := v3.Marshal(ChecksumPlain, netip.Addr{}, netip.Addr{}); err != nil {
		t.Errorf("v3 plain: %v", err)
	}
	if _, err := v3.Marshal(ChecksumPseudoHeader, lab11, netip.Addr{}); err == nil {
		t.Error("v3 pseudo-header without a destination: no error")
	}
}

// TestMarshalUnmarshalRoundTrip: every valid advert survives the trip,
// under either checksum mode and any IPv4 source and destination.
func TestMarshalUnmarshalRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5798, 3768))
	addr := func() netip.Addr {
		return netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	}
	for i := range 5000 {
		a := Advert{Version: 2 + r.IntN(2), VRID: uint8(r.Uint32()), Priority: uint8(r.Uint32())}
		if a.Version == 2 {
			a.Interval = time.Duration(1+r.IntN(255)) * time.Second
			a.AuthType = AuthType(r.IntN(256))
			for j := range a.AuthData {
				a.AuthData[j] = byte(r.Uint32())
			}
		} else {
			a.Interval = time.Duration(1+r.IntN(4095)) * centisecond
		}
		// Mostly small lists, sometimes the largest.
		n := r.IntN(8)
		if r.IntN(50) == 0 {
			n = 255 - r.IntN(3)
		}
		for range n {
			a.Addrs = append(a.Addrs, addr())
		}
		cs := Checksum(r.IntN(2))
		src, dst := addr(), addr()

		b, err := a.Marshal(cs, src, dst)
		if err != nil {
			t.Fatalf("%d: Marshal(%+v): %v", i, a, err)
		}
		got, err := Unmarshal(b, cs, src, dst)
		if err != nil {
			t.Fatalf("%d: Unmarshal(Marshal(%+v)): %v", i, a, err)
		}
		if !equalAdvert(got, a) {
			t.Fatalf("%d: round trip = %+v, want %+v", i, got, a)
		}
	}
}

func equalAdvert(a, b Advert) bool {
	return a.Version == b.Version && a.VRID == b.VRID && a.Priority == b.Priority &&
		a.Interval == b.Interval && slices.Equal(a.Addrs, b.Addrs) &&
		a.AuthType == b.AuthType && a.AuthData == b.AuthData
}

func with(a Advert, f func(*Advert)) Advert {
	a.Addrs = slices.Clone(a.Addrs)
	f(&a)
	return a
}

func mustMarshal(t *testing.T, a *Advert, cs Checksum, src, dst netip.Addr) []byte {
	t.Helper()
	b, err := a.Marshal(cs, src, dst)
	if err != nil {
		t.Fatalf("Marshal(%+v): %v", a, err)
	}
	return b
}

// edit returns a copy of b changed by f, with its checksum left as it was.
func edit(b []byte, f func([]byte)) []byte {
	b = bytes.Clone(b)
	f(b)
	return b
}

// corrupt returns a copy of b with a wrong checksum.
func corrupt(b []byte) []byte {
	return edit(b, func(b []byte) { b[7] ^= 0x5a })
}

// remarshal returns the valid message b with its checksum recomputed as a
// sender using cs, src and dst would.
func remarshal(t *testing.T, b []byte, cs Checksum, src, dst netip.Addr) []byte {
	t.Helper()
	a, err := Unmarshal(b, ChecksumPseudoHeader, lab11, MulticastGroup)
	if err != nil {
		t.Fatalf("remarshal: %v", err)
	}
	return mustMarshal(t, &a, cs, src, dst)
}

// remarshalBytes recomputes the checksum of any message of at least a
// header, as a sender using cs, src and dst would.
func remarshalBytes(t *testing.T, b []byte, cs Checksum, src, dst netip.Addr) []byte {
	t.Helper()
	b = bytes.Clone(b)
	s, ok := messageChecksum(b, int(b[0]>>4), cs, src, dst)
	if !ok {
		t.Fatalf("no pseudo-header from %v to %v", src, dst)
	}
	binary.BigEndian.PutUint16(b[6:8], s)
	return b
}

// wantReason fails unless err is an *Error with reason r and a Detail, or
// nil when r is "".
func wantReason(t *testing.T, err error, r Reason) {
	t.Helper()
	if r == "" {
		if err != nil {
			t.Fatalf("got %v, want no error", err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v (%T), want *Error with reason %s", err, err, r)
	}
	if e.Reason != r {
		t.Fatalf("got %v, want reason %s", err, r)
	}
	if e.Detail == "" {
		t.Fatalf("reason %s without a Detail", r)
	}
}

func wantDetail(t *testing.T, err error, r Reason, detail string) {
	t.Helper()
	wantReason(t, err, r)
	if d := err.(*Error).Detail; d != detail {
		t.Fatalf("Detail %q, want %q", d, detail)
	}
}
