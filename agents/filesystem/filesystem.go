// Package filesystem mounts a group's volume: the filesystem agent.
//
// Start checks the filesystem when it was not cleanly unmounted (ext2/3/4
// only, see extNeedsFsck) and mounts the device with the configured
// options. Monitor checks that the device is mounted on the mountpoint and
// that the filesystem answers: statfs and a directory read, plus, with
// monitor_write, a write, fsync and read-back of a status file. Stop
// unmounts; when the mount is busy it finds the processes using it by
// scanning /proc (FindUsers), sends them SIGTERM for the first half of the
// stop timeout and SIGKILL for the second, logging each with its pid and
// command line, and retries the umount until the timeout.
//
// The agent never kills anything outside the mountpoint: matching is by
// path under the mountpoint, never by device, "/" is refused as a
// mountpoint (Fatal), and the agent's own process is never signalled.
//
// It does not do mount --move before killing (resource-agents PR #2106),
// lazy unmounts (MNT_DETACH would leave the filesystem mounted in the
// kernel while the volume is released) or forced unmounts (MNT_FORCE only
// means something to network filesystems).
package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/agents/internal/run"
	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/resources"
)

// StatusFile is the file monitor_write writes and reads back at the root
// of the filesystem.
const StatusFile = ".hactl-monitor"

const (
	defaultTimeout = 60 * time.Second // the cluster file's default
	killPoll       = 250 * time.Millisecond
)

// Agent is the filesystem resource of a group. It implements
// resources.Agent.
type Agent struct {
	device string
	fs     config.Filesystem
	log    *zap.Logger

	proc      fs.FS  // /proc, for FindUsers
	mountinfo string // /proc/self/mountinfo
	self      int    // our pid, never signalled

	// probing is set while a monitor probe runs. A probe stuck in a hung
	// filesystem cannot be cancelled; rather than pile up another
	// goroutine each interval, later monitors fail at once while it hangs.
	probing atomic.Bool
}

var _ resources.Agent = (*Agent)(nil)

// New returns the agent that mounts device (the volume's attached block
// device) as fs says. A nil log discards the logs.
func New(device string, fs config.Filesystem, log *zap.Logger) *Agent {
	if log == nil {
		log = zap.NewNop()
	}
	return &Agent{
		device:    device,
		fs:        fs,
		log:       log.With(zap.String("agent", "filesystem"), zap.String("mountpoint", fs.Mountpoint), zap.String("device", device)),
		proc:      procFS(),
		mountinfo: "/proc/self/mountinfo",
		self:      os.Getpid(),
	}
}

func result(c resources.Code, format string, args ...any) resources.Result {
	return resources.Result{Code: c, Reason: fmt.Sprintf(format, args...)}
}

// validate refuses a configuration the agent must never act on. "/" in
// particular: unmounting it is impossible and every process would match
// as a user of it.
func (a *Agent) validate() (resources.Result, bool) {
	mp := a.fs.Mountpoint
	switch {
	case mp == "" || !path.IsAbs(mp):
		return result(resources.Fatal, "mountpoint %q is not an absolute path", mp), false
	case path.Clean(mp) != mp:
		return result(resources.Fatal, "mountpoint %q is not a clean path (want %q)", mp, path.Clean(mp)), false
	case mp == "/":
		return result(resources.Fatal, "mountpoint / refused: hactl never unmounts or kills users of the root filesystem"), false
	case a.device == "":
		return result(resources.Fatal, "no device to mount on %s", mp), false
	}
	return resources.Result{}, true
}

// deadline bounds an operation by ctx and the configured timeout.
func (a *Agent) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	t := a.fs.Timeout
	if t <= 0 {
		t = defaultTimeout
	}
	return context.WithTimeout(ctx, t)
}

