package service

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hactl/hactl/agents/service/internal/standin"
	"github.com/hactl/hactl/resources"
)

// These tests run a real dbus-daemon and, on it, the systemd stand-in of
// package standin, whose units are real processes.

const (
	opTimeout = 10 * time.Second // bounds operations that should succeed
	waitLimit = 10 * time.Second // bounds waits for a state change
)

func sleeper() standin.Unit { return standin.Unit{Argv: []string{"sleep", "1000"}} }

type lab struct {
	t   *testing.T
	bus *standin.Bus
	sd  *standin.Systemd
}

// newLab starts a bus and the stand-in with units on it; everything stops
// when the test ends, whatever happened.
func newLab(t *testing.T, units map[string]standin.Unit) *lab {
	t.Helper()
	if _, err := os.Stat(standin.DaemonPath); err != nil {
		t.Skipf("no dbus-daemon (scripts/install-deps.sh installs it): %v", err)
	}
	noLeaks(t)
	// Not t.TempDir: the socket path must stay short.
	dir, err := os.MkdirTemp("", "hactl-svc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bus, err := standin.StartBus(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Kill)
	l := &lab{t: t, bus: bus}
	if units != nil {
		l.sd = standin.New(dir, units)
		t.Cleanup(func() { l.sd.Close() })
		if err := l.sd.Serve(bus.Addr); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func (l *lab) agent(unit string) *Agent {
	l.t.Helper()
	a, err := New(Config{Unit: unit, Bus: l.bus.Addr, Log: zaptest.NewLogger(l.t)})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { a.Close() })
	return a
}

// waitState waits until the stand-in shows the unit in state active.
func (l *lab) waitState(unit, active string) {
	l.t.Helper()
	for end := time.Now().Add(waitLimit); ; {
		got, sub := l.sd.State(unit)
		if got == active {
			return
		}
		if time.Now().After(end) {
			l.t.Fatalf("unit %s is %s/%s, want %s", unit, got, sub, active)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// noLeaks fails the test when goroutines of the bus libraries or of this
// package outlive it. Registered first, it runs after the other cleanups.
func noLeaks(t *testing.T) {
	t.Cleanup(func() {
		var left []string
		for end := time.Now().Add(waitLimit); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			left = leftGoroutines()
			if len(left) == 0 {
				return
			}
		}
		t.Errorf("goroutines left behind:\n%s", strings.Join(left, "\n\n"))
	})
}

func leftGoroutines() []string {
	buf := make([]byte, 1<<20)
	var left []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "noLeaks") { // this one
			continue
		}
		for _, pkg := range []string{"godbus/dbus", "go-systemd", "agents/service.", "agents/service/internal/"} {
			if strings.Contains(g, pkg) {
				left = append(left, g)
				break
			}
		}
	}
	return left
}

func call(t *testing.T, op func(context.Context) resources.Result, timeout time.Duration) resources.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return op(ctx)
}

func want(t *testing.T, what string, r resources.Result, code resources.Code, reason ...string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("%s: got %v, want code %v", what, r, code)
	}
	for _, s := range reason {
		if !strings.Contains(r.Reason, s) {
			t.Fatalf("%s: got %v, want %q in the reason", what, r, s)
		}
	}
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func TestStartMonitorStop(t *testing.T) {
	l := newLab(t, map[string]standin.Unit{"web.service": sleeper()})
	a := l.agent("web.service")
	if err := a.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}

	want(t, "monitor before start", call(t, a.Monitor, opTimeout), resources.NotRunning, "stopped")
	want(t, "start", call(t, a.Start, opTimeout), resources.OK, "started")
	pid := l.sd.MainPID("web.service")
	if !alive(pid) {
		t.Fatalf("after start: main process %d not running", pid)
	}
	want(t, "second start", call(t, a.Start, opTimeout), resources.OK, "already active")
	if got := l.sd.MainPID("web.service"); got != pid {
		t.Fatalf("second start replaced the process: pid %d, was %d", got, pid)
	}
	want(t, "monitor", call(t, a.Monitor, opTimeout), resources.OK)

	want(t, "stop", call(t, a.Stop, opTimeout), resources.OK, "stopped unit")
	if alive(pid) {
		t.Fatalf("after stop: process %d still runs", pid)
	}
	want(t, "second stop", call(t, a.Stop, opTimeout), resources.OK, "already stopped")
	want(t, "monitor after stop", call(t, a.Monitor, opTimeout), resources.NotRunning)
}

