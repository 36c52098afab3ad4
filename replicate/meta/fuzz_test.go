package meta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// FuzzDecodeSuperblock checks that decoding any block never panics, fails
// only with one of the package's conditions, and that whatever decodes
// encodes back to the same bytes: nothing on disk is ignored.
//
// The input is the start of a block, zero-padded to 4 KiB; with fixCRC the
// checksum is recomputed so mutations reach the field checks behind it
// (random bytes would practically never carry a valid CRC32C). Keeping
// the inputs short also keeps the fuzzer's minimisation cheap. The raw
// input is decoded as well, for the length check.
//
// Seeds: testdata/fuzz/FuzzDecodeSuperblock (go test -run
// TestFuzzCorpus -update rewrites them).
func FuzzDecodeSuperblock(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, fixCRC bool) {
		checkSuperDecode(t, b)
		block := make([]byte, superSize)
		copy(block, b)
		if fixCRC {
			reseal(block)
		}
		checkSuperDecode(t, block)
	})
}

func checkSuperDecode(t *testing.T, b []byte) {
	s, err := decodeSuperblock(b)
	if err != nil {
		if !errors.Is(err, ErrNoMetadata) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decode error %v wraps no condition", err)
		}
		return
	}
	out, err := s.encode()
	if err != nil {
		t.Fatalf("encode(decode(b)): %v", err)
	}
	if !bytes.Equal(out, b) {
		t.Fatalf("encode(decode(b)) differs at byte %d", firstDiff(out, b))
	}
	if _, err := NewLayout(s.Layout.BackingSize, s.Layout.Internal, s.Layout.ALExtents); err != nil {
		t.Fatalf("decoded an impossible layout: %v", err)
	}
}

// FuzzDecodeALTx does the same for activity-log transactions.
func FuzzDecodeALTx(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, fixCRC bool) {
		checkTxDecode(t, b)
		block := make([]byte, BlockSize)
		copy(block, b)
		if fixCRC {
			binary.BigEndian.PutUint32(block[alCRC:], crc32.Checksum(block[:alCRC], crcTable))
		}
		checkTxDecode(t, block)
	})
}

func checkTxDecode(t *testing.T, b []byte) {
	tx, err := decodeALTx(b)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decode error %v is not ErrCorrupt", err)
		}
		return
	}
	out := make([]byte, BlockSize)
	tx.encodeTo(out)
	if !bytes.Equal(out, b) {
		t.Fatalf("encode(decode(b)) differs at byte %d", firstDiff(out, b))
	}
}

// FuzzALReplay builds a ring of well-formed transactions from the input
// (valid checksums, arbitrary contents, gaps, torn and stray slots), opens
// it and checks the log is either reported lost or is a consistent set
// that survives a further commit and another replay unchanged.
func FuzzALReplay(f *testing.F) {
	f.Fuzz(func(t *testing.T, spec []byte) {
		capacity := MinALExtents
		if len(spec) > 0 && spec[0]&1 == 1 {
			capacity = alContextMax + 17 // windows cover the set in two transactions
		}
		d, c, m := replayTemplate(t, capacity)
		l := m.Layout()
		ring := buildRing(spec, m.uuid, capacity, l.ALSlots, uint32(l.Extents()))
		if _, err := d.WriteAt(ring, l.ALOffset); err != nil {
			t.Fatal(err)
		}

		m2 := reopen(t, c)
		a := m2.AL()
		active := a.Active()
		if a.Lost() != "" {
			if len(active) != 0 {
				t.Fatalf("lost log with %d active extents", len(active))
			}
			if err := a.Commit(); !errors.Is(err, ErrALNotApplied) {
				t.Fatalf("Commit on a lost log = %v", err)
			}
			if _, err := m2.ApplyAL(); err != nil {
				t.Fatal(err)
			}
		}
		if len(active) > capacity {
			t.Fatalf("%d active extents in a log of %d", len(active), capacity)
		}
		for _, e := range active {
			if uint64(e) >= l.Extents() {
				t.Fatalf("extent %d beyond the volume", e)
			}
		}
		// A new extent must commit on top of whatever was loaded, and the
		// result must replay to the same set.
		e := uint32(l.Extents() - 1)
		a.Activate(e)
		for !a.IsActive(e) {
			if err := a.Commit(); err != nil {
				t.Fatalf("Commit after load: %v", err)
			}
		}
		a.Release(e)
		m3 := reopen(t, c)
		if m3.AL().Lost() != "" || !slices.Equal(m3.AL().Active(), a.Active()) {
			t.Fatalf("after one commit the replay gives lost=%q %v, memory has %v", m3.AL().Lost(), short(m3.AL().Active()), short(a.Active()))
		}
	})
}

