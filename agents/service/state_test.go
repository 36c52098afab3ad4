package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/hactl/hactl/resources"
)

const unit = "web.service"

func st(active, sub string) unitState {
	return unitState{LoadState: "loaded", ActiveState: active, SubState: sub}
}

func failed(result string, code, status int32) unitState {
	return unitState{LoadState: "loaded", ActiveState: "failed", SubState: "failed", Result: result, MainCode: code, MainStatus: status}
}

func notFound(active string) unitState {
	return unitState{LoadState: "not-found", ActiveState: active, SubState: "dead"}
}

type mapping struct {
	name     string
	got      resources.Result
	code     resources.Code
	reason   string // a substring of the reason; "" for none
	degraded bool
}

func check(t *testing.T, tests []mapping) {
	t.Helper()
	for _, tt := range tests {
		if tt.got.Code != tt.code || tt.got.Degraded != tt.degraded || !strings.Contains(tt.got.Reason, tt.reason) {
			t.Errorf("%s: got %v (degraded %v), want %v (degraded %v) with %q", tt.name, tt.got, tt.got.Degraded, tt.code, tt.degraded, tt.reason)
		}
	}
}

func TestMonitorResult(t *testing.T) {
	check(t, []mapping{
		{"active", monitorResult(unit, st("active", "running")), resources.OK, "", false},
		{"oneshot with RemainAfterExit", monitorResult(unit, st("active", "exited")), resources.OK, "", false},
		{"reloading", monitorResult(unit, st("reloading", "reload")), resources.OK, "", false},
		{"inactive", monitorResult(unit, st("inactive", "dead")), resources.NotRunning, "stopped (inactive/dead)", false},
		{"failed, exit code", monitorResult(unit, failed("exit-code", cldExited, 2)), resources.Soft, "failed/failed, result exit-code, main process exited with status 2", false},
		{"failed, signal", monitorResult(unit, failed("signal", cldKilled, 9)), resources.Soft, "killed by SIGKILL", false},
		{"failed, core", monitorResult(unit, failed("core-dump", cldDumped, 11)), resources.Soft, "SIGSEGV (core dumped)", false},
		{"failed, start limit", monitorResult(unit, failed("start-limit-hit", 0, 0)), resources.Soft, "result start-limit-hit", false},
		{"activating", monitorResult(unit, st("activating", "start")), resources.OK, "still activating", true},
		{"auto-restart", monitorResult(unit, st("activating", "auto-restart")), resources.OK, "auto-restart", true},
		{"deactivating", monitorResult(unit, st("deactivating", "stop-sigterm")), resources.Soft, "without hactl asking", false},
		{"unknown state", monitorResult(unit, st("maintenance", "cleaning")), resources.Soft, "unknown state", false},
		{"not installed", monitorResult(unit, notFound("inactive")), resources.Hard, "not installed on this node", false},
		// The unit file went away under a running unit: it still runs.
		{"not installed but running", monitorResult(unit, notFound("active")), resources.OK, "", false},
		{"masked", monitorResult(unit, unitState{LoadState: "masked", ActiveState: "inactive"}), resources.Hard, "masked", false},
		{"bad unit file", monitorResult(unit, unitState{LoadState: "bad-setting", LoadError: "Unit has a bad setting", ActiveState: "inactive"}), resources.Hard, "does not load on this node (bad-setting): Unit has a bad setting", false},
	})
}