func TestMonitorAfterExternalKill(t *testing.T) {
	l := newLab(t, map[string]standin.Unit{"web.service": sleeper()})
	a := l.agent("web.service")

	// SIGTERM is a clean end for systemd: the unit is inactive.
	want(t, "start", call(t, a.Start, opTimeout), resources.OK)
	syscall.Kill(l.sd.MainPID("web.service"), syscall.SIGTERM)
	l.waitState("web.service", "inactive")
	want(t, "monitor after SIGTERM", call(t, a.Monitor, opTimeout), resources.NotRunning)

	// SIGKILL is not: the unit failed.
	want(t, "start again", call(t, a.Start, opTimeout), resources.OK)
	syscall.Kill(l.sd.MainPID("web.service"), syscall.SIGKILL)
	l.waitState("web.service", "failed")
	want(t, "monitor after SIGKILL", call(t, a.Monitor, opTimeout), resources.Soft, "failed", "result signal", "SIGKILL")

	// Stop leaves it cleanly stopped, not failed, for the next monitor.
	want(t, "stop", call(t, a.Stop, opTimeout), resources.OK, "had failed")
	want(t, "monitor after stop", call(t, a.Monitor, opTimeout), resources.NotRunning)
	// And a failed unit can be started again.
	want(t, "restart", call(t, a.Start, opTimeout), resources.OK)
	want(t, "monitor after restart", call(t, a.Monitor, opTimeout), resources.OK)
}

func TestStartFails(t *testing.T) {
	l := newLab(t, map[string]standin.Unit{
		"crash.service":   {Argv: []string{"/bin/sh", "-c", "echo boom >&2; exit 3"}, Notify: true},
		"missing.service": {Argv: []string{"/nonexistent/daemon"}},
	})

	a := l.agent("crash.service")
	want(t, "start", call(t, a.Start, opTimeout), resources.Soft, "start job", "failed", "exited with status 3")
	want(t, "monitor", call(t, a.Monitor, opTimeout), resources.Soft, "failed", "result exit-code")
	want(t, "stop", call(t, a.Stop, opTimeout), resources.OK)
	want(t, "monitor after stop", call(t, a.Monitor, opTimeout), resources.NotRunning)

	m := l.agent("missing.service")
	want(t, "start of a missing program", call(t, m.Start, opTimeout), resources.Soft, "failed", "status 203")
}

func TestStartUnitExitsRightAway(t *testing.T) {
	// Type=simple: the job is done as soon as the process runs; the unit
	// then exits. Whichever the agent saw, a monitor sees the failure.
	l := newLab(t, map[string]standin.Unit{"flap.service": {Argv: []string{"/bin/sh", "-c", "exit 4"}}})
	a := l.agent("flap.service")
	r := call(t, a.Start, opTimeout)
	if r.Code != resources.OK && r.Code != resources.Soft {
		t.Fatalf("start: got %v, want OK or Soft", r)
	}
	l.waitState("flap.service", "failed")
	want(t, "monitor", call(t, a.Monitor, opTimeout), resources.Soft, "exited with status 4")
}

func TestUnitNotInstalled(t *testing.T) {
	l := newLab(t, map[string]standin.Unit{"web.service": sleeper(), "old.service": {Masked: true}})

	a := l.agent("nope.service")
	want(t, "start", call(t, a.Start, opTimeout), resources.Hard, "unit nope.service is not installed on this node")
	want(t, "monitor", call(t, a.Monitor, opTimeout), resources.Hard, "not installed")
	want(t, "stop", call(t, a.Stop, opTimeout), resources.OK, "already stopped")
	if err := a.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Fatalf("Check: got %v, want not installed", err)
	}

	m := l.agent("old.service")
	want(t, "start of a masked unit", call(t, m.Start, opTimeout), resources.Hard, "masked")
	want(t, "monitor of a masked unit", call(t, m.Monitor, opTimeout), resources.Hard, "masked")
	if err := m.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "masked") {
		t.Fatalf("Check: got %v, want masked", err)
	}
}

func TestSlowStart(t *testing.T) {
	// Never ready: the start job stays queued past the caller's deadline.
	l := newLab(t, map[string]standin.Unit{"slow.service": {Argv: []string{"sleep", "1000"}, Notify: true}})
	a := l.agent("slow.service")

	want(t, "start", call(t, a.Start, 300*time.Millisecond), resources.Soft, "did not finish in time")
	pid := l.sd.MainPID("slow.service")
	if active, _ := l.sd.State("slow.service"); active != "activating" || !alive(pid) {
		t.Fatalf("after a timed-out start: unit %s, pid %d alive %v; want it still activating", active, pid, alive(pid))
	}
	r := call(t, a.Monitor, 300*time.Millisecond)
	want(t, "monitor while activating", r, resources.OK, "still activating")
	if !r.Degraded {
		t.Fatalf("monitor while activating: got %v, want Degraded", r)
	}
	// Stop replaces the hanging start job and ends the process.
	want(t, "stop", call(t, a.Stop, opTimeout), resources.OK)
	if alive(pid) {
		t.Fatalf("after stop: process %d still runs", pid)
	}
}

