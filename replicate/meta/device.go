package meta

import (
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"
)

// Device is where the metadata lives: the backing device itself for
// internal metadata, or a separate file. *os.File satisfies it, opened
// with or without O_DIRECT: every access is BlockSize-aligned in offset,
// length and memory. Sync must make every completed WriteAt durable
// (fsync/fdatasync); nothing here is considered written before it
// returns.
type Device interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// alignedBuf returns a zeroed buffer of n bytes (a multiple of BlockSize)
// whose first byte is BlockSize-aligned in memory, as O_DIRECT requires.
func alignedBuf(n int) []byte {
	b := make([]byte, n+BlockSize)
	skip := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) & (BlockSize - 1)); r != 0 {
		skip = BlockSize - r
	}
	return b[skip : skip+n : skip+n]
}

// readAt fills p from off. A read that ends early because the device (an
// external file) is shorter than expected reports how much was there:
// short is true and the rest of p is zeroed. Other errors are returned.
func readAt(d Device, p []byte, off int64) (short bool, err error) {
	n, err := d.ReadAt(p, off)
	if n == len(p) {
		return false, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		clear(p[n:])
		return true, nil
	}
	return false, fmt.Errorf("read %d bytes at offset %d: %w", len(p), off, err)
}

// writeAt writes all of p at off.
func writeAt(d Device, p []byte, off int64) error {
	n, err := d.WriteAt(p, off)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write %d bytes at offset %d: %w", len(p), off, err)
	}
	return nil
}

// BackingSize returns the size of an open file or block device in bytes.
// Stat reports 0 for a block device, so this seeks to the end instead.
func BackingSize(f *os.File) (int64, error) {
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("meta: size of %s: %w", f.Name(), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("meta: size of %s: %w", f.Name(), err)
	}
	return end, nil
}
