package check

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hactl/hactl/internal/netnstest"
)

// The network tests run in a network namespace of their own (see
// internal/netnstest) with testAddr on lo.
const testAddr = "192.0.2.1" // TEST-NET-1, on lo inside the namespace

func TestMain(m *testing.M) { netnstest.Main(m, testAddr+"/32") }

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
