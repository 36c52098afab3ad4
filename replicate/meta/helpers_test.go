package meta

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

var errInjected = errors.New("injected I/O error")

// testNow is the fixed clock of every test.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)

func fixedNow() time.Time { return testNow }

// seeded returns a deterministic random source usable as an io.Reader.
func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

// testDev returns a MemDevice and Config for metadata of the given kind:
// internal on a device of size bytes, or external for a backing device of
// size bytes (the metadata device then has just the metadata's size).
func testDev(t testing.TB, size int64, internal bool, alExtents int) (*MemDevice, Config) {
	t.Helper()
	devSize := size
	if !internal {
		l, err := NewLayout(size, false, alExtents)
		if err != nil {
			t.Fatal(err)
		}
		devSize = l.MetaSize
	}
	d := NewMemDevice(devSize)
	return d, Config{Device: d, Internal: internal, BackingSize: size, Now: fixedNow}
}

// create initialises metadata and fails the test on error.
func create(t testing.TB, c Config, alExtents int) *Meta {
	t.Helper()
	m, err := Create(c, CreateOptions{NodeID: 1, NodeName: "alpha", VolumeName: "data", ALExtents: alExtents, Rand: seeded(1)})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return m
}

// reopen opens the metadata again and fails the test on error.
func reopen(t testing.TB, c Config) *Meta {
	t.Helper()
	m, err := Open(c)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return m
}

// activate makes ext hot, committing as needed, and keeps the reference.
func activate(t testing.TB, a *ActivityLog, ext uint32) {
	t.Helper()
	if !a.Activate(ext) {
		return
	}
	for !a.IsActive(ext) {
		if err := a.Commit(); err != nil {
			t.Fatalf("Commit for extent %d: %v", ext, err)
		}
	}
}

const (
	mib = int64(1) << 20
	gib = int64(1) << 30
	tib = int64(1) << 40
	pib = int64(1) << 50
)
