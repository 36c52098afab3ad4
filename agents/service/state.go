package service

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/resources"
)

// unitState is what the agent reads of a unit: org.freedesktop.systemd1.Unit's
// LoadState, LoadError, ActiveState and SubState and, for a failed unit,
// its type's Result and, for a service, how its main process ended.
type unitState struct {
	LoadState   string
	LoadError   string // the message of LoadError, "" without one
	ActiveState string
	SubState    string

	Result     string // e.g. "exit-code", "signal", "timeout", "start-limit-hit"
	MainCode   int32  // ExecMainCode: CLD_EXITED, CLD_KILLED or CLD_DUMPED
	MainStatus int32  // ExecMainStatus: the exit status or the signal
}

// siginfo codes of ExecMainCode.
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// String describes the state for a reason, e.g. "failed/failed, result
// exit-code, main process exited with status 3".
func (s unitState) String() string {
	b := new(strings.Builder)
	fmt.Fprintf(b, "%s/%s", s.ActiveState, s.SubState)
	if s.Result != "" && s.Result != "success" {
		fmt.Fprintf(b, ", result %s", s.Result)
	}
	switch s.MainCode {
	case cldExited:
		if s.MainStatus != 0 {
			fmt.Fprintf(b, ", main process exited with status %d", s.MainStatus)
		}
	case cldKilled, cldDumped:
		fmt.Fprintf(b, ", main process killed by %s", signalName(s.MainStatus))
		if s.MainCode == cldDumped {
			b.WriteString(" (core dumped)")
		}
	}
	return b.String()
}

func signalName(sig int32) string {
	if n := unix.SignalName(unix.Signal(sig)); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", sig)
}

func transitioning(s unitState) bool {
	return s.ActiveState == "activating" || s.ActiveState == "deactivating"
}

// loadProblem returns the Hard result of a unit that cannot run on this
// node whatever its state: not installed, masked, or a unit file that does
// not load. The unit file is this node's, so another node may do better.
func loadProblem(unit string, s unitState) (resources.Result, bool) {
	var r resources.Result
	switch s.LoadState {
	case "not-found":
		r = result(resources.Hard, "unit %s is not installed on this node", unit)
	case "masked":
		r = result(resources.Hard, "unit %s is masked on this node", unit)
	case "bad-setting", "error":
		r = result(resources.Hard, "unit %s does not load on this node (%s)", unit, s.LoadState)
		if s.LoadError != "" {
			r.Reason += ": " + s.LoadError
		}
	default:
		return r, false
	}
	return r, true
}

// monitorResult judges the state a monitor found; see the package comment.
func monitorResult(unit string, s unitState) resources.Result {
	switch s.ActiveState {
	case "active", "reloading", "refreshing":
		return resources.Result{Code: resources.OK}
	case "inactive":
		if r, bad := loadProblem(unit, s); bad {
			return r
		}
		return result(resources.NotRunning, "unit %s is stopped (%s)", unit, s)
	case "failed":
		return result(resources.Soft, "unit %s failed (%s)", unit, s)
	case "activating":
		r := result(resources.OK, "unit %s is still activating (%s): systemd is starting it", unit, s)
		r.Degraded = true
		return r
	case "deactivating":
		return result(resources.Soft, "unit %s is stopping (%s) without hactl asking", unit, s)
	}
	return result(resources.Soft, "unit %s is in an unknown state (%s)", unit, s)
}

// jobMeaning says what a JobRemoved result means, for a reason.
var jobMeaning = map[string]string{
	"failed":     "failed",
	"timeout":    "timed out (systemd's own job timeout)",
	"canceled":   "was canceled (another job replaced it)",
	"dependency": "failed because a unit it depends on failed",
	"skipped":    "was skipped",
	"invalid":    "was invalid",
}

func describeJob(job string) string {
	if m, ok := jobMeaning[job]; ok {
		return m
	}
	return "ended with " + job
}

// startResult judges a start from its job's result and the state the unit
// settled in (or was in when time ran out).
func startResult(unit, job string, s unitState) resources.Result {
	if job != "done" && job != "skipped" {
		return result(resources.Soft, "start job of unit %s %s; unit is %s", unit, describeJob(job), s)
	}
	switch s.ActiveState {
	case "active", "reloading", "refreshing":
		return result(resources.OK, "started unit %s", unit)
	case "activating":
		return result(resources.Soft, "unit %s is still activating (%s) when time ran out", unit, s)
	case "failed":
		return result(resources.Soft, "unit %s failed right after it started (%s)", unit, s)
	case "inactive":
		return result(resources.Soft, "unit %s stopped right after it started (%s); a oneshot service needs RemainAfterExit=yes", unit, s)
	}
	return result(resources.Soft, "unit %s is %s after its start job", unit, s)
}

// stopResult judges a stop from its job's result and the state the unit
// settled in. A unit that ended failed is stopped all the same (its
// processes are gone); the caller resets it.
func stopResult(unit, job string, s unitState) resources.Result {
	if job != "done" && job != "skipped" {
		return result(resources.Soft, "stop job of unit %s %s; unit is %s", unit, describeJob(job), s)
	}
	switch s.ActiveState {
	case "inactive":
		return result(resources.OK, "stopped unit %s", unit)
	case "failed":
		return result(resources.OK, "stopped unit %s, which ended failed (%s)", unit, s)
	case "deactivating":
		return result(resources.Soft, "unit %s is still stopping (%s) when time ran out", unit, s)
	}
	return result(resources.Soft, "unit %s is %s after its stop job: something started it again", unit, s)
}
