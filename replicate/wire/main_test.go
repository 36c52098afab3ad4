package wire

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// The TCP tests run in a network namespace of their own, so they neither
// see nor disturb the machine's network. As root, TestMain runs the test
// binary again under unshare with lo up and testAddr on it; the
// environment variable marks the inner run.
const (
	netnsMarker = "HACTL_WIRE_TEST_NETNS"
	testAddr    = "198.51.100.1" // TEST-NET-2, on lo inside the namespace
)

var (
	errNotRoot = errors.New("not root")
	errShort   = errors.New("-short")
)

// netnsErr says why this process is not inside the test namespace.
var netnsErr error

func TestMain(m *testing.M) {
	flag.Parse()
	switch {
	case testing.Short():
		netnsErr = errShort
	case os.Getenv(netnsMarker) == "":
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
	case errors.Is(netnsErr, errShort):
		t.Skip("skipping: TCP tests run in a network namespace; not with -short")
	case errors.Is(netnsErr, errNotRoot):
		t.Skip("skipping: TCP tests need root to create a network namespace (unshare --net) with " + testAddr + " on lo")
	default:
		t.Fatalf("cannot create the test network namespace: %v", netnsErr)
	}
}
