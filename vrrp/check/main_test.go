package check

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The network tests run in a network namespace of their own, so they
// neither see nor disturb the machine's network. As root, TestMain runs
// the test binary again under unshare with lo up and testAddr on it; the
// environment variable marks the inner run.
const (
	netnsMarker = "HACTL_CHECK_TEST_NETNS"
	testAddr    = "192.0.2.1" // TEST-NET-1, on lo inside the namespace
)

var errNotRoot = errors.New("not root")

// netnsErr says why this process is not inside the test namespace.
var netnsErr error

func TestMain(m *testing.M) {
	if os.Getenv(netnsMarker) == "" {
		netnsErr = enterNetns()
	}
	os.Exit(m.Run())
}

// enterNetns runs the test binary inside a new network namespace and
// exits with its status. It returns only when that cannot be done.
func enterNetns() error {
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	if out, err := exec.Command("unshare", "--net", "--", "true").CombinedOutput(); err != nil {
		return fmt.Errorf("unshare --net: %v: %s", err, bytes.TrimSpace(out))
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	const setup = `ip link set lo up && ip addr add ` + testAddr + `/32 dev lo && exec "$0" "$@"`
	args := append([]string{"--net", "--", "sh", "-c", setup, exe}, os.Args[1:]...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), netnsMarker+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// unshare and sh exec into the test binary, so this reaches it: the
	// inner run does not outlive us when go test kills us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode())
	}
	if err != nil {
		return fmt.Errorf("running the tests under unshare: %w", err)
	}
	os.Exit(0)
	return nil
}

// requireNetns skips the test when not root and fails it when root but the
// namespace could not be made: CI runs as root and must run these tests.
func requireNetns(t *testing.T) {
	t.Helper()
	switch {
	case netnsErr == nil:
	case errors.Is(netnsErr, errNotRoot):
		t.Skip("skipping: network tests need root to create a network namespace (unshare --net) with " + testAddr + " on lo")
	default:
		t.Fatalf("cannot create the test network namespace: %v", netnsErr)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s. Tests
// wait for conditions, never for durations: machines are noisy.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// groupAlive reports whether a live process (not a zombie) is in process
// group pgid. Zombies are ignored: they run nothing, and an orphan's is
// reaped by init, which in a container may take its time.
func groupAlive(t *testing.T, pgid int) bool {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // it just exited
		}
		// pid (comm) state ppid pgrp ...; comm may contain anything.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		var state string
		var ppid, pgrp int
		if _, err := fmt.Sscan(string(stat[i+1:]), &state, &ppid, &pgrp); err != nil {
			continue
		}
		if pgrp == pgid && state != "Z" {
			return true
		}
	}
	return false
}

// readPID waits for a script to write its PID (and so its process group
// ID: exec probes lead their own group) to path.
func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, "the script to write its PID", func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(string(bytes.TrimSpace(b)))
		return err == nil
	})
	return pid
}
