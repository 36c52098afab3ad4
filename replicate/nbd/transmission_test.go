package nbd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pattern returns n bytes that differ from zero and from each other's
// neighbourhoods, seeded by seed.
func pattern(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32()) | 1
	}
	return b
}

// TestTransmission sends every command and every error path once, checks the
// reply, the backend calls it caused and the device content, then checks
// that the stream is still in step with a flush.
func TestTransmission(t *testing.T) {
	const size = testSize
	const big = MaxPayload + 2<<20 // a device where MaxPayload+1 is in range
	fua, noHole, fastZero := uint16(cmdFlagFUA), uint16(cmdFlagNoHole), uint16(1<<4)

	tests := []struct {
		name     string
		size     int // device size, testSize when 0
		readOnly bool
		flags    uint16
		typ      uint16
		off      uint64
		length   uint32
		fail     error // the backend fails with this
		errno    uint32
		calls    []call
	}{
		{name: "read", typ: cmdRead, off: 4096, length: 8192, calls: []call{{op: "read", off: 4096, len: 8192}}},
		{name: "read unaligned", typ: cmdRead, off: 1, length: 3, calls: []call{{op: "read", off: 1, len: 3}}},
		{name: "read with fua", flags: fua, typ: cmdRead, length: 512, calls: []call{{op: "read", len: 512}}},
		{name: "read last byte", typ: cmdRead, off: size - 1, length: 1, calls: []call{{op: "read", off: size - 1, len: 1}}},
		{name: "read zero length", typ: cmdRead, off: 512},
		{name: "read zero length at end", typ: cmdRead, off: size},
		{name: "read past end", typ: cmdRead, off: size - 512, length: 1024, errno: errInval},
		{name: "read offset past end", typ: cmdRead, off: size + 1, errno: errInval},
		{name: "read offset overflow", typ: cmdRead, off: math.MaxUint64, length: 2, errno: errInval},
		{name: "read over max payload", size: big, typ: cmdRead, length: MaxPayload + 1, errno: errInval},
		{name: "read max payload", size: big, typ: cmdRead, off: 1, length: MaxPayload, calls: []call{{op: "read", off: 1, len: MaxPayload}}},
		{name: "read with no-hole flag", flags: noHole, typ: cmdRead, length: 512, errno: errInval},
		{name: "read on read-only", readOnly: true, typ: cmdRead, length: 512, calls: []call{{op: "read", len: 512}}},
		{name: "read backend error", typ: cmdRead, length: 512, fail: errors.New("disk on fire"), errno: errIO, calls: []call{{op: "read", len: 512}}},

		{name: "write", typ: cmdWrite, off: 512, length: 4096, calls: []call{{op: "write", off: 512, len: 4096}}},
		{name: "write fua", flags: fua, typ: cmdWrite, off: 7, length: 9, calls: []call{{op: "write", off: 7, len: 9, fua: true}}},
		{name: "write to the end", typ: cmdWrite, off: size - 4096, length: 4096, calls: []call{{op: "write", off: size - 4096, len: 4096}}},
		{name: "write zero length", typ: cmdWrite, off: 512},
		{name: "write past end", typ: cmdWrite, off: size - 512, length: 4096, errno: errNoSpc},
		{name: "write offset overflow", typ: cmdWrite, off: math.MaxUint64 - 1, length: 4, errno: errNoSpc},
		{name: "write over max payload", size: big, typ: cmdWrite, length: MaxPayload + 1, errno: errInval},
		{name: "write on read-only", readOnly: true, typ: cmdWrite, length: 4096, errno: errPerm},
		{name: "write with no-hole flag", flags: noHole, typ: cmdWrite, length: 512, errno: errInval},
		{name: "write backend error", typ: cmdWrite, length: 512, fail: errors.New("disk on fire"), errno: errIO, calls: []call{{op: "write", len: 512}}},
		{name: "write backend ENOSPC", typ: cmdWrite, length: 512, fail: fmt.Errorf("thin pool: %w", syscall.ENOSPC), errno: errNoSpc, calls: []call{{op: "write", len: 512}}},
		{name: "write backend EDQUOT", typ: cmdWrite, length: 512, fail: syscall.EDQUOT, errno: errNoSpc, calls: []call{{op: "write", len: 512}}},
		{name: "write backend permission", typ: cmdWrite, length: 512, fail: fmt.Errorf("not primary: %w", fs.ErrPermission), errno: errPerm, calls: []call{{op: "write", len: 512}}},
		{name: "write backend EROFS", typ: cmdWrite, length: 512, fail: syscall.EROFS, errno: errPerm, calls: []call{{op: "write", len: 512}}},
		{name: "write backend ESHUTDOWN", typ: cmdWrite, length: 512, fail: syscall.ESHUTDOWN, errno: errShutdown, calls: []call{{op: "write", len: 512}}},

		{name: "flush", typ: cmdFlush, calls: []call{{op: "flush"}}},
		{name: "flush fua", flags: fua, typ: cmdFlush, calls: []call{{op: "flush"}}},
		{name: "flush reserved fields set", typ: cmdFlush, off: 5, length: 5, calls: []call{{op: "flush"}}},
		{name: "flush on read-only", readOnly: true, typ: cmdFlush, calls: []call{{op: "flush"}}},
		{name: "flush with no-hole flag", flags: noHole, typ: cmdFlush, errno: errInval},
		{name: "flush backend error", typ: cmdFlush, fail: syscall.EIO, errno: errIO, calls: []call{{op: "flush"}}},

		{name: "trim", typ: cmdTrim, off: 4096, length: 8192, calls: []call{{op: "trim", off: 4096, len: 8192}}},
		{name: "trim fua flushes", flags: fua, typ: cmdTrim, off: 4096, length: 8192, calls: []call{{op: "trim", off: 4096, len: 8192}, {op: "flush"}}},
		{name: "trim longer than max payload", size: big, typ: cmdTrim, length: big, calls: []call{{op: "trim", len: big}}},
		{name: "trim zero length", typ: cmdTrim, off: 4096},
		{name: "trim past end", typ: cmdTrim, off: size - 4096, length: 8192, errno: errInval},
		{name: "trim on read-only", readOnly: true, typ: cmdTrim, length: 4096, errno: errPerm},
		{name: "trim backend error", typ: cmdTrim, length: 4096, fail: syscall.EIO, errno: errIO, calls: []call{{op: "trim", len: 4096}}},

		{name: "write zeroes", typ: cmdWriteZeroes, off: 100, length: 5000, calls: []call{{op: "zero", off: 100, len: 5000}}},
		{name: "write zeroes fua", flags: fua, typ: cmdWriteZeroes, length: 4096, calls: []call{{op: "zero", len: 4096, fua: true}}},
		{name: "write zeroes no hole", flags: noHole | fua, typ: cmdWriteZeroes, length: 4096, calls: []call{{op: "zero", len: 4096, fua: true}}},
		{name: "write zeroes longer than max payload", size: big, typ: cmdWriteZeroes, length: big, calls: []call{{op: "zero", len: big}}},
		{name: "write zeroes fast zero refused", flags: fastZero, typ: cmdWriteZeroes, length: 4096, errno: errInval},
		{name: "write zeroes past end", typ: cmdWriteZeroes, off: size, length: 1, errno: errNoSpc},
		{name: "write zeroes on read-only", readOnly: true, typ: cmdWriteZeroes, length: 4096, errno: errPerm},
		{name: "write zeroes backend error", typ: cmdWriteZeroes, length: 4096, fail: syscall.ENOSPC, errno: errNoSpc, calls: []call{{op: "zero", len: 4096}}},

		{name: "cache is unknown", typ: 5, length: 4096, errno: errInval},
		{name: "block status is unknown", typ: 7, length: 4096, errno: errInval},
		{name: "unknown command", typ: 0xffff, errno: errInval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := tt.size
			if size == 0 {
				size = testSize
			}
			be := newMemBackend(t, size)
			orig := pattern(size, 1)
			copy(be.data, orig)
			s := newTestServer(t, Export{Name: "vol", Backend: be, ReadOnly: tt.readOnly})
			c := dial(t, s)
			c.open("vol")
			if tt.fail != nil {
				be.setHook(func(call) error { return tt.fail })
			}
			var payload []byte
			if tt.typ == cmdWrite {
				payload = pattern(int(tt.length), 2)
			}
			errno, data := c.do(tt.flags, tt.typ, tt.off, tt.length, payload)
			if errno != tt.errno {
				t.Errorf("errno %d, want %d", errno, tt.errno)
			}
			if calls := be.takeCalls(); !reflect.DeepEqual(calls, tt.calls) {
				t.Errorf("backend calls %+v, want %+v", calls, tt.calls)
			}

			// The device changed exactly as the request says.
			want := bytes.Clone(orig)
			if tt.errno == 0 && tt.fail == nil {
				end := tt.off + uint64(tt.length)
				switch tt.typ {
				case cmdRead:
					if !bytes.Equal(data, orig[tt.off:end]) {
						t.Errorf("read returned other data than the device holds")
					}
				case cmdWrite:
					copy(want[tt.off:], payload)
				case cmdTrim, cmdWriteZeroes:
					clear(want[tt.off:end])
				}
			}
			if !bytes.Equal(be.bytes(), want) {
				t.Errorf("device content differs from the expected one")
			}

			be.setHook(nil)
			if errno, _ := c.do(0, cmdFlush, 0, 0, nil); errno != 0 {
				t.Fatalf("flush after the request: errno %d; the stream is out of step", errno)
			}
			st := s.Stats()
			if tt.errno != 0 && tt.fail == nil && st.Refused != 1 {
				t.Errorf("Stats().Refused = %d, want 1", st.Refused)
			}
			if tt.fail != nil && st.BackendErrors != 1 {
				t.Errorf("Stats().BackendErrors = %d, want 1", st.BackendErrors)
			}
		})
	}
}

