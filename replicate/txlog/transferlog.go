package txlog

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hactl/hactl/replicate/wire"
)

// DefaultMaxEpoch is DRBD's max-epoch-size: writes per epoch at most.
const DefaultMaxEpoch = 2048

// Protocol is the replication protocol of a write (research §1.1).
type Protocol uint8

const (
	ProtocolA Protocol = 'A' // complete when sent
	ProtocolB Protocol = 'B' // complete when the peer has received it
	ProtocolC Protocol = 'C' // complete when it is on the peer's disk
)

func (p Protocol) valid() bool { return p == ProtocolA || p == ProtocolB || p == ProtocolC }

func (p Protocol) String() string {
	if p.valid() {
		return "protocol " + string(rune(p))
	}
	return fmt.Sprintf("protocol(%d)", uint8(p))
}

// AckFlags are the wire flags that ask the peer for the ack p waits for.
func (p Protocol) AckFlags() wire.WriteFlags {
	switch p {
	case ProtocolB:
		return wire.WriteAckRecv
	case ProtocolC:
		return wire.WriteAckWrite
	}
	return 0
}

// PeerState is how far the peer has got with a write.
type PeerState uint8

const (
	Sent       PeerState = iota // handed to the data connection, no ack yet
	RecvAcked                   // RecvAck: the peer has it in memory (B)
	WriteAcked                  // WriteAck: the peer has it on disk (C)
	NegAcked                    // NegAck: the peer could not write it; out of sync
)

func (s PeerState) String() string {
	switch s {
	case Sent:
		return "sent"
	case RecvAcked:
		return "recv-acked"
	case WriteAcked:
		return "write-acked"
	case NegAcked:
		return "neg-acked"
	}
	return fmt.Sprintf("PeerState(%d)", uint8(s))
}

// Complete says whether the peer's side of a write of protocol p is done
// in state s, so that the write may be completed to the application once
// the local write has finished too:
//
//   - A: as soon as it is sent (placed in the send buffer).
//   - B: on RecvAck.
//   - C: on WriteAck.
//
// A NegAck also completes it under every protocol: the peer will never
// have it, the engine marks the range out of sync, and the local copy is
// the good one. This says nothing about durability across a flush: a
// flush completes only when its epoch is barrier-acked (Flush).
func Complete(p Protocol, s PeerState) bool {
	switch {
	case s == NegAcked:
		return true
	case p == ProtocolA:
		return true
	case p == ProtocolB:
		return s == RecvAcked
	case p == ProtocolC:
		return s == WriteAcked
	}
	return false
}

// Write is a write the Primary sent to the peer.
type Write struct {
	ID     uint64 // the BlockID in wire.Data; unique among writes in the log
	Offset uint64 // bytes
	Length uint64 // bytes, > 0
	Proto  Protocol
	Epoch  uint64    // set by Add
	State  PeerState // set by Ack
}

// ErrProtocol matches every *ProtocolError with errors.Is, and so does
// wire.ErrProtocol: the engine drops the connection on either.
var ErrProtocol = errors.New("txlog: peer broke the ack protocol")

// ProtocolError is an ack or barrier ack that does not match the log: an
// unknown write or epoch, a count mismatch, acks out of order. The log is
// left as it was; the stream cannot be trusted and the engine must drop
// the connection (and then call Fail), as DRBD's tl_release does.
type ProtocolError struct {
	Op     string // "BarrierAck", "RecvAck", ...
	Epoch  uint64 // the epoch in question, if any
	ID     uint64 // the write in question, if any
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("txlog: %s (epoch %d, write %d): %s", e.Op, e.Epoch, e.ID, e.Reason)
}

// Is makes errors.Is(err, ErrProtocol) and errors.Is(err,
// wire.ErrProtocol) hold.
func (e *ProtocolError) Is(target error) bool {
	return target == ErrProtocol || target == wire.ErrProtocol
}

// AckKind is the kind of a per-write ack from the peer.
type AckKind uint8

const (
	AckRecv  AckKind = iota + 1 // wire.RecvAck
	AckWrite                    // wire.WriteAck
	AckNeg                      // wire.NegAck
)

func (k AckKind) String() string {
	switch k {
	case AckRecv:
		return "RecvAck"
	case AckWrite:
		return "WriteAck"
	case AckNeg:
		return "NegAck"
	}
	return fmt.Sprintf("AckKind(%d)", uint8(k))
}

