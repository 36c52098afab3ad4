package meta

import (
	"fmt"
	"slices"
	"sync"
)

// ActivityLog is the set of hot extents: the extents that may hold writes
// the peer has not got. A write to an extent that is not hot must wait
// until a transaction making it hot is durable (Activate, then Commit);
// after a crash the hot extents on disk are exactly the ones to resync
// (ApplyAL). Keeping the set small bounds that resync; keeping it large
// means fewer synchronous transactions. See altx.go for the on-disk form.
//
// The write path holds a reference on every extent it writes to, from
// Activate until the write is complete and the peer has acknowledged its
// epoch (Release). Commit evicts the least recently used extents with no
// references, and flushes their bitmap pages first: once an extent leaves
// the log on disk, the on-disk bitmap is all that remembers its dirty
// blocks. It is safe for concurrent use; transactions are written one at
// a time.
type ActivityLog struct {
	m *Meta

	commitMu sync.Mutex // one Commit at a time

	mu       sync.Mutex
	capacity int
	slots    []uint32         // extent per slot, alEmpty if none
	where    map[uint32]int32 // extent -> slot
	// LRU order over all slots, head most recently used; empty slots
	// drift to the tail, so they are taken before anything is evicted.
	prev, next []int32
	head, tail int32
	refs       map[uint32]int32 // references per extent, from Activate to Release
	queue      []uint32         // extents waiting for a transaction, oldest first
	queued     map[uint32]bool  // in queue, or in the transaction being written
	evicting   map[uint32]bool  // victims of the transaction being written
	seq        uint64           // newest transaction on disk
	base       uint64           // first transaction of this log
	ctxNext    int              // first slot of the next context window
	lost       string           // why the log on disk could not be rebuilt; "" if it could
}

func newActivityLog(m *Meta, capacity int) *ActivityLog {
	a := &ActivityLog{
		m:        m,
		capacity: capacity,
		slots:    make([]uint32, capacity),
		where:    make(map[uint32]int32),
		prev:     make([]int32, capacity),
		next:     make([]int32, capacity),
		refs:     make(map[uint32]int32),
		queued:   make(map[uint32]bool),
		evicting: make(map[uint32]bool),
		base:     1,
	}
	order := make([]int32, capacity)
	for i := range a.slots {
		a.slots[i] = alEmpty
		order[i] = int32(i)
	}
	a.link(order)
	return a
}

// link sets the LRU list to order, most recently used first.
func (a *ActivityLog) link(order []int32) {
	a.head, a.tail = -1, -1
	for i, s := range order {
		a.prev[s], a.next[s] = -1, -1
		if i == 0 {
			a.head = s
		} else {
			a.prev[s] = order[i-1]
			a.next[order[i-1]] = s
		}
		a.tail = s
	}
}

// touch makes slot s the most recently used.
func (a *ActivityLog) touch(s int32) {
	if a.head == s {
		return
	}
	p, n := a.prev[s], a.next[s]
	a.next[p] = n // s is not the head, so it has a prev
	if n >= 0 {
		a.prev[n] = p
	} else {
		a.tail = p
	}
	a.prev[s], a.next[s] = -1, a.head
	a.prev[a.head] = s
	a.head = s
}

// Capacity is the number of extents the log holds at most.
func (a *ActivityLog) Capacity() int { return a.capacity }

// Activate takes a reference on extent ext for a write about to start. It
// returns false when ext is hot: the write may go ahead. It returns true
// when ext is not hot yet: the caller must call Commit until IsActive(ext)
// before writing. Either way it must call Release(ext) once the write is
// complete and acknowledged. ext must be below Layout.Extents().
func (a *ActivityLog) Activate(ext uint32) (needCommit bool) {
	if uint64(ext) >= a.m.layout.Extents() {
		panic(fmt.Sprintf("meta: Activate(%d) beyond the %d extents of the volume", ext, a.m.layout.Extents()))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refs[ext]++
	if s, ok := a.where[ext]; ok && !a.evicting[ext] {
		a.touch(s)
		return false
	}
	if !a.queued[ext] {
		a.queued[ext] = true
		a.queue = append(a.queue, ext)
	}
	return true
}

// Release drops a reference taken by Activate. An extent without
// references may be evicted by the next Commit.
func (a *ActivityLog) Release(ext uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch n := a.refs[ext]; {
	case n <= 0:
		panic(fmt.Sprintf("meta: Release(%d) without Activate", ext))
	case n == 1:
		delete(a.refs, ext)
	default:
		a.refs[ext] = n - 1
	}
}

// IsActive reports whether ext is hot, so a write to it may start.
func (a *ActivityLog) IsActive(ext uint32) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.where[ext]
	return ok && !a.evicting[ext]
}