// state reads mountinfo and finds the agent's mounts.
func (a *Agent) state() (mountState, error) {
	f, err := os.Open(a.mountinfo)
	if err != nil {
		return mountState{}, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	mounts, err := ParseMountinfo(f)
	if err != nil {
		return mountState{}, err
	}
	return inspect(mounts, a.fs.Mountpoint, a.isDevice()), nil
}

// isDevice returns the test of whether a mount is of the agent's device:
// the same device number as the block device (robust to /dev/disk/by-*
// and mapper names), or the same source path after resolving symlinks
// (for filesystems with anonymous device numbers, such as btrfs).
func (a *Agent) isDevice() func(Mount) bool {
	var st unix.Stat_t
	haveRdev := unix.Stat(a.device, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK
	resolved, err := filepath.EvalSymlinks(a.device)
	if err != nil {
		resolved = a.device
	}
	return func(m Mount) bool {
		if haveRdev && unix.Major(st.Rdev) == m.Major && unix.Minor(st.Rdev) == m.Minor {
			return true
		}
		if m.Source == a.device || m.Source == resolved {
			return true
		}
		src, err := filepath.EvalSymlinks(m.Source)
		return err == nil && src == resolved
	}
}

func describe(m *Mount) string {
	return fmt.Sprintf("%s (%s)", m.Source, m.FSType)
}

// Start checks and mounts the filesystem. It is idempotent: the device
// already mounted on the mountpoint is success.
func (a *Agent) Start(ctx context.Context) resources.Result {
	if r, ok := a.validate(); !ok {
		return r
	}
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	mp := a.fs.Mountpoint
	st, err := a.state()
	if err != nil {
		return result(resources.Soft, "%v", err)
	}
	switch {
	case st.ours != nil && st.top == st.ours:
		return result(resources.OK, "%s already mounted on %s", a.device, mp)
	case st.top != nil:
		return result(resources.Hard, "%s is already mounted on %s, not %s", describe(st.top), mp, a.device)
	case len(st.elsewhere) > 0:
		// Checking or mounting a filesystem mounted elsewhere is unsafe
		// (fsck) or hides a mistake (a second mount of the same volume).
		return result(resources.Hard, "%s is already mounted on %s", a.device, st.elsewhere[0].MountPoint)
	}
	if _, err := os.Stat(a.device); err != nil {
		return result(resources.Hard, "device: %v", err)
	}
	if err := os.MkdirAll(mp, 0o755); err != nil {
		return result(resources.Hard, "create mountpoint: %v", err)
	}
	var notes []string
	if a.fs.Fsck {
		r, note := a.fsck(ctx)
		if r.Code != resources.OK {
			return r
		}
		notes = append(notes, note)
	}
	flags, data, dropped := parseOptions(a.fs.Options)
	if len(dropped) > 0 {
		a.log.Info("ignoring userspace-only mount options", zap.Strings("options", dropped))
	}
	err = blocking(ctx, func() error { return unix.Mount(a.device, mp, a.fs.FSType, flags, data) })
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return result(resources.Soft, "mount of %s on %s did not finish in time; it may still complete (Stop unmounts it)", a.device, mp)
		}
		return result(resources.Soft, "mount %s on %s (type %s, options %q): %v", a.device, mp, a.fs.FSType, data, err)
	}
	notes = append([]string{fmt.Sprintf("mounted %s on %s", a.device, mp)}, notes...)
	reason := strings.Join(notes, "; ")
	a.log.Info("mounted", zap.String("reason", reason))
	return result(resources.OK, "%s", reason)
}

// fsck checks the filesystem when it was not cleanly unmounted. It
// returns OK and a note for the Start reason, or the failure.
//
// Only ext2/3/4 are checked: hactl reads their superblock to tell (see
// extNeedsFsck) and runs `e2fsck -p` (preen: fix what is safe to fix
// without questions). XFS and btrfs replay their logs at mount and their
// fsck tools are not a repair to run unattended (xfs_repair -n only
// reports), so other types are mounted as they are.
//
// e2fsck's exit status is a bit mask (fsck(8)):
//
//	0, 1  clean, or errors corrected → mount
//	2     errors corrected, reboot advised → mount: the advice is for a
//	      mounted (root) filesystem whose cached state went stale, and this
//	      one is mounted nowhere (Start checked)
//	4     errors left uncorrected → Hard, with the output's last lines: an
//	      operator must run fsck by hand
//	8, 16, 128  operational, usage or library error → Hard
//	32    cancelled → Soft
//	a timeout → Soft (e2fsck stops cleanly on SIGTERM)
func (a *Agent) fsck(ctx context.Context) (resources.Result, string) {
	if !isExt(a.fs.FSType) {
		return resources.Result{}, fmt.Sprintf("no fsck for %s", a.fs.FSType)
	}
	sb, err := readExtSuperblock(a.device)
	if err != nil {
		return result(resources.Hard, "fsck: %v", err), ""
	}
	need, why, err := extNeedsFsck(sb)
	if err != nil {
		return result(resources.Hard, "fsck of %s: %v", a.device, err), ""
	}
	if !need {
		return resources.Result{}, "no fsck: " + why
	}
	a.log.Warn("checking the filesystem", zap.String("reason", why))
	o := run.Run(ctx, run.Cmd{Argv: []string{"e2fsck", "-p", a.device}})
	out := run.LastLines(o.Stdout+"\n"+o.Stderr, 3)
	a.log.Info("fsck done", zap.String("outcome", o.Describe()), zap.Duration("took", o.Duration), zap.String("output", out))
	switch {
	case o.NotFound:
		return result(resources.Hard, "fsck (%s): %s", why, o.Describe()), ""
	case o.TimedOut, o.Exit&32 != 0:
		return result(resources.Soft, "fsck of %s (%s) did not finish: %s", a.device, why, o.Describe()), ""
	case o.Exit < 0:
		return result(resources.Hard, "fsck of %s (%s): %s: %s", a.device, why, o.Describe(), out), ""
	case o.Exit&^3 != 0:
		return result(resources.Hard, "fsck of %s (%s) exited %d, errors left or fsck failed: %s", a.device, why, o.Exit, out), ""
	case o.Exit&2 != 0:
		a.log.Warn("fsck advises a reboot; the filesystem is not mounted anywhere, so mounting it now is safe", zap.String("output", out))
		return resources.Result{}, fmt.Sprintf("fsck corrected errors (%s)", why)
	case o.Exit == 1:
		return resources.Result{}, fmt.Sprintf("fsck corrected errors (%s)", why)
	}
	return resources.Result{}, fmt.Sprintf("fsck passed (%s)", why)
}

