package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// This file parses the text of single values: durations, sizes,
// addresses, names. It knows nothing about HCL; decode.go calls it and
// turns its errors into diagnostics.

// parseDuration parses a Go duration ("100ms", "2s", "1m30s") that must
// not be negative. A bare number is rejected: "2" could mean seconds or
// milliseconds, so the unit is required (except for "0").
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		if _, nerr := strconv.ParseFloat(strings.TrimSpace(s), 64); nerr == nil {
			return 0, fmt.Errorf("%q has no unit; write e.g. %q or %q", s, s+"s", s+"ms")
		}
		return 0, fmt.Errorf("%q is not a duration; write a number with a unit: ms, s, m or h, e.g. \"100ms\" or \"2s\"", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// Size units. Like DRBD, K, M, G and T are powers of 1024.
const (
	KiB Size = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
)

// ParseSize parses a byte count: a whole number with an optional suffix
// K, M, G or T (case-insensitive, optionally followed by "iB"), each a
// power of 1024 as in DRBD: "4096", "250K", "200M", "1G", "1GiB".
// "MB" and friends are refused because they read as powers of 1000.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size; write a whole number with an optional K, M, G or T suffix, e.g. \"200M\"", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large", s)
	}
	var unit Size
	switch strings.ToUpper(t[i:]) {
	case "", "B":
		unit = 1
	case "K", "KIB":
		unit = KiB
	case "M", "MIB":
		unit = MiB
	case "G", "GIB":
		unit = GiB
	case "T", "TIB":
		unit = TiB
	case "KB", "MB", "GB", "TB":
		return 0, fmt.Errorf("%q is ambiguous; sizes are powers of 1024, write %q", s, t[:i+1])
	default:
		return 0, fmt.Errorf("%q has an unknown unit %q; use K, M, G or T (powers of 1024)", s, t[i:])
	}
	if n > math.MaxInt64/int64(unit) {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Size(n) * unit, nil
}

// String renders the size with the largest unit that divides it exactly,
// in the form ParseSize reads: "200M", "1536K", "4097".
func (s Size) String() string {
	for _, u := range []struct {
		size   Size
		suffix string
	}{{TiB, "T"}, {GiB, "G"}, {MiB, "M"}, {KiB, "K"}} {
		if s != 0 && s%u.size == 0 {
			return strconv.FormatInt(int64(s/u.size), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// parseAddr parses a unicast IP address (v4 or v6, no zone).
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if strings.Contains(s, "/") {
			return netip.Addr{}, fmt.Errorf("%q is a prefix, not an address; leave out the /length", s)
		}
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	a = a.Unmap()
	switch {
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%q has a zone; zones are not supported", s)
	case a.IsUnspecified():
		return netip.Addr{}, fmt.Errorf("%q is the unspecified address", s)
	case a.IsMulticast():
		return netip.Addr{}, fmt.Errorf("%q is a multicast address", s)
	}
	return a, nil
}

// parseIPv4 parses a unicast IPv4 address (VRRP is IPv4-only for now).
func parseIPv4(s string) (netip.Addr, error) {
	a, err := parseAddr(s)
	if err != nil {
		return a, err
	}
	if !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is IPv6; VRRP supports IPv4 only for now", s)
	}
	return a, nil
}

// parseVIP parses a virtual IP written with its subnet, "192.0.2.100/24".
// The address keeps its host bits: it is the address, the length is the
// subnet of the interface it goes on.
func parseVIP(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			return netip.Prefix{}, fmt.Errorf("%q has no prefix length; write the interface's subnet length, e.g. %q (or %q for a host route)", s, s+"/24", s+"/32")
		}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address with a prefix length such as \"192.0.2.100/24\"", s)
	}
	a := p.Addr()
	switch {
	case !a.Is4():
		return netip.Prefix{}, fmt.Errorf("%q is IPv6; VRRP supports IPv4 only for now", s)
	case a.IsUnspecified(), a.IsMulticast(), a.IsLoopback(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.Prefix{}, fmt.Errorf("%q is not a unicast address", s)
	}
	if p.Bits() < 31 {
		if a == p.Masked().Addr() {
			return netip.Prefix{}, fmt.Errorf("%q is the network address of %s", s, p.Masked())
		}
		if a == broadcast(p) {
			return netip.Prefix{}, fmt.Errorf("%q is the broadcast address of %s", s, p.Masked())
		}
	}
	return p, nil
}

// broadcast returns the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// parseHostPort checks "host:port" with a port in 1..65535. defaultPort,
// when not 0, is added to a bare host.
func parseHostPort(s string, defaultPort int) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if defaultPort == 0 {
			return "", fmt.Errorf("%q is not host:port, e.g. \"127.0.0.1:5432\"", s)
		}
		host, port = strings.Trim(s, "[]"), strconv.Itoa(defaultPort)
	}
	if host == "" || strings.ContainsAny(host, " \t/") {
		return "", fmt.Errorf("%q has no valid host", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q has an invalid port; use 1 to 65535", s)
	}
	return net.JoinHostPort(host, port), nil
}

// parseHTTPURL checks an http or https URL with a host.
func parseHTTPURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", s)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q has no host", s)
	}
	return s, nil
}

// nameRE is what block labels may look like: node names double as map keys
// and host names, so they stay within what both accept.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

const maxNameLen = 63

func checkName(s string) error {
	switch {
	case s == "":
		return errors.New("it is empty")
	case len(s) > maxNameLen:
		return fmt.Errorf("it is longer than %d characters", maxNameLen)
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		return errors.New("it contains white space")
	case s[0] == '-' || s[0] == '.':
		return fmt.Errorf("it starts with %q", s[0])
	case !nameRE.MatchString(s):
		return errors.New("it contains other characters than letters, digits, '_', '-' and '.'")
	}
	return nil
}

// checkInterfaceName applies the kernel's rules (dev_valid_name).
func checkInterfaceName(s string) error {
	switch {
	case s == "":
		return errors.New("the interface name is empty")
	case len(s) > 15:
		return fmt.Errorf("%q is longer than 15 characters", s)
	case s == "." || s == "..":
		return fmt.Errorf("%q is not an interface name", s)
	case strings.ContainsAny(s, "/: \t\n"):
		return fmt.Errorf("%q contains '/', ':' or white space", s)
	}
	return nil
}

// checkAbsPath requires a clean-enough absolute path.
func checkAbsPath(s string) error {
	if !path.IsAbs(s) {
		return fmt.Errorf("%q is not an absolute path", s)
	}
	if strings.ContainsRune(s, 0) {
		return fmt.Errorf("%q contains a NUL byte", s)
	}
	return nil
}

// envNameRE is a POSIX environment variable or OCF parameter name.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ocfAgentRE matches "provider:type", e.g. "heartbeat:IPaddr2".
var ocfAgentRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+$`)

func checkOCFAgent(s string) error {
	if path.IsAbs(s) || ocfAgentRE.MatchString(s) {
		return nil
	}
	return fmt.Errorf("%q is neither provider:type (e.g. \"heartbeat:IPaddr2\") nor an absolute path to an agent script", s)
}