func TestSlowStop(t *testing.T) {
	// The process ignores SIGTERM (and so does sleep, which inherits it),
	// and says it is ready only once it does.
	stubborn := []string{"/bin/sh", "-c", `trap '' TERM; touch "$` + standin.ReadyEnv + `"; exec sleep 1000`}
	l := newLab(t, map[string]standin.Unit{
		"stuck.service":  {Argv: stubborn, Notify: true, StopTimeout: time.Hour},
		"killed.service": {Argv: stubborn, Notify: true, StopTimeout: 100 * time.Millisecond},
	})

	a := l.agent("stuck.service")
	want(t, "start", call(t, a.Start, opTimeout), resources.OK)
	want(t, "stop", call(t, a.Stop, 300*time.Millisecond), resources.Soft, "did not finish in time")
	if active, _ := l.sd.State("stuck.service"); active != "deactivating" {
		t.Fatalf("after a timed-out stop: unit %s, want deactivating", active)
	}

	// systemd's own stop timeout kills it: stopped, though it ended failed.
	k := l.agent("killed.service")
	want(t, "start", call(t, k.Start, opTimeout), resources.OK)
	pid := l.sd.MainPID("killed.service")
	want(t, "stop", call(t, k.Stop, opTimeout), resources.OK, "result timeout")
	if alive(pid) {
		t.Fatalf("after stop: process %d still runs", pid)
	}
	want(t, "monitor after stop", call(t, k.Monitor, opTimeout), resources.NotRunning)
}

func TestNoSystemd(t *testing.T) {
	l := newLab(t, nil) // a bus without systemd on it
	a := l.agent("web.service")
	err := a.Check(context.Background())
	if !errors.Is(err, ErrNoSystemd) || !strings.Contains(err.Error(), "systemd is not running on this node (no org.freedesktop.systemd1 on") {
		t.Fatalf("Check: got %v, want ErrNoSystemd saying systemd is not running", err)
	}
	for _, op := range []struct {
		name string
		f    func(context.Context) resources.Result
	}{{"start", a.Start}, {"stop", a.Stop}, {"monitor", a.Monitor}} {
		want(t, op.name, call(t, op.f, opTimeout), resources.Hard, "systemd is not running on this node", "service resources need systemd")
	}

	// No bus at all.
	n, err := New(Config{Unit: "web.service", Bus: "unix:path=" + l.bus.Socket + ".none", Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Check(context.Background()); !errors.Is(err, ErrNoSystemd) || !strings.Contains(err.Error(), "cannot connect") {
		t.Fatalf("Check without a bus: got %v, want ErrNoSystemd saying it cannot connect", err)
	}
	want(t, "monitor without a bus", call(t, n.Monitor, opTimeout), resources.Hard, "cannot connect", "service resources need systemd")
}

func TestBusRestart(t *testing.T) {
	l := newLab(t, map[string]standin.Unit{"web.service": sleeper()})
	a := l.agent("web.service")
	want(t, "start", call(t, a.Start, opTimeout), resources.OK)
	pid := l.sd.MainPID("web.service")

	l.bus.Kill()
	want(t, "monitor without the bus", call(t, a.Monitor, opTimeout), resources.Hard, "system bus")
	if err := a.Check(context.Background()); !errors.Is(err, ErrNoSystemd) {
		t.Fatalf("Check without the bus: got %v, want ErrNoSystemd", err)
	}

	// The bus comes back and systemd (still running its units) rejoins it.
	if err := l.bus.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := l.sd.Serve(l.bus.Addr); err != nil {
		t.Fatal(err)
	}
	want(t, "monitor after the restart", call(t, a.Monitor, opTimeout), resources.OK)
	want(t, "stop after the restart", call(t, a.Stop, opTimeout), resources.OK, "stopped unit")
	if alive(pid) {
		t.Fatalf("after stop: process %d still runs", pid)
	}
}

func TestBusKilledDuringStart(t *testing.T) {
	// A start waiting for its job when the bus dies ends at once, Hard,
	// instead of waiting for a JobRemoved that cannot come.
	l := newLab(t, map[string]standin.Unit{"slow.service": {Argv: []string{"sleep", "1000"}, Notify: true}})
	a := l.agent("slow.service")
	done := make(chan resources.Result, 1)
	go func() { done <- call(t, a.Start, time.Hour) }()
	l.waitState("slow.service", "activating")
	l.bus.Kill()
	select {
	case r := <-done:
		want(t, "start", r, resources.Hard, "lost the connection to the system bus")
	case <-time.After(waitLimit):
		t.Fatal("start still waits for its job after the bus died")
	}
}

func TestNew(t *testing.T) {
	for _, u := range []string{"", "web", "web.conf", ".service", "a/b.service", "getty@.service"} {
		if _, err := New(Config{Unit: u}); err == nil {
			t.Errorf("New(%q): no error", u)
		}
	}
	for _, u := range []string{"web.service", "getty@tty1.service", "data.mount", "app.target"} {
		if _, err := New(Config{Unit: u}); err != nil {
			t.Errorf("New(%q): %v", u, err)
		}
	}
}
