package execagent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/resources"
)

// sh is the command under test: the agent itself never runs a shell.
func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestResults(t *testing.T) {
	tests := []struct {
		name   string
		r      config.Resource
		op     resources.Op
		code   resources.Code
		reason string // substring
	}{
		{"start ok", config.Resource{Start: sh("exit 0")}, resources.OpStart, resources.OK, ""},
		{"start fails soft with stderr", config.Resource{Start: sh("echo first >&2; echo 'no config' >&2; exit 3")}, resources.OpStart, resources.Soft, "exit status 3: first; no config"},
		{"start stdout when no stderr", config.Resource{Start: sh("echo out; exit 1")}, resources.OpStart, resources.Soft, ": out"},
		{"start missing", config.Resource{Start: []string{"/nonexistent/daemon"}}, resources.OpStart, resources.Hard, "/nonexistent/daemon"},
		{"start not in PATH", config.Resource{Start: []string{"hactl-no-such-program"}}, resources.OpStart, resources.Hard, "not found"},
		{"start empty", config.Resource{}, resources.OpStart, resources.Fatal, "no start command"},
		{"stop empty", config.Resource{}, resources.OpStop, resources.OK, "nothing to run"},
		{"stop 7 is soft", config.Resource{Stop: sh("exit 7")}, resources.OpStop, resources.Soft, "exit status 7"},
		{"monitor empty", config.Resource{}, resources.OpMonitor, resources.OK, "not monitored"},
		{"monitor ok", config.Resource{Monitor: sh("true")}, resources.OpMonitor, resources.OK, ""},
		{"monitor 7", config.Resource{Monitor: sh("exit 7")}, resources.OpMonitor, resources.NotRunning, "not running"},
		{"monitor 1", config.Resource{Monitor: sh("exit 1")}, resources.OpMonitor, resources.Soft, "exit status 1"},
		{"monitor signal", config.Resource{Monitor: sh("kill -KILL $$")}, resources.OpMonitor, resources.Soft, "SIGKILL"},
		{"program found in PATH", config.Resource{Start: []string{"true"}}, resources.OpStart, resources.OK, ""},
		{"environment", config.Resource{Start: sh(`test "$FOO" = "bar baz" && test "$PATH" = /usr/bin:/bin && test -z "$HOME"`),
			Environment: map[string]string{"FOO": "bar baz", "PATH": "/usr/bin:/bin"}}, resources.OpStart, resources.OK, ""},
		{"default PATH", config.Resource{Start: sh(`test "$PATH" = /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`)}, resources.OpStart, resources.OK, ""},
		{"runs in /", config.Resource{Start: sh(`test "$(pwd)" = /`)}, resources.OpStart, resources.OK, ""},
		{"no shell", config.Resource{Start: []string{"/bin/echo", "$(exit 1)", ";", "false"}}, resources.OpStart, resources.OK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.Name = "t"
			tc.r.Timeout, tc.r.MonitorTimeout = 10*time.Second, 10*time.Second
			a := New(tc.r, nil)
			var res resources.Result
			switch tc.op {
			case resources.OpStart:
				res = a.Start(context.Background())
			case resources.OpStop:
				res = a.Stop(context.Background())
			case resources.OpMonitor:
				res = a.Monitor(context.Background())
			}
			if res.Code != tc.code || !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("%s = %v, want %v with %q", tc.op, res, tc.code, tc.reason)
			}
		})
	}
}

func TestOutputBounded(t *testing.T) {
	a := New(config.Resource{Name: "t", Start: sh(`i=0; while [ $i -lt 3000 ]; do echo "line $i of noise noise noise noise noise" >&2; i=$((i+1)); done; exit 1`), Timeout: 10 * time.Second}, nil)
	res := a.Start(context.Background())
	if res.Code != resources.Soft || len(res.Reason) > 1000 || !strings.Contains(res.Reason, "line 2999") {
		t.Errorf("Start = %q (%d bytes), want Soft ending with line 2999, short", res.Reason, len(res.Reason))
	}
}

// gone waits until pid has exited (it may linger as a zombie briefly).
func gone(t *testing.T, pid int) bool {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, os.ErrNotExist) {
			return true
		}
		if err == nil {
			if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
				return true
			}
		}
	}
	return false
}

func readPid(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("child pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("child pid %q: %v", b, err)
	}
	return pid
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	for _, tc := range []struct{ name, script string }{
		// The child dies on SIGTERM.
		{"term", `sleep 1000 & echo $! > "$PIDFILE"; wait`},
		// Shell and child ignore SIGTERM (ignored signals survive exec):
		// only the SIGKILL after the grace ends them.
		{"kill", `trap '' TERM; sleep 1000 & echo $! > "$PIDFILE"; wait; wait; sleep 1000`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pidfile := filepath.Join(t.TempDir(), "pid")
			a := New(config.Resource{Name: "t", Start: sh(tc.script), Timeout: 500 * time.Millisecond,
				Environment: map[string]string{"PIDFILE": pidfile}}, nil)
			a.Grace = 300 * time.Millisecond
			began := time.Now()
			res := a.Start(context.Background())
			took := time.Since(began)
			if res.Code != resources.Soft || !strings.Contains(res.Reason, "timed out") {
				t.Errorf("Start = %v, want Soft timed out", res)
			}
			if took > 3*time.Second {
				t.Errorf("Start took %s, want about timeout plus grace", took)
			}
			pid := readPid(t, pidfile)
			if !gone(t, pid) {
				_ = unix.Kill(pid, unix.SIGKILL)
				t.Errorf("child %d of the timed-out command still runs", pid)
			}
		})
	}
}

func TestCallerDeadline(t *testing.T) {
	a := New(config.Resource{Name: "t", Monitor: sh("sleep 1000"), MonitorTimeout: time.Hour}, nil)
	a.Grace = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if res := a.Monitor(ctx); res.Code != resources.Soft || !strings.Contains(res.Reason, "timed out") {
		t.Errorf("Monitor = %v, want Soft timed out", res)
	}
}

func TestBackgroundDaemonDoesNotBlock(t *testing.T) {
	// A start command that leaves a process holding its output pipe
	// returns after the grace, not when that process exits.
	pidfile := filepath.Join(t.TempDir(), "pid")
	a := New(config.Resource{Name: "t", Start: sh(`setsid sleep 1000 & echo $! > "$PIDFILE"; exit 0`), Timeout: 10 * time.Second,
		Environment: map[string]string{"PIDFILE": pidfile}}, nil)
	a.Grace = 200 * time.Millisecond
	began := time.Now()
	res := a.Start(context.Background())
	pid := readPid(t, pidfile)
	defer func() { _ = unix.Kill(pid, unix.SIGKILL) }()
	if res.Code != resources.OK {
		t.Errorf("Start = %v, want OK", res)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Start took %s with a daemon holding its output", took)
	}
}
