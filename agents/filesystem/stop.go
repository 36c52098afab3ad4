package filesystem

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/resources"
)

// Stop unmounts the filesystem. It is idempotent: the device not mounted
// on the mountpoint is success.
//
// When the umount is busy, the processes using the mountpoint get SIGTERM
// during the first half of the timeout and SIGKILL during the second, the
// umount being retried every 250 ms; each signal is logged with the pid,
// the command line and what held the mount. Mounts below the mountpoint
// are unmounted first (deepest first), as resource-agents' Filesystem
// does. A stop that has not unmounted when the timeout ends fails (Hard)
// naming the processes still using the mount: the volume cannot be
// released, and the group's on_stop_failure decides what happens next.
//
// After a successful umount, the device must be mounted nowhere else: a
// bind mount of the mountpoint keeps the filesystem alive, and Stop fails
// then, naming it, without touching the processes there.
func (a *Agent) Stop(ctx context.Context) resources.Result {
	if r, ok := a.validate(); !ok {
		return r
	}
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	mp := a.fs.Mountpoint
	start := time.Now()
	deadline, _ := ctx.Deadline()
	termUntil := start.Add(deadline.Sub(start) / 2)
	signalled := map[int]unix.Signal{}
	var users []User
	var lastErr error
	unmounted := false
	for {
		st, err := a.state()
		if err != nil {
			return result(resources.Hard, "stop: %v", err)
		}
		if st.ours == nil {
			if len(st.elsewhere) > 0 {
				var where []string
				for _, m := range st.elsewhere {
					where = append(where, m.MountPoint)
				}
				return result(resources.Hard, "%s is not mounted on %s but is still mounted on %s (a bind mount?): the volume cannot be released; processes there were left alone",
					a.device, mp, strings.Join(where, ", "))
			}
			if !unmounted {
				return result(resources.OK, "%s not mounted on %s", a.device, mp)
			}
			reason := fmt.Sprintf("unmounted %s from %s", a.device, mp)
			if len(signalled) > 0 {
				reason += fmt.Sprintf(" after signalling %d process(es) using it", len(signalled))
			}
			a.log.Info("unmounted", zap.String("reason", reason), zap.Duration("took", time.Since(start)))
			return result(resources.OK, "%s", reason)
		}
		if st.top != st.ours {
			return result(resources.Hard, "%s on %s is covered by %s mounted over it; not unmounting what hactl did not mount",
				a.device, mp, describe(st.top))
		}
		err = a.umount(ctx, st)
		switch {
		case err == nil:
			unmounted = true
			continue // there may be a second mount of ours below
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
			return result(resources.Hard, "umount of %s did not return before the stop timeout: hung filesystem or device", mp)
		case errors.Is(err, unix.EINVAL):
			// Raced with someone else's umount: look again.
		case !errors.Is(err, unix.EBUSY):
			return result(resources.Hard, "%v", err)
		}
		lastErr = err
		if !time.Now().Before(deadline) {
			break
		}
		users, err = FindUsers(a.proc, mp, a.self)
		if err != nil {
			a.log.Warn("cannot look for processes using the mountpoint", zap.Error(err))
		}
		sig := unix.SIGTERM
		if !time.Now().Before(termUntil) {
			sig = unix.SIGKILL
		}
		for _, u := range users {
			if signalled[u.PID] == sig {
				continue // once per signal: TERM had its chance; KILL cannot be ignored
			}
			if a.signal(u, sig) {
				signalled[u.PID] = sig
			}
		}
		if !sleep(ctx, killPoll) {
			break
		}
	}
	reason := fmt.Sprintf("could not unmount %s within %s: %v", mp, time.Since(start).Round(time.Millisecond), lastErr)
	if len(users) > 0 {
		var ps []string
		for _, u := range users {
			ps = append(ps, u.String())
		}
		reason += "; still used by " + strings.Join(ps, ", ")
	} else {
		reason += "; no process found using it (another mount namespace, an NFS export, a loop device or swap file on it?)"
	}
	a.log.Error("stop failed", zap.String("reason", reason))
	return result(resources.Hard, "%s", reason)
}

// umount unmounts the mounts below the mountpoint, deepest first, then the
// mountpoint. Errors of submounts are logged only: a busy submount makes
// the mountpoint busy, and its users are under the mountpoint too.
func (a *Agent) umount(ctx context.Context, st mountState) error {
	subs := append([]Mount(nil), st.submounts...)
	sort.SliceStable(subs, func(i, j int) bool { return len(subs[i].MountPoint) > len(subs[j].MountPoint) })
	for _, m := range subs {
		if err := blocking(ctx, func() error { return unix.Unmount(m.MountPoint, 0) }); err != nil {
			a.log.Warn("cannot unmount a mount below the mountpoint", zap.String("submount", m.MountPoint), zap.Error(err))
		} else {
			a.log.Info("unmounted a mount below the mountpoint", zap.String("submount", m.MountPoint))
		}
	}
	mp := a.fs.Mountpoint
	if err := blocking(ctx, func() error { return unix.Unmount(mp, 0) }); err != nil {
		return fmt.Errorf("umount %s: %w", mp, err)
	}
	return nil
}

// signal sends sig to u through a pidfd, after checking again that the
// process behind the pidfd uses the mountpoint: between the scan and the
// signal the pid may have been reused by an unrelated process.
func (a *Agent) signal(u User, sig unix.Signal) bool {
	fields := []zap.Field{zap.Int("pid", u.PID), zap.String("signal", unix.SignalName(sig)),
		zap.String("cmdline", u.Cmdline), zap.String("why", u.Why)}
	fd, err := unix.PidfdOpen(u.PID, 0)
	if err != nil {
		if !errors.Is(err, unix.ESRCH) {
			a.log.Warn("cannot open pidfd", append(fields, zap.Error(err))...)
		}
		return false
	}
	defer unix.Close(fd)
	rl, ok := a.proc.(fs.ReadLinkFS)
	if !ok {
		return false
	}
	if usesMount(a.proc, rl, strconv.Itoa(u.PID), a.fs.Mountpoint) == "" {
		return false // gone, or no longer using the mount
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if !errors.Is(err, unix.ESRCH) {
			a.log.Warn("cannot signal a process using the mountpoint", append(fields, zap.Error(err))...)
		}
		return false
	}
	a.log.Warn("signalled a process using the mountpoint", fields...)
	return true
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
