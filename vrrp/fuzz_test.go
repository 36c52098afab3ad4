package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzUnmarshal checks that Unmarshal never panics, returns only *Error,
// and that whatever it decodes marshals back to the same bytes under the
// same checksum mode, source and destination.
//
// Two things a receiver ignores cannot survive the trip, so the comparison
// allows them: the v3 reserved bits (sent as zero, RFC 5798 5.2.4) and a
// checksum of 0xffff where 0x0000 is computed (both are zero in one's
// complement). With either present the checksum differs too, and it must
// then be the valid one.
//
// The seed corpus in testdata/fuzz/FuzzUnmarshal holds the golden packets
// and broken variants of them.
func FuzzUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, plain bool, src, dst uint32) {
		cs := ChecksumPseudoHeader
		if plain {
			cs = ChecksumPlain
		}
		s, d := addr4(src), addr4(dst)

		a, err := Unmarshal(b, cs, s, d)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" || e.Detail == "" {
				t.Fatalf("Unmarshal error %v (%T), want an *Error with a reason and detail", err, err)
			}
			return
		}

		out, err := a.Marshal(cs, s, d)
		if err != nil {
			t.Fatalf("Marshal(Unmarshal(% x)) = %v", b, err)
		}
		want := bytes.Clone(b)
		if a.Version == 3 {
			want[4] &= 0x0f
		}
		if binary.BigEndian.Uint16(want[6:8]) == 0xffff {
			want[6], want[7] = 0, 0
		}
		if !bytes.Equal(out[:6], want[:6]) || !bytes.Equal(out[8:], want[8:]) {
			t.Fatalf("Marshal(Unmarshal(b)) differs:\n got % x\nwant % x", out, want)
		}
		if bytes.Equal(want, b) && !bytes.Equal(out, b) {
			t.Fatalf("Marshal(Unmarshal(b)) checksum differs:\n got % x\nwant % x", out, b)
		}
		if again, err := Unmarshal(out, cs, s, d); err != nil || !equalAdvert(again, a) {
			t.Fatalf("Unmarshal(Marshal(a)) = %+v, %v; want %+v", again, err, a)
		}
	})
}

func addr4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// TestFuzzSeeds keeps the seed corpus meaningful: each named seed must still
// decode, or fail for the reason it was written for.
func TestFuzzSeeds(t *testing.T) {
	want := map[string]Reason{
		"golden-v2-noauth":           "",
		"golden-v2-pass":             "",
		"golden-v3-100ms":            "",
		"golden-v2-10.99":            "",
		"golden-v3-10.99-pseudo":     "",
		"golden-v3-10.99-plain":      "",
		"v3-reserved-bits":           "",
		"v2-zero-addrs":              "",
		"v3-zero-addrs":              "",
		"v2-negative-zero-checksum":  "",
		"mode-v3-plain-under-pseudo": ReasonChecksumMode,
		"empty":                      ReasonTruncated,
		"header-cut":                 ReasonTruncated,
		"v2-trailer-cut":             ReasonTruncated,
		"v2-trailing-byte":           ReasonLength,
		"v3-trailing-auth":           ReasonLength,
		"version-4":                  ReasonVersion,
		"type-2":                     ReasonType,
		"bad-checksum":               ReasonChecksum,
		"zero-interval-v2":           ReasonZeroInterval,
		"zero-interval-v3":           ReasonZeroInterval,
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzUnmarshal")
	for name, reason := range want {
		t.Run(name, func(t *testing.T) {
			b, plain, src, dst := readSeed(t, filepath.Join(dir, name))
			cs := ChecksumPseudoHeader
			if plain {
				cs = ChecksumPlain
			}
			_, err := Unmarshal(b, cs, addr4(src), addr4(dst))
			wantReason(t, err, reason)
		})
	}
}

// readSeed parses a "go test fuzz v1" file of FuzzUnmarshal's arguments.
func readSeed(t *testing.T, name string) (b []byte, plain bool, src, dst uint32) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 5 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a FuzzUnmarshal corpus file", name)
	}
	arg := func(i int, typ string) string {
		v, ok := strings.CutPrefix(lines[i], typ+"(")
		if !ok || !strings.HasSuffix(v, ")") {
			t.Fatalf("%s: line %d is not %s(...): %q", name, i+1, typ, lines[i])
		}
		return strings.TrimSuffix(v, ")")
	}
	s, err := strconv.Unquote(arg(1, "[]byte"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	plain, err = strconv.ParseBool(arg(2, "bool"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	u := func(i int) uint32 {
		v, err := strconv.ParseUint(arg(i, "uint32"), 0, 32)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return uint32(v)
	}
	return []byte(s), plain, u(3), u(4)
}
