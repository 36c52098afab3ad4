package replicate

import (
	"sync"

	"github.com/hactl/hactl/replicate/wire"
)

// Resync buffers are reused: a fresh 1 MiB buffer per range cost a
// zeroing pass and garbage collector work (madvise included) comparable
// to the read it was for. Every range fits in one MaxData buffer.
var resyncBufs = sync.Pool{New: func() any {
	b := make([]byte, wire.MaxData)
	return &b
}}

// getResyncBuf returns a buffer of n bytes (n ≤ wire.MaxData), with
// whatever it held before.
func getResyncBuf(n int) *[]byte {
	b := resyncBufs.Get().(*[]byte)
	*b = (*b)[:n]
	return b
}

func putResyncBuf(b *[]byte) { resyncBufs.Put(b) }
