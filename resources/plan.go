package resources

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hactl/hactl/cluster/config"
)

// ErrBlocked is returned, with the reason, by Plan for every event but
// Cleanup while the group is blocked on this node.
var ErrBlocked = errors.New("blocked")

// Event is something that happened to a group on this node.
type Event interface {
	String() string
	isEvent()
}

// Activate: this node should run the group (it won the election, a
// failover chose it, it leaves standby).
type Activate struct{ Reason string }

// Deactivate: this node should stop the group (it lost the election, a
// failover moves the group away, standby, shutdown).
type Deactivate struct{ Reason string }

// MonitorFailed: a monitor of a started resource returned a failure or
// NotRunning.
type MonitorFailed struct {
	Resource string // Resource.ID()
	Result   Result
}

// StartFailed: a start step failed.
type StartFailed struct {
	Resource string // Resource.ID()
	Result   Result
}

// StopFailed: a stop step failed. It is never retried.
type StopFailed struct {
	Resource string // Resource.ID()
	Result   Result
}

// Cleanup forgets the group's failures on this node and lifts a block: the
// operator fixed what was wrong.
type Cleanup struct{ Reason string }

func (Activate) isEvent()      {}
func (Deactivate) isEvent()    {}
func (MonitorFailed) isEvent() {}
func (StartFailed) isEvent()   {}
func (StopFailed) isEvent()    {}
func (Cleanup) isEvent()       {}

func withReason(what, reason string) string {
	if reason == "" {
		return what
	}
	return what + ": " + reason
}

func (e Activate) String() string   { return withReason("activate", e.Reason) }
func (e Deactivate) String() string { return withReason("deactivate", e.Reason) }
func (e Cleanup) String() string    { return withReason("cleanup", e.Reason) }
func (e MonitorFailed) String() string {
	return fmt.Sprintf("monitor of %s: %s", e.Resource, e.Result)
}
func (e StartFailed) String() string { return fmt.Sprintf("start of %s: %s", e.Resource, e.Result) }
func (e StopFailed) String() string  { return fmt.Sprintf("stop of %s: %s", e.Resource, e.Result) }

// Action is what one step does.
type Action string

const (
	ActionStart   Action = "start"   // start Resource
	ActionStop    Action = "stop"    // stop Resource
	ActionMonitor Action = "monitor" // monitor Resource once; a failure is a MonitorFailed event
	// ActionRecordFailure adds a failure of Resource, now, of the step's
	// Class, to State.Failures.
	ActionRecordFailure Action = "record-failure"
	// ActionResetFailures empties State.Failures.
	ActionResetFailures Action = "reset-failures"
	// ActionBlock sets State.Blocked to the step's reason; Resource, when
	// set, failed to stop and becomes Blocked. Nothing runs after it.
	ActionBlock Action = "block"
	// ActionUnblock clears State.Blocked; Blocked resources become Failed
	// (their real state is unknown, so the next plan stops them first).
	ActionUnblock Action = "unblock"
	// ActionSelfFence reboots this node at once (on_stop_failure =
	// "self-fence"), so the peer can take over safely.
	ActionSelfFence Action = "self-fence"
	// ActionGiveUp tells the orchestrator that the group cannot run on this
	// node: it resigns the VRRP instance (priority 0) so another node takes
	// the group, and keeps off it while Banned says so.
	ActionGiveUp Action = "give-up"
)

// Step is one thing to do, and why.
type Step struct {
	Action   Action
	Resource string // Resource.ID(); "" for steps about the whole group
	Class    Code   // record-failure: Soft, Hard or Fatal; OK otherwise
	Reason   string
}

