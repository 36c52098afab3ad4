// Package execagent runs an exec resource: argv start, stop and monitor
// commands, without a shell.
//
// Each command runs in its own process group, in "/", with a minimal
// environment: the resource's Environment plus PATH (run.DefaultPath
// unless Environment sets PATH). hactl's own environment is not passed on,
// so a command behaves the same whichever way the daemon was started.
//
// Start and Stop get the resource's Timeout, Monitor its MonitorTimeout
// (or the caller's deadline, if earlier). A command still running then has
// its whole process group sent SIGTERM and, after a short grace, SIGKILL.
//
// Results:
//
//	start, stop  exit 0 → OK; any other exit, a signal or a timeout → Soft
//	monitor      exit 0 → OK; exit 7 → NotRunning (OCF_NOT_RUNNING, so a
//	             script written for OCF conventions works unchanged); any
//	             other exit, a signal or a timeout → Soft
//	missing or non-executable program → Hard: it fails the same way on
//	             this node every time, but another node may have it
//	             (OCF_ERR_INSTALLED is Hard for the same reason)
//	no stop command → OK ("nothing to run"); no monitor command → OK
//	             ("not monitored"), as the cluster file's defaults say
//	no start command → Fatal: the configuration is wrong everywhere
//
// On failure the reason carries the tail of the command's output.
package execagent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/agents/internal/run"
	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/resources"
)

// exitNotRunning is OCF_NOT_RUNNING, which a monitor command exits with
// when the resource is cleanly stopped.
const exitNotRunning = 7

// Agent is an exec resource. It implements resources.Agent.
type Agent struct {
	r   config.Resource
	env []string
	log *zap.Logger
	// Grace is the time between SIGTERM and SIGKILL for a timed-out
	// command; 0 means run.DefaultGrace.
	Grace time.Duration
}

var _ resources.Agent = (*Agent)(nil)

// New returns the agent of r. A nil log discards the logs.
func New(r config.Resource, log *zap.Logger) *Agent {
	if log == nil {
		log = zap.NewNop()
	}
	return &Agent{
		r:   r,
		env: run.Env(r.Environment),
		log: log.With(zap.String("resource", r.Name), zap.String("agent", "exec")),
	}
}

// Start runs the start command.
func (a *Agent) Start(ctx context.Context) resources.Result {
	if len(a.r.Start) == 0 {
		return resources.Result{Code: resources.Fatal, Reason: "exec resource has no start command"}
	}
	return a.do(ctx, resources.OpStart, a.r.Start, a.r.Timeout)
}

// Stop runs the stop command; without one there is nothing to do.
func (a *Agent) Stop(ctx context.Context) resources.Result {
	if len(a.r.Stop) == 0 {
		return resources.Result{Code: resources.OK, Reason: "no stop command: nothing to run"}
	}
	return a.do(ctx, resources.OpStop, a.r.Stop, a.r.Timeout)
}

// Monitor runs the monitor command; without one the resource counts as
// running once it started.
func (a *Agent) Monitor(ctx context.Context) resources.Result {
	if len(a.r.Monitor) == 0 {
		return resources.Result{Code: resources.OK, Reason: "not monitored"}
	}
	return a.do(ctx, resources.OpMonitor, a.r.Monitor, a.r.MonitorTimeout)
}

func (a *Agent) do(ctx context.Context, op resources.Op, argv []string, timeout time.Duration) resources.Result {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	o := run.Run(ctx, run.Cmd{Argv: argv, Env: a.env, Grace: a.Grace})
	res := classify(op, o)
	fields := []zap.Field{zap.String("op", string(op)), zap.Strings("argv", argv),
		zap.Duration("took", o.Duration), zap.Stringer("result", res)}
	if res.Failed() {
		a.log.Warn("exec command failed", fields...)
	} else {
		a.log.Debug("exec command done", fields...)
	}
	return res
}

// classify maps how a command ended to a Result; see the package comment.
func classify(op resources.Op, o run.Outcome) resources.Result {
	cmdDesc := fmt.Sprintf("%s command: %s", op, o.Describe())
	switch {
	case o.NotFound:
		return resources.Result{Code: resources.Hard, Reason: cmdDesc}
	case o.TimedOut || o.Signal != 0 || o.Exit < 0:
		return resources.Result{Code: resources.Soft, Reason: withOutput(cmdDesc, o)}
	case o.Exit == 0:
		return resources.Result{Code: resources.OK}
	case op == resources.OpMonitor && o.Exit == exitNotRunning:
		return resources.Result{Code: resources.NotRunning, Reason: withOutput(cmdDesc+" (not running)", o)}
	}
	return resources.Result{Code: resources.Soft, Reason: withOutput(cmdDesc, o)}
}

func withOutput(reason string, o run.Outcome) string {
	out := run.LastLines(o.Stderr, 3)
	if out == "" {
		out = run.LastLines(o.Stdout, 3)
	}
	if out == "" {
		return reason
	}
	return reason + ": " + strings.TrimSpace(out)
}
