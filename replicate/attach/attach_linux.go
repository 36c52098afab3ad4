package attach

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Attachment is one volume exposed to the OS. Its methods are safe for
// concurrent use.
type Attachment struct {
	mu       sync.Mutex
	info     Info
	detached bool
	lock     *os.File // the per-volume lock, held while attached

	// loop mode
	mountDir string
	server   *fuse.Server
	fuseConn string // /sys/fs/fuse/connections/N, to abort on a forced detach
	loop     *loopDevice

	// nbd mode
	nbdIndex int
}

// Info describes the attachment.
func (a *Attachment) Info() Info {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.info
}

// Resolve returns the mode Attach would use for m and why. Auto picks nbd
// when the kernel's "nbd" generic netlink family resolves, loop otherwise.
func Resolve(m Mode) (Mode, string) {
	switch m {
	case ModeAuto, "":
		if err := nbdAvailable(); err != nil {
			return ModeLoop, "auto: " + err.Error() + ", using loop"
		}
		return ModeNBD, "auto: kernel NBD client available"
	default:
		return m, fmt.Sprintf("attach = %q", m)
	}
}

// Attach exposes the volume as the options say. It first cleans what a
// crashed earlier run left for the same volume (see CleanStale) and fails
// with ErrAttached if another live attachment holds the volume.
func Attach(ctx context.Context, o Options) (*Attachment, error) {
	a, err := attach(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("attach volume %q: %w", o.Volume, err)
	}
	return a, nil
}

func attach(ctx context.Context, o Options) (*Attachment, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	mode, reason := Resolve(o.Mode)
	switch {
	case mode == ModeLoop && o.Device == nil:
		return nil, fmt.Errorf("%s: loop mode needs Options.Device", reason)
	case mode == ModeNBD && o.NBD.Dial == nil:
		return nil, fmt.Errorf("%s: nbd mode needs Options.NBD.Dial", reason)
	}
	a := &Attachment{
		info:     Info{Volume: o.Volume, Mode: mode, Reason: reason},
		mountDir: filepath.Join(o.RuntimeDir, "attach", o.Volume),
		nbdIndex: -1,
	}
	lock, err := lockVolume(o.RuntimeDir, o.Volume)
	if err != nil {
		return nil, err
	}
	a.lock = lock
	ok := false
	defer func() {
		if !ok {
			a.lock.Close()
		}
	}()
	if err := cleanStale(ctx, o.RuntimeDir, o.Volume); err != nil {
		return nil, err
	}
	switch mode {
	case ModeLoop:
		err = a.attachLoop(ctx, o)
	case ModeNBD:
		err = a.attachNBD(ctx, o)
	}
	if err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

var volumeRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)

// check validates the options and fills in defaults.
func (o *Options) check() error {
	if !volumeRE.MatchString(o.Volume) {
		return fmt.Errorf("volume name %q is not a plain name (letters, digits, '.', '_', '-', at most 63)", o.Volume)
	}
	switch o.Mode {
	case "":
		o.Mode = ModeAuto
	case ModeAuto, ModeNBD, ModeLoop, ModeNone:
	default:
		return fmt.Errorf("unknown attach mode %q (want auto, nbd, loop or none)", o.Mode)
	}
	if o.RuntimeDir == "" {
		o.RuntimeDir = DefaultRuntimeDir
	}
	if !filepath.IsAbs(o.RuntimeDir) {
		return fmt.Errorf("runtime directory %q is not absolute", o.RuntimeDir)
	}
	switch o.BlockSize {
	case 0:
		o.BlockSize = 4096
	case 512, 1024, 2048, 4096:
	default:
		return fmt.Errorf("block size %d is not 512, 1024, 2048 or 4096", o.BlockSize)
	}
	return nil
}

