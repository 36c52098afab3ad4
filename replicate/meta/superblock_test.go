package meta

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

func mustLayout(t testing.TB, size int64, internal bool, al int) Layout {
	t.Helper()
	l, err := NewLayout(size, internal, al)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func sampleSuper(t testing.TB) Superblock {
	return Superblock{
		Version:    FormatVersion,
		Seq:        42,
		WrittenAt:  testNow,
		VolumeUUID: VolumeUUID{1, 2, 3, 4, 5, 6, 0x47, 8, 0x89, 10, 11, 12, 13, 14, 15, 16},
		NodeID:     7,
		NodeName:   "alpha",
		VolumeName: "data",
		Flags:      FlagConsistent | FlagWasUpToDate | FlagCleanShutdown,
		GI:         GI{Current: 0xA1B2C3D4E5F60709, Bitmap: 0x1122334455667788, History: [2]uint64{0x99, 0xAA}},
		Layout:     mustLayout(t, 10*gib, true, 0),
	}
}

func TestSuperblockRoundTrip(t *testing.T) {
	base := sampleSuper(t)
	tests := []struct {
		name string
		edit func(*Superblock)
	}{
		{"sample", func(*Superblock) {}},
		{"just created", func(s *Superblock) { s.GI = GI{Current: UUIDJustCreated}; s.Flags = FlagCleanShutdown }},
		{"every known flag", func(s *Superblock) { s.Flags = FlagFullSync<<1 - 1 }},
		{"unknown flags kept", func(s *Superblock) { s.Flags = 1<<63 | 1<<40 | FlagPrimary }},
		{"no timestamp", func(s *Superblock) { s.WrittenAt = time.Time{} }},
		{"timestamp before 1970", func(s *Superblock) { s.WrittenAt = time.Date(1960, 1, 1, 0, 0, 0, 1, time.UTC) }},
		{"empty names", func(s *Superblock) { s.NodeName, s.VolumeName = "", "" }},
		{"longest names", func(s *Superblock) {
			s.NodeName, s.VolumeName = strings.Repeat("n", maxNameLen), strings.Repeat("ü", maxNameLen/2)
		}},
		{"external", func(s *Superblock) { s.Layout = mustLayout(t, 3*tib+5, false, 4000) }},
		{"max seq and ids", func(s *Superblock) { s.Seq, s.NodeID = ^uint64(0), ^uint32(0) }},
		{"primary bit", func(s *Superblock) { s.GI.Current |= 1; s.GI.Bitmap |= 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			tt.edit(&s)
			b, err := s.encode()
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != BlockSize {
				t.Fatalf("encoded %d bytes", len(b))
			}
			got, err := decodeSuperblock(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !got.WrittenAt.Equal(s.WrittenAt) {
				t.Errorf("WrittenAt = %v, want %v", got.WrittenAt, s.WrittenAt)
			}
			got.WrittenAt, s.WrittenAt = time.Time{}, time.Time{}
			if got != s {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, s)
			}
		})
	}
}

func TestSuperblockEncodeRejectsBadNames(t *testing.T) {
	for _, name := range []string{strings.Repeat("x", maxNameLen+1), "a\x00b", "\xff"} {
		s := sampleSuper(t)
		s.NodeName = name
		if _, err := s.encode(); err == nil {
			t.Errorf("encode accepted node name %q", name)
		}
	}
}

// reseal recomputes the checksum after a test edited the bytes.
func reseal(b []byte) {
	binary.BigEndian.PutUint32(b[sbCRC:], crc32.Checksum(b[:sbCRC], crcTable))
}

func TestDecodeSuperblockErrors(t *testing.T) {
	s := sampleSuper(t)
	good, err := s.encode()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		edit   func(b []byte)
		err    error
		detail string
	}{
		{"all zeros", func(b []byte) { clear(b) }, ErrNoMetadata, "all zeros"},
		{"ext4-like bytes", func(b []byte) { clear(b); copy(b, "\x53\xef") }, ErrNoMetadata, "wrong magic"},
		{"drbd magic", func(b []byte) { copy(b, "\x83\x74\x02\x6b\x00\x00\x00\x00") }, ErrNoMetadata, "wrong magic"},
		{"future version", func(b []byte) { binary.BigEndian.PutUint32(b[sbVersion:], 2) }, ErrVersion, "format version 2"},
		{"future version, bad checksum", func(b []byte) { binary.BigEndian.PutUint32(b[sbVersion:], 9); b[100] = 1 }, ErrVersion, "upgrade hactl"},
		{"version 0", func(b []byte) { binary.BigEndian.PutUint32(b[sbVersion:], 0); reseal(b) }, ErrCorrupt, "version 0"},
		{"flipped bit", func(b []byte) { b[sbSeq+7] ^= 1 }, ErrCorrupt, "checksum"},
		{"torn", func(b []byte) { clear(b[2000:]) }, ErrCorrupt, "checksum"},
		{"block size", func(b []byte) { binary.BigEndian.PutUint32(b[sbBlockSize:], 512); reseal(b) }, ErrCorrupt, "block size"},
		{"extent size", func(b []byte) { binary.BigEndian.PutUint32(b[sbExtentSize:], 1<<20); reseal(b) }, ErrCorrupt, "extent size"},
		{"reserved", func(b []byte) { b[1000] = 1; reseal(b) }, ErrCorrupt, "reserved"},
		{"reserved after internal", func(b []byte) { b[sbInternal+1] = 1; reseal(b) }, ErrCorrupt, "reserved"},
		{"internal flag 2", func(b []byte) { b[sbInternal] = 2; reseal(b) }, ErrCorrupt, "internal flag"},
		{"internal flipped", func(b []byte) { b[sbInternal] = 0; reseal(b) }, ErrCorrupt, "geometry"},
		{"name without NUL", func(b []byte) { copy(b[sbNodeName:], strings.Repeat("x", 64)); reseal(b) }, ErrCorrupt, "node name"},
		{"name trailing garbage", func(b []byte) { b[sbNodeName+40] = 'x'; reseal(b) }, ErrCorrupt, "node name"},
		{"name not UTF-8", func(b []byte) { b[sbVolumeName] = 0xff; reseal(b) }, ErrCorrupt, "volume name"},
		{"data size", func(b []byte) {
			binary.BigEndian.PutUint64(b[sbDataSize:], binary.BigEndian.Uint64(b[sbDataSize:])+BlockSize)
			reseal(b)
		}, ErrCorrupt, "geometry"},
		{"AL extents out of range", func(b []byte) { binary.BigEndian.PutUint32(b[sbALExtents:], 3); reseal(b) }, ErrCorrupt, "activity log"},
		{"AL extents changed", func(b []byte) { binary.BigEndian.PutUint32(b[sbALExtents:], 20000); reseal(b) }, ErrCorrupt, "geometry"},
		{"backing too small", func(b []byte) { binary.BigEndian.PutUint64(b[sbBackingSize:], 4096); reseal(b) }, ErrCorrupt, "geometry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := append([]byte(nil), good...)
			tt.edit(b)
			_, err := decodeSuperblock(b)
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("decode = %v, want %v mentioning %q", err, tt.err, tt.detail)
			}
		})
	}
	if _, err := decodeSuperblock(good[:100]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short buffer: %v", err)
	}
}