func TestBadRequestMagicCloses(t *testing.T) {
	s := newTestServer(t, Export{Name: "vol", Backend: newMemBackend(t, testSize)})
	c := dial(t, s)
	c.open("vol")
	b := appendRequest(nil, 0, cmdRead, 1, 0, 512)
	b[0] ^= 0xff
	c.write(b)
	if !c.closed() {
		t.Fatal("the connection stayed open after a bad request magic")
	}
}

// TestDisconnectWaitsForInflight: NBD_CMD_DISC lets a request in flight
// finish and reply before the server hangs up.
func TestDisconnectWaitsForInflight(t *testing.T) {
	be := newMemBackend(t, testSize)
	s := newTestServer(t, Export{Name: "vol", Backend: be})
	c := dial(t, s)
	c.open("vol")
	entered, release := make(chan struct{}), make(chan struct{})
	be.setHook(func(call) error {
		close(entered)
		<-release
		return nil
	})
	c.request(0, cmdWrite, 7, 0, 4096, pattern(4096, 3))
	<-entered
	c.request(0, cmdDisc, 8, 0, 0, nil)
	time.Sleep(20 * time.Millisecond) // give the server a chance to hang up too early
	close(release)
	if h, errno, _ := c.reply(nil); h != 7 || errno != 0 {
		t.Fatalf("reply handle %d errno %d, want the write's (7) with success", h, errno)
	}
	if !c.closed() {
		t.Fatal("the connection stayed open after NBD_CMD_DISC")
	}
	if !bytes.Equal(be.bytes()[:4096], pattern(4096, 3)) {
		t.Fatal("the write in flight at NBD_CMD_DISC did not reach the device")
	}
}