// attachLoop mounts the FUSE file and binds a loop device to it.
func (a *Attachment) attachLoop(ctx context.Context, o Options) (err error) {
	size := o.Device.Size()
	if size <= 0 || size%int64(o.BlockSize) != 0 {
		return fmt.Errorf("device size %d is not a positive multiple of the block size %d", size, o.BlockSize)
	}
	if err := os.MkdirAll(a.mountDir, 0o700); err != nil {
		return err
	}
	file := &fileNode{dev: o.Device, size: size, mtime: time.Now()}
	file.zero, _ = o.Device.(Zeroer)
	timeout := fuseAttrTimeout
	server, err := fs.Mount(a.mountDir, &rootNode{name: o.Volume, file: file}, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:        ownerTag + o.Volume,
			Name:          "hactl",
			DirectMount:   true, // mount(2) as root; fusermount3 only as a fallback
			MaxWrite:      fuseMaxWrite,
			MaxBackground: fuseMaxBackground,
			DisableXAttrs: true,
			// Reads return bytes we already hold; splicing them through a
			// pipe only adds a copy, and fails (noisily) for 1 MiB reads,
			// which exceed the default pipe size with the header.
			DisableSplice: true,
			// Async direct I/O lets the loop device's concurrent requests
			// reach us concurrently (the kernel offers it; go-fuse does
			// not ask by default).
			ExtraCapabilities: fuse.CAP_ASYNC_DIO,
		},
		EntryTimeout: &timeout,
		AttrTimeout:  &timeout,
	})
	if err != nil {
		return fmt.Errorf("mount FUSE on %s: %w", a.mountDir, err)
	}
	a.server = server
	defer func() {
		if err != nil {
			a.unmountFUSE(ctx, true, false)
		}
	}()
	var st unix.Stat_t
	if err := unix.Stat(a.mountDir, &st); err != nil {
		return fmt.Errorf("stat FUSE mount %s: %w", a.mountDir, err)
	}
	// fusectl names a connection after the kernel's dev_t (major<<20|minor).
	a.fuseConn = filepath.Join("/sys/fs/fuse/connections", strconv.FormatUint(uint64(unix.Major(st.Dev))<<20|uint64(unix.Minor(st.Dev)), 10))

	path := filepath.Join(a.mountDir, o.Volume)
	backing, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open FUSE file: %w", err)
	}
	// The loop device takes its own reference; closing ours is a FLUSH.
	defer backing.Close()
	loop, err := bindLoop(backing, o.BlockSize)
	if err != nil {
		return err
	}
	a.loop = loop
	a.info.Path = loop.path
	a.info.DirectIO = loop.directIO
	a.info.BackingFile = path
	return nil
}

// attachNBD hands the NBD sockets to the kernel.
func (a *Attachment) attachNBD(ctx context.Context, o Options) error {
	idx, err := connectNBD(ctx, o.Volume, o.BlockSize, o.NBD)
	if errors.Is(err, ErrNBDUnavailable) {
		return fmt.Errorf(`%w; use attach = "loop"`, err)
	}
	if err != nil {
		return err
	}
	a.nbdIndex = idx
	a.info.Path = fmt.Sprintf("/dev/nbd%d", idx)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := waitNBDReady(wctx, idx); err != nil {
		disconnectNBD(idx)
		return err
	}
	return nil
}

// Detach removes the block device. It refuses with ErrBusy, naming the
// holders, while the device is mounted, stacked under another device or
// open in a process, unless force is set; a forced detach makes the
// holders' further I/O fail. Once Detach returns nil the Device is no
// longer called. Detaching twice is not an error.
func (a *Attachment) Detach(ctx context.Context, force bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.detached {
		return nil
	}
	var err error
	switch a.info.Mode {
	case ModeLoop:
		err = a.detachLoop(ctx, force)
	case ModeNBD:
		err = a.detachNBD(force)
	}
	if err != nil {
		return fmt.Errorf("detach volume %q (%s): %w", a.info.Volume, a.info.Path, err)
	}
	a.lock.Close()
	a.detached = true
	return nil
}