// blocking runs f, which may block in the kernel without a way to cancel
// it, and returns its error or ctx's when ctx ends first. f then keeps
// running in its goroutine.
func blocking(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Monitor checks that the device is mounted on the mountpoint and the
// filesystem answers within the caller's deadline (the monitor timeout;
// the configured timeout when ctx has none).
func (a *Agent) Monitor(ctx context.Context) resources.Result {
	if r, ok := a.validate(); !ok {
		return r
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = a.withTimeout(ctx)
		defer cancel()
	}
	mp := a.fs.Mountpoint
	st, err := a.state()
	if err != nil {
		return result(resources.Soft, "%v", err)
	}
	switch {
	case st.ours == nil && st.top != nil:
		return result(resources.NotRunning, "%s not mounted on %s: %s is mounted there", a.device, mp, describe(st.top))
	case st.ours == nil:
		return result(resources.NotRunning, "%s not mounted on %s", a.device, mp)
	case st.top != st.ours:
		return result(resources.Hard, "%s on %s is covered by %s mounted over it", a.device, mp, describe(st.top))
	}
	if !a.probing.CompareAndSwap(false, true) {
		return result(resources.Soft, "the previous probe of %s is still blocked: the filesystem hangs", mp)
	}
	err = blocking(ctx, func() error {
		defer a.probing.Store(false)
		return a.probe()
	})
	switch {
	case err == nil:
		return resources.Result{Code: resources.OK}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return result(resources.Soft, "%s did not answer in time: hung filesystem or device", mp)
	case errors.Is(err, unix.EIO) || errors.Is(err, unix.EROFS):
		// The device fails or the kernel remounted read-only after
		// errors: the filesystem cannot be trusted on this node.
		return result(resources.Hard, "%v", err)
	}
	return result(resources.Soft, "%v", err)
}

// probe does the monitor's I/O. statfs and a directory read may be served
// from caches; the write, fsync and read-back of the status file reach
// the device, so they find a failing disk.
func (a *Agent) probe() error {
	mp := a.fs.Mountpoint
	var sfs unix.Statfs_t
	if err := unix.Statfs(mp, &sfs); err != nil {
		return fmt.Errorf("statfs %s: %w", mp, err)
	}
	d, err := os.Open(mp)
	if err != nil {
		return fmt.Errorf("open %s: %w", mp, err)
	}
	_, err = d.Readdirnames(1)
	d.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s: %w", mp, err)
	}
	if !a.fs.MonitorWrite {
		return nil
	}
	p := filepath.Join(mp, StatusFile)
	want := fmt.Sprintf("hactl monitor pid %d at %s\n", a.self, time.Now().UTC().Format(time.RFC3339Nano))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write status file: %w", err)
	}
	_, err = f.WriteString(want)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write status file %s: %w", p, err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("read back status file: %w", err)
	}
	if string(got) != want {
		return fmt.Errorf("status file %s reads back %q, wrote %q", p, got, want)
	}
	return nil
}

// Device is the block device the agent mounts.
func (a *Agent) Device() string { return a.device }
