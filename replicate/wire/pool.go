package wire

import (
	"math/bits"
	"sync"
)

// Received payloads come from pools by size class (4 KiB, 8 KiB, ... 1
// MiB), so a stream of writes does not allocate, zero and free a buffer
// per frame: on a 1 MiB stream that costs several times the throughput.

const (
	minBulk     = 4096
	sizeClasses = 9 // minBulk<<8 == MaxData
)

var bulkPools [sizeClasses]sync.Pool

// sizeClass is the pool of buffers of minBulk<<class bytes that hold n.
func sizeClass(n int) int {
	if n <= minBulk {
		return 0
	}
	return bits.Len(uint(n-1) / minBulk)
}

func getBulk(n int) *[]byte {
	c := sizeClass(n)
	if b, ok := bulkPools[c].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, minBulk<<c)
	return &b
}

func putBulk(b *[]byte) {
	if b != nil {
		bulkPools[sizeClass(cap(*b))].Put(b)
	}
}

// Release hands the payload of a Data, ResyncData or BitmapChunk that
// Recv returned back for reuse, and clears it from m. Call it once the
// payload is no longer needed (written to disk, say) and keep no slice of
// it. It is optional: a payload never released is garbage collected. It
// does nothing to other messages or to messages not from Recv.
func Release(m Msg) {
	switch m := m.(type) {
	case *Data:
		if m.buf != nil {
			putBulk(m.buf)
			m.buf, m.Payload = nil, nil
		}
	case *ResyncData:
		if m.buf != nil {
			putBulk(m.buf)
			m.buf, m.Payload = nil, nil
		}
	case *BitmapChunk:
		if m.buf != nil {
			putBulk(m.buf)
			m.buf, m.Bits = nil, nil
		}
	}
}
