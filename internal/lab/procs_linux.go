package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// nsID identifies a namespace by the device and inode of its nsfs file.
type nsID struct{ dev, ino uint64 }

func nsIDOf(path string) (nsID, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, false
	}
	return nsID{st.Dev, st.Ino}, true
}

// procsIn lists the processes whose network or mount namespace is one of
// ids, like `ip netns pids` does for one namespace. Zombies have no
// namespaces left and are not listed.
func procsIn(ids map[nsID]bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		for _, kind := range []string{"net", "mnt"} {
			if id, ok := nsIDOf(filepath.Join("/proc", e.Name(), "ns", kind)); ok && ids[id] {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// stopProcs asks every process in the namespaces to stop with SIGTERM, so
// that agents remove their addresses and release their mounts, and waits up
// to grace for them to go; whatever is left then gets SIGKILL until none is
// left, for at most timeout more.
func stopProcs(ctx context.Context, ids map[nsID]bool, grace, timeout time.Duration) error {
	if len(ids) == 0 {
		return nil
	}
	pids := procsIn(ids)
	if len(pids) == 0 {
		return nil
	}
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGTERM)
	}
	if err := signalUntilGone(ctx, ids, 0, grace); err == nil {
		return nil
	} else if ctx.Err() != nil {
		return err
	}
	return signalUntilGone(ctx, ids, unix.SIGKILL, timeout)
}

// signalUntilGone sends sig (0: none, only wait) to every process in the
// namespaces every poll until none is left, for at most timeout.
func signalUntilGone(ctx context.Context, ids map[nsID]bool, sig unix.Signal, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	const poll = 20 * time.Millisecond
	for i := 0; ; i++ {
		pids := procsIn(ids)
		if len(pids) == 0 {
			return nil
		}
		if sig != 0 {
			for _, pid := range pids {
				// ESRCH: it died meanwhile; anything else shows up on the next scan.
				_ = unix.Kill(pid, sig)
			}
		}
		if time.Now().After(deadline) || i > int(timeout/poll)+1 {
			slices.Sort(pids)
			return fmt.Errorf("processes still running after %v: %v", timeout, pids)
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("stopping processes %v", pids), ctx.Err())
		case <-time.After(poll):
		}
	}
}
