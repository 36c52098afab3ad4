package vrrpnet

import (
	"encoding/binary"
	"testing"
)

// FuzzParseIPv4: whatever arrives on the raw socket, parsing never panics,
// and an accepted packet's payload is exactly what its header says.
func FuzzParseIPv4(f *testing.F) {
	// A v3 advert from the keepalived capture (research/captures/v3-100ms).
	f.Add([]byte{
		0x45, 0xc0, 0x00, 0x24, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0x18, 0x8b, 0xc0, 0x00, 0x02, 0x0b,
		0xe0, 0x00, 0x00, 0x12, 0x31, 0x33, 0x96, 0x02, 0x00, 0x0a, 0x11, 0x57, 0xc0, 0x00, 0x02, 0x64,
		0xc0, 0x00, 0x02, 0x65,
	})
	f.Add([]byte{0x46, 0xc0, 0x00, 0x1c, 0, 0, 0, 0, 0xff, 0x70, 0, 0, 192, 0, 2, 1, 224, 0, 0, 18, 1, 2, 3, 4, 9, 9, 9, 9})
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok := parseIPv4(b)
		if !ok {
			return
		}
		hl := int(b[0]&0x0f) * 4
		tot := int(binary.BigEndian.Uint16(b[2:4]))
		if len(p.Payload) != tot-hl {
			t.Fatalf("payload %d bytes, header says %d", len(p.Payload), tot-hl)
		}
		if p.TTL != b[8] || !p.Src.Is4() || !p.Dst.Is4() {
			t.Fatalf("packet %+v from header %x", p, b[:20])
		}
	})
}
