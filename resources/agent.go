package resources

import (
	"context"
	"fmt"
)

// Agent runs one resource. The runner calls it with a context that carries
// the operation's timeout (Resource.Timeout for Start and Stop,
// Resource.MonitorTimeout for Monitor) and turns a missed deadline into a
// Soft result.
//
// Start and Stop must be idempotent: starting a running resource and
// stopping a stopped one succeed (Code OK) and change nothing. Monitor
// answers OK while the resource runs, NotRunning when it is cleanly
// stopped, and a failure class otherwise.
type Agent interface {
	Start(ctx context.Context) Result
	Stop(ctx context.Context) Result
	Monitor(ctx context.Context) Result
}

// Promoter is implemented by agents of promotable resources (OCF's
// promote and demote). In a group such a resource always runs promoted:
// the runner carries out a start step as Start then Promote, and a stop
// step as Demote then Stop. Promote and Demote must be idempotent too.
type Promoter interface {
	Promote(ctx context.Context) Result
	Demote(ctx context.Context) Result
}

// Op is an agent operation.
type Op string

const (
	OpStart   Op = "start"
	OpStop    Op = "stop"
	OpMonitor Op = "monitor"
	OpPromote Op = "promote"
	OpDemote  Op = "demote"
)

// Code is the outcome of an operation: success, cleanly stopped, or a
// failure with its recovery class.
type Code int

const (
	// OK: the operation did what was asked; for Monitor, the resource runs.
	OK Code = iota
	// NotRunning: Monitor found the resource cleanly stopped. Where the
	// resource should run, the planner treats it as a Soft failure.
	NotRunning
	// Soft: recover in place, restarting the resource and everything after
	// it, until migration_threshold is reached.
	Soft
	// Hard: the resource cannot run on this node; the group moves away.
	Hard
	// Fatal: the resource cannot run anywhere (its configuration is
	// wrong); the group is stopped and blocked until an operator acts.
	Fatal
)

func (c Code) String() string {
	switch c {
	case OK:
		return "ok"
	case NotRunning:
		return "not running"
	case Soft:
		return "soft failure"
	case Hard:
		return "hard failure"
	case Fatal:
		return "fatal failure"
	}
	return fmt.Sprintf("code(%d)", int(c))
}

// Result is what an agent operation returned.
type Result struct {
	Code   Code
	Reason string // for the operator: what happened, in a few words
	// Promoted is set by a monitor of a promotable resource that found it
	// in the promoted role (OCF 8, 9, 191).
	Promoted bool
	// Degraded marks a success that status should show as degraded (OCF
	// 190, 191).
	Degraded bool
}

// Failed reports whether the result is a Soft, Hard or Fatal failure.
// NotRunning is not a failure by itself; the planner decides whether it
// was expected.
func (r Result) Failed() bool { return r.Code.failure() }

func (c Code) failure() bool { return c >= Soft && c <= Fatal }

func (r Result) String() string {
	if r.Reason == "" {
		return r.Code.String()
	}
	return r.Code.String() + ": " + r.Reason
}

// OCF exit codes (resource-agents' ocf-returncodes).
const (
	ocfSuccess          = 0
	ocfErrGeneric       = 1
	ocfErrArgs          = 2
	ocfErrUnimplemented = 3
	ocfErrPerm          = 4
	ocfErrInstalled     = 5
	ocfErrConfigured    = 6
	ocfNotRunning       = 7
	ocfRunningPromoted  = 8
	ocfFailedPromoted   = 9
	ocfDegraded         = 190
	ocfDegradedPromoted = 191
)

var ocfNames = map[int]string{
	ocfSuccess:          "OCF_SUCCESS",
	ocfErrGeneric:       "OCF_ERR_GENERIC",
	ocfErrArgs:          "OCF_ERR_ARGS",
	ocfErrUnimplemented: "OCF_ERR_UNIMPLEMENTED",
	ocfErrPerm:          "OCF_ERR_PERM",
	ocfErrInstalled:     "OCF_ERR_INSTALLED",
	ocfErrConfigured:    "OCF_ERR_CONFIGURED",
	ocfNotRunning:       "OCF_NOT_RUNNING",
	ocfRunningPromoted:  "OCF_RUNNING_PROMOTED",
	ocfFailedPromoted:   "OCF_FAILED_PROMOTED",
	ocfDegraded:         "OCF_DEGRADED",
	ocfDegradedPromoted: "OCF_DEGRADED_PROMOTED",
}

// FromOCF maps the exit code of an OCF resource agent run for op to a
// Result; exitReason is the agent's ocf_exit_reason ("" when it gave none)
// and ends up in Result.Reason. The classes are Pacemaker's:
//
//	0 OCF_SUCCESS            OK
//	1 OCF_ERR_GENERIC        Soft
//	2 OCF_ERR_ARGS           Hard (bad arguments on this node)
//	3 OCF_ERR_UNIMPLEMENTED  Hard; from monitor OK with no recovery (the agent cannot monitor)
//	4 OCF_ERR_PERM           Hard
//	5 OCF_ERR_INSTALLED      Hard (something is missing on this node)
//	6 OCF_ERR_CONFIGURED     Fatal (the parameters are wrong everywhere)
//	7 OCF_NOT_RUNNING        monitor: NotRunning; stop: OK (already stopped); else Soft
//	8 OCF_RUNNING_PROMOTED   monitor: OK, Promoted; else Soft (unexpected)
//	9 OCF_FAILED_PROMOTED    Soft, Promoted (demote, stop, start again)
//	190, 191 OCF_DEGRADED[_PROMOTED]  monitor: OK, Degraded; else Soft
//
// Any other code is Soft, as Pacemaker treats an unknown code as a generic
// error.
func FromOCF(op Op, exit int, exitReason string) Result {
	name, known := ocfNames[exit]
	if !known {
		name = "unknown OCF exit code"
	}
	reason := fmt.Sprintf("%s (%d)", name, exit)
	r := Result{Code: Soft}
	unexpected := false
	switch exit {
	case ocfSuccess:
		r.Code = OK
	case ocfErrGeneric:
		r.Code = Soft
	case ocfErrArgs, ocfErrPerm, ocfErrInstalled:
		r.Code = Hard
	case ocfErrUnimplemented:
		r.Code = Hard
		if op == OpMonitor {
			r.Code = OK
			reason += " from monitor: the agent cannot monitor, so there is no recovery"
		}
	case ocfErrConfigured:
		r.Code = Fatal
	case ocfNotRunning:
		switch op {
		case OpMonitor:
			r.Code = NotRunning
		case OpStop:
			r.Code = OK // stopped, as asked: stop is idempotent
		default:
			unexpected = true
		}
	case ocfRunningPromoted:
		r.Promoted = true
		if op == OpMonitor {
			r.Code = OK
		} else {
			unexpected = true
		}
	case ocfFailedPromoted:
		r.Promoted = true
		r.Code = Soft
	case ocfDegraded, ocfDegradedPromoted:
		r.Promoted = exit == ocfDegradedPromoted
		if op == OpMonitor {
			r.Code = OK
			r.Degraded = true
		} else {
			unexpected = true
		}
	}
	if unexpected {
		r.Code = Soft
		reason += fmt.Sprintf(", unexpected from %s", op)
	}
	if exitReason != "" {
		reason += ": " + exitReason
	}
	r.Reason = reason
	return r
}
