// Package netnstest runs a package's tests inside a network namespace of
// their own, so tests that open sockets neither see nor disturb the
// machine's network. Call Main from TestMain and Require from each test
// that needs the namespace.
package netnstest

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// marker is set in the environment of the inner run.
const marker = "HACTL_TEST_IN_NETNS"

var (
	errNotRoot = errors.New("not root")
	errShort   = errors.New("-short")
)

// state says why this process is not inside the namespace (nil: it is).
var (
	state error
	addrs []string
)

// Main runs the tests. As root (and without -short) it runs the test
// binary again under `unshare --net` with lo up and each address (e.g.
// "192.0.2.1/32") on lo, and exits with its status; otherwise it runs the
// tests here, where Require skips or fails the tests that need the
// namespace.
func Main(m *testing.M, loAddrs ...string) {
	flag.Parse()
	addrs = loAddrs
	switch {
	case testing.Short():
		state = errShort
	case os.Getenv(marker) == "":
		state = enter()
	}
	os.Exit(m.Run())
}

// enter re-executes the test binary inside a new network namespace and
// exits with its status. It returns only when that cannot be done.
func enter() error {
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
	setup := "ip link set lo up"
	for _, a := range addrs {
		setup += " && ip addr add " + a + " dev lo"
	}
	setup += ` && exec "$0" "$@"`
	args := append([]string{"--net", "--", "sh", "-c", setup, exe}, os.Args[1:]...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), marker+"=1")
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

// Require skips the test without root or with -short, and fails it when
// root could not make the namespace: CI runs as root and must run it.
func Require(t testing.TB) {
	t.Helper()
	switch {
	case state == nil:
	case errors.Is(state, errShort):
		t.Skip("skipping: runs in a network namespace; not with -short")
	case errors.Is(state, errNotRoot):
		t.Skipf("skipping: needs root to create a network namespace (unshare --net) with %s on lo", strings.Join(addrs, ", "))
	default:
		t.Fatalf("cannot create the test network namespace: %v", state)
	}
}
