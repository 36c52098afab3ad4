// Package service runs a systemd unit as a resource: the service agent.
//
// The agent talks to systemd over the D-Bus system bus with go-systemd's
// dbus package, as systemctl does, and waits for systemd's jobs rather than
// for processes: systemd owns the unit's processes, its dependencies and
// its own timeouts (TimeoutStartSec, TimeoutStopSec).
//
//	start    already active → OK without a job. Otherwise StartUnit(unit,
//	         "replace") and wait for the job, then for the unit to leave
//	         "activating". Active → OK; a job that ended otherwise (failed,
//	         timeout, canceled, dependency) or a unit that failed or exited
//	         right after → Soft, with the job result and the unit's state.
//	         A failed unit is reset first (reset-failed), so that systemd's
//	         start rate limit does not veto a start hactl decided on: hactl
//	         counts failures itself (migration_threshold).
//	stop     inactive → OK without a job. Otherwise StopUnit(unit, "replace")
//	         and wait for the job and for the unit to leave "deactivating".
//	         A unit left failed is reset, so that a later monitor sees it
//	         cleanly stopped. A stop job that fails or does not end in time
//	         → Soft; what a failed stop means is the orchestrator's call.
//	monitor  active, reloading → OK; inactive → NotRunning; failed → Soft
//	         with the sub-state and the unit's Result.
//
// A monitor that finds the unit activating or deactivating waits, polling,
// for up to half the time left on its context for the transition to end,
// and judges the state it ends in. A unit still activating then counts as
// OK, marked Degraded: systemd is starting it, or restarting it by the
// unit's Restart= policy, and a later monitor sees how that ends (a unit
// that keeps crashing ends failed once systemd gives up). Restarting it from
// hactl as well would fight systemd. A unit still deactivating is Soft: it
// is going down without hactl asking.
//
// A unit that is not installed on this node (LoadState not-found, or
// systemd's NoSuchUnit), masked, or whose unit file does not load is Hard
// for start and monitor: another node may have it. Stop of such a unit
// that is not running is OK: there is nothing to stop.
//
// Without systemd (no system bus, or no org.freedesktop.systemd1 on it)
// every operation is Hard, with a reason saying so; Check tells it once,
// for the caller to report at startup. A connection found broken (the
// dbus-daemon restarted) is replaced: by the operation that finds it broken
// on its first call, otherwise by the next one.
//
// Every wait is bounded by the caller's context. A start or stop whose
// context ends leaves systemd's job in place: a later stop, which replaces
// jobs, cancels a start that hangs.
package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/resources"
)

const (
	pollMin = 20 * time.Millisecond
	pollMax = 500 * time.Millisecond
	// settleNoDeadline bounds a monitor's wait for a transition when the
	// caller set no deadline.
	settleNoDeadline = 10 * time.Second
)

// Config says which unit an Agent runs.
type Config struct {
	// Unit is the full unit name, e.g. "postgresql.service".
	Unit string
	// Bus is the D-Bus address of the system bus. Empty means
	// DBUS_SYSTEM_BUS_ADDRESS or, without it, unix:path=/var/run/dbus/system_bus_socket.
	Bus string
	// Log receives the agent's logs; nil discards them.
	Log *zap.Logger
}

// Agent is a service resource. It implements resources.Agent. Its
// methods may be called concurrently.
type Agent struct {
	unit string
	bus  string
	log  *zap.Logger

	mu sync.Mutex
	c  *conn // nil before the first operation and after Close
}

var _ resources.Agent = (*Agent)(nil)

// unitTypes are the unit types a resource can be; the others (device,
// slice, scope) are not started by name.
var unitTypes = map[string]bool{
	"service": true, "socket": true, "target": true, "mount": true,
	"automount": true, "swap": true, "timer": true, "path": true,
}

