package meta

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestCreateOpen(t *testing.T) {
	for _, internal := range []bool{true, false} {
		name := "external"
		if internal {
			name = "internal"
		}
		t.Run(name, func(t *testing.T) {
			_, c := testDev(t, gib+12345, internal, 0)
			m := create(t, c, 0)
			sb := m.Super()
			want := Superblock{
				Version:    FormatVersion,
				Seq:        1,
				WrittenAt:  testNow,
				VolumeUUID: sb.VolumeUUID,
				NodeID:     1,
				NodeName:   "alpha",
				VolumeName: "data",
				Flags:      FlagCleanShutdown,
				GI:         GI{Current: UUIDJustCreated},
				Layout:     mustLayout(t, gib+12345, internal, 0),
			}
			if sb != want {
				t.Fatalf("created\n got %+v\nwant %+v", sb, want)
			}
			if sb.VolumeUUID == (VolumeUUID{}) {
				t.Fatal("no volume UUID")
			}
			m2 := reopen(t, c)
			got := m2.Super()
			got.WrittenAt = got.WrittenAt.UTC()
			if got != want {
				t.Fatalf("reopened\n got %+v\nwant %+v", got, want)
			}
			if m2.Bitmap().Count() != 0 || len(m2.AL().Active()) != 0 || m2.AL().Lost() != "" || m2.Err() != nil {
				t.Fatalf("fresh metadata: %d bits, active %v, lost %q, err %v",
					m2.Bitmap().Count(), m2.AL().Active(), m2.AL().Lost(), m2.Err())
			}
			if m2.Layout() != want.Layout || m2.Bitmap().Len() != want.Layout.Bits() {
				t.Fatalf("layout %+v", m2.Layout())
			}
		})
	}
}

func TestCreateRefuses(t *testing.T) {
	d, c := testDev(t, gib, true, 0)
	m := create(t, c, 0)
	if err := m.Update(func(s *Superblock) error { s.GI.Current = uX; return nil }); err != nil {
		t.Fatal(err)
	}
	uuid := m.Super().VolumeUUID

	_, err := Create(c, CreateOptions{NodeName: "bravo"})
	var ee *ExistsError
	if !errors.Is(err, ErrExists) || !errors.As(err, &ee) || !ee.Valid {
		t.Fatalf("Create over metadata = %v, want a valid *ExistsError", err)
	}
	if ee.Found.VolumeUUID != uuid || ee.Found.NodeName != "alpha" || ee.Found.Seq != 2 {
		t.Fatalf("found %+v", ee.Found)
	}
	for _, s := range []string{uuid.String(), `"alpha"`, `"data"`, "id 1", "2025-06-01T12:00:00Z", "force"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
	if got := reopen(t, c).Super(); got.VolumeUUID != uuid || got.GI.Current != uX {
		t.Fatal("refused Create changed the metadata")
	}

	// Damaged metadata is refused too, saying why.
	writeGarbageAt(t, d, m.Layout().SuperOffset[0]+100)
	writeGarbageAt(t, d, m.Layout().SuperOffset[1]+100)
	_, err = Create(c, CreateOptions{})
	if !errors.As(err, &ee) || ee.Valid || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("Create over damaged metadata = %v", err)
	}

	// Force overwrites, with a new identity and a clean slate.
	m2, err := Create(c, CreateOptions{NodeName: "bravo", Force: true, Rand: seeded(9)})
	if err != nil {
		t.Fatal(err)
	}
	if s := m2.Super(); s.VolumeUUID == uuid || s.NodeName != "bravo" || s.GI.Current != UUIDJustCreated {
		t.Fatalf("forced Create: %+v", s)
	}
	if got := reopen(t, c).Super(); got.NodeName != "bravo" {
		t.Fatalf("reopened after forced Create: %+v", got)
	}
}

func TestCreateNewerFormatRefused(t *testing.T) {
	d, c := testDev(t, gib, false, 0)
	create(t, c, 0)
	setVersion(t, d, 0, 7)
	_, err := Create(c, CreateOptions{})
	var ee *ExistsError
	if !errors.As(err, &ee) || ee.Valid || !strings.Contains(err.Error(), "version 7") {
		t.Fatalf("Create over a newer format = %v", err)
	}
}