// TransferLog is the Primary's record of the writes sent to the peer and
// not yet covered by a barrier ack, grouped into epochs. An epoch closes
// after MaxEpoch writes and on every flush; the engine then sends a
// wire.Barrier with its number, and the peer answers with a
// wire.BarrierAck once every write of the epoch is on its stable storage.
// Only then may the writes leave the log and their AL extents be released:
// until then a crash of the Primary must resync them (research §1.4).
//
// Epochs are numbered from 1 and never reused, not even across Fail, so a
// stale ack can never be taken for a current one. Empty epochs are never
// closed, so every Barrier has at least one write.
//
// It is safe for concurrent use.
type TransferLog struct {
	mu       sync.Mutex
	maxEpoch int
	epochs   []*epoch          // oldest first; all closed except possibly the last
	byID     map[uint64]*Write // every write in epochs
	next     uint64            // number of the open epoch, or of the next one to open
}

type epoch struct {
	num    uint64
	closed bool // the engine has been told to send a Barrier for it
	writes []*Write
}

// NewTransferLog returns an empty log whose epochs close after maxEpoch
// writes; maxEpoch <= 0 means DefaultMaxEpoch.
func NewTransferLog(maxEpoch int) *TransferLog {
	if maxEpoch <= 0 {
		maxEpoch = DefaultMaxEpoch
	}
	return &TransferLog{maxEpoch: maxEpoch, byID: make(map[uint64]*Write), next: 1}
}