var (
	templateMu sync.Mutex
	templates  = map[int]*MemDevice{}
)

// replayTemplate returns fresh metadata for a 1024-extent volume with an
// activity log of the given capacity: a clone of one created once, since
// Create dominated the cost of an execution.
func replayTemplate(t *testing.T, capacity int) (*MemDevice, Config, *Meta) {
	templateMu.Lock()
	defer templateMu.Unlock()
	tmpl, ok := templates[capacity]
	if !ok {
		var c Config
		tmpl, c = testDev(t, 1024*ExtentSize, false, capacity)
		create(t, c, capacity)
		templates[capacity] = tmpl
	}
	d := tmpl.Clone()
	_, c := testDev(t, 1024*ExtentSize, false, capacity)
	c.Device = d
	return d, c, reopen(t, c)
}

// buildRing turns fuzz input into ring contents. Per slot one byte picks
// what to put there: nothing, garbage, or a transaction whose fields come
// from the following bytes (seq and base relative to a running counter,
// so runs, gaps and restarts all occur).
func buildRing(spec []byte, uuid VolumeUUID, capacity, nslots int, extents uint32) []byte {
	next := func() byte {
		if len(spec) == 0 {
			return 0
		}
		b := spec[0]
		spec = spec[1:]
		return b
	}
	next() // the capacity choice
	ring := make([]byte, nslots*BlockSize)
	seq, base := uint64(next())+1, uint64(1)
	for range nslots {
		kind := next() % 4
		seq += uint64(next() % 3)
		if next()%5 == 0 {
			base = seq
		}
		if kind == 0 {
			continue
		}
		slotBuf := ring[(seq%uint64(nslots))*BlockSize:][:BlockSize]
		if kind == 1 {
			for i := range slotBuf {
				slotBuf[i] = byte(i) ^ next()
			}
			continue
		}
		tx := alTx{seq: seq, base: min(base, seq), uuid: uuid, capacity: uint32(capacity)}
		if kind == 3 {
			tx.uuid[0]++ // a stray from another Create
		}
		used := map[uint32]bool{}
		for range int(next() % 5) {
			s := uint32(next()) % uint32(capacity)
			if used[s] {
				continue
			}
			used[s] = true
			e := slotValue(s, 1)
			if b := next(); b&1 == 0 {
				e = pickExtent(b, extents)
			}
			tx.updates = append(tx.updates, alUpdate{slot: s, extent: e})
		}
		tx.ctxStart = uint32(next()) * 131 % uint32(capacity)
		pattern := next()
		tx.context = make([]uint32, alContextFor(capacity))
		for i := range tx.context {
			s := (tx.ctxStart + uint32(i)) % uint32(capacity)
			tx.context[i] = slotValue(s, pattern)
			if pattern%4 == 3 {
				tx.context[i] = pickExtent(byte(s)*pattern, extents)
			}
		}
		tx.encodeTo(slotBuf)
		seq++
	}
	return ring
}

// slotValue is a consistent content for slot s: the same extent in the
// same slot in every transaction, so rings built with it replay cleanly.
func slotValue(s uint32, pattern byte) uint32 {
	switch pattern % 4 {
	case 0:
		return alEmpty
	case 2:
		if s%2 == 1 {
			return alEmpty
		}
	}
	return s + 1
}

// ringSpec is a FuzzALReplay input: n consecutive transactions, each
// updating two slots consistently, with context pattern p.
func ringSpec(big bool, n int, p byte) []byte {
	spec := []byte{0, 0}
	if big {
		spec[0] = 1
	}
	for i := range n {
		spec = append(spec, 2, 0, 1, 2, byte(i), 1, byte(i+1), 3, byte(i), p)
	}
	return spec
}

