package meta

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// exercise runs a short life on real metadata: create, a promotion, hot
// extents, dirty bits, then a fresh Open that must see all of it.
func exercise(t *testing.T, c Config, reopenCfg func() Config) {
	t.Helper()
	m, err := Create(c, CreateOptions{NodeID: 2, NodeName: "bravo", VolumeName: "data"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := NewUUID(nil)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Update(func(s *Superblock) error {
		s.Flags = s.Flags&^FlagCleanShutdown | FlagConsistent | FlagWasUpToDate | FlagPrimary
		s.GI = s.GI.Promote(u, false)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	last := uint32(m.Layout().Extents() - 1)
	for _, e := range []uint32{0, 3, last} {
		activate(t, m.AL(), e)
		m.Bitmap().Set(uint64(e)*BlocksPerExtent, 2)
		m.AL().Release(e)
	}
	if err := m.Bitmap().Flush(); err != nil {
		t.Fatal(err)
	}
	want := m.Super()

	m2, err := Open(reopenCfg())
	if err != nil {
		t.Fatal(err)
	}
	got := m2.Super()
	if got.Seq != want.Seq || got.GI != want.GI || got.Flags != want.Flags || got.VolumeUUID != want.VolumeUUID || got.Layout != want.Layout {
		t.Fatalf("reopened\n got %+v\nwant %+v", got, want)
	}
	if a := m2.AL().Active(); !slices.Equal(a, []uint32{0, 3, last}) {
		t.Fatalf("reopened active extents %v", a)
	}
	if n := m2.Bitmap().Count(); n != 6 {
		t.Fatalf("reopened bitmap has %d bits, want 6", n)
	}
	var dump bytes.Buffer
	if err := m2.Dump(&dump); err != nil || !strings.Contains(dump.String(), `node:           "bravo"`) {
		t.Fatalf("dump: %v\n%s", err, dump.String())
	}
}

// fillData writes a pattern over the whole data area and returns its
// hash, so a test can prove metadata updates never touch it.
func fillData(t *testing.T, f *os.File, size int64) [32]byte {
	t.Helper()
	h := sha256.New()
	buf := alignedBuf(1 << 20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		for i := range buf[:n] {
			buf[i] = byte((off + int64(i)) / 4096 * 31)
		}
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			t.Fatal(err)
		}
		h.Write(buf[:n])
	}
	return [32]byte(h.Sum(nil))
}

func hashData(t *testing.T, f *os.File, size int64) [32]byte {
	t.Helper()
	h := sha256.New()
	buf := alignedBuf(1 << 20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			t.Fatal(err)
		}
		h.Write(buf[:n])
	}
	return [32]byte(h.Sum(nil))
}

func TestFileInternal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(64*mib + 1234); err != nil {
		t.Fatal(err)
	}
	size, err := BackingSize(f)
	if err != nil || size != 64*mib+1234 {
		t.Fatalf("BackingSize = %d, %v", size, err)
	}
	l, err := NewLayout(size, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	sum := fillData(t, f, l.DataSize)
	c := Config{Device: f, Internal: true, BackingSize: size}
	exercise(t, c, func() Config { return c })
	if hashData(t, f, l.DataSize) != sum {
		t.Fatal("metadata writes changed the data area")
	}
	// The data area's last block can be written without harm.
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xee}, BlockSize), l.DataSize-BlockSize); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(c); err != nil {
		t.Fatalf("Open after writing the last data block: %v", err)
	}
}

func TestFileExternal(t *testing.T) {
	dir := t.TempDir()
	mf, err := os.OpenFile(filepath.Join(dir, "data.meta"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	c := Config{Device: mf, BackingSize: 10 * gib}
	if _, err := Open(c); !errors.Is(err, ErrNoMetadata) {
		t.Fatalf("Open of an empty file = %v, want ErrNoMetadata", err)
	}
	exercise(t, c, func() Config { return c })
	st, err := mf.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := NewLayout(10*gib, false, 0); st.Size() != l.MetaSize {
		t.Fatalf("metadata file is %d bytes, want %d", st.Size(), l.MetaSize)
	}
}

// TestLoopDevice runs the internal layout on a real block device opened
// with O_DIRECT, then reads it back through the file underneath.
func TestLoopDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: attaching a loop device needs root")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("skipping: losetup not found")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 96*mib); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("skipping: losetup cannot attach a loop device here: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})

	open := func() *os.File {
		f, err := os.OpenFile(dev, os.O_RDWR|unix.O_DIRECT, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	f := open()
	size, err := BackingSize(f)
	if err != nil || size != 96*mib {
		t.Fatalf("BackingSize(%s) = %d, %v", dev, size, err)
	}
	l, err := NewLayout(size, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	sum := fillData(t, f, l.DataSize)
	c := Config{Device: f, Internal: true, BackingSize: size}
	exercise(t, c, func() Config {
		c2 := c
		c2.Device = open() // a new descriptor: nothing cached in this process
		return c2
	})
	if hashData(t, f, l.DataSize) != sum {
		t.Fatal("metadata writes changed the data area")
	}

	// The same bytes, read through the image file.
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	imgf, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer imgf.Close()
	m, err := Open(Config{Device: imgf, Internal: true, BackingSize: size})
	if err != nil {
		t.Fatalf("Open through the image file: %v", err)
	}
	if m.Super().NodeName != "bravo" || len(m.AL().Active()) != 3 {
		t.Fatalf("image file shows %+v", m.Super())
	}
}