// TestRepliesOutOfOrder: a slow read does not hold back a later write.
func TestRepliesOutOfOrder(t *testing.T) {
	be := newMemBackend(t, testSize)
	s := newTestServer(t, Export{Name: "vol", Backend: be})
	c := dial(t, s)
	c.open("vol")
	wrote := make(chan struct{})
	be.setHook(func(cl call) error {
		switch cl.op {
		case "read":
			<-wrote
		case "write":
			close(wrote)
		}
		return nil
	})
	c.request(0, cmdRead, 1, 0, 4096, nil)
	c.request(0, cmdWrite, 2, 8192, 4096, pattern(4096, 4))
	lens := func(h uint64) int {
		if h == 1 {
			return 4096
		}
		return 0
	}
	if h, errno, _ := c.reply(lens); h != 2 || errno != 0 {
		t.Fatalf("first reply handle %d errno %d, want the write (2)", h, errno)
	}
	if h, errno, _ := c.reply(lens); h != 1 || errno != 0 {
		t.Fatalf("second reply handle %d errno %d, want the read (1)", h, errno)
	}
}

// TestPipelinedBurst sends 1000 mixed requests without waiting, over one
// connection with a backend that delays each call a little so they finish
// out of order, and checks every reply and the final device against a model.
// Requests that touch the device each own a 16 KiB slot, so the outcome does
// not depend on the order the server runs them in.
func TestPipelinedBurst(t *testing.T) {
	const (
		n     = 1000
		slot  = 16 << 10
		slots = 1024
		size  = slot * slots
	)
	be := newMemBackend(t, size)
	orig := pattern(size, 5)
	copy(be.data, orig)
	be.setHook(func(call) error {
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
		return nil
	})
	s := newTestServer(t, Export{Name: "vol", Backend: be})
	c := dial(t, s)
	c.open("vol")

	type expect struct {
		errno uint32
		data  []byte // a read's
	}
	r := rand.New(rand.NewPCG(6, 6))
	model := bytes.Clone(orig)
	want := make(map[uint64]expect, n)
	readLen := make(map[uint64]int, n)
	// The wire is a list of pieces so the oversized payloads can share
	// one buffer.
	var wire [][]byte
	huge := make([]byte, MaxPayload+1)
	counts := map[uint16]int{}
	perm := r.Perm(slots)
	for i := range n {
		h := uint64(i)*7919 + 1 // handles need not be consecutive
		base := perm[i] * slot
		off := base + r.IntN(slot)
		length := 1 + r.IntN(base+slot-off)
		var flags uint16
		if r.IntN(2) == 0 {
			flags = cmdFlagFUA
		}
		switch k := r.IntN(100); {
		case k < 30:
			wire = append(wire, appendRequest(nil, flags, cmdRead, h, uint64(off), uint32(length)))
			want[h] = expect{data: orig[off : off+length]}
			readLen[h] = length
			counts[cmdRead]++
		case k < 60:
			p := pattern(length, h)
			wire = append(wire, appendRequest(nil, flags, cmdWrite, h, uint64(off), uint32(length)), p)
			copy(model[off:], p)
			want[h] = expect{}
			counts[cmdWrite]++
		case k < 70:
			wire = append(wire, appendRequest(nil, flags, cmdWriteZeroes, h, uint64(off), uint32(length)))
			clear(model[off : off+length])
			want[h] = expect{}
			counts[cmdWriteZeroes]++
		case k < 80:
			wire = append(wire, appendRequest(nil, flags, cmdTrim, h, uint64(off), uint32(length)))
			clear(model[off : off+length]) // the test backend zeroes trimmed ranges
			want[h] = expect{}
			counts[cmdTrim]++
		case k < 85:
			wire = append(wire, appendRequest(nil, 0, cmdFlush, h, 0, 0))
			want[h] = expect{}
			counts[cmdFlush]++
		case k < 89:
			wire = append(wire, appendRequest(nil, 0, cmdRead, h, size-10, 11))
			want[h] = expect{errno: errInval}
			counts[cmdRead]++
		case k < 93:
			wire = append(wire, appendRequest(nil, 0, cmdWrite, h, size-10, 4096), huge[:4096])
			want[h] = expect{errno: errNoSpc}
			counts[cmdWrite]++
		case k < 96:
			wire = append(wire, appendRequest(nil, 0, 9, h, 0, 0))
			want[h] = expect{errno: errInval}
			counts[9]++
		default:
			wire = append(wire, appendRequest(nil, 0, cmdWrite, h, 0, MaxPayload+1), huge)
			want[h] = expect{errno: errInval}
			counts[cmdWrite]++
		}
	}

	sent := make(chan error, 1)
	go func() {
		for _, b := range wire {
			if _, err := c.nc.Write(b); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	outOfOrder, last := 0, uint64(0)
	for range n {
		h, errno, data := c.reply(func(h uint64) int { return readLen[h] })
		w, ok := want[h]
		if !ok {
			t.Fatalf("reply to unknown or already answered handle %d", h)
		}
		delete(want, h)
		if errno != w.errno {
			t.Errorf("handle %d: errno %d, want %d", h, errno, w.errno)
		}
		if w.data != nil && !bytes.Equal(data, w.data) {
			t.Errorf("handle %d: read data differs", h)
		}
		if h < last {
			outOfOrder++
		}
		last = h
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(be.bytes(), model) {
		t.Fatal("device content differs from the model")
	}
	t.Logf("%d of %d replies came out of order", outOfOrder, n)

	st := s.Stats()
	got := map[uint16]int{cmdRead: int(st.Reads), cmdWrite: int(st.Writes), cmdFlush: int(st.Flushes),
		cmdTrim: int(st.Trims), cmdWriteZeroes: int(st.WriteZeroes), 9: int(st.Other)}
	for typ, w := range counts {
		if got[typ] != w {
			t.Errorf("Stats counted %d requests of type %d, sent %d", got[typ], typ, w)
		}
	}
}

// TestInflightLimits: with the backend stalled, the server holds at most its
// request and payload budget, and reading resumes when requests finish.
func TestInflightLimits(t *testing.T) {
	for _, tt := range []struct {
		name            string
		maxReqs         int
		maxBytes        int64
		reqLen          uint32
		wantConcurrency int
	}{
		{"byte budget", 100, 64 << 10, 16 << 10, 4},
		{"request slots", 3, 1 << 20, 4096, 3},
		{"request bigger than the budget", 100, 4096, 16 << 10, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := newMemBackend(t, testSize)
			s := newTestServer(t, Export{Name: "vol", Backend: be})
			s.maxInflight, s.maxInflightBytes = tt.maxReqs, tt.maxBytes
			c := dial(t, s)
			c.open("vol")

			var mu sync.Mutex
			cur, peak := 0, 0
			release := make(chan struct{})
			be.setHook(func(call) error {
				mu.Lock()
				cur++
				peak = max(peak, cur)
				mu.Unlock()
				<-release
				mu.Lock()
				cur--
				mu.Unlock()
				return nil
			})
			const n = 20
			sent := make(chan error, 1)
			go func() {
				var err error
				for i := range n {
					_, err = c.nc.Write(append(appendRequest(nil, 0, cmdWrite, uint64(i), uint64(i)*uint64(tt.reqLen)%testSize, tt.reqLen), make([]byte, tt.reqLen)...))
					if err != nil {
						break
					}
				}
				sent <- err
			}()
			// Wait for the server to fill its budget, then give it time
			// to overstep it.
			peakNow := func() int {
				mu.Lock()
				defer mu.Unlock()
				return peak
			}
			for deadline := time.Now().Add(10 * time.Second); peakNow() < tt.wantConcurrency && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			if got := peakNow(); got != tt.wantConcurrency {
				t.Errorf("%d writes in the backend at once, want %d", got, tt.wantConcurrency)
			}
			close(release)
			for range n {
				if _, errno, _ := c.reply(nil); errno != 0 {
					t.Fatalf("errno %d", errno)
				}
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			if peak > tt.wantConcurrency {
				t.Errorf("peak of %d writes in the backend, limit %d", peak, tt.wantConcurrency)
			}
		})
	}
}

// TestMultiConnFlush: a write completed on one connection is visible on
// another, and a flush on the other reaches the shared backend.
func TestMultiConnFlush(t *testing.T) {
	be := newMemBackend(t, testSize)
	s := newTestServer(t, Export{Name: "vol", Backend: be})
	a, b := dial(t, s), dial(t, s)
	a.open("vol")
	b.open("vol")
	p := pattern(4096, 7)
	if errno, _ := a.do(0, cmdWrite, 8192, 4096, p); errno != 0 {
		t.Fatalf("write on a: errno %d", errno)
	}
	be.takeCalls()
	if errno, _ := b.do(0, cmdFlush, 0, 0, nil); errno != 0 {
		t.Fatalf("flush on b: errno %d", errno)
	}
	if calls := be.takeCalls(); !reflect.DeepEqual(calls, []call{{op: "flush"}}) {
		t.Fatalf("flush on b made backend calls %+v", calls)
	}
	if errno, data := b.do(0, cmdRead, 8192, 4096, nil); errno != 0 || !bytes.Equal(data, p) {
		t.Fatalf("read on b: errno %d, data equal %v", errno, bytes.Equal(data, p))
	}
	if st := s.Stats(); st.ConnsOpen != 2 || st.ConnsTotal != 2 {
		t.Errorf("Stats conns open %d total %d, want 2 and 2", st.ConnsOpen, st.ConnsTotal)
	}
}