// Active returns the extents in the log, in ascending order. Just after
// Open these are the extents written last before a crash.
func (a *ActivityLog) Active() []uint32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]uint32, 0, len(a.where))
	for e := range a.where {
		out = append(out, e)
	}
	slices.Sort(out)
	return out
}

// Pending is the number of extents waiting for a transaction.
func (a *ActivityLog) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queue)
}

// Seq is the sequence number of the newest transaction on disk (0: none).
func (a *ActivityLog) Seq() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seq
}

// Lost says why the log on disk could not be rebuilt at Open, or "" when
// it could. A lost log means any block may differ from the peer: Meta's
// ApplyAL then sets every bit, and Commit refuses to run until it has.
func (a *ActivityLog) Lost() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lost
}

// Commit writes one transaction making up to 64 queued extents hot,
// evicting least recently used extents without references to make room,
// and returns once it is durable. With nothing queued it does nothing. It
// fails with ErrALFull when queued extents exist but no slot can be freed
// (every extent has references): retry after a Release. Call it until the
// extents you activated are IsActive; each call makes progress.
func (a *ActivityLog) Commit() error {
	if err := a.m.failedErr(); err != nil {
		return err
	}
	a.commitMu.Lock()
	defer a.commitMu.Unlock()

	a.mu.Lock()
	if a.lost != "" {
		a.mu.Unlock()
		return fmt.Errorf("meta: commit: %w (%s)", ErrALNotApplied, a.lost)
	}
	var (
		updates []alUpdate
		victims []uint32
		batch   []uint32
		rest    []uint32
		taken   = make(map[int32]bool)
	)
	full := false
	for _, ext := range a.queue {
		if _, ok := a.where[ext]; ok || a.refs[ext] == 0 {
			// Already hot, or nobody waits for it any more.
			delete(a.queued, ext)
			continue
		}
		if full || len(updates) == alMaxUpdates {
			rest = append(rest, ext)
			continue
		}
		s := a.freeSlot(taken)
		if s < 0 {
			full = true
			rest = append(rest, ext)
			continue
		}
		taken[s] = true
		if old := a.slots[s]; old != alEmpty {
			victims = append(victims, old)
			a.evicting[old] = true
		}
		updates = append(updates, alUpdate{slot: uint32(s), extent: ext})
		batch = append(batch, ext)
	}
	a.queue = rest
	if len(updates) == 0 {
		a.mu.Unlock()
		if full {
			return fmt.Errorf("meta: commit: %w (%d extents)", ErrALFull, a.capacity)
		}
		return nil
	}
	tx := alTx{
		seq:      a.seq + 1,
		base:     a.base,
		uuid:     a.m.uuid,
		capacity: uint32(a.capacity),
		updates:  updates,
		ctxStart: uint32(a.ctxNext),
		context:  make([]uint32, alContextFor(a.capacity)),
	}
	after := make(map[uint32]uint32, len(updates))
	for _, u := range updates {
		after[u.slot] = u.extent
	}
	for i := range tx.context {
		s := uint32((a.ctxNext + i) % a.capacity)
		if e, ok := after[s]; ok {
			tx.context[i] = e
		} else {
			tx.context[i] = a.slots[s]
		}
	}
	a.mu.Unlock()

	err := a.write(&tx, victims)

	a.mu.Lock()
	defer a.mu.Unlock()
	for _, v := range victims {
		delete(a.evicting, v)
	}
	if err != nil {
		// Put the batch back in front, so the order is kept for a retry
		// (which ErrFailed will refuse until the metadata is reopened).
		a.queue = append(batch, a.queue...)
		a.m.fail(err)
		return err
	}
	for _, v := range victims {
		delete(a.where, v)
	}
	for _, u := range updates {
		a.slots[u.slot] = u.extent
		a.where[u.extent] = int32(u.slot)
		a.touch(int32(u.slot))
		delete(a.queued, u.extent)
	}
	a.seq = tx.seq
	a.ctxNext = (a.ctxNext + len(tx.context)) % a.capacity
	return nil
}

// freeSlot finds a slot for a new extent, searching from the least
// recently used end: an empty slot, or one whose extent has no
// references. It returns -1 if there is none. Caller holds mu.
func (a *ActivityLog) freeSlot(taken map[int32]bool) int32 {
	for s := a.tail; s >= 0; s = a.prev[s] {
		if taken[s] {
			continue
		}
		if e := a.slots[s]; e == alEmpty || a.refs[e] == 0 {
			return s
		}
	}
	return -1
}

