package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

const (
	headerLen   = 8   // version/type through checksum, the same size in v2 and v3
	maxAddrs    = 255 // Count IPvX Addrs is one octet
	maxV2Adver  = 255 * time.Second
	maxV3Adver  = 4095 * centisecond // Max Adver Int is 12 bits
	centisecond = 10 * time.Millisecond
)

// msgLen is the length of a VRRP IPv4 message with n addresses.
func msgLen(version, n int) int {
	l := headerLen + 4*n
	if version == 2 {
		l += authDataLen
	}
	return l
}

// Marshal returns the VRRP message for a: header, addresses, and in v2 the
// 8-byte auth trailer, with its checksum. src and dst are the IP source and
// destination; only a v3 checksum with the pseudo-header uses them, so they
// may be zero otherwise.
func (a *Advert) Marshal(cs Checksum, src, dst netip.Addr) ([]byte, error) {
	var adver uint16
	switch a.Version {
	case 2:
		if a.Interval%time.Second != 0 || a.Interval < time.Second || a.Interval > maxV2Adver {
			return nil, fmt.Errorf("vrrp: v2 interval %v is not a whole number of seconds in 1s..255s", a.Interval)
		}
		adver = uint16(a.Interval / time.Second)
	case 3:
		if a.Interval%centisecond != 0 || a.Interval < centisecond || a.Interval > maxV3Adver {
			return nil, fmt.Errorf("vrrp: v3 interval %v is not a whole number of centiseconds in 10ms..40.95s", a.Interval)
		}
		adver = uint16(a.Interval / centisecond)
		if a.AuthType != AuthNone || a.AuthData != [authDataLen]byte{} {
			return nil, errors.New("vrrp: v3 has no authentication: auth type and data must be zero")
		}
	default:
		return nil, fmt.Errorf("vrrp: version %d, want 2 or 3", a.Version)
	}
	if len(a.Addrs) > maxAddrs {
		return nil, fmt.Errorf("vrrp: %d addresses, at most %d fit", len(a.Addrs), maxAddrs)
	}
	for _, ip := range a.Addrs {
		// A 4-in-6 address is refused too: it means the caller mixed
		// families somewhere, and sending it as IPv4 would hide that.
		if !ip.Is4() {
			return nil, fmt.Errorf("vrrp: address %v is not IPv4", ip)
		}
	}

	b := make([]byte, msgLen(a.Version, len(a.Addrs)))
	b[0] = byte(a.Version)<<4 | typeAdvertisement
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = byte(len(a.Addrs))
	if a.Version == 2 {
		b[4] = byte(a.AuthType)
		b[5] = byte(adver)
	} else {
		// The top 4 bits are reserved and sent as zero.
		binary.BigEndian.PutUint16(b[4:6], adver)
	}
	off := headerLen
	for _, ip := range a.Addrs {
		a4 := ip.As4()
		off += copy(b[off:], a4[:])
	}
	if a.Version == 2 {
		copy(b[off:], a.AuthData[:])
	}

	csum, ok := messageChecksum(b, a.Version, cs, src, dst)
	if !ok {
		return nil, fmt.Errorf("vrrp: the v3 pseudo-header needs IPv4 source and destination, got %v and %v", src, dst)
	}
	binary.BigEndian.PutUint16(b[6:8], csum)
	return b, nil
}

// Unmarshal decodes one VRRP message, exactly the IP payload, and verifies
// its checksum: in v2 over the message alone, in v3 as cs says, with the
// pseudo-header {src, dst, 0, 112, length}. The checks run in the order
// Filter.Accept uses, so a packet with several faults gets the same Reason
// from both. Errors are *Error.
func Unmarshal(b []byte, cs Checksum, src, dst netip.Addr) (Advert, error) {
	a, err := decode(b)
	if err != nil {
		return Advert{}, err
	}
	if a.Interval == 0 {
		return Advert{}, reject(ReasonZeroInterval, "advert interval 0")
	}
	if err := checkType(b); err != nil {
		return Advert{}, err
	}
	if err := verifyChecksum(b, a.Version, cs, src, dst); err != nil {
		return Advert{}, err
	}
	return a, nil
}

