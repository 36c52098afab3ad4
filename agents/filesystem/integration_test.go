package filesystem

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/resources"
)

// loopFS makes an ext4 filesystem on a loop device over a file in a
// temporary directory and returns the device and a mountpoint; everything
// is undone when the test ends, whatever happened.
func loopFS(t *testing.T) (dev, mp string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loop devices and mount")
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "e2fsck", "tune2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	dir := t.TempDir() // registered first, so removed last
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: losetup: %v: %s", err, out)
	}
	dev = strings.TrimSpace(string(out))
	mp = filepath.Join(dir, "mnt")
	t.Cleanup(func() {
		// Undo any mount left behind (MNT_DETACH: cleanup must not fail
		// on a busy mount), then free the loop device.
		for i := 0; i < 5 && unix.Unmount(mp, unix.MNT_DETACH) == nil; i++ {
		}
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "hactltest", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	return dev, mp
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func want(t *testing.T, what string, r resources.Result, code resources.Code, reason string) {
	t.Helper()
	if r.Code != code || !strings.Contains(r.Reason, reason) {
		t.Fatalf("%s = %v, want %v with %q", what, r, code, reason)
	}
	t.Logf("%s = %v", what, r)
}

func TestIntegrationLifecycle(t *testing.T) {
	dev, mp := loopFS(t)
	ctx := ctxT(t)
	a := New(dev, config.Filesystem{Mountpoint: mp, FSType: "ext4", Options: []string{"noatime"}, Fsck: true, MonitorWrite: true, Timeout: 10 * time.Second}, zaptest.NewLogger(t))

	want(t, "monitor before start", a.Monitor(ctx), resources.NotRunning, "not mounted")
	want(t, "start", a.Start(ctx), resources.OK, "no fsck: the filesystem is clean")
	want(t, "start again", a.Start(ctx), resources.OK, "already mounted")
	want(t, "monitor", a.Monitor(ctx), resources.OK, "")
	if b, err := os.ReadFile(filepath.Join(mp, StatusFile)); err != nil || !strings.HasPrefix(string(b), "hactl monitor") {
		t.Errorf("status file: %q %v", b, err)
	}

	// A process with its cwd in the mount, and a bystander outside it.
	if err := os.Mkdir(filepath.Join(mp, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	user := exec.Command("sleep", "1000")
	user.Dir = filepath.Join(mp, "app")
	bystander := exec.Command("sleep", "1000")
	bystander.Dir = filepath.Dir(mp) // the mountpoint's parent: not under it
	for _, c := range []*exec.Cmd{user, bystander} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		c := c
		t.Cleanup(func() { _ = c.Process.Kill(); _, _ = c.Process.Wait() })
	}
	exited := make(chan error, 1)
	go func() { exited <- user.Wait() }()

	want(t, "stop", a.Stop(ctx), resources.OK, "after signalling 1 process")
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("user ended with %v, want SIGTERM", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("user of the mount still runs after stop")
	}
	if err := bystander.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("bystander outside the mount was killed: %v", err)
	}
	want(t, "stop again", a.Stop(ctx), resources.OK, "not mounted")
	want(t, "monitor after stop", a.Monitor(ctx), resources.NotRunning, "not mounted")

	want(t, "start after stop", a.Start(ctx), resources.OK, "mounted")
	if err := unix.Unmount(mp, 0); err != nil {
		t.Fatal(err)
	}
	want(t, "monitor after external umount", a.Monitor(ctx), resources.NotRunning, "not mounted")
}

func TestIntegrationKillAfterTerm(t *testing.T) {
	dev, mp := loopFS(t)
	ctx := ctxT(t)
	a := New(dev, config.Filesystem{Mountpoint: mp, FSType: "ext4", Timeout: 2 * time.Second}, zaptest.NewLogger(t))
	want(t, "start", a.Start(ctx), resources.OK, "mounted")
	// Ignores SIGTERM and holds a file open in the mount.
	user := exec.Command("/bin/sh", "-c", `trap '' TERM; exec 3>"$1"/held; while :; do sleep 0.1; done`, "sh", mp)
	if err := user.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = user.Process.Kill(); _, _ = user.Process.Wait() })
	time.Sleep(200 * time.Millisecond)
	want(t, "stop", a.Stop(ctx), resources.OK, "unmounted")
	if err := user.Wait(); err == nil || user.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("user ended with %v, want SIGKILL", err)
	}
}

func TestIntegrationStopTimesOut(t *testing.T) {
	dev, mp := loopFS(t)
	ctx := ctxT(t)
	a := New(dev, config.Filesystem{Mountpoint: mp, FSType: "ext4", Timeout: time.Second}, zaptest.NewLogger(t))
	want(t, "start", a.Start(ctx), resources.OK, "mounted")
	// The agent's own process holds the mount: it is never signalled, so
	// the stop must fail at the timeout and say so.
	f, err := os.Create(filepath.Join(mp, "mine"))
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	r := a.Stop(ctx)
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("stop took %s with a 1s timeout", took)
	}
	want(t, "stop while the agent holds a file", r, resources.Hard, "could not unmount")
	f.Close()
	want(t, "stop", a.Stop(ctx), resources.OK, "unmounted")
}

func TestIntegrationFsckAndConflicts(t *testing.T) {
	dev, mp := loopFS(t)
	ctx := ctxT(t)
	a := New(dev, config.Filesystem{Mountpoint: mp, FSType: "ext4", Fsck: true, Timeout: 20 * time.Second}, zaptest.NewLogger(t))
	// Mark the filesystem as having errors: Start must fsck it first.
	if out, err := exec.Command("tune2fs", "-E", "force_fsck", dev).CombinedOutput(); err != nil {
		t.Skipf("tune2fs -E force_fsck: %v: %s", err, out)
	}
	want(t, "start of a dirty filesystem", a.Start(ctx), resources.OK, "fsck")
	want(t, "stop", a.Stop(ctx), resources.OK, "unmounted")
	sb, err := readExtSuperblock(dev)
	if err != nil {
		t.Fatal(err)
	}
	if need, why, _ := extNeedsFsck(sb); need {
		t.Errorf("still needs fsck after start and stop: %s", why)
	}

	// Something else on the mountpoint.
	if err := unix.Mount("tmpfs", mp, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	want(t, "start over tmpfs", a.Start(ctx), resources.Hard, "tmpfs")
	want(t, "monitor over tmpfs", a.Monitor(ctx), resources.NotRunning, "tmpfs")
	want(t, "stop leaves tmpfs alone", a.Stop(ctx), resources.OK, "not mounted")
	if err := unix.Unmount(mp, 0); err != nil {
		t.Fatal(err)
	}

	// A bind mount of the mountpoint keeps the filesystem alive: stop
	// unmounts the mountpoint but fails, naming the bind mount.
	want(t, "start", a.Start(ctx), resources.OK, "mounted")
	bind := filepath.Join(filepath.Dir(mp), "bind")
	if err := os.Mkdir(bind, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(mp, bind, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(bind, unix.MNT_DETACH) })
	want(t, "stop with a bind mount", a.Stop(ctx), resources.Hard, bind)
	want(t, "start with the device mounted elsewhere", a.Start(ctx), resources.Hard, bind)
	if err := unix.Unmount(bind, 0); err != nil {
		t.Fatal(err)
	}
	want(t, "stop", a.Stop(ctx), resources.OK, "not mounted")
}