// write flushes the victims' bitmap pages, then writes the transaction
// and syncs. The order matters: the transaction must not be durable
// before the bits it stops protecting are.
func (a *ActivityLog) write(tx *alTx, victims []uint32) error {
	if err := a.m.bm.flushExtents(victims); err != nil {
		return fmt.Errorf("meta: AL transaction %d: %w", tx.seq, err)
	}
	l := &a.m.layout
	b := alignedBuf(BlockSize)
	tx.encodeTo(b)
	off := l.ALOffset + int64(tx.seq%uint64(l.ALSlots))*BlockSize
	if err := writeAt(a.m.dev, b, off); err != nil {
		return fmt.Errorf("meta: AL transaction %d: %w", tx.seq, err)
	}
	if err := a.m.dev.Sync(); err != nil {
		return fmt.Errorf("meta: AL transaction %d: sync: %w", tx.seq, err)
	}
	return nil
}

// load rebuilds the log from the ring read at Open. It never fails: a log
// that cannot be rebuilt is reported by Lost, with the rest of the
// metadata still usable.
func (a *ActivityLog) load(ring []byte, uuid VolumeUUID, extents uint64) {
	nslots := uint64(len(ring) / BlockSize)
	txs := make([]*alTx, nslots)
	var newest uint64
	damaged := 0
	for i := range nslots {
		b := ring[i*BlockSize : (i+1)*BlockSize]
		t, err := decodeALTx(b)
		if err != nil || t.uuid != uuid || int(t.capacity) != a.capacity || t.seq%nslots != i {
			// A never-written slot is all zero; anything else is a torn
			// or stray transaction.
			if !allZero(b) {
				damaged++
			}
			continue
		}
		txs[i] = &t
		newest = max(newest, t.seq)
	}
	a.seq = newest
	if newest == 0 {
		// Nothing valid. One damaged slot is a torn first transaction;
		// more cannot come from torn writes (each is synced before the
		// next starts), so something overwrote the ring.
		if damaged > 1 {
			a.abandon(fmt.Sprintf("no valid transaction and %d damaged ones", damaged))
		}
		return
	}

	// The run: newest, newest-1, ... while present and within its log.
	base := txs[newest%nslots].base
	var run []*alTx
	for s := newest; s >= base && s > 0; s-- {
		t := txs[s%nslots]
		if t == nil || t.seq != s || t.base != base {
			break
		}
		run = append(run, t)
	}
	slices.Reverse(run)
	complete := run[0].seq == base // replay starts from the empty log

	known := make([]bool, a.capacity)
	rank := make([]uint64, a.capacity) // seq of the last update per slot
	for _, t := range run {
		for _, u := range t.updates {
			a.slots[u.slot] = u.extent
			known[u.slot] = true
			rank[u.slot] = t.seq
		}
		for i, e := range t.context {
			s := (int(t.ctxStart) + i) % a.capacity
			a.slots[s] = e
			known[s] = true
		}
	}
	if !complete {
		if n := countFalse(known); n > 0 {
			a.abandon(fmt.Sprintf("transactions %d..%d cover %d of %d slots", run[0].seq, newest, a.capacity-n, a.capacity))
			return
		}
	}
	for s, e := range a.slots {
		if e == alEmpty {
			continue
		}
		if uint64(e) >= extents {
			a.abandon(fmt.Sprintf("extent %d is beyond the %d extents of the volume", e, extents))
			return
		}
		if o, dup := a.where[e]; dup {
			a.abandon(fmt.Sprintf("extent %d is in slots %d and %d", e, o, s))
			return
		}
		a.where[e] = int32(s)
	}
	last := run[len(run)-1]
	a.base = base
	a.ctxNext = (int(last.ctxStart) + len(last.context)) % a.capacity

	// Recency is only known from updates; slots last set by a context
	// window come after, empty slots last.
	order := make([]int32, a.capacity)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(x, y int32) int {
		ex, ey := a.slots[x] == alEmpty, a.slots[y] == alEmpty
		switch {
		case ex != ey:
			if ex {
				return 1
			}
			return -1
		case rank[x] > rank[y]:
			return -1
		case rank[x] < rank[y]:
			return 1
		}
		return 0
	})
	a.link(order)
}

// abandon empties the log after a failed rebuild and restarts it above
// every transaction in the ring, so none of them is replayed again.
func (a *ActivityLog) abandon(why string) {
	a.lost = why
	for i := range a.slots {
		a.slots[i] = alEmpty
	}
	clear(a.where)
	a.base = a.seq + 1
	a.ctxNext = 0
}

func countFalse(b []bool) int {
	n := 0
	for _, v := range b {
		if !v {
			n++
		}
	}
	return n
}