func pickExtent(b byte, extents uint32) uint32 {
	switch b {
	case 0, 1:
		return alEmpty
	case 2:
		return extents // one past the end
	}
	return uint32(b) * 7 % extents
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestFuzzCorpus checks that the seed corpus exists; with -update it
// writes it: valid and broken superblocks and transactions, and ring
// specs for FuzzALReplay.
func TestFuzzCorpus(t *testing.T) {
	sb := sampleSuper(t)
	sbValid, _ := sb.encode()
	sb.Layout = mustLayout(t, 3*tib+5, false, 4000)
	sbExternal, _ := sb.encode()
	sbFuture := append([]byte(nil), sbValid...)
	binary.BigEndian.PutUint32(sbFuture[sbVersion:], 2)

	tx7 := make([]byte, BlockSize)
	(&alTx{seq: 9, base: 1, uuid: sb.VolumeUUID, capacity: 7, ctxStart: 0,
		updates: []alUpdate{{3, 42}, {6, 1}},
		context: []uint32{0, 5, alEmpty, 42, 8, 9, 1}}).encodeTo(tx7)
	txTorn := append(append([]byte(nil), tx7[:2000]...), make([]byte, BlockSize-2000)...)

	// Decoder seeds are (block prefix, fixCRC): trimmed, resealed
	// blocks, and broken prefixes. They are kept short: the fuzzer's
	// minimisation of a new input is quadratic in its length, and whole
	// 4 KiB inputs stall it for a minute each.
	type seed struct {
		b   []byte
		fix bool
	}
	trim := func(b []byte) seed { return seed{bytes.TrimRight(b[:len(b)-4], "\x00"), true} }
	small := alTx{seq: 1, base: 1, uuid: sb.VolumeUUID, capacity: 64, ctxStart: 60,
		updates: []alUpdate{{0, 10}, {63, 0}}, context: make([]uint32, 64)}
	for i := range small.context {
		small.context[i] = alEmpty
	}
	small.context[4], small.context[3] = 10, 0
	txSmall := make([]byte, BlockSize)
	small.encodeTo(txSmall)

	corpus := map[string]map[string]seed{
		"FuzzDecodeSuperblock": {
			"valid-internal": trim(sbValid),
			"valid-external": trim(sbExternal),
			"future-version": trim(sbFuture),
			"torn":           {sbValid[:1000], false},
			"zeros":          {nil, false},
			"short":          {sbValid[:100], false},
		},
		"FuzzDecodeALTx": {
			"valid-7":   trim(tx7),
			"valid-64":  trim(txSmall),
			"torn":      {txTorn[:2000], false},
			"zeros":     {nil, false},
			"bad-magic": {append([]byte("xxxx"), trim(tx7).b[4:]...), true},
			"short":     {tx7[:47], false},
		},
	}
	replay := map[string][]byte{
		"empty":          {},
		"run-of-3":       ringSpec(false, 3, 1),
		"full-ring":      ringSpec(false, 8, 2),
		"two-windows":    ringSpec(true, 8, 1),
		"windows-sparse": ringSpec(true, 3, 2),
		"chaos":          ringSpec(true, 8, 3),
		"torn-and-gaps":  append(ringSpec(false, 2, 1), 1, 0, 1, 9, 9, 0, 2, 2, 0, 3, 1, 1, 2, 2, 0, 1),
		"stray":          append(ringSpec(true, 1, 1), 3, 0, 1, 2, 3, 4, 5, 6, 7, 8),
	}
	files := map[string]string{}
	for target, seeds := range corpus {
		for name, sd := range seeds {
			if strings.HasPrefix(name, "valid-") {
				// A valid seed must reach the end of its decoder.
				block := make([]byte, BlockSize)
				copy(block, sd.b)
				var err error
				if target == "FuzzDecodeSuperblock" {
					if sd.fix {
						reseal(block)
					}
					_, err = decodeSuperblock(block)
				} else {
					if sd.fix {
						binary.BigEndian.PutUint32(block[alCRC:], crc32.Checksum(block[:alCRC], crcTable))
					}
					_, err = decodeALTx(block)
				}
				if err != nil {
					t.Errorf("seed %s/%s does not decode: %v", target, name, err)
				}
			}
			files[filepath.Join(target, name)] = fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbool(%v)\n", sd.b, sd.fix)
		}
	}
	for name, b := range replay {
		files[filepath.Join("FuzzALReplay", name)] = fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
	}
	for name, content := range files {
		path := filepath.Join("testdata", "fuzz", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("seed corpus missing (go test -run TestFuzzCorpus -update): %v", err)
		}
		if string(got) != content {
			t.Errorf("%s is stale (go test -run TestFuzzCorpus -update)", path)
		}
	}
}