// decode parses the structure of b: version, then the length its version
// and address count imply. It judges nothing else, so that Filter.Accept
// can interleave its own checks in keepalived's order.
func decode(b []byte) (Advert, error) {
	if len(b) < headerLen {
		return Advert{}, reject(ReasonTruncated, "%d bytes, the header alone is %d", len(b), headerLen)
	}
	a := Advert{
		Version:  int(b[0] >> 4),
		VRID:     b[1],
		Priority: b[2],
	}
	// The version decides the length, so it is checked before it.
	if a.Version != 2 && a.Version != 3 {
		return Advert{}, reject(ReasonVersion, "version %d, want 2 or 3", a.Version)
	}
	n := int(b[3])
	switch want := msgLen(a.Version, n); {
	case len(b) < want:
		return Advert{}, reject(ReasonTruncated, "%d bytes, a v%d message with %d addresses is %d", len(b), a.Version, n, want)
	case len(b) > want:
		// Ethernet padding, which keepalived allows for, never gets
		// here: the kernel trims a datagram to its IP total length, and
		// Packet.Payload is exactly the IP payload.
		return Advert{}, reject(ReasonLength, "%d bytes, a v%d message with %d addresses is %d", len(b), a.Version, n, want)
	}

	if a.Version == 2 {
		a.AuthType = AuthType(b[4])
		a.Interval = time.Duration(b[5]) * time.Second
		copy(a.AuthData[:], b[headerLen+4*n:])
	} else {
		// RFC 5798 5.2.4: the reserved bits are ignored on reception.
		a.Interval = time.Duration(binary.BigEndian.Uint16(b[4:6])&0x0fff) * centisecond
	}
	if n > 0 {
		a.Addrs = make([]netip.Addr, n)
		for i := range a.Addrs {
			a.Addrs[i] = netip.AddrFrom4([4]byte(b[headerLen+4*i:]))
		}
	}
	return a, nil
}

// checkType accepts only advertisements, the one type VRRP defines.
func checkType(b []byte) error {
	if t := b[0] & 0x0f; t != typeAdvertisement {
		return reject(ReasonType, "type %d, want %d (advertisement)", t, typeAdvertisement)
	}
	return nil
}

// verifyChecksum checks the checksum of the message b. For v3 it also tries
// the other mode when cs fails, because a peer configured the other way
// (keepalived's v3_checksum_as_v2, Cisco, Juniper) is a configuration
// problem the operator has to see as such, not as corruption.
func verifyChecksum(b []byte, version int, cs Checksum, src, dst netip.Addr) error {
	got := binary.BigEndian.Uint16(b[6:8])
	want, ok := messageChecksum(b, version, cs, src, dst)
	if !ok {
		return reject(ReasonAddrFamily, "the v3 pseudo-header needs IPv4 source and destination, got %v and %v", src, dst)
	}
	if sameChecksum(got, want) {
		return nil
	}
	if version == 2 {
		return reject(ReasonChecksum, "checksum %#04x, want %#04x", got, want)
	}
	other := ChecksumPlain
	if cs == ChecksumPlain {
		other = ChecksumPseudoHeader
	}
	if alt, ok := messageChecksum(b, version, other, src, dst); ok && sameChecksum(got, alt) {
		return reject(ReasonChecksumMode, "checksum %#04x is valid %s, we want %#04x %s (v3_checksum_as_v2 differs)",
			got, modePhrase(other), want, modePhrase(cs))
	}
	return reject(ReasonChecksum, "checksum %#04x, want %#04x (%s)", got, want, cs)
}

func modePhrase(cs Checksum) string {
	if cs == ChecksumPlain {
		return "without the pseudo-header"
	}
	return "with the pseudo-header"
}

// sameChecksum reports whether the checksum on the wire, got, matches the
// computed one. One's complement has two zeros: a sender may write 0xffff
// where we compute 0x0000, and RFC 1071 verification (summing the whole
// message), which keepalived does, accepts both.
func sameChecksum(got, want uint16) bool {
	return got == want || (want == 0 && got == 0xffff)
}

// messageChecksum computes the checksum of the message b as if its checksum
// field were zero. It fails only when a v3 pseudo-header is wanted and src
// or dst is not IPv4.
func messageChecksum(b []byte, version int, cs Checksum, src, dst netip.Addr) (uint16, bool) {
	var acc uint64
	if version == 3 && cs == ChecksumPseudoHeader {
		// A socket may hand out IPv4 addresses in their 4-in-6 form.
		src, dst = src.Unmap(), dst.Unmap()
		if !src.Is4() || !dst.Is4() {
			return 0, false
		}
		s, d := src.As4(), dst.As4()
		acc = sum(s[:], acc)
		acc = sum(d[:], acc)
		acc += IPProtocol
		acc += uint64(len(b))
	}
	acc = sum(b[:6], acc)
	acc = sum(b[8:], acc)
	return fold(acc), true
}

// sum adds b to acc as big-endian 16-bit words, padding an odd tail byte
// with zero (RFC 1071). Carries are folded by fold; 64 bits cannot
// overflow for any slice that fits in memory.
func sum(b []byte, acc uint64) uint64 {
	for len(b) >= 2 {
		acc += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// fold folds the carries of acc back in (one's-complement addition) and
// returns the complement: the Internet checksum.
func fold(acc uint64) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return ^uint16(acc)
}
