// Package vrrp implements VRRP version 2 (RFC 3768) and version 3 (RFC 5798)
// for IPv4 as pure code: the advertisement codec and the router state
// machine. Nothing here touches a socket or a clock; the runner in
// vrrp/runner does that.
package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// Protocol constants shared by both versions.
const (
	IPProtocol = 112 // IP protocol number of VRRP
	TTL        = 255 // every advert is sent, and multicast ones received, with TTL 255
	TOS        = 0xc0

	PriorityStop  = 0   // the master resigns
	PriorityOwner = 255 // the router owns the virtual addresses

	typeAdvertisement = 1
	authDataLen       = 8 // v2 trailer, always present
)

// MulticastGroup is where adverts go unless unicast peers are configured.
var MulticastGroup = netip.AddrFrom4([4]byte{224, 0, 0, 18})

// AuthType is the v2 authentication type.
type AuthType uint8

const (
	AuthNone AuthType = 0
	AuthPass AuthType = 1 // simple text password, NUL-padded to 8 bytes
	AuthAH   AuthType = 2 // IPsec AH; recognised, never accepted
)

// Checksum says how a v3 IPv4 checksum is computed. v2 never uses a
// pseudo-header.
type Checksum int

const (
	// ChecksumPseudoHeader prepends the IPv4 pseudo-header (source,
	// destination, zero, protocol 112, length): keepalived's default.
	ChecksumPseudoHeader Checksum = iota
	// ChecksumPlain covers the VRRP message alone, as RFC 9568, Cisco,
	// Juniper and keepalived's v3_checksum_as_v2 do.
	ChecksumPlain
)

func (c Checksum) String() string {
	if c == ChecksumPlain {
		return "plain"
	}
	return "pseudo-header"
}

// Advert is one VRRP advertisement.
type Advert struct {
	Version  int // 2 or 3
	VRID     uint8
	Priority uint8
	// Interval is the advertisement interval: whole seconds in v2,
	// centiseconds (at most 40.95 s) in v3.
	Interval time.Duration
	// Addrs are the virtual IPv4 addresses, in the order sent.
	Addrs []netip.Addr
	// AuthType and AuthData are the v2 trailer; zero in v3.
	AuthType AuthType
	AuthData [8]byte
}

// Reason names why an advert was rejected. The strings are stable: they
// are counted per reason in status and metrics and logged as `reason`.
type Reason string

const (
	ReasonTruncated    Reason = "truncated"              // shorter than its header and addresses say
	ReasonLength       Reason = "bad-length"             // longer than the message plus Ethernet padding
	ReasonVersion      Reason = "version-mismatch"       // not the configured version (or not 2/3)
	ReasonType         Reason = "bad-type"               // not an advertisement
	ReasonChecksum     Reason = "bad-checksum"           // no checksum mode accepted it
	ReasonVRID         Reason = "vrid-mismatch"          // another virtual router
	ReasonTTL          Reason = "bad-ttl"                // multicast advert with TTL != 255
	ReasonAuth         Reason = "auth-mismatch"          // v2 auth type or password differs
	ReasonInterval     Reason = "interval-mismatch"      // v2 interval differs from ours (keepalived drops these)
	ReasonAddrList     Reason = "address-mismatch"       // VIP list differs from ours
	ReasonZeroInterval Reason = "zero-interval"          // advert interval 0
	ReasonSource       Reason = "unknown-source"         // unicast advert from a host that is not a peer
	ReasonDestination  Reason = "wrong-destination"      // unicast where multicast is expected, or the reverse
	ReasonOwnAdvert    Reason = "own-advert"             // our own packet looped back
	ReasonAddrFamily   Reason = "address-family"         // not IPv4
	ReasonChecksumMode Reason = "checksum-mode-mismatch" // valid only under the other v3 checksum mode
)

// Error is a rejected advert with its reason.
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "vrrp: " + string(e.Reason)
	}
	return fmt.Sprintf("vrrp: %s: %s", e.Reason, e.Detail)
}

func reject(r Reason, format string, args ...any) error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Packet is a received VRRP packet with the IP header facts the checks
// need. The runner fills it from the socket; Filter.Accept decides.
type Packet struct {
	Src, Dst netip.Addr
	TTL      uint8
	Payload  []byte // the VRRP message: the IP payload, exactly tot_len minus the header
}
