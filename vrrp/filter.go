package vrrp

import (
	"crypto/subtle"
	"net/netip"
	"slices"
	"time"
)

// Filter is what one local VRRP instance accepts.
type Filter struct {
	Version int
	VRID    uint8
	// Interval is ours. v2 adverts must match it exactly, because
	// keepalived drops them otherwise and we must agree with it on who
	// hears whom; v3 adverts may differ, since the backup learns the
	// master's interval.
	Interval time.Duration
	// Addrs are our VIPs. The advert must carry the same set: order is
	// irrelevant, the count must match (keepalived 2.2 ignores adverts
	// whose list differs, and so must we, or only one side would see
	// two masters).
	Addrs    []netip.Addr
	AuthType AuthType // v2
	// AuthPass is the v2 PASS password, NUL-padded (or cut) to 8 bytes
	// and compared in constant time.
	AuthPass string
	Checksum Checksum // v3
	// Unicast is true when adverts must come to a unicast destination
	// from one of Peers, and false when they must come to 224.0.0.18 with
	// TTL 255.
	Unicast bool
	Peers   []netip.Addr
	// Self are our own source addresses: a looped-back own advert is
	// ReasonOwnAdvert.
	Self []netip.Addr
}

// AuthData returns the v2 authentication data for our own adverts: the
// PASS password NUL-padded to 8 bytes, cut if longer as keepalived does,
// and zero for any other auth type.
func (f *Filter) AuthData() [8]byte {
	var d [authDataLen]byte
	if f.AuthType == AuthPass {
		copy(d[:], f.AuthPass)
	}
	return d
}

// Accept decodes p and applies the checks in keepalived's order (research
// §2.4): address family, length, TTL (multicast only), version, auth (v2),
// interval, type, checksum, destination kind, source, VRID and address
// list. It returns the advert, or an *Error with the first failing Reason.
//
// The order matters to the counters, not to safety: a packet with several
// faults is counted once, under the reason keepalived would log.
func (f *Filter) Accept(p Packet) (Advert, error) {
	// A socket may hand out IPv4 addresses in their 4-in-6 form.
	src, dst := p.Src.Unmap(), p.Dst.Unmap()
	if !src.Is4() {
		return Advert{}, reject(ReasonAddrFamily, "source %v is not IPv4", p.Src)
	}
	if !dst.Is4() {
		return Advert{}, reject(ReasonAddrFamily, "destination %v is not IPv4", p.Dst)
	}

	a, err := decode(p.Payload)
	if err != nil {
		return Advert{}, err
	}
	// TTL 255 proves a multicast advert was not routed. Unicast adverts
	// may be routed, and keepalived does not check them.
	if !f.Unicast && p.TTL != TTL {
		return Advert{}, reject(ReasonTTL, "ttl %d, want %d", p.TTL, TTL)
	}
	if a.Version != f.Version {
		return Advert{}, reject(ReasonVersion, "version %d, ours %d", a.Version, f.Version)
	}
	if a.Version == 2 {
		if err := f.checkAuth(&a); err != nil {
			return Advert{}, err
		}
	}
	if a.Interval == 0 {
		return Advert{}, reject(ReasonZeroInterval, "advert interval 0")
	}
	if a.Version == 2 && a.Interval != f.Interval {
		return Advert{}, reject(ReasonInterval, "interval %v, ours %v", a.Interval, f.Interval)
	}
	if err := checkType(p.Payload); err != nil {
		return Advert{}, err
	}
	if err := verifyChecksum(p.Payload, a.Version, f.Checksum, src, dst); err != nil {
		return Advert{}, err
	}

	switch {
	case f.Unicast && dst.IsMulticast():
		return Advert{}, reject(ReasonDestination, "multicast destination %v, we use unicast", dst)
	case !f.Unicast && dst != MulticastGroup:
		return Advert{}, reject(ReasonDestination, "destination %v, we use multicast %v", dst, MulticastGroup)
	}
	if contains(f.Self, src) {
		return Advert{}, reject(ReasonOwnAdvert, "source %v is ours", src)
	}
	if f.Unicast && !contains(f.Peers, src) {
		return Advert{}, reject(ReasonSource, "source %v is not one of our peers %v", src, f.Peers)
	}

	if a.VRID != f.VRID {
		return Advert{}, reject(ReasonVRID, "vrid %d, ours %d", a.VRID, f.VRID)
	}
	if err := f.checkAddrs(a.Addrs); err != nil {
		return Advert{}, err
	}
	return a, nil
}

// checkAuth compares the v2 auth type and, for PASS, the password.
func (f *Filter) checkAuth(a *Advert) error {
	if a.AuthType > AuthAH {
		return reject(ReasonAuth, "unknown auth type %d", a.AuthType)
	}
	if a.AuthType != f.AuthType {
		return reject(ReasonAuth, "auth type %d, ours %d", a.AuthType, f.AuthType)
	}
	switch a.AuthType {
	case AuthAH:
		// Recognised so that the reason is precise, but hactl does no
		// IPsec, so it can never verify such an advert.
		return reject(ReasonAuth, "auth type %d (IPsec AH) is not supported", a.AuthType)
	case AuthPass:
		want := f.AuthData()
		// Constant time, so the time to reject does not tell an
		// attacker on the segment how many leading bytes were right.
		if subtle.ConstantTimeCompare(a.AuthData[:], want[:]) != 1 {
			return reject(ReasonAuth, "password differs")
		}
	}
	return nil
}

// checkAddrs requires the advert's VIPs to be exactly ours as a set.
func (f *Filter) checkAddrs(got []netip.Addr) error {
	if len(got) != len(f.Addrs) {
		return reject(ReasonAddrList, "expected %d addresses %v, got %d %v", len(f.Addrs), f.Addrs, len(got), got)
	}
	for _, ip := range got {
		if !contains(f.Addrs, ip) {
			return reject(ReasonAddrList, "%v is not ours: expected %v, got %v", ip, f.Addrs, got)
		}
	}
	// Equal counts do not make equal sets when either side repeats one.
	for _, ip := range f.Addrs {
		if !contains(got, ip) {
			return reject(ReasonAddrList, "%v is missing: expected %v, got %v", ip, f.Addrs, got)
		}
	}
	return nil
}

// contains reports whether ip is in set, comparing 4-in-6 forms as IPv4.
func contains(set []netip.Addr, ip netip.Addr) bool {
	return slices.ContainsFunc(set, func(x netip.Addr) bool { return x.Unmap() == ip.Unmap() })
}
