package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// A node's persistent mount namespace is made on a dedicated OS thread:
// the thread unshares its mount namespace (the kernel unshares the
// thread's fs_struct with it, which a multi-threaded process may do per
// thread), makes every mount private so nothing propagates back to the
// host, enters the node's network namespace and mounts what the node
// needs. A thread in the host namespace then bind-mounts
// /proc/<pid>/task/<tid>/ns/mnt onto the pin file, which keeps the
// namespace alive after the thread is gone, like `unshare --mount=FILE`.
// The thread is then thrown away (see onThrowawayThread).
//
// The pin files live in <lab>/ns, which is bind-mounted on itself and made
// private: the kernel refuses to bind a mount namespace file onto a shared
// mount, because propagation could create reference loops.

// prepareNSDir makes dir a private mount of itself.
func prepareNSDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := unix.Mount(dir, dir, "none", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s on itself: %w", dir, err)
	}
	if err := unix.Mount("", dir, "none", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", dir, err)
	}
	return nil
}

// bindMount is one bind mount inside a node.
type bindMount struct{ src, dst string }

// nodeMountSpec says what a node's mount namespace gets.
type nodeMountSpec struct {
	pin   string // file to pin the namespace on (in a private mount)
	netns string // network namespace file, for the node's own /sys/class/net
	tmpfs []string
	binds []bindMount
}

func mountSpecFor(n Node) nodeMountSpec {
	return nodeMountSpec{
		pin:   n.MountNS,
		netns: netnsPath(n.Netns),
		tmpfs: []string{nodeRunDir},
		binds: []bindMount{{n.EtcDir, nodeEtcDir}, {n.LibDir, nodeLibDir}},
	}
}

// createMountNS creates and pins a node's mount namespace.
func createMountNS(spec nodeMountSpec) error {
	f, err := os.OpenFile(spec.pin, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create pin file: %w", err)
	}
	f.Close()

	type ready struct {
		tid int
		err error
	}
	readyc := make(chan ready, 1)
	release := make(chan struct{})
	go func() {
		_ = onThrowawayThread(func() error {
			err := setupNodeMounts(spec)
			readyc <- ready{unix.Gettid(), err}
			if err == nil {
				<-release // until pinned, the namespace lives only as long as this thread
			}
			return nil
		})
	}()
	r := <-readyc
	if r.err == nil {
		// This goroutine is not on the locked thread, so it mounts in the
		// host namespace.
		src := fmt.Sprintf("/proc/%d/task/%d/ns/mnt", os.Getpid(), r.tid)
		r.err = unix.Mount(src, spec.pin, "none", unix.MS_BIND, "")
		close(release)
	}
	if r.err != nil {
		os.Remove(spec.pin)
		return fmt.Errorf("mount namespace %s: %w", spec.pin, r.err)
	}
	return nil
}

// setupNodeMounts runs on a locked thread and moves it into a new mount
// namespace. Order matters: propagation is made private before any mount.
func setupNodeMounts(spec nodeMountSpec) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Mount("", "/", "none", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	fd, err := unix.Open(spec.netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", spec.netns, err)
	}
	err = unix.Setns(fd, unix.CLONE_NEWNET)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("enter %s: %w", spec.netns, err)
	}
	for _, dir := range spec.tmpfs {
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=64m"); err != nil {
			return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
		}
	}
	if len(spec.tmpfs) > 0 {
		if err := mountNodeSysNet(filepath.Join(spec.tmpfs[0], ".sysfs")); err != nil {
			return err
		}
	}
	for _, b := range spec.binds {
		if err := unix.Mount(b.src, b.dst, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount %s on %s: %w", b.src, b.dst, err)
		}
	}
	return nil
}

// mountNodeSysNet shows the node's own interfaces in /sys/class/net (a
// sysfs mount lists the interfaces of the mounter's network namespace).
// Unlike `ip netns exec`, which replaces all of /sys, only the net
// directories are covered, so /sys/fs/cgroup and /sys/block stay usable.
func mountNodeSysNet(tmp string) error {
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if err := unix.Mount("sysfs", tmp, "sysfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount sysfs: %w", err)
	}
	var err error
	for _, d := range []string{"class/net", "devices/virtual/net"} {
		if e := unix.Mount(filepath.Join(tmp, d), filepath.Join("/sys", d), "none", unix.MS_BIND, ""); e != nil {
			err = fmt.Errorf("bind-mount node sysfs %s: %w", d, e)
			break
		}
	}
	if e := unix.Unmount(tmp, unix.MNT_DETACH); e != nil && err == nil {
		err = fmt.Errorf("unmount %s: %w", tmp, e)
	}
	if e := os.Remove(tmp); e != nil && err == nil {
		err = e
	}
	return err
}

// inMountNS runs fn on a throw-away thread that has entered the mount
// namespace pinned at pin.
func inMountNS(pin string, fn func() error) error {
	return onThrowawayThread(func() error {
		// setns into a mount namespace needs an fs_struct of our own.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare fs: %w", err)
		}
		fd, err := unix.Open(pin, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = unix.Setns(fd, unix.CLONE_NEWNS)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("enter mount namespace %s: %w", pin, err)
		}
		return fn()
	})
}

// onThrowawayThread runs fn on an OS thread of its own that is discarded
// afterwards, so fn may move the thread into other namespaces. The thread
// stays locked: when a goroutine exits locked, the runtime terminates its
// thread instead of reusing it. The main thread is the exception: the
// runtime parks it forever rather than terminating it, and /proc/self
// shows its view, so fn never runs there.
func onThrowawayThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// While this goroutine holds the main thread, the nested one
			// necessarily runs on another thread.
			errc <- onThrowawayThread(fn)
			runtime.UnlockOSThread()
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// readMountInfo parses the calling thread's mount table.
func readMountInfo(path string) ([]mountEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMountInfo(f)
}

// detachNodeMounts unmounts (lazily) everything that was mounted inside
// the node namespace pinned at pin and returns those mounts, so loop
// devices backed by files on them can be found.
func detachNodeMounts(pin string, host []mountEntry) ([]mountEntry, error) {
	var local []mountEntry
	err := inMountNS(pin, func() error {
		ms, err := readMountInfo("/proc/thread-self/mountinfo")
		if err != nil {
			return err
		}
		local = localMounts(ms, host)
		var errs []error
		for _, m := range local {
			if err := unmountDetach(m.Point); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
	return local, err
}

// unmountDetach lazily unmounts path; not being mounted is fine.
func unmountDetach(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	return nil
}

// unpin drops the pin of a namespace file and removes the file.
func unpin(path string) error {
	if err := unmountDetach(path); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
