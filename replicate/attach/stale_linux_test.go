package attach

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// abandon simulates a crash of the process that owns a: the FUSE connection
// dies and every handle is dropped without detaching. With keepLoop the
// loop device loses LO_FLAGS_AUTOCLEAR first, so it stays bound to the dead
// FUSE file, as it would after a crash while someone held it, or after a
// crash of a tool that did not use autoclear.
func abandon(t *testing.T, a *Attachment, keepLoop bool) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if keepLoop {
		fd := int(a.loop.f.Fd())
		info, err := unix.IoctlLoopGetStatus64(fd)
		if err != nil {
			t.Fatal(err)
		}
		info.Flags &^= unix.LO_FLAGS_AUTOCLEAR
		if err := unix.IoctlLoopSetStatus64(fd, info); err != nil {
			t.Fatal(err)
		}
	}
	a.abortFUSE()
	a.server.Wait()
	a.loop.f.Close()
	a.lock.Close()
	a.detached = true
}

func TestLoopStaleLeftBehind(t *testing.T) {
	requireLoopRoot(t)
	vol, rt := testVolume(t)
	dev := newMemDevice(testSize)
	a := attachLoopT(t, vol, rt, dev)
	old := a.Info()
	abandon(t, a, true)
	t.Cleanup(func() {
		// If the test failed before re-attaching, do not leave the loop
		// device and the dead mount behind.
		CleanStale(context.Background(), rt, vol)
	})
	if loops := loopsBackedBy(old.BackingFile); len(loops) != 1 || loops[0] != old.Path {
		t.Fatalf("simulated crash: loop devices bound to the file = %v, want [%s]", loops, old.Path)
	}
	if _, err := os.Open(old.BackingFile); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("simulated crash: open of the FUSE file = %v, want ENOTCONN (dead mount)", err)
	}

	a2 := attachLoopT(t, vol, rt, dev)
	if loops := loopsBackedBy(old.BackingFile); len(loops) != 1 || loops[0] != a2.Info().Path {
		t.Fatalf("after re-attach, loop devices bound to the file = %v, want only [%s]", loops, a2.Info().Path)
	}
	if err := a2.Detach(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, a2)
}

const crashHelperEnv = "HACTL_ATTACH_CRASH_HELPER"

// TestCrashHelper is not a test: TestLoopStaleAfterCrash runs the test
// binary with it to own an attachment in a process it can kill.
func TestCrashHelper(t *testing.T) {
	arg := os.Getenv(crashHelperEnv)
	if arg == "" {
		t.Skip("helper process for TestLoopStaleAfterCrash")
	}
	rt, vol, _ := strings.Cut(arg, ":")
	a, err := Attach(context.Background(), Options{Volume: vol, Mode: ModeLoop, RuntimeDir: rt, Device: newMemDevice(testSize)})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(a.Info().Path)
	select {} // until killed
}

func TestLoopStaleAfterCrash(t *testing.T) {
	requireLoopRoot(t)
	vol, rt := testVolume(t)
	ctx := context.Background()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+rt+":"+vol)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		CleanStale(ctx, rt, vol)
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "/dev/loop") {
		t.Fatalf("helper: %q, %v", line, err)
	}
	loop := strings.TrimSpace(line)

	// A live attachment in another process is not "stale".
	_, err = Attach(ctx, Options{Volume: vol, Mode: ModeLoop, RuntimeDir: rt, Device: newMemDevice(testSize)})
	if !errors.Is(err, ErrAttached) || !strings.Contains(err.Error(), fmt.Sprint(cmd.Process.Pid)) {
		t.Fatalf("Attach while the helper lives = %v, want ErrAttached naming pid %d", err, cmd.Process.Pid)
	}

	// Someone keeps the loop device open across the crash.
	holder, err := os.Open(loop)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	dev := newMemDevice(testSize)
	_, err = Attach(ctx, Options{Volume: vol, Mode: ModeLoop, RuntimeDir: rt, Device: dev})
	want := fmt.Sprintf("%s is opened by pid %d", loop, os.Getpid())
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Attach with a held leftover = %v, want ErrBusy with %q", err, want)
	}
	t.Log(err)

	// Once the holder lets go, autoclear releases the loop device; the
	// dead FUSE mount is what Attach has to clean.
	holder.Close()
	mnt := filepath.Join(rt, "attach", vol)
	if _, err := os.Open(filepath.Join(mnt, vol)); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("after the crash, open of the FUSE file = %v, want ENOTCONN (dead mount)", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(loopsBackedBy(filepath.Join(mnt, vol))) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	a := attachLoopT(t, vol, rt, dev)
	if err := a.Detach(ctx, false); err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, a)
}
