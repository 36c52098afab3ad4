package attach

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// loopDevice is a bound loop device. The open file is the attachment's
// anchor: with LO_FLAGS_AUTOCLEAR the kernel releases the device when its
// last opener closes, so if hactl dies the loop device goes away by itself
// once nobody else holds it.
type loopDevice struct {
	f        *os.File
	path     string
	directIO bool
}

// loopConfigureTries bounds the retries when another process takes the
// free device between LOOP_CTL_GET_FREE and LOOP_CONFIGURE.
const loopConfigureTries = 16

// bindLoop binds backing to a free loop device with the given logical block
// size, asking for direct I/O and falling back to buffered I/O when the
// kernel refuses it for this file.
func bindLoop(backing *os.File, blockSize int) (*loopDevice, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open loop control: %w", err)
	}
	defer ctl.Close()
	for range loopConfigureTries {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("find a free loop device: %w", err)
		}
		path := fmt.Sprintf("/dev/loop%d", n)
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		dio, err := configureLoop(f, backing, blockSize)
		if errors.Is(err, unix.EBUSY) {
			f.Close() // lost a race for this device: take the next free one
			continue
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("bind %s to %s: %w", path, backing.Name(), err)
		}
		return &loopDevice{f: f, path: path, directIO: dio}, nil
	}
	return nil, fmt.Errorf("bind a loop device to %s: every free device was taken by someone else %d times", backing.Name(), loopConfigureTries)
}

// configureLoop binds one loop device, returning whether direct I/O is on.
// LOOP_CONFIGURE (Linux 5.8) sets everything in one step; older kernels get
// LOOP_SET_FD and LOOP_SET_STATUS64.
func configureLoop(dev, backing *os.File, blockSize int) (bool, error) {
	cfg := unix.LoopConfig{Fd: uint32(backing.Fd()), Size: uint32(blockSize)}
	cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR | unix.LO_FLAGS_DIRECT_IO
	// lo_file_name is what LOOP_GET_STATUS64 reports and what losetup
	// shows when sysfs is unavailable; sysfs shows the real path anyway.
	copy(cfg.Info.File_name[:unix.LO_NAME_SIZE-1], backing.Name())
	fd := int(dev.Fd())
	err := unix.IoctlLoopConfigure(fd, &cfg)
	if err == unix.EINVAL {
		// Kernels since 6.14 refuse direct I/O they cannot do instead of
		// silently falling back; ask again for buffered I/O.
		cfg.Info.Flags &^= unix.LO_FLAGS_DIRECT_IO
		err = unix.IoctlLoopConfigure(fd, &cfg)
	}
	if err == unix.EINVAL || err == unix.ENOTTY {
		if err = configureLoopLegacy(fd, backing, blockSize); err != nil {
			return false, err
		}
	} else if err != nil {
		return false, err
	}
	// Older kernels drop the flag silently when direct I/O is impossible:
	// ask what was applied.
	info, err := unix.IoctlLoopGetStatus64(fd)
	if err != nil {
		unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
		return false, fmt.Errorf("read back loop status: %w", err)
	}
	return info.Flags&unix.LO_FLAGS_DIRECT_IO != 0, nil
}

// configureLoopLegacy is the pre-LOOP_CONFIGURE sequence. Failing to set
// the block size or direct I/O leaves a working, if slower, device.
func configureLoopLegacy(fd int, backing *os.File, blockSize int) error {
	if err := unix.IoctlSetInt(fd, unix.LOOP_SET_FD, int(backing.Fd())); err != nil {
		return fmt.Errorf("LOOP_SET_FD: %w", err)
	}
	info := unix.LoopInfo64{Flags: unix.LO_FLAGS_AUTOCLEAR}
	copy(info.File_name[:unix.LO_NAME_SIZE-1], backing.Name())
	if err := unix.IoctlLoopSetStatus64(fd, &info); err != nil {
		unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
		return fmt.Errorf("LOOP_SET_STATUS64: %w", err)
	}
	unix.IoctlSetInt(fd, unix.LOOP_SET_BLOCK_SIZE, blockSize)
	unix.IoctlSetInt(fd, unix.LOOP_SET_DIRECT_IO, 1)
	return nil
}

// clear detaches the loop device and closes the anchor. LOOP_CLR_FD only
// marks the device for release; the kernel releases it when its last
// opener closes, which is our close here unless someone else still holds
// it. If the ioctl fails the anchor stays open, so clear can be retried.
func (l *loopDevice) clear() error {
	err := unix.IoctlSetInt(int(l.f.Fd()), unix.LOOP_CLR_FD, 0)
	if err != nil && err != unix.ENXIO { // ENXIO: not bound any more
		return fmt.Errorf("LOOP_CLR_FD on %s: %w", l.path, err)
	}
	l.f.Close()
	return nil
}

// waitLoopFree waits until the loop device has no backing file.
func waitLoopFree(ctx context.Context, path string) error {
	sys := filepath.Join("/sys/block", filepath.Base(path), "loop", "backing_file")
	for {
		if _, err := os.Stat(sys); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still bound: %w", path, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// loopsBackedBy returns the loop devices bound to file, found through
// /sys/block/loop*/loop/backing_file. A file whose mount was lazily
// detached shows with a " (deleted)" suffix; it still counts.
func loopsBackedBy(file string) []string {
	dirs, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		name := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), " (deleted)")
		if name == file {
			out = append(out, "/dev/"+filepath.Base(filepath.Dir(filepath.Dir(p))))
		}
	}
	return out
}

// loopsBackedByOn is loopsBackedBy restricted to loop devices whose
// backing file lives on the filesystem with device number dev. The path
// alone is ambiguous: in another mount namespace (another lab node, a
// container) the same path names another file, and that node's loop
// device must not be taken for ours.
func loopsBackedByOn(file string, dev uint64) []string {
	var out []string
	for _, path := range loopsBackedBy(file) {
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			continue
		}
		info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
		f.Close()
		if err == nil && info.Device == dev {
			out = append(out, path)
		}
	}
	return out
}

// clearLoop releases a loop device this process does not hold (a leftover
// from a crash).
func clearLoop(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	l := &loopDevice{f: f, path: path}
	if err := l.clear(); err != nil {
		return err
	}
	return waitLoopFree(ctx, path)
}