// Add records w as sent in the open epoch, which it returns for the
// wire.Data. If w filled the epoch, barrier is true: the engine sends
// wire.Barrier{Epoch: epoch} right after the Data. It fails if w is
// malformed or its ID is already in the log.
func (t *TransferLog) Add(w Write) (epochNum uint64, barrier bool, err error) {
	if !w.Proto.valid() {
		return 0, false, fmt.Errorf("txlog: write %d: %v", w.ID, w.Proto)
	}
	if w.Length == 0 || w.Offset+w.Length < w.Offset {
		return 0, false, fmt.Errorf("%w: %d bytes at %d", ErrRange, w.Length, w.Offset)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.byID[w.ID]; dup {
		return 0, false, fmt.Errorf("txlog: write %d is already in the log", w.ID)
	}
	e := t.open()
	w.Epoch, w.State = e.num, Sent
	e.writes = append(e.writes, &w)
	t.byID[w.ID] = &w
	if len(e.writes) >= t.maxEpoch {
		t.close(e)
		return e.num, true, nil
	}
	return e.num, false, nil
}

// open returns the open epoch, opening one if there is none.
func (t *TransferLog) open() *epoch {
	if n := len(t.epochs); n > 0 && !t.epochs[n-1].closed {
		return t.epochs[n-1]
	}
	e := &epoch{num: t.next}
	t.epochs = append(t.epochs, e)
	return e
}

func (t *TransferLog) close(e *epoch) {
	e.closed = true
	t.next = e.num + 1
}

// CloseEpoch closes the open epoch if it has writes, and returns its
// number and true: the engine sends a Barrier for it. With no writes in the
// open epoch it returns 0, false.
func (t *TransferLog) CloseEpoch() (epochNum uint64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closeOpen()
}

func (t *TransferLog) closeOpen() (uint64, bool) {
	if n := len(t.epochs); n > 0 && !t.epochs[n-1].closed {
		e := t.epochs[n-1]
		t.close(e)
		return e.num, true
	}
	return 0, false
}

// Flush starts a new epoch for a flush from above (DRBD: REQ_FLUSH starts
// a new epoch). The flush completes when the barrier ack for wait arrives,
// which covers every earlier epoch too, since barrier acks come in order;
// if wait is 0 nothing sent is unacknowledged and the flush, as far as the
// peer is concerned, is complete now. barrier says the engine must send
// wire.Barrier{Epoch: wait} (it is false when the flush waits for an epoch
// already closed).
func (t *TransferLog) Flush() (wait uint64, barrier bool) {
	// One critical section: an Add slipping in between closing and
	// looking would leave the flush waiting for an open epoch.
	t.mu.Lock()
	defer t.mu.Unlock()
	if num, ok := t.closeOpen(); ok {
		return num, true
	}
	if n := len(t.epochs); n > 0 {
		return t.epochs[n-1].num, false // closed: the open one was empty
	}
	return 0, false
}

// Ack records an ack of kind k from the peer for write id at [off,
// off+length), and returns the write as updated. completed is true when
// this ack is the one that completes the write's peer side (see Complete);
// a NegAck always returns the write so the engine can mark its range out
// of sync. An ack that does not fit, because the write is not in the log,
// the range differs, the protocol asked for another kind of ack, or the
// write was already acked, is a *ProtocolError and changes nothing.
func (t *TransferLog) Ack(k AckKind, id, off, length uint64) (w Write, completed bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.byID[id]
	fail := func(why string, args ...any) (Write, bool, error) {
		e := &ProtocolError{Op: k.String(), ID: id, Reason: fmt.Sprintf(why, args...)}
		if p != nil {
			e.Epoch = p.Epoch
		}
		return Write{}, false, e
	}
	if p == nil {
		return fail("no such write in the transfer log")
	}
	if p.Offset != off || p.Length != length {
		return fail("acks %d bytes at %d, the write was %d bytes at %d", length, off, p.Length, p.Offset)
	}
	var next PeerState
	switch k {
	case AckRecv:
		next = RecvAcked
	case AckWrite:
		next = WriteAcked
	case AckNeg:
		next = NegAcked
	default:
		return fail("unknown ack kind")
	}
	// The peer sends only the ack the write's flags asked for (B: RecvAck,
	// C: WriteAck), at most once, and a NegAck instead of a WriteAck or
	// after a RecvAck.
	switch {
	case p.State == NegAcked || p.State == WriteAcked:
		return fail("write already %v", p.State)
	case next == RecvAcked && (p.Proto != ProtocolB || p.State != Sent):
		return fail("%v write in state %v", p.Proto, p.State)
	case next == WriteAcked && p.Proto != ProtocolC:
		return fail("%v write", p.Proto)
	}
	was := Complete(p.Proto, p.State)
	p.State = next
	return *p, !was && Complete(p.Proto, next), nil
}

// BarrierAck records the peer's barrier ack for epoch num holding writes
// writes. It must be the oldest closed epoch, the count must match, and
// every ack the epoch's writes asked for must have come before it (acks
// and barrier acks share the meta connection, in order). It returns the
// epoch's writes, which leave the log: their AL extents may be released
// and every flush waiting for num or an earlier epoch is complete.
// Anything else is a *ProtocolError and changes nothing.
func (t *TransferLog) BarrierAck(num uint64, writes uint32) ([]Write, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fail := func(id uint64, why string, args ...any) ([]Write, error) {
		return nil, &ProtocolError{Op: "BarrierAck", Epoch: num, ID: id, Reason: fmt.Sprintf(why, args...)}
	}
	if len(t.epochs) == 0 || !t.epochs[0].closed {
		return fail(0, "no epoch awaits a barrier ack")
	}
	e := t.epochs[0]
	if e.num != num {
		return fail(0, "epoch %d is the oldest awaiting a barrier ack", e.num)
	}
	if uint64(len(e.writes)) != uint64(writes) {
		return fail(0, "peer counts %d writes, we sent %d", writes, len(e.writes))
	}
	for _, w := range e.writes {
		if !Complete(w.Proto, w.State) {
			return fail(w.ID, "%v write still %v", w.Proto, w.State)
		}
	}
	out := make([]Write, len(e.writes))
	for i, w := range e.writes {
		out[i] = *w
		delete(t.byID, w.ID)
	}
	t.epochs[0] = nil
	t.epochs = t.epochs[1:]
	return out, nil
}

// Fail is for a lost connection: it returns every write in the log, none
// of which the peer is known to have on stable storage, and empties the
// log. The engine sets their ranges in the bitmap (before releasing their
// AL extents) and completes the writes and flushes still waiting per its
// policy. The next epoch gets a fresh number.
func (t *TransferLog) Fail() []Write {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Write
	for _, e := range t.epochs {
		for _, w := range e.writes {
			out = append(out, *w)
		}
		if e.num >= t.next {
			t.next = e.num + 1
		}
	}
	t.epochs = nil
	clear(t.byID)
	return out
}

// Len is the number of writes in the log.
func (t *TransferLog) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}
