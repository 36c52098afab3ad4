package txlog

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/hactl/hactl/replicate/wire"
)

func TestComplete(t *testing.T) {
	for _, tc := range []struct {
		p    Protocol
		s    PeerState
		want bool
	}{
		{ProtocolA, Sent, true},
		{ProtocolA, NegAcked, true},
		{ProtocolB, Sent, false},
		{ProtocolB, RecvAcked, true},
		{ProtocolB, NegAcked, true},
		{ProtocolC, Sent, false},
		{ProtocolC, RecvAcked, false},
		{ProtocolC, WriteAcked, true},
		{ProtocolC, NegAcked, true},
		{Protocol('D'), Sent, false},
	} {
		if got := Complete(tc.p, tc.s); got != tc.want {
			t.Errorf("Complete(%v, %v) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

func TestAckFlags(t *testing.T) {
	for p, want := range map[Protocol]wire.WriteFlags{
		ProtocolA: 0, ProtocolB: wire.WriteAckRecv, ProtocolC: wire.WriteAckWrite,
	} {
		if got := p.AckFlags(); got != want {
			t.Errorf("%v.AckFlags() = %v, want %v", p, got, want)
		}
	}
}

func add(t *testing.T, l *TransferLog, id uint64, p Protocol) (uint64, bool) {
	t.Helper()
	e, b, err := l.Add(Write{ID: id, Offset: id * 4096, Length: 4096, Proto: p})
	if err != nil {
		t.Fatalf("Add(%d): %v", id, err)
	}
	return e, b
}

func TestAddErrors(t *testing.T) {
	l := NewTransferLog(0)
	add(t, l, 1, ProtocolC)
	for _, tc := range []struct {
		name string
		w    Write
	}{
		{"duplicate", Write{ID: 1, Length: 512, Proto: ProtocolC}},
		{"no protocol", Write{ID: 2, Length: 512}},
		{"empty", Write{ID: 2, Proto: ProtocolC}},
		{"overflow", Write{ID: 2, Offset: 1 << 63, Length: 1 << 63, Proto: ProtocolC}},
	} {
		if _, _, err := l.Add(tc.w); err == nil {
			t.Errorf("%s: Add succeeded", tc.name)
		}
	}
	if l.Len() != 1 {
		t.Fatalf("Len = %d", l.Len())
	}
}

func TestEpochs(t *testing.T) {
	l := NewTransferLog(3)
	if w, b := l.Flush(); w != 0 || b {
		t.Fatalf("Flush of an empty log = %d, %v", w, b)
	}
	for id, want := range []struct {
		epoch   uint64
		barrier bool
	}{{1, false}, {1, false}, {1, true}, {2, false}} {
		e, b := add(t, l, uint64(id), ProtocolA)
		if e != want.epoch || b != want.barrier {
			t.Fatalf("Add(%d) = %d, %v, want %d, %v", id, e, b, want.epoch, want.barrier)
		}
	}
	if w, b := l.Flush(); w != 2 || !b {
		t.Fatalf("Flush = %d, %v, want 2, true", w, b)
	}
	// Nothing new since: wait for the last epoch, no new barrier.
	if w, b := l.Flush(); w != 2 || b {
		t.Fatalf("second Flush = %d, %v, want 2, false", w, b)
	}
	if e, ok := l.CloseEpoch(); ok {
		t.Fatalf("CloseEpoch with nothing open closed %d", e)
	}
	if e, _ := add(t, l, 10, ProtocolA); e != 3 {
		t.Fatalf("epoch after flush = %d, want 3", e)
	}
	if got, err := l.BarrierAck(1, 3); err != nil || len(got) != 3 {
		t.Fatalf("BarrierAck(1) = %v, %v", got, err)
	}
	if got, err := l.BarrierAck(2, 1); err != nil || len(got) != 1 || got[0].ID != 3 {
		t.Fatalf("BarrierAck(2) = %v, %v", got, err)
	}
	if w, b := l.Flush(); w != 3 || !b {
		t.Fatalf("Flush = %d, %v, want 3, true", w, b)
	}
	if _, err := l.BarrierAck(3, 1); err != nil {
		t.Fatal(err)
	}
	if w, b := l.Flush(); w != 0 || b {
		t.Fatalf("Flush with all acked = %d, %v", w, b)
	}
}

func TestAck(t *testing.T) {
	type step struct {
		k         AckKind
		id        uint64
		off       uint64 // 0: the write's own
		completed bool
		err       bool
	}
	for _, tc := range []struct {
		name  string
		proto Protocol
		steps []step
	}{
		{"C write ack", ProtocolC, []step{{k: AckWrite, id: 1, completed: true}}},
		{"C neg ack", ProtocolC, []step{{k: AckNeg, id: 1, completed: true}}},
		{"C recv ack", ProtocolC, []step{{k: AckRecv, id: 1, err: true}}},
		{"C twice", ProtocolC, []step{{k: AckWrite, id: 1, completed: true}, {k: AckWrite, id: 1, err: true}}},
		{"C neg after write", ProtocolC, []step{{k: AckWrite, id: 1, completed: true}, {k: AckNeg, id: 1, err: true}}},
		{"B recv ack", ProtocolB, []step{{k: AckRecv, id: 1, completed: true}}},
		{"B recv then neg", ProtocolB, []step{{k: AckRecv, id: 1, completed: true}, {k: AckNeg, id: 1}}},
		{"B neg", ProtocolB, []step{{k: AckNeg, id: 1, completed: true}}},
		{"B recv twice", ProtocolB, []step{{k: AckRecv, id: 1, completed: true}, {k: AckRecv, id: 1, err: true}}},
		{"B write ack", ProtocolB, []step{{k: AckWrite, id: 1, err: true}}},
		{"A neg", ProtocolA, []step{{k: AckNeg, id: 1}}},
		{"A write ack", ProtocolA, []step{{k: AckWrite, id: 1, err: true}}},
		{"unknown id", ProtocolC, []step{{k: AckWrite, id: 2, err: true}}},
		{"wrong range", ProtocolC, []step{{k: AckWrite, id: 1, off: 512, err: true}}},
		{"bad kind", ProtocolC, []step{{k: 0, id: 1, err: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewTransferLog(0)
			add(t, l, 1, tc.proto)
			for i, s := range tc.steps {
				off := s.off
				if off == 0 {
					off = s.id * 4096
				}
				before, _ := l.snapshot(s.id)
				w, completed, err := l.Ack(s.k, s.id, off, 4096)
				if s.err {
					var pe *ProtocolError
					if !errors.As(err, &pe) || !errors.Is(err, ErrProtocol) || !errors.Is(err, wire.ErrProtocol) {
						t.Fatalf("step %d: err = %v, want a ProtocolError", i, err)
					}
					if after, _ := l.snapshot(s.id); after != before {
						t.Fatalf("step %d: failed ack changed the write: %+v -> %+v", i, before, after)
					}
					continue
				}
				if err != nil || completed != s.completed || w.ID != s.id {
					t.Fatalf("step %d: Ack = %+v, %v, %v, want completed %v", i, w, completed, err, s.completed)
				}
			}
		})
	}
}

// snapshot is the write id as the log holds it.
func (t *TransferLog) snapshot(id uint64) (Write, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w := t.byID[id]; w != nil {
		return *w, true
	}
	return Write{}, false
}

func TestBarrierAckErrors(t *testing.T) {
	// Epoch 1: writes 1 (A), 2 (C), 3 (B), closed. Epoch 2: write 4, open.
	setup := func() *TransferLog {
		l := NewTransferLog(0)
		add(t, l, 1, ProtocolA)
		add(t, l, 2, ProtocolC)
		add(t, l, 3, ProtocolB)
		l.CloseEpoch()
		add(t, l, 4, ProtocolA)
		return l
	}
	ackAll := func(l *TransferLog) {
		if _, _, err := l.Ack(AckWrite, 2, 2*4096, 4096); err != nil {
			t.Fatal(err)
		}
		if _, _, err := l.Ack(AckRecv, 3, 3*4096, 4096); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		acked  bool
		epoch  uint64
		writes uint32
		ok     bool
	}{
		{"good", true, 1, 3, true},
		{"too few", true, 1, 2, false},
		{"too many", true, 1, 4, false},
		{"future epoch", true, 2, 1, false},
		{"old epoch", true, 0, 3, false},
		{"before the acks", false, 1, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := setup()
			if tc.acked {
				ackAll(l)
			}
			got, err := l.BarrierAck(tc.epoch, tc.writes)
			if !tc.ok {
				if !errors.Is(err, ErrProtocol) || got != nil || l.Len() != 4 {
					t.Fatalf("BarrierAck = %v, %v (Len %d), want a protocol error and no change", got, err, l.Len())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ids := []uint64{}
			for _, w := range got {
				ids = append(ids, w.ID)
			}
			if !slices.Equal(ids, []uint64{1, 2, 3}) || l.Len() != 1 {
				t.Fatalf("released %v, Len %d", ids, l.Len())
			}
		})
	}
}

func TestFail(t *testing.T) {
	l := NewTransferLog(2)
	add(t, l, 1, ProtocolC)
	add(t, l, 2, ProtocolC) // closes epoch 1
	add(t, l, 3, ProtocolC)
	if _, _, err := l.Ack(AckWrite, 1, 4096, 4096); err != nil {
		t.Fatal(err)
	}
	failed := l.Fail()
	if len(failed) != 3 || l.Len() != 0 {
		t.Fatalf("Fail = %v, Len %d", failed, l.Len())
	}
	if _, err := l.BarrierAck(1, 2); !errors.Is(err, ErrProtocol) {
		t.Fatalf("stale BarrierAck after Fail: %v", err)
	}
	// Epoch numbers are not reused: epoch 2 was open when the link died.
	if e, _ := add(t, l, 1, ProtocolC); e != 3 {
		t.Fatalf("epoch after Fail = %d, want 3", e)
	}
	if got := NewTransferLog(0).Fail(); len(got) != 0 {
		t.Fatalf("Fail of an empty log = %v", got)
	}
}

// TestTransferLogModel drives random operations against a model and
// checks that every write leaves the log exactly once, through a barrier
// ack of its epoch or through Fail, and that flushes wait for the right
// epoch.
func TestTransferLogModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const maxEpoch = 5
	l := NewTransferLog(maxEpoch)
	type mw struct {
		w     Write
		acked bool // the ack its protocol asks for has come
	}
	var (
		closed  [][]*mw // epochs sent a barrier, oldest first
		open    []*mw
		nextID  uint64 = 1
		out            = map[uint64]int{} // times each write left the log
		lastNum uint64                    // number of the newest closed epoch
	)
	protos := []Protocol{ProtocolA, ProtocolB, ProtocolC}
	leave := func(ws []Write) {
		for _, w := range ws {
			out[w.ID]++
		}
	}
	closeOpen := func(num uint64) {
		for _, m := range open {
			if m.w.Epoch != num {
				t.Fatalf("write %d in epoch %d, closed as %d", m.w.ID, m.w.Epoch, num)
			}
		}
		closed, open, lastNum = append(closed, open), nil, num
	}
	for step := 0; step < 20000; step++ {
		switch op := rng.IntN(20); {
		case op < 8:
			p := protos[rng.IntN(3)]
			w := Write{ID: nextID, Offset: rng.Uint64N(1 << 20), Length: 512 * (1 + rng.Uint64N(8)), Proto: p}
			nextID++
			e, barrier, err := l.Add(w)
			if err != nil {
				t.Fatal(err)
			}
			w.Epoch = e
			open = append(open, &mw{w: w, acked: p == ProtocolA})
			if barrier != (len(open) == maxEpoch) {
				t.Fatalf("step %d: barrier %v with %d writes open", step, barrier, len(open))
			}
			if barrier {
				closeOpen(e)
			}
		case op < 12: // ack a random unacked write
			var cand []*mw
			for _, ep := range append(slices.Clone(closed), open) {
				for _, m := range ep {
					if !m.acked {
						cand = append(cand, m)
					}
				}
			}
			if len(cand) == 0 {
				continue
			}
			m := cand[rng.IntN(len(cand))]
			k := AckNeg
			if rng.IntN(10) > 0 {
				k = map[Protocol]AckKind{ProtocolB: AckRecv, ProtocolC: AckWrite}[m.w.Proto]
			}
			_, completed, err := l.Ack(k, m.w.ID, m.w.Offset, m.w.Length)
			if err != nil || !completed {
				t.Fatalf("step %d: Ack(%v, %d) = %v, %v", step, k, m.w.ID, completed, err)
			}
			m.acked = true
		case op < 14:
			wait, barrier := l.Flush()
			switch {
			case len(open) > 0:
				if !barrier || wait != open[0].w.Epoch {
					t.Fatalf("step %d: Flush = %d, %v with epoch %d open", step, wait, barrier, open[0].w.Epoch)
				}
				closeOpen(wait)
			case len(closed) > 0:
				if barrier || wait != lastNum {
					t.Fatalf("step %d: Flush = %d, %v, want %d, false", step, wait, barrier, lastNum)
				}
			default:
				if barrier || wait != 0 {
					t.Fatalf("step %d: Flush on an acked log = %d, %v", step, wait, barrier)
				}
			}
		case op < 18: // the peer acks the oldest barrier, or lies about it
			if len(closed) == 0 {
				continue
			}
			ep := closed[0]
			ready := true
			for _, m := range ep {
				ready = ready && m.acked
			}
			num, n := ep[0].w.Epoch, uint32(len(ep))
			lie := rng.IntN(5) == 0
			if lie {
				if rng.IntN(2) == 0 {
					n++
				} else {
					num++
				}
			}
			got, err := l.BarrierAck(num, n)
			if lie || !ready {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("step %d: BarrierAck(%d, %d) = %v, want a protocol error", step, num, n, err)
				}
				continue
			}
			if err != nil || len(got) != len(ep) {
				t.Fatalf("step %d: BarrierAck(%d, %d) = %d writes, %v", step, num, n, len(got), err)
			}
			for i, w := range got {
				if w.ID != ep[i].w.ID {
					t.Fatalf("step %d: released %d, want %d", step, w.ID, ep[i].w.ID)
				}
			}
			leave(got)
			closed = closed[1:]
		default:
			if rng.IntN(10) > 0 {
				continue // disconnects are rarer
			}
			want := 0
			for _, ep := range closed {
				want += len(ep)
			}
			want += len(open)
			got := l.Fail()
			if len(got) != want {
				t.Fatalf("step %d: Fail returned %d writes, want %d", step, len(got), want)
			}
			leave(got)
			if len(open) > 0 {
				lastNum = open[0].w.Epoch
			}
			closed, open = nil, nil
		}
	}
	leave(l.Fail())
	for id := uint64(1); id < nextID; id++ {
		if out[id] != 1 {
			t.Fatalf("write %d left the log %d times", id, out[id])
		}
	}
}

// TestTransferLogConcurrent runs adds, acks and barrier acks from several
// goroutines, for the race detector.
func TestTransferLogConcurrent(t *testing.T) {
	l := NewTransferLog(8)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				id := uint64(g*1000 + i + 1)
				if _, _, err := l.Add(Write{ID: id, Offset: id, Length: 1, Proto: ProtocolC}); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := l.Ack(AckWrite, id, id, 1); err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					l.Flush()
				}
			}
		})
	}
	wg.Wait()
	l.Flush()
	// Every write is acked: acking barriers in order drains the log.
	for l.Len() > 0 {
		l.mu.Lock()
		num, n := l.epochs[0].num, uint32(len(l.epochs[0].writes))
		l.mu.Unlock()
		if _, err := l.BarrierAck(num, n); err != nil {
			t.Fatal(err)
		}
	}
}