func TestFlagsString(t *testing.T) {
	tests := []struct {
		f    Flags
		want string
	}{
		{0, "none"},
		{FlagConsistent, "consistent"},
		{FlagConsistent | FlagWasUpToDate | FlagCleanShutdown, "consistent,was-up-to-date,clean-shutdown"},
		{FlagPrimary | FlagCrashedPrimary | FlagPeerOutdated | FlagOutdated | FlagConnected | FlagFullSync,
			"primary,crashed-primary,peer-outdated,outdated,connected,full-sync"},
		{1<<62 | FlagPrimary, "primary,0x4000000000000000"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("Flags(%#x).String() = %q, want %q", uint64(tt.f), got, tt.want)
		}
	}
}

func TestVolumeUUID(t *testing.T) {
	u, err := NewVolumeUUID(seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	s := u.String()
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[14] != '4' || s[18] != '-' || s[23] != '-' || !strings.ContainsAny(s[19:20], "89ab") {
		t.Errorf("UUID %s is not a version 4 UUID", s)
	}
	v, _ := NewVolumeUUID(seeded(4))
	if u == v {
		t.Error("two seeds gave the same UUID")
	}
	if got := (VolumeUUID{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}).String(); got != "deadbeef-0001-0203-0405-060708090a0b" {
		t.Errorf("String = %s", got)
	}
}
