package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"100ms", 100 * time.Millisecond, ""},
		{"2s", 2 * time.Second, ""},
		{"1m30s", 90 * time.Second, ""},
		{"40.95s", 40950 * time.Millisecond, ""},
		{"0", 0, ""},
		{"0s", 0, ""},
		{" 5s ", 5 * time.Second, ""},
		{"5", 0, "has no unit"},
		{"1.5", 0, "has no unit"},
		{"-1s", 0, "negative"},
		{"2 s", 0, "not a duration"},
		{"soon", 0, "not a duration"},
		{"", 0, "not a duration"},
		{"1d", 0, "not a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDuration(tt.in)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    Size
		wantErr string
	}{
		{"4096", 4096, ""},
		{"0", 0, ""},
		{"250K", 250 << 10, ""},
		{"250k", 250 << 10, ""},
		{"200M", 200 << 20, ""},
		{"200MiB", 200 << 20, ""},
		{"1G", 1 << 30, ""},
		{"1g", 1 << 30, ""},
		{"2T", 2 << 40, ""},
		{"512B", 512, ""},
		{"8388607T", 8388607 << 40, ""},
		{"8388608T", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
		{"200MB", 0, "ambiguous"},
		{"1GB", 0, "ambiguous"},
		{"1.5G", 0, "unknown unit"},
		{"200 M", 0, "unknown unit"},
		{"10X", 0, "unknown unit"},
		{"M", 0, "not a size"},
		{"-1M", 0, "not a size"},
		{"", 0, "not a size"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestSizeString(t *testing.T) {
	for _, tt := range []struct {
		in   Size
		want string
	}{
		{0, "0"}, {4097, "4097"}, {1536 << 10, "1536K"}, {200 << 20, "200M"}, {1 << 30, "1G"}, {3 << 40, "3T"},
	} {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		if back, err := ParseSize(tt.in.String()); err != nil || back != tt.in {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in.String(), back, err, tt.in)
		}
	}
}

func TestParseVIP(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{"192.0.2.100/24", "192.0.2.100/24", ""},
		{"198.51.100.7/32", "198.51.100.7/32", ""},
		{"203.0.113.0/31", "203.0.113.0/31", ""}, // point-to-point: both addresses usable
		{"203.0.113.1/31", "203.0.113.1/31", ""},
		{"192.0.2.100", "", "no prefix length"},
		{"192.0.2.0/24", "", "network address"},
		{"192.0.2.255/24", "", "broadcast address"},
		{"192.0.2.127/25", "", "broadcast address"},
		{"192.0.2.1/33", "", "not an address with a prefix length"},
		{"192.0.2.300/24", "", "not an address with a prefix length"},
		{"2001:db8::1/64", "", "IPv6"},
		{"224.0.0.18/24", "", "not a unicast address"},
		{"127.0.0.2/8", "", "not a unicast address"},
		{"0.0.0.0/0", "", "not a unicast address"},
		{"", "", "not an address"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseVIP(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseVIP(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("parseVIP(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in      string
		v4only  bool
		want    netip.Addr
		wantErr string
	}{
		{"192.0.2.11", false, netip.MustParseAddr("192.0.2.11"), ""},
		{"2001:db8::11", false, netip.MustParseAddr("2001:db8::11"), ""},
		{"::ffff:192.0.2.11", false, netip.MustParseAddr("192.0.2.11"), ""},
		{"2001:db8::11", true, netip.Addr{}, "IPv6"},
		{"192.0.2.0/24", false, netip.Addr{}, "is a prefix"},
		{"192.0.2.256", false, netip.Addr{}, "not an IP address"},
		{"fe80::1%eth0", false, netip.Addr{}, "zone"},
		{"0.0.0.0", false, netip.Addr{}, "unspecified"},
		{"224.0.0.18", false, netip.Addr{}, "multicast"},
		{"alpha", false, netip.Addr{}, "not an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			parse := parseAddr
			if tt.v4only {
				parse = parseIPv4
			}
			got, err := parse(tt.in)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestParseHostPort(t *testing.T) {
	tests := []struct {
		in      string
		def     int
		want    string
		wantErr string
	}{
		{"127.0.0.1:5432", 0, "127.0.0.1:5432", ""},
		{"localhost:80", 0, "localhost:80", ""},
		{"[2001:db8::1]:53", 0, "[2001:db8::1]:53", ""},
		{"127.0.0.1", 53, "127.0.0.1:53", ""},
		{"2001:db8::1", 53, "[2001:db8::1]:53", ""},
		{"127.0.0.1", 0, "", "not host:port"},
		{":80", 0, "", "no valid host"},
		{"127.0.0.1:0", 0, "", "invalid port"},
		{"127.0.0.1:65536", 0, "", "invalid port"},
		{"127.0.0.1:http", 0, "", "invalid port"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseHostPort(tt.in, tt.def)
			checkParse(t, got, err, tt.want, tt.wantErr)
		})
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"alpha", "VI_1", "pg-a", "node.example", "_x", "9"} {
		if err := checkName(ok); err != nil {
			t.Errorf("checkName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "-x", ".x", "a/b", "ä", strings.Repeat("a", 64)} {
		if err := checkName(bad); err == nil {
			t.Errorf("checkName(%q) = nil, want an error", bad)
		}
	}
}

func TestCheckOCFAgent(t *testing.T) {
	for _, ok := range []string{"heartbeat:IPaddr2", "ocf-provider:my.agent", "/usr/lib/ocf/resource.d/heartbeat/varnish"} {
		if err := checkOCFAgent(ok); err != nil {
			t.Errorf("checkOCFAgent(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"varnish", "heartbeat:", ":x", "a:b:c", "relative/path"} {
		if err := checkOCFAgent(bad); err == nil {
			t.Errorf("checkOCFAgent(%q) = nil, want an error", bad)
		}
	}
}

func checkParse[T comparable](t *testing.T, got T, err error, want T, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("got %v, %v; want an error containing %q", got, err, wantErr)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
}