// New returns the agent of cfg.Unit. It does not connect: the first
// operation, or Check, does.
func New(cfg Config) (*Agent, error) {
	if err := validUnit(cfg.Unit); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = zap.NewNop()
	}
	return &Agent{
		unit: cfg.Unit,
		bus:  cfg.Bus,
		log:  log.With(zap.String("agent", "service"), zap.String("unit", cfg.Unit)),
	}, nil
}

// validUnit catches names systemd would refuse on every node, so that they
// are a configuration error at load rather than a failure at start.
func validUnit(u string) error {
	name, typ, ok := cutLast(u, ".")
	switch {
	case u == "":
		return errors.New("service: no unit name")
	case len(u) > 255 || strings.ContainsAny(u, "/ \t\n"):
		return fmt.Errorf("service: invalid unit name %q", u)
	case !ok || name == "" || !unitTypes[typ]:
		return fmt.Errorf("service: unit name %q has no unit type suffix such as .service", u)
	case strings.HasSuffix(name, "@"):
		return fmt.Errorf("service: unit %q is a template: name an instance, e.g. %s", u, strings.TrimSuffix(name, "@")+"@1."+typ)
	}
	return nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// Check connects to systemd and looks the unit up. It returns an error
// wrapping ErrNoSystemd when systemd cannot be reached, and an error when
// the unit is not installed, masked or does not load; the caller reports
// it once at startup instead of finding it in every operation's reason.
func (a *Agent) Check(ctx context.Context) error {
	_, st, err := a.state(ctx)
	if err != nil {
		return err
	}
	if r, bad := loadProblem(a.unit, st); bad {
		return errors.New(r.Reason)
	}
	return nil
}

// Close releases the bus connection. A later operation opens a new one.
func (a *Agent) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.c != nil {
		a.c.close()
		a.c = nil
	}
	return nil
}

// Start starts the unit and waits until it is active; see the package
// comment.
func (a *Agent) Start(ctx context.Context) resources.Result {
	const op = resources.OpStart
	c, st, err := a.state(ctx)
	if err != nil {
		return a.done(op, errResult(a.unit, "read the state of", err))
	}
	if r, bad := loadProblem(a.unit, st); bad {
		return a.done(op, r)
	}
	switch st.ActiveState {
	case "active", "reloading", "refreshing":
		return a.done(op, result(resources.OK, "unit %s already active", a.unit))
	case "failed":
		a.log.Info("resetting the failed unit before starting it", zap.String("state", st.String()))
		if err := c.sd.ResetFailedUnitContext(ctx, a.unit); err != nil {
			return a.done(op, errResult(a.unit, "reset-failed", a.lost(c, err)))
		}
	}
	job, err := a.job(ctx, c, op)
	if err != nil {
		return a.done(op, errResult(a.unit, "start", a.lost(c, err)))
	}
	st, err = a.read(ctx, c)
	if err == nil {
		st = a.settle(ctx, c, st, func(s unitState) bool { return s.ActiveState != "activating" })
	}
	if err != nil {
		return a.done(op, errResult(a.unit, "read the state of", a.lost(c, err)))
	}
	return a.done(op, startResult(a.unit, job, st))
}

// Stop stops the unit and waits until it is inactive; see the package
// comment.
func (a *Agent) Stop(ctx context.Context) resources.Result {
	const op = resources.OpStop
	c, st, err := a.state(ctx)
	if err != nil {
		return a.done(op, errResult(a.unit, "read the state of", err))
	}
	switch st.ActiveState {
	case "inactive":
		return a.done(op, result(resources.OK, "unit %s already stopped", a.unit))
	case "failed":
		return a.done(op, a.resetFailed(ctx, c, st, fmt.Sprintf("unit %s already stopped: it had failed (%s); reset it", a.unit, st)))
	}
	job, err := a.job(ctx, c, op)
	if err != nil {
		return a.done(op, errResult(a.unit, "stop", a.lost(c, err)))
	}
	st, err = a.read(ctx, c)
	if err == nil {
		st = a.settle(ctx, c, st, func(s unitState) bool { return s.ActiveState != "deactivating" })
	}
	if err != nil {
		return a.done(op, errResult(a.unit, "read the state of", a.lost(c, err)))
	}
	r := stopResult(a.unit, job, st)
	if r.Code == resources.OK && st.ActiveState == "failed" {
		r = a.resetFailed(ctx, c, st, r.Reason+"; reset it")
	}
	return a.done(op, r)
}

