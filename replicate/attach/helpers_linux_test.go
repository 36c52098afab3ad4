package attach

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// memDevice is a Device in memory that counts flushes and zeroings.
type memDevice struct {
	mu      sync.RWMutex
	data    []byte
	flushes atomic.Int64
	zeroes  atomic.Int64
}

func newMemDevice(size int64) *memDevice { return &memDevice{data: make([]byte, size)} }

func (d *memDevice) Size() int64 { return int64(len(d.data)) }

func (d *memDevice) ReadAt(p []byte, off int64) (int, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return copy(p, d.data[off:]), nil
}

func (d *memDevice) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return copy(d.data[off:], p), nil
}

func (d *memDevice) Flush() error { d.flushes.Add(1); return nil }

func (d *memDevice) WriteZeroes(off, n int64, mayTrim bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.data[off : off+n])
	d.zeroes.Add(1)
	return nil
}

// snapshot copies a range of the device.
func (d *memDevice) snapshot(off, n int64) []byte {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return append([]byte(nil), d.data[off:off+n]...)
}

const testSize = 64 << 20

func requireLoopRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to mount FUSE and configure loop devices")
	}
	for _, p := range []string{"/dev/fuse", "/dev/loop-control"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("skipping: %s missing (fuse or loop module not loaded)", p)
		}
	}
}

// testVolume returns a unique volume name and a private runtime directory.
func testVolume(t testing.TB) (string, string) {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	return "t" + hex.EncodeToString(b), t.TempDir()
}

// attachLoopT attaches dev in loop mode and makes sure that, whatever the
// test does, the loop device and FUSE mount are gone afterwards.
func attachLoopT(t *testing.T, volume, runtimeDir string, dev Device) *Attachment {
	t.Helper()
	a, err := Attach(context.Background(), Options{Volume: volume, Mode: ModeLoop, RuntimeDir: runtimeDir, Device: dev})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupAttachment(t, a) })
	return a
}

// cleanupAttachment unmounts whatever is still mounted from the device,
// then force-detaches.
func cleanupAttachment(t *testing.T, a *Attachment) {
	t.Helper()
	a.mu.Lock()
	path, live := a.info.Path, !a.detached
	a.mu.Unlock()
	// Only while still attached: a detached device number may already
	// belong to someone else.
	if live && path != "" {
		unmountAllFrom(t, path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Detach(ctx, true); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// unmountAllFrom unmounts every mount of the block device dev.
func unmountAllFrom(t *testing.T, dev string) {
	t.Helper()
	var st unix.Stat_t
	if unix.Stat(dev, &st) != nil {
		return
	}
	mounts, _ := readMountinfo()
	for _, m := range mounts {
		if m.devNum == devNum(st.Rdev) {
			if err := unix.Unmount(m.mountPoint, 0); err != nil {
				unix.Unmount(m.mountPoint, unix.MNT_DETACH)
			}
		}
	}
}

func devNum(rdev uint64) string {
	return fmt.Sprintf("%d:%d", unix.Major(rdev), unix.Minor(rdev))
}

// run runs a command, failing the test with its output on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// mountT mounts dev on a fresh directory and unmounts it at cleanup if the
// test did not.
func mountT(t *testing.T, dev string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(dev, dir, "ext4", 0, ""); err != nil {
		t.Fatalf("mount %s on %s: %v", dev, dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}