func (s Step) String() string {
	var what string
	switch s.Action {
	case ActionStart, ActionStop, ActionMonitor:
		what = string(s.Action) + " " + s.Resource
	case ActionRecordFailure:
		what = "record a failure of " + s.Resource
		if s.Class.failure() {
			what = "record a " + s.Class.String() + " of " + s.Resource
		}
	case ActionResetFailures:
		what = "forget the failures recorded on this node"
	case ActionBlock:
		what = "block the group"
	case ActionUnblock:
		what = "unblock the group"
	case ActionSelfFence:
		what = "self-fence: reboot this node"
	case ActionGiveUp:
		what = "give up the group on this node"
	default:
		what = string(s.Action) + " " + s.Resource
	}
	if s.Reason == "" {
		return what
	}
	return what + " (" + s.Reason + ")"
}

// Plan is what a group does about one event: Steps in order. The runner
// carries them out one at a time and stops at the first that fails,
// feeding the failure back as an event.
type Plan struct {
	Group  string
	Event  string // the event, as text
	Reason string // the decision in one line, also when there are no steps
	Steps  []Step
}

// String is the --dry-run form: a heading with the decision, then one
// numbered line per step.
func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "group %s (%s): %s\n", p.Group, p.Event, p.Reason)
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "%2d. %s\n", i+1, s)
	}
	return b.String()
}

// Plan decides what the group does on this node about ev, given the state
// s before the event and the time now. It never changes s. The rules:
//
//   - Activate starts the resources in order, skipping those already
//     Started. From the first resource that is not Started on, everything
//     that is not Stopped is stopped first (in reverse), so nothing runs on
//     top of a resource that is being started again. A group Banned on this
//     node (a Hard failure that still counts, or migration_threshold
//     reached) is stopped and given up instead.
//   - Deactivate stops the resources in reverse order, skipping those
//     already Stopped.
//   - A Soft failure (or NotRunning) from a monitor or a start is recorded
//     and recovered in place: the failed resource and everything after it
//     are stopped in reverse and started again. When the resource's count
//     of failures within failure_timeout, this one included, reaches
//     migration_threshold (0: never), the group is stopped and given up.
//     A monitor failure of a resource that is Stopped or Stopping is stale
//     and ignored.
//   - A Hard failure is recorded; the group is stopped and given up at once,
//     and the node is Banned while the failure counts (whatever
//     migration_threshold says: OCF's "do not retry on this node").
//   - A Fatal failure is recorded; the group is stopped and blocked: it
//     must not run anywhere until a Cleanup.
//   - StopFailed is recorded and never retried: with on_stop_failure
//     "block" the group is blocked and nothing else runs (the peer must not
//     take over while the resource may still run here); with "self-fence"
//     the node reboots.
//   - Cleanup forgets the failures and lifts a block.
//   - While the group is blocked every event but Cleanup gets no steps and
//     an error wrapping ErrBlocked.
func (g Group) Plan(s State, ev Event, now time.Time) (Plan, error) {
	p := Plan{Group: g.Name}
	if ev == nil {
		return p, fmt.Errorf("group %q: no event", g.Name)
	}
	p.Event = ev.String()
	if _, cleanup := ev.(Cleanup); !cleanup {
		if why := s.blocked(g); why != "" {
			p.Reason = "blocked, nothing runs until a cleanup: " + why
			return p, fmt.Errorf("group %q: %w: %s", g.Name, ErrBlocked, why)
		}
	}
	var err error
	switch ev := ev.(type) {
	case Activate:
		g.activate(&p, s, withReason("activate", ev.Reason), now)
	case Deactivate:
		g.deactivate(&p, s, withReason("deactivate", ev.Reason))
	case MonitorFailed:
		err = g.failure(&p, s, OpMonitor, ev.Resource, ev.Result, now)
	case StartFailed:
		err = g.failure(&p, s, OpStart, ev.Resource, ev.Result, now)
	case StopFailed:
		err = g.failure(&p, s, OpStop, ev.Resource, ev.Result, now)
	case Cleanup:
		g.cleanup(&p, s, withReason("cleanup", ev.Reason))
	default:
		err = fmt.Errorf("group %q: unknown event %T", g.Name, ev)
	}
	if err != nil {
		return Plan{Group: p.Group, Event: p.Event}, err
	}
	return p, nil
}