func TestStartResult(t *testing.T) {
	check(t, []mapping{
		{"done, active", startResult(unit, "done", st("active", "running")), resources.OK, "started", false},
		{"done, still activating", startResult(unit, "done", st("activating", "start-post")), resources.Soft, "still activating", false},
		{"done, failed at once", startResult(unit, "done", failed("exit-code", cldExited, 1)), resources.Soft, "failed right after it started", false},
		{"done, exited", startResult(unit, "done", st("inactive", "dead")), resources.Soft, "RemainAfterExit", false},
		{"skipped, active", startResult(unit, "skipped", st("active", "running")), resources.OK, "", false},
		{"failed", startResult(unit, "failed", failed("exit-code", cldExited, 1)), resources.Soft, "start job of unit web.service failed; unit is failed/failed", false},
		{"timeout", startResult(unit, "timeout", failed("timeout", 0, 0)), resources.Soft, "timed out", false},
		{"canceled", startResult(unit, "canceled", st("inactive", "dead")), resources.Soft, "canceled", false},
		{"dependency", startResult(unit, "dependency", st("inactive", "dead")), resources.Soft, "a unit it depends on failed", false},
		{"unknown job result", startResult(unit, "frobbed", st("inactive", "dead")), resources.Soft, "ended with frobbed", false},
	})
}

func TestStopResult(t *testing.T) {
	check(t, []mapping{
		{"done, inactive", stopResult(unit, "done", st("inactive", "dead")), resources.OK, "stopped", false},
		{"done, failed", stopResult(unit, "done", failed("timeout", cldKilled, 9)), resources.OK, "ended failed", false},
		{"done, still stopping", stopResult(unit, "done", st("deactivating", "stop-sigterm")), resources.Soft, "still stopping", false},
		{"done, active again", stopResult(unit, "done", st("active", "running")), resources.Soft, "started it again", false},
		{"failed", stopResult(unit, "failed", st("active", "running")), resources.Soft, "stop job of unit web.service failed", false},
		{"canceled", stopResult(unit, "canceled", st("activating", "start")), resources.Soft, "canceled", false},
	})
}

func TestErrResult(t *testing.T) {
	dbusErr := func(name string) error { return dbus.Error{Name: name, Body: []any{"msg"}} }
	check(t, []mapping{
		{"no such unit", errResult(unit, "start", dbusErr("org.freedesktop.systemd1.NoSuchUnit")), resources.Hard, "unit web.service is not installed on this node", false},
		{"masked", errResult(unit, "start", dbusErr("org.freedesktop.systemd1.UnitMasked")), resources.Hard, "masked on this node", false},
		{"systemd gone", errResult(unit, "start", dbusErr("org.freedesktop.DBus.Error.ServiceUnknown")), resources.Hard, "systemd is not running on this node", false},
		{"activation failed", errResult(unit, "start", dbusErr("org.freedesktop.DBus.Error.Spawn.ChildExited")), resources.Hard, "", false},
		{"access denied", errResult(unit, "start", dbusErr("org.freedesktop.DBus.Error.AccessDenied")), resources.Hard, "AccessDenied", false},
		{"refuse manual start", errResult(unit, "start", dbusErr("org.freedesktop.systemd1.OnlyByDependency")), resources.Hard, "", false},
		{"other systemd error", errResult(unit, "start", dbusErr("org.freedesktop.systemd1.TransactionIsDestructive")), resources.Soft, "start unit web.service: msg", false},
		{"deadline", errResult(unit, "stop", fmt.Errorf("job 4 still running: %w", context.DeadlineExceeded)), resources.Soft, "stop unit web.service: did not finish in time", false},
		{"no systemd", errResult(unit, "stop", &noSystemdError{msg: "cannot connect"}), resources.Hard, "cannot connect", false},
		{"lost", errResult(unit, "stop", fmt.Errorf("%w: EOF", errLost)), resources.Hard, "lost the connection", false},
		{"other", errResult(unit, "stop", errors.New("boom")), resources.Soft, "boom", false},
	})
}

func TestNoSystemdError(t *testing.T) {
	cause := errors.New("connection refused")
	err := error(&noSystemdError{msg: "cannot connect", err: cause})
	if !errors.Is(err, ErrNoSystemd) || !errors.Is(err, cause) {
		t.Fatalf("%v: want it to match ErrNoSystemd and its cause", err)
	}
	if got, want := err.Error(), "cannot connect: connection refused"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}
