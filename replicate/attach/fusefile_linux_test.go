package attach

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestFUSEFileSemantics checks the file the loop device is bound to: a
// fixed-size file that maps fsync, fallocate and discard to the Device.
func TestFUSEFileSemantics(t *testing.T) {
	requireLoopRoot(t)
	vol, rt := testVolume(t)
	dev := newMemDevice(testSize)
	a := attachLoopT(t, vol, rt, dev)
	info := a.Info()

	st, err := os.Stat(info.BackingFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != testSize || st.Mode() != 0o600 {
		t.Errorf("FUSE file: size %d mode %v, want %d and -rw-------", st.Size(), st.Mode(), testSize)
	}
	if err := os.Truncate(info.BackingFile, 0); !errors.Is(err, syscall.EPERM) {
		t.Errorf("truncate = %v, want EPERM", err)
	}
	f, err := os.OpenFile(info.BackingFile, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("x"), testSize); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write at the end = %v, want ENOSPC", err)
	}
	// unix.Pwrite, not WriteAt: os.File retries the rest and then drops
	// the count of the short write when the retry fails.
	if n, err := unix.Pwrite(int(f.Fd()), bytes.Repeat([]byte("y"), 200), testSize-100); n != 100 {
		t.Errorf("write across the end wrote %d bytes (%v), want 100", n, err)
	}

	// Punching a hole zeros the range through the Zeroer.
	ones := bytes.Repeat([]byte{0xff}, 1<<20)
	if _, err := f.WriteAt(ones, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), fallocPunchHole|fallocKeepSize, 1<<20, 1<<20); err != nil {
		t.Fatalf("punch hole: %v", err)
	}
	if got := dev.snapshot(1<<20, 1<<20); !bytes.Equal(got, make([]byte, 1<<20)) {
		t.Errorf("punched range is not zero on the device")
	}
	before := dev.flushes.Load()
	if err := f.Sync(); err != nil || dev.flushes.Load() == before {
		t.Errorf("fsync on the FUSE file = %v, flushes %d -> %d", err, before, dev.flushes.Load())
	}

	// BLKDISCARD on the loop device reaches the Zeroer too.
	if g, _ := os.ReadFile(filepath.Join("/sys/block", filepath.Base(info.Path), "queue/discard_granularity")); strings.TrimSpace(string(g)) != "4096" {
		t.Errorf("discard granularity %q, want 4096 (from the FUSE statfs)", g)
	}
	blk, err := os.OpenFile(info.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer blk.Close()
	if _, err := blk.WriteAt(ones, 4<<20); err != nil {
		t.Fatal(err)
	}
	blk.Sync()
	zeroes := dev.zeroes.Load()
	r := [2]uint64{4 << 20, 1 << 20}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, blk.Fd(), unix.BLKDISCARD, uintptr(unsafe.Pointer(&r))); e != 0 {
		t.Fatalf("BLKDISCARD: %v", e)
	}
	if dev.zeroes.Load() == zeroes || !bytes.Equal(dev.snapshot(4<<20, 1<<20), make([]byte, 1<<20)) {
		t.Errorf("BLKDISCARD on %s did not zero the device range", info.Path)
	}
}

// TestLoopLegacyConfigure runs the pre-5.8 LOOP_SET_FD path on this
// kernel, on a plain file.
func TestLoopLegacyConfigure(t *testing.T) {
	requireLoopRoot(t)
	backing, err := os.Create(filepath.Join(t.TempDir(), "backing"))
	if err != nil {
		t.Fatal(err)
	}
	defer backing.Close()
	if err := backing.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/dev/loop%d", n)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := &loopDevice{f: f, path: path}
	if err := configureLoopLegacy(int(f.Fd()), backing, 4096); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.clear(); err != nil {
			t.Error(err)
		}
		if err := waitLoopFree(context.Background(), path); err != nil {
			t.Error(err)
		}
	})
	info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if info.Flags&unix.LO_FLAGS_AUTOCLEAR == 0 {
		t.Errorf("flags %#x: autoclear not set", info.Flags)
	}
	if got := loopsBackedBy(backing.Name()); len(got) != 1 || got[0] != path {
		t.Errorf("loop devices backed by %s = %v, want [%s]", backing.Name(), got, path)
	}
	if bs, _ := os.ReadFile(filepath.Join("/sys/block", filepath.Base(path), "queue/logical_block_size")); strings.TrimSpace(string(bs)) != "4096" {
		t.Errorf("logical block size %q, want 4096", bs)
	}
}