func (g Group) activate(p *Plan, s State, why string, now time.Time) {
	if ban, until := g.Banned(s, now); ban != "" {
		lifts := "until a cleanup"
		if !until.IsZero() {
			lifts = "until " + until.UTC().Format(time.RFC3339) + " or a cleanup"
		}
		g.moveAway(p, s, -1, why+"; banned from this node", "banned from this node "+lifts+": "+ban)
		return
	}
	from := g.firstNotStarted(s)
	if from == len(g.Resources) {
		p.Reason = "nothing to do: every resource is already started"
		return
	}
	stopWhy := fmt.Sprintf("%s; %s is %s, so it and what follows it start again", why, g.Resources[from].ID(), s.of(g.Resources[from].ID()))
	g.restart(p, s, from, -1, stopWhy, why)
	p.Reason = fmt.Sprintf("start %d of %d resources in order", len(g.Resources)-from, len(g.Resources))
	if stops := p.count(ActionStop); stops > 0 {
		p.Reason += fmt.Sprintf(", after stopping %d from %s on", stops, g.Resources[from].ID())
	}
}

func (g Group) deactivate(p *Plan, s State, why string) {
	g.stopAll(p, s, -1, why)
	if len(p.Steps) == 0 {
		p.Reason = "nothing to do: every resource is already stopped"
		return
	}
	p.Reason = fmt.Sprintf("stop %d of %d resources in reverse order", len(p.Steps), len(g.Resources))
}

func (g Group) failure(p *Plan, s State, op Op, id string, r Result, now time.Time) error {
	k := g.index(id)
	if k < 0 {
		return fmt.Errorf("group %q: %s failed for unknown resource %q", g.Name, op, id)
	}
	class := r.Code
	if class == NotRunning && op != OpStop {
		class = Soft
	}
	if !class.failure() {
		return fmt.Errorf("group %q: %s of %s reported as failed, but the result is %s", g.Name, op, id, r)
	}
	if op == OpMonitor {
		if st := s.of(id); st == Stopped || st == Stopping {
			p.Reason = fmt.Sprintf("ignored: %s is %s, so this monitor result is stale", id, st)
			return nil
		}
	}

	n := s.Failures.Count(id, now, g.FailureTimeout) + 1
	count := fmt.Sprintf("failure %d", n)
	if g.MigrationThreshold > 0 {
		count += fmt.Sprintf(" of %d", g.MigrationThreshold)
		if g.FailureTimeout > 0 {
			count += " within " + g.FailureTimeout.String()
		}
	} else {
		count += ", no migration_threshold"
	}
	// Only soft failures of start and monitor are weighed against the
	// threshold; showing a count for the others would suggest they are.
	recorded := fmt.Sprintf("%s: %s", op, r) // r, not class: the agent's own words
	if class == Soft && op != OpStop {
		recorded += "; " + count
	}
	p.Steps = append(p.Steps, Step{Action: ActionRecordFailure, Resource: id, Class: class, Reason: recorded})
	what := fmt.Sprintf("%s of %s", class, id)
	if op == OpStop {
		what = "failed stop of " + id
	}

	switch {
	case op == OpStop:
		if g.OnStopFailure == config.StopFailureSelfFence {
			p.add(ActionSelfFence, "", fmt.Sprintf("%s failed to stop; on_stop_failure = %q: reboot so the peer can take over safely", id, config.StopFailureSelfFence))
			p.Reason = "self-fence after a " + what
			return nil
		}
		p.add(ActionBlock, id, fmt.Sprintf("%s failed to stop (%s); on_stop_failure = %q: the peer must not take over while %s may still run here; stop it by hand, then clean up the group", id, r, config.StopFailureBlock, id))
		p.Reason = "block, never retry a " + what
	case class == Soft && (g.MigrationThreshold == 0 || n < g.MigrationThreshold):
		from := min(k, g.firstNotStarted(s))
		why := fmt.Sprintf("restart after %s of %s, %s", class, id, count)
		g.restart(p, s, from, k, why, why)
		p.Reason = fmt.Sprintf("recover in place: restart %s and what follows it (%s)", id, count)
	case class == Soft:
		g.moveAway(p, s, k, fmt.Sprintf("move away: %s failed %s", id, times(n, g.FailureTimeout)),
			fmt.Sprintf("migration_threshold %d reached: %s failed %s; the group moves to another node", g.MigrationThreshold, id, times(n, g.FailureTimeout)))
	case class == Hard:
		g.moveAway(p, s, k, "move away: hard failure of "+id,
			fmt.Sprintf("hard failure of %s (%s): it cannot run on this node; the group moves to another node", id, r))
	default: // Fatal
		g.stopAll(p, s, k, "fatal failure of "+id)
		p.add(ActionBlock, "", fmt.Sprintf("fatal failure of %s (%s): the group must not run on any node until an operator fixes it and cleans up the group", id, r))
		p.Reason = "stop everything and block after a " + what
	}
	return nil
}

