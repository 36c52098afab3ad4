package attach

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// alignedBuf returns n bytes aligned for O_DIRECT.
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	off := 4096 - int(uintptr(unsafe.Pointer(&b[0]))%4096)
	return b[off : off+n]
}

func TestLoopDirectReadWrite(t *testing.T) {
	requireLoopRoot(t)
	vol, rt := testVolume(t)
	dev := newMemDevice(testSize)
	a := attachLoopT(t, vol, rt, dev)
	info := a.Info()
	t.Logf("%s", info)
	dio, _ := os.ReadFile(filepath.Join("/sys/block", filepath.Base(info.Path), "loop/dio"))
	if got := strings.TrimSpace(string(dio)) == "1"; got != info.DirectIO {
		t.Errorf("sysfs loop/dio = %q, Info.DirectIO = %v", dio, info.DirectIO)
	}

	fd, err := unix.Open(info.Path, unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, c := range []struct {
		off int64
		n   int
	}{{0, 4096}, {1 << 20, 1 << 20}, {testSize - 8192, 8192}, {12345 * 4096, 3 * 4096}} {
		w := alignedBuf(c.n)
		rand.Read(w)
		if n, err := unix.Pwrite(fd, w, c.off); err != nil || n != c.n {
			t.Fatalf("pwrite %d@%d: %d, %v", c.n, c.off, n, err)
		}
		if got := dev.snapshot(c.off, int64(c.n)); !bytes.Equal(got, w) {
			t.Fatalf("device did not see the write at %d", c.off)
		}
		r := alignedBuf(c.n)
		if n, err := unix.Pread(fd, r, c.off); err != nil || n != c.n {
			t.Fatalf("pread %d@%d: %d, %v", c.n, c.off, n, err)
		}
		if !bytes.Equal(r, w) {
			t.Fatalf("read back differs at %d", c.off)
		}
	}
	before := dev.flushes.Load()
	if err := unix.Fsync(fd); err != nil {
		t.Fatal(err)
	}
	if dev.flushes.Load() == before {
		t.Errorf("fsync on %s did not reach Device.Flush", info.Path)
	}
}

func TestLoopExt4RoundTrip(t *testing.T) {
	requireLoopRoot(t)
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("skipping: mkfs.ext4 not installed")
	}
	ctx := context.Background()
	vol, rt := testVolume(t)
	dev := newMemDevice(testSize)
	a := attachLoopT(t, vol, rt, dev)
	path := a.Info().Path
	run(t, "mkfs.ext4", "-q", "-F", path)

	files := map[string][]byte{"small": []byte("hello from hactl\n"), "big": make([]byte, 3<<20+17)}
	rand.Read(files["big"])
	mnt := mountT(t, path)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(mnt, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	unix.Sync()

	t.Run("DetachRefusedWhileMounted", func(t *testing.T) {
		err := a.Detach(ctx, false)
		if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "mounted on "+mnt) {
			t.Fatalf("Detach while mounted = %v, want ErrBusy naming %s", err, mnt)
		}
		t.Log(err)
	})
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}

	t.Run("DetachRefusedWhileOpen", func(t *testing.T) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		err = a.Detach(ctx, false)
		want := fmt.Sprintf("opened by pid %d", os.Getpid())
		if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Detach while open = %v, want ErrBusy naming %q", err, want)
		}
	})

	t.Run("DetachIdempotent", func(t *testing.T) {
		for i := range 2 {
			if err := a.Detach(ctx, false); err != nil {
				t.Fatalf("Detach #%d: %v", i+1, err)
			}
		}
		assertNoLeftovers(t, a)
	})

	// Attach again: same device, same volume, the files are still there.
	a2 := attachLoopT(t, vol, rt, dev)
	mnt2 := mountT(t, a2.Info().Path)
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(mnt2, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs after re-attach", name)
		}
	}
	if err := unix.Unmount(mnt2, 0); err != nil {
		t.Fatal(err)
	}
	if err := a2.Detach(ctx, false); err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, a2)
	t.Logf("device saw %d flushes and %d zeroings", dev.flushes.Load(), dev.zeroes.Load())
}

// assertNoLeftovers checks that a detached attachment left no loop device,
// FUSE mount or mount directory.
func assertNoLeftovers(t *testing.T, a *Attachment) {
	t.Helper()
	info := a.Info()
	if loops := loopsBackedBy(info.BackingFile); len(loops) > 0 {
		t.Errorf("loop devices still bound to %s: %v", info.BackingFile, loops)
	}
	mounts, _ := readMountinfo()
	for _, m := range mounts {
		if strings.HasPrefix(m.mountPoint, filepath.Dir(info.BackingFile)) {
			t.Errorf("still mounted: %s (%s)", m.mountPoint, m.fsType)
		}
	}
	if _, err := os.Stat(filepath.Dir(info.BackingFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount directory %s left behind (%v)", filepath.Dir(info.BackingFile), err)
	}
}

func TestLoopForceDetachWhileMounted(t *testing.T) {
	requireLoopRoot(t)
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("skipping: mkfs.ext4 not installed")
	}
	ctx := context.Background()
	vol, rt := testVolume(t)
	dev := newMemDevice(testSize)
	a := attachLoopT(t, vol, rt, dev)
	path := a.Info().Path
	run(t, "mkfs.ext4", "-q", "-F", path)
	mnt := mountT(t, path)

	if err := a.Detach(ctx, true); err != nil {
		t.Fatalf("forced Detach while mounted: %v", err)
	}
	// The Device is out of the picture: the mounted filesystem's writes
	// fail instead of reaching it.
	before := dev.snapshot(0, testSize)
	os.WriteFile(filepath.Join(mnt, "late"), []byte("x"), 0o644)
	fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = unix.Syncfs(fd)
	unix.Close(fd)
	t.Logf("syncfs after the forced detach: %v (%v)", err, time.Since(start))
	if err == nil {
		t.Errorf("syncfs after a forced detach succeeded, want an I/O error")
	}
	if !bytes.Equal(before, dev.snapshot(0, testSize)) {
		t.Errorf("the device was written after a forced Detach returned")
	}
	// Once the filesystem is unmounted, the loop device goes too.
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	if err := waitLoopFree(ctx, path); err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, a)
}