// resetFailed turns a failed unit into an inactive one, so that a monitor
// sees it cleanly stopped; the failure stays in the journal and the log.
func (a *Agent) resetFailed(ctx context.Context, c *conn, st unitState, reason string) resources.Result {
	a.log.Info("resetting the failed unit", zap.String("state", st.String()))
	if err := c.sd.ResetFailedUnitContext(ctx, a.unit); err != nil {
		return errResult(a.unit, "reset-failed", a.lost(c, err))
	}
	return result(resources.OK, "%s", reason)
}

// Monitor reports the unit's state; see the package comment.
func (a *Agent) Monitor(ctx context.Context) resources.Result {
	const op = resources.OpMonitor
	c, st, err := a.state(ctx)
	if err != nil {
		return a.done(op, errResult(a.unit, "read the state of", err))
	}
	if transitioning(st) {
		sctx, cancel := settleContext(ctx)
		st = a.settle(sctx, c, st, func(s unitState) bool { return !transitioning(s) })
		cancel()
	}
	return a.done(op, monitorResult(a.unit, st))
}

// settleContext bounds a monitor's wait for a transition to half the time
// left, so that the answer comes before the caller's deadline.
func settleContext(ctx context.Context) (context.Context, context.CancelFunc) {
	wait := settleNoDeadline
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl) / 2
	}
	return context.WithTimeout(ctx, wait)
}

// job runs a start or stop job and returns how it ended.
func (a *Agent) job(ctx context.Context, c *conn, op resources.Op) (string, error) {
	// go-systemd sends the result while holding its job table's lock: the
	// buffer keeps that send from blocking, even after we stop waiting.
	ch := make(chan string, 1)
	var (
		id  int
		err error
	)
	if op == resources.OpStart {
		id, err = c.sd.StartUnitContext(ctx, a.unit, "replace", ch)
	} else {
		id, err = c.sd.StopUnitContext(ctx, a.unit, "replace", ch)
	}
	if err != nil {
		return "", err
	}
	a.log.Debug("job queued", zap.String("op", string(op)), zap.Int("job", id))
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		return "", fmt.Errorf("job %d still running: %w", id, ctx.Err())
	case <-c.sig.Context().Done():
		a.drop(c)
		return "", fmt.Errorf("job %d: %w", id, errLost)
	}
}

// settle polls the unit's state, starting from st, until stable says it
// is or ctx ends, and returns the last state read for the caller to judge.
// A read that fails ends the wait too: the state before it is the best
// there is, and the next operation finds a broken connection.
func (a *Agent) settle(ctx context.Context, c *conn, st unitState, stable func(unitState) bool) unitState {
	delay := pollMin
	for !stable(st) {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return st
		case <-t.C:
		}
		next, err := a.read(ctx, c)
		if err != nil {
			a.log.Debug("reading the unit's state failed while waiting", zap.Error(err))
			return st
		}
		st = next
		delay = min(2*delay, pollMax)
	}
	return st
}

func (a *Agent) done(op resources.Op, r resources.Result) resources.Result {
	fields := []zap.Field{zap.String("op", string(op)), zap.Stringer("result", r)}
	switch {
	case r.Failed():
		a.log.Warn("service operation failed", fields...)
	case op == resources.OpMonitor && r.Code == resources.OK && !r.Degraded:
		a.log.Debug("service monitored", fields...)
	default:
		a.log.Info("service operation done", fields...)
	}
	return r
}

func result(c resources.Code, format string, args ...any) resources.Result {
	return resources.Result{Code: c, Reason: fmt.Sprintf(format, args...)}
}