func writeGarbageAt(t *testing.T, d *MemDevice, off int64) {
	t.Helper()
	if _, err := d.WriteAt([]byte("garbage"), off); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func setVersion(t *testing.T, d *MemDevice, off int64, v byte) {
	t.Helper()
	if _, err := d.WriteAt([]byte{0, 0, 0, v}, off+sbVersion); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name     string
		internal bool
		setup    func(t *testing.T, d *MemDevice, c *Config, l Layout) // after Create
		fresh    bool                                                  // no Create
		err      error
		detail   []string
	}{
		{name: "never created", internal: true, fresh: true, err: ErrNoMetadata, detail: []string{"all zeros", "create-md"}},
		{name: "empty external file", fresh: true, setup: func(t *testing.T, d *MemDevice, c *Config, l Layout) {
			c.Device = NewMemDevice(0)
		}, err: ErrNoMetadata},
		{name: "a filesystem", internal: true, fresh: true, setup: func(t *testing.T, d *MemDevice, c *Config, l Layout) {
			offs, _ := superblockOffsets(c.BackingSize, true)
			writeGarbageAt(t, d, offs[0])
			writeGarbageAt(t, d, offs[1])
		}, err: ErrNoMetadata, detail: []string{`wrong magic "garbage\x00"`}},
		{name: "newer format", internal: true, setup: func(t *testing.T, d *MemDevice, c *Config, l Layout) {
			setVersion(t, d, l.SuperOffset[1], 2)
		}, err: ErrVersion, detail: []string{"format version 2", "superblock 1", "upgrade"}},
		{name: "both copies corrupt", internal: true, setup: func(t *testing.T, d *MemDevice, c *Config, l Layout) {
			writeGarbageAt(t, d, l.SuperOffset[0]+300)
			writeGarbageAt(t, d, l.SuperOffset[1]+sbSeq)
		}, err: ErrCorrupt, detail: []string{"both superblock copies", "copy 0", "copy 1", "checksum"}},
		{name: "one copy corrupt is fine", internal: true, setup: func(t *testing.T, d *MemDevice, c *Config, l Layout) {
			writeGarbageAt(t, d, l.SuperOffset[0]+300)
		}},
		{name: "external, bigger backing device", setup: func(t *testing.T, d *MemDevice, c *Config, l Layout) {
			c.BackingSize += 10 * gib
		}, err: ErrSizeMismatch, detail: []string{"created for a 1073741824-byte backing device", "this one is 11811160064 bytes"}},
		{name: "external, smaller backing device", setup: func(t *testing.T, d *MemDevice, c *Config, l Layout) {
			c.BackingSize -= BlockSize
		}, err: ErrSizeMismatch},
		{name: "external, sub-block growth", setup: func(t *testing.T, d *MemDevice, c *Config, l Layout) {
			c.BackingSize += 100
		}, err: ErrSizeMismatch}, // recorded for another size: said, not guessed
		{name: "internal, grown device", internal: true, setup: func(t *testing.T, d *MemDevice, c *Config, l Layout) {
			c.BackingSize += gib // the superblocks are now in the middle
		}, err: ErrNoMetadata, detail: []string{"resized"}},
		{name: "internal, sub-block growth", internal: true, setup: func(t *testing.T, d *MemDevice, c *Config, l Layout) {
			c.BackingSize += 100 // same aligned end: found, but recorded for another size
		}, err: ErrSizeMismatch, detail: []string{"1073741824-byte", "1073741924 bytes"}},
		{name: "opened as external", internal: true, setup: func(t *testing.T, d *MemDevice, c *Config, l Layout) {
			// An external file that is a copy of the internal area.
			e := NewMemDevice(l.MetaSize)
			buf := make([]byte, superSize)
			d.ReadAt(buf, l.SuperOffset[0])
			e.WriteAt(buf, 0)
			c.Device, c.Internal = e, false
		}, err: ErrSizeMismatch, detail: []string{"created as internal", "opened as external"}},
		{name: "truncated metadata file", setup: func(t *testing.T, d *MemDevice, c *Config, l Layout) {
			e := NewMemDevice(l.BitmapOffset + 10)
			buf := make([]byte, l.BitmapOffset)
			d.ReadAt(buf, 0)
			e.WriteAt(buf, 0)
			c.Device = e
		}, err: ErrCorrupt, detail: []string{"bitmap", "ends early"}},
		{name: "too small for a superblock", internal: true, fresh: true, setup: func(t *testing.T, d *MemDevice, c *Config, l Layout) {
			c.BackingSize = 4096
		}, err: ErrTooSmall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, c := testDev(t, gib, tt.internal, 0)
			var l Layout
			if !tt.fresh {
				l = create(t, c, 0).Layout()
			}
			if tt.setup != nil {
				tt.setup(t, d, &c, l)
			}
			_, err := Open(c)
			if tt.err == nil {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("Open = %v, want %v", err, tt.err)
			}
			for _, s := range tt.detail {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	d, c := testDev(t, gib, true, 0)
	m := create(t, c, 0)
	clock := testNow
	m.now = func() time.Time { clock = clock.Add(time.Second); return clock }

	for i := range 5 {
		err := m.Update(func(s *Superblock) error {
			s.Flags |= FlagConsistent
			s.GI = s.GI.Promote(uY+uint64(i)<<8, false)
			s.Seq = 999 // ignored
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sb := m.Super()
	if sb.Seq != 6 || !sb.WrittenAt.Equal(testNow.Add(5*time.Second)) || !sb.GI.Primary() || sb.Flags&FlagConsistent == 0 {
		t.Fatalf("after 5 updates: %+v", sb)
	}
	d.Crash() // everything was synced
	if got := reopen(t, c).Super(); got.Seq != 6 || got.GI != sb.GI {
		t.Fatalf("reopened: %+v", got)
	}

	// fn's error abandons the update.
	stop := errors.New("stop")
	if err := m.Update(func(s *Superblock) error { s.NodeID = 9; return stop }); err != stop || m.Super().NodeID != 1 {
		t.Fatalf("abandoned update: %v, node id %d", err, m.Super().NodeID)
	}

	// Identity and geometry cannot change.
	for name, fn := range map[string]func(*Superblock){
		"uuid":    func(s *Superblock) { s.VolumeUUID[0]++ },
		"version": func(s *Superblock) { s.Version++ },
		"layout":  func(s *Superblock) { s.Layout.ALExtents++ },
		"name":    func(s *Superblock) { s.NodeName = strings.Repeat("x", 64) },
	} {
		if err := m.Update(func(s *Superblock) error { fn(s); return nil }); err == nil {
			t.Errorf("Update changing the %s succeeded", name)
		}
	}
	if m.Super().Seq != 6 || m.Err() != nil {
		t.Fatalf("refused updates changed the state: seq %d, err %v", m.Super().Seq, m.Err())
	}
}

// TestUpdateTorn tears the superblock write after every byte: Open must
// find the previous state unless the whole copy arrived.
func TestUpdateTorn(t *testing.T) {
	for _, internal := range []bool{true, false} {
		d, c := testDev(t, 64*mib, internal, MinALExtents)
		m := create(t, c, MinALExtents)
		for range 3 {
			if err := m.Update(func(s *Superblock) error { s.NodeID++; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		old := m.Super()
		for k := 0; k <= superSize; k++ {
			dk := d.Clone()
			ck := c
			ck.Device = dk
			mk := reopen(t, ck)
			dk.FailSync(0, errInjected)
			err := mk.Update(func(s *Superblock) error {
				s.Flags |= FlagPrimary
				s.GI = s.GI.Promote(uN, false)
				return nil
			})
			if !errors.Is(err, errInjected) {
				t.Fatalf("Update with failing sync = %v", err)
			}
			if mk.Super() != old {
				t.Fatal("a failed update changed Super")
			}
			if err := mk.Update(func(*Superblock) error { return nil }); !errors.Is(err, ErrFailed) {
				t.Fatalf("update after a failure = %v, want ErrFailed", err)
			}
			dk.CrashAfter(0, k)
			got := reopen(t, ck).Super()
			if k < superSize {
				if got.Seq != old.Seq || got.GI != old.GI || got.Flags != old.Flags {
					t.Fatalf("internal=%v torn after %d bytes: loaded seq %d %v, want the old seq %d", internal, k, got.Seq, got.GI, old.Seq)
				}
			} else if got.Seq != old.Seq+1 || !got.GI.Primary() || got.Flags&FlagPrimary == 0 {
				t.Fatalf("whole write: loaded seq %d %v", got.Seq, got.GI)
			}
		}
	}
}

// TestUpdateLostWrites drops writes that were never synced: the state
// goes back to the last update that returned, and updates that returned
// are never lost.
func TestUpdateLostWrites(t *testing.T) {
	d, c := testDev(t, gib, true, 0)
	m := create(t, c, 0)
	if err := m.Update(func(s *Superblock) error { s.NodeID = 10; return nil }); err != nil {
		t.Fatal(err)
	}
	d.FailSync(0, errInjected)
	if err := m.Update(func(s *Superblock) error { s.NodeID = 11; return nil }); err == nil {
		t.Fatal("update with a failing sync succeeded")
	}
	m.Bitmap().Set(0, 100)
	if err := m.Bitmap().Flush(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Flush after a failure = %v, want ErrFailed", err)
	}
	d.Crash()
	m2 := reopen(t, c)
	if m2.Super().NodeID != 10 || m2.Bitmap().Count() != 0 {
		t.Fatalf("after losing unsynced writes: node id %d, %d bits", m2.Super().NodeID, m2.Bitmap().Count())
	}
	// Reopened, the metadata works again, and the next update overwrites
	// the copy the lost one was aimed at.
	if err := m2.Update(func(s *Superblock) error { s.NodeID = 12; return nil }); err != nil {
		t.Fatal(err)
	}
	d.Crash()
	if got := reopen(t, c).Super(); got.NodeID != 12 || got.Seq != 3 {
		t.Fatalf("after a synced update: %+v", got)
	}
}

// TestUpdateWriteError checks the sticky failure after a failed write.
func TestUpdateWriteError(t *testing.T) {
	d, c := testDev(t, gib, false, 0)
	m := create(t, c, 0)
	d.FailWrites(errInjected)
	if err := m.Update(func(*Superblock) error { return nil }); !errors.Is(err, errInjected) {
		t.Fatalf("Update = %v", err)
	}
	d.FailWrites(nil)
	if err := m.AL().Commit(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Commit after a failure = %v, want ErrFailed", err)
	}
	if _, err := m.ApplyAL(); !errors.Is(err, ErrFailed) {
		t.Fatalf("ApplyAL after a failure = %v, want ErrFailed", err)
	}
	if m.Err() == nil || !strings.Contains(m.Err().Error(), errInjected.Error()) {
		t.Fatalf("Err = %v", m.Err())
	}
}

func TestApplyAL(t *testing.T) {
	_, c := testDev(t, gib, true, 0)
	m := create(t, c, 0)
	for _, e := range []uint32{0, 5, 255} { // 255 is the last, partial extent
		activate(t, m.AL(), e)
	}
	m2 := reopen(t, c)
	n, err := m2.ApplyAL()
	if err != nil || n != 3 {
		t.Fatalf("ApplyAL = %d, %v", n, err)
	}
	bits := m2.Layout().Bits()
	want := 2*BlocksPerExtent + (bits - 255*BlocksPerExtent)
	if got := reopen(t, c).Bitmap().Count(); got != want {
		t.Fatalf("%d bits on disk after ApplyAL, want %d", got, want)
	}
}

// TestDump compares dump-md's output with a golden file; -update
// rewrites it.
func TestDump(t *testing.T) {
	_, c := testDev(t, gib, true, 0)
	m := create(t, c, 0)
	if err := m.Update(func(s *Superblock) error {
		s.Flags = FlagConsistent | FlagWasUpToDate | FlagPrimary | 1<<40
		s.GI = GI{uY | role, uX, [2]uint64{uH0, uH1}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []uint32{0, 1, 2, 3, 17, 20, 21} {
		activate(t, m.AL(), e)
	}
	m.Bitmap().Set(1000, 300)
	if err := m.Bitmap().Flush(); err != nil {
		t.Fatal(err)
	}
	m = reopen(t, c)
	var b bytes.Buffer
	if err := m.Dump(&b); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "dump.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Fatalf("dump differs from %s (go test -update to accept):\n%s", golden, b.String())
	}
}