func (a *Attachment) detachLoop(ctx context.Context, force bool) error {
	if a.loop != nil {
		hs, err := holders(a.loop.path, int(a.loop.f.Fd()))
		if err != nil {
			return err
		}
		if len(hs) > 0 && !force {
			return busyError(a.loop.path, hs)
		}
		if err := a.loop.clear(); err != nil {
			return err
		}
		path := a.loop.path
		a.loop = nil
		if len(hs) > 0 {
			// The kernel releases the device only when the holders close
			// it, and meanwhile it keeps the FUSE file open: abort the
			// connection so their I/O fails now instead of reaching the
			// Device after Detach returned, and unmount lazily.
			return a.unmountFUSE(ctx, true, true)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = waitLoopFree(wctx, path)
		cancel()
		if err != nil && !force {
			// Someone opened it between the check and the clear. It is
			// released when they close it; a later Detach finishes.
			hs, _ := holders(path, -1)
			return busyError(path, hs)
		}
		if err != nil {
			return a.unmountFUSE(ctx, true, true)
		}
	}
	return a.unmountFUSE(ctx, force, false)
}

// unmountFUSE unmounts the FUSE file system and waits for its server to
// stop. lazyNow skips the plain unmount that is bound to fail because the
// loop device still holds the file; force falls back to aborting the
// connection and a lazy unmount when the plain one fails.
func (a *Attachment) unmountFUSE(ctx context.Context, force, lazyNow bool) error {
	if a.server == nil {
		return nil
	}
	var err error
	if !lazyNow {
		err = a.server.Unmount()
	}
	if lazyNow || err != nil {
		if !force {
			return fmt.Errorf("unmount FUSE %s: %w", a.mountDir, err)
		}
		a.abortFUSE()
		// EINVAL: the forced unmount in abortFUSE already removed it.
		if err := unix.Unmount(a.mountDir, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
			return fmt.Errorf("lazy unmount FUSE %s: %w", a.mountDir, err)
		}
	}
	done := make(chan struct{})
	go func() { a.server.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("FUSE server for %s did not stop: %w", a.mountDir, ctx.Err())
	}
	a.server = nil
	os.Remove(a.mountDir)
	return nil
}

// abortFUSE aborts the FUSE connection: every pending and future request
// fails with ENOTCONN and the server's loops end. It uses fusectl when that
// is mounted, else a forced unmount, whose first step in FUSE is the same
// abort (the unmount itself then fails while the loop device holds the
// file, which is fine).
func (a *Attachment) abortFUSE() {
	if a.fuseConn != "" && os.WriteFile(filepath.Join(a.fuseConn, "abort"), []byte("1"), 0) == nil {
		return
	}
	unix.Unmount(a.mountDir, unix.MNT_FORCE)
}

func (a *Attachment) detachNBD(force bool) error {
	if a.nbdIndex < 0 {
		return nil
	}
	hs, err := holders(a.info.Path, -1)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(hs) > 0 && !force {
		return busyError(a.info.Path, hs)
	}
	if err := disconnectNBD(a.nbdIndex); err != nil {
		return err
	}
	a.nbdIndex = -1
	return nil
}

// lockVolume takes the volume's lock file, which stays locked while the
// attachment lives. A crashed process loses its lock, so a held lock means
// a live attachment whose leftovers must not be "cleaned".
func lockVolume(runtimeDir, volume string) (*os.File, error) {
	dir := filepath.Join(runtimeDir, "attach")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, volume+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(f.Name())
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, fmt.Errorf("%w (lock %s held by pid %s)", ErrAttached, f.Name(), strings.TrimSpace(string(b)))
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// CleanStale removes what a crashed earlier run left for the volume: a loop
// device bound to the volume's FUSE file, a kernel NBD device with the
// volume's backend identifier, and the dead FUSE mount. It refuses with
// ErrBusy while one of those devices is still mounted or open, and with
// ErrAttached while a live attachment holds the volume. Attach calls it.
func CleanStale(ctx context.Context, runtimeDir, volume string) error {
	o := Options{Volume: volume, RuntimeDir: runtimeDir}
	if err := o.check(); err != nil {
		return err
	}
	lock, err := lockVolume(o.RuntimeDir, volume)
	if err != nil {
		return fmt.Errorf("clean volume %q: %w", volume, err)
	}
	defer lock.Close()
	if err := cleanStale(ctx, o.RuntimeDir, volume); err != nil {
		return fmt.Errorf("clean volume %q: %w", volume, err)
	}
	return nil
}

// cleanStale does CleanStale's work with the lock held.
func cleanStale(ctx context.Context, runtimeDir, volume string) error {
	mnt := filepath.Join(runtimeDir, "attach", volume)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Our leftover loop device is bound to the file on the FUSE mount at
	// mnt in this mount namespace; with no such mount there is none.
	var loops []string
	if fuseDev, ok, err := mountDevice(mnt); err != nil {
		return err
	} else if ok {
		loops = loopsBackedByOn(filepath.Join(mnt, volume), fuseDev)
	}
	for _, dev := range loops {
		hs, err := holders(dev, -1)
		if err != nil {
			return err
		}
		if len(hs) > 0 {
			return fmt.Errorf("leftover %s from an earlier run: %w", dev, busyError(dev, hs))
		}
		if err := clearLoop(wctx, dev); err != nil {
			return fmt.Errorf("leftover %s from an earlier run: %w", dev, err)
		}
	}
	for _, idx := range nbdsBackedBy(volume) {
		dev := fmt.Sprintf("/dev/nbd%d", idx)
		hs, err := holders(dev, -1)
		if err != nil {
			return err
		}
		if len(hs) > 0 {
			return fmt.Errorf("leftover %s from an earlier run: %w", dev, busyError(dev, hs))
		}
		if err := disconnectNBD(idx); err != nil {
			return fmt.Errorf("leftover %s from an earlier run: %w", dev, err)
		}
	}
	return unmountStale(mnt)
}

// mountDevice returns the device number of what is mounted on mnt (the
// top of the stack), and whether anything is.
func mountDevice(mnt string) (uint64, bool, error) {
	mounts, err := readMountinfo()
	if err != nil {
		return 0, false, err
	}
	var dev uint64
	found := false
	for _, m := range mounts {
		if m.mountPoint != mnt {
			continue
		}
		var major, minor uint32
		if _, err := fmt.Sscanf(m.devNum, "%d:%d", &major, &minor); err != nil {
			return 0, false, fmt.Errorf("mountinfo: bad device number %q for %s", m.devNum, mnt)
		}
		dev, found = unix.Mkdev(major, minor), true
	}
	return dev, found, nil
}

// unmountStale unmounts whatever is mounted on mnt (a dead FUSE mount
// answers every access with ENOTCONN, so it must go before the directory
// can be used again), lazily if a plain unmount fails.
func unmountStale(mnt string) error {
	for range 8 { // mounts can be stacked
		mounts, err := readMountinfo()
		if err != nil {
			return err
		}
		mounted := false
		for _, m := range mounts {
			if m.mountPoint == mnt {
				mounted = true
			}
		}
		if !mounted {
			return nil
		}
		if err := unix.Unmount(mnt, 0); err != nil {
			if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount leftover %s: %w", mnt, err)
			}
		}
	}
	return fmt.Errorf("unmount leftover %s: still mounted", mnt)
}

// SetIOFlusher marks every thread of the process as part of the block I/O
// path (prctl PR_SET_IO_FLUSHER, Linux 5.6): their memory allocations do
// not recurse into filesystem or block I/O, and dirty-page throttling
// counts only their own writes. That is the kernel's answer to the one
// deadlock a userspace block server cannot avoid by design: reclaim
// waiting for writeback of the device that this very process serves. The
// agent should call it once, early, when it serves any attached volume.
//
// It needs CAP_SYS_RESOURCE, and, because the setting is per thread, a
// binary built without cgo (CGO_ENABLED=0): only then can Go apply a
// syscall to all threads; threads created later inherit it.
func SetIOFlusher() error {
	_, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_IO_FLUSHER, 1, 0)
	switch errno {
	case 0:
		return nil
	case syscall.ENOTSUP:
		return fmt.Errorf("PR_SET_IO_FLUSHER on all threads needs a binary built with CGO_ENABLED=0: %w", errno)
	default:
		return fmt.Errorf("PR_SET_IO_FLUSHER: %w", errno)
	}
}
