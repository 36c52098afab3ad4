package attach

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSetIOFlusher(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: PR_SET_IO_FLUSHER needs CAP_SYS_RESOURCE")
	}
	err := SetIOFlusher()
	switch {
	case errors.Is(err, unix.EPERM):
		t.Skipf("skipping: %v (no CAP_SYS_RESOURCE here)", err)
	case err != nil && strings.Contains(err.Error(), "CGO_ENABLED=0"):
		t.Skipf("skipping: %v", err)
	case err != nil:
		t.Fatal(err)
	}
	v, err := unix.PrctlRetInt(unix.PR_GET_IO_FLUSHER, 0, 0, 0, 0)
	if err != nil || v != 1 {
		t.Errorf("PR_GET_IO_FLUSHER = %d, %v; want 1", v, err)
	}
}