func (g Group) cleanup(p *Plan, s State, why string) {
	if n := s.Failures.total(); n > 0 {
		p.add(ActionResetFailures, "", fmt.Sprintf("%s; %d recorded", why, n))
	}
	if was := s.blocked(g); was != "" {
		p.add(ActionUnblock, "", why+"; it was blocked: "+was)
	}
	if len(p.Steps) == 0 {
		p.Reason = "nothing to do: no failures recorded and not blocked"
		return
	}
	p.Reason = "forget failures and blocks on this node"
}

// moveAway stops every resource that is not Stopped (and the one at force,
// whatever its state) in reverse order and gives the group up.
func (g Group) moveAway(p *Plan, s State, force int, stopWhy, giveUpWhy string) {
	g.stopAll(p, s, force, stopWhy)
	p.add(ActionGiveUp, "", giveUpWhy)
	p.Reason = "move away: " + giveUpWhy
}

// stopAll stops, in reverse order, every resource that is not Stopped and
// the one at force.
func (g Group) stopAll(p *Plan, s State, force int, why string) {
	g.stopFrom(p, s, 0, force, why)
}

func (g Group) stopFrom(p *Plan, s State, from, force int, why string) {
	for j := len(g.Resources) - 1; j >= from; j-- {
		if id := g.Resources[j].ID(); j == force || s.of(id) != Stopped {
			p.add(ActionStop, id, why)
		}
	}
}

// restart stops the resources from `from` on that are not Stopped (and the
// one at force) in reverse order, then starts every resource from `from`
// on in order, each followed by its first monitor where it has one.
func (g Group) restart(p *Plan, s State, from, force int, stopWhy, startWhy string) {
	g.stopFrom(p, s, from, force, stopWhy)
	for _, r := range g.Resources[from:] {
		p.add(ActionStart, r.ID(), startWhy)
		if r.firstMonitor() {
			p.add(ActionMonitor, r.ID(), "first monitor after start, before "+g.next(r))
		}
	}
}

// next names what waits for r's first monitor.
func (g Group) next(r Resource) string {
	i := g.index(r.ID())
	if i+1 < len(g.Resources) {
		return "starting " + g.Resources[i+1].ID()
	}
	return "the group counts as started"
}

func (g Group) firstNotStarted(s State) int {
	for i, r := range g.Resources {
		if s.of(r.ID()) != Started {
			return i
		}
	}
	return len(g.Resources)
}

func (p *Plan) add(a Action, resource, reason string) {
	p.Steps = append(p.Steps, Step{Action: a, Resource: resource, Reason: reason})
}

func (p *Plan) count(a Action) int {
	n := 0
	for _, s := range p.Steps {
		if s.Action == a {
			n++
		}
	}
	return n
}
