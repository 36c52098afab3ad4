package resources

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/internal/logging"
)

// RunnerConfig configures the Runner of one group on this node.
type RunnerConfig struct {
	Group  Group
	Agents map[string]Agent // by Resource.ID(); every resource needs one
	Log    *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// GiveUp is called (from the runner's goroutine) when the group gave
	// up this node: the orchestrator resigns its VRRP instance so another
	// node takes the group. until is when a ban lifts by itself (zero:
	// only a cleanup lifts it).
	GiveUp func(reason string, until time.Time)
	// SelfFence is called for on_stop_failure = "self-fence".
	SelfFence func(reason string)
	// RetryDelay separates recovery attempts in place (default 1 s), so a
	// resource that fails at once does not spin.
	RetryDelay time.Duration
	// Events is how many recent events Status keeps (default 32).
	Events int
}

// Runner carries out a group's plans on this node: it starts, stops and
// monitors the resources through their agents, one step at a time, and
// feeds failures back to the planner. One goroutine (Run) does all the
// work, so steps of a group are serialised; the methods that ask for
// something only record the wish and wake it.
type Runner struct {
	cfg RunnerConfig
	g   Group
	log *zap.Logger
	now func() time.Time

	wake chan struct{}

	mu      sync.Mutex
	want    bool   // the group should run here
	why     string // why want is what it is
	cleanup string // a cleanup was asked, for this reason
	state   State
	phase   string
	last    map[string]Result    // last result of each resource's last op
	lastAt  map[string]time.Time // when each resource last started (monitor schedule)
	events  []EventRecord
	running *Step // the step under way
	gaveUp  string
	changed chan struct{} // closed and replaced on every change
}

// EventRecord is one thing the runner did, for status and the journal.
type EventRecord struct {
	At       time.Time     `json:"at"`
	What     string        `json:"what"`
	Result   string        `json:"result,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
}

// NewRunner checks that every resource has an agent.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	for _, r := range cfg.Group.Resources {
		if cfg.Agents[r.ID()] == nil {
			return nil, fmt.Errorf("group %q: no agent for %s", cfg.Group.Name, r.ID())
		}
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.Events == 0 {
		cfg.Events = 32
	}
	return &Runner{
		cfg: cfg, g: cfg.Group,
		log:     cfg.Log.With(zap.String(logging.KeyGroup, cfg.Group.Name)),
		now:     cfg.Now,
		wake:    make(chan struct{}, 1),
		state:   State{Resources: map[string]ResourceState{}},
		phase:   "stopped",
		last:    map[string]Result{},
		lastAt:  map[string]time.Time{},
		changed: make(chan struct{}),
	}, nil
}

func (r *Runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Activate asks for the group to run here.
func (r *Runner) Activate(reason string) { r.set(true, reason) }

// Deactivate asks for the group to stop here.
func (r *Runner) Deactivate(reason string) { r.set(false, reason) }

func (r *Runner) set(want bool, reason string) {
	r.mu.Lock()
	changed := r.want != want
	r.want, r.why = want, reason
	r.mu.Unlock()
	if changed {
		r.poke()
	}
}

// Retry lets a group that gave this node up start here again when asked
// (its ban expired); Activate alone does not, so a controller that still
// sees its node elected cannot undo a give-up by accident.
func (r *Runner) Retry() {
	r.mu.Lock()
	r.gaveUp = ""
	r.mu.Unlock()
	r.poke()
}

// Cleanup forgets the failures and lifts a block (hactl cleanup).
func (r *Runner) Cleanup(reason string) {
	r.mu.Lock()
	r.cleanup = reason
	r.gaveUp = ""
	r.mu.Unlock()
	r.poke()
}

// Plan is what the runner would do now about ev: hactl --dry-run.
func (r *Runner) Plan(ev Event) (Plan, error) {
	r.mu.Lock()
	s := r.copyState()
	r.mu.Unlock()
	return r.g.Plan(s, ev, r.now())
}

// Changed is closed at the runner's next change of state.
func (r *Runner) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

func (r *Runner) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Runner) copyState() State {
	s := State{Resources: make(map[string]ResourceState, len(r.state.Resources)), Blocked: r.state.Blocked}
	for k, v := range r.state.Resources {
		s.Resources[k] = v
	}
	s.Failures = make(Failures, len(r.state.Failures))
	for k, v := range r.state.Failures {
		s.Failures[k] = append([]Failure(nil), v...)
	}
	return s
}

// Run does the work until ctx ends. It does not stop the resources when
// ctx ends: the caller deactivates the group and waits for it first.
func (r *Runner) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.reconcile(ctx)
		d := r.nextMonitor()
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-timer.C:
			r.monitorDue(ctx)
		}
	}
}

// reconcile plans and carries out what the wish asks: a cleanup first,
// then activation or deactivation until the state matches.
func (r *Runner) reconcile(ctx context.Context) {
	for attempt := 0; attempt < 100 && ctx.Err() == nil; attempt++ {
		r.mu.Lock()
		want, why, cleanup := r.want, r.why, r.cleanup
		r.cleanup = ""
		settled := r.settledLocked(want)
		gaveUp := r.gaveUp != ""
		r.mu.Unlock()
		var ev Event
		switch {
		case cleanup != "":
			ev = Cleanup{Reason: cleanup}
		case settled:
			r.setPhase()
			return
		case want && gaveUp:
			// Gave up here: stay stopped until the orchestrator asks
			// again (after a cleanup, or once the ban expired).
			r.setPhase()
			return
		case want:
			ev = Activate{Reason: why}
		default:
			ev = Deactivate{Reason: why}
		}
		if !r.execute(ctx, ev) {
			r.setPhase()
			return
		}
	}
}

// settledLocked: nothing to do for want.
func (r *Runner) settledLocked(want bool) bool {
	if r.state.Blocked != "" {
		return true
	}
	for _, res := range r.g.Resources {
		st := r.state.Resources[res.ID()]
		if want && st != Started || !want && st != Stopped {
			return false
		}
	}
	return true
}

// execute plans ev and carries the plan out, feeding failures back as
// events. It returns false when the runner should stop trying for now
// (blocked, gave up, wish changed, or waiting before a retry).
func (r *Runner) execute(ctx context.Context, ev Event) bool {
	for hops := 0; ev != nil && hops < 50; hops++ {
		r.mu.Lock()
		s := r.copyState()
		wantAtStart := r.want
		r.mu.Unlock()
		p, err := r.g.Plan(s, ev, r.now())
		if err != nil {
			if !errors.Is(err, ErrBlocked) {
				r.log.Error("planning failed", zap.String(logging.KeyEvent, "plan"), zap.Error(err))
			}
			return false
		}
		if len(p.Steps) > 0 {
			r.log.Info("plan", zap.String(logging.KeyEvent, "plan"), zap.String("trigger", p.Event),
				zap.String(logging.KeyReason, p.Reason), zap.Int("steps", len(p.Steps)))
			r.record(EventRecord{At: r.now(), What: p.Event, Result: p.Reason})
		}
		next, ok := r.carryOut(ctx, p, wantAtStart)
		if !ok {
			return false
		}
		if _, failed := next.(StartFailed); failed {
			// Recovery restarts in place; give it a moment.
			select {
			case <-ctx.Done():
				return false
			case <-time.After(r.cfg.RetryDelay):
			}
		}
		ev = next
	}
	return ev == nil
}

// carryOut runs the steps of p in order. It returns the failure event of
// the first step that failed, or ok = false when the runner must stop.
func (r *Runner) carryOut(ctx context.Context, p Plan, want bool) (Event, bool) {
	for _, st := range p.Steps {
		r.mu.Lock()
		wishChanged := r.want != want
		r.mu.Unlock()
		if wishChanged && (st.Action == ActionStart || st.Action == ActionMonitor) {
			// Asked to stop while starting: plan again from here.
			return nil, true
		}
		switch st.Action {
		case ActionStart, ActionStop, ActionMonitor:
			if ev := r.operate(ctx, st); ev != nil {
				return ev, true
			}
		case ActionRecordFailure:
			r.mu.Lock()
			r.state.Failures.Add(st.Resource, r.now(), st.Class)
			r.notifyLocked()
			r.mu.Unlock()
			r.log.Warn("failure recorded", zap.String(logging.KeyEvent, "failure"), zap.String("resource", st.Resource),
				zap.String("class", st.Class.String()), zap.String(logging.KeyReason, st.Reason))
		case ActionResetFailures:
			r.mu.Lock()
			r.state.Failures = nil
			r.notifyLocked()
			r.mu.Unlock()
			r.log.Info("failures forgotten", zap.String(logging.KeyEvent, "cleanup"), zap.String(logging.KeyReason, st.Reason))
		case ActionBlock:
			r.mu.Lock()
			r.state.Blocked = st.Reason
			if st.Resource != "" {
				r.state.Resources[st.Resource] = Blocked
			}
			r.notifyLocked()
			r.mu.Unlock()
			r.log.Error("group blocked", zap.String(logging.KeyEvent, "block"), zap.String(logging.KeyReason, st.Reason))
			r.record(EventRecord{At: r.now(), What: "blocked", Result: st.Reason})
			return nil, false
		case ActionUnblock:
			r.mu.Lock()
			r.state.Blocked = ""
			for id, s := range r.state.Resources {
				if s == Blocked {
					r.state.Resources[id] = Failed
				}
			}
			r.notifyLocked()
			r.mu.Unlock()
			r.log.Info("group unblocked", zap.String(logging.KeyEvent, "unblock"), zap.String(logging.KeyReason, st.Reason))
		case ActionSelfFence:
			r.record(EventRecord{At: r.now(), What: "self-fence", Result: st.Reason})
			r.log.Error("self-fence", zap.String(logging.KeyEvent, "self-fence"), zap.String(logging.KeyReason, st.Reason))
			if r.cfg.SelfFence != nil {
				r.cfg.SelfFence(st.Reason)
			}
			return nil, false
		case ActionGiveUp:
			r.mu.Lock()
			_, until := r.g.Banned(r.state, r.now())
			r.gaveUp = st.Reason
			r.notifyLocked()
			r.mu.Unlock()
			r.log.Warn("group gives up this node", zap.String(logging.KeyEvent, "give-up"), zap.String(logging.KeyReason, st.Reason))
			r.record(EventRecord{At: r.now(), What: "give up", Result: st.Reason})
			if r.cfg.GiveUp != nil {
				r.cfg.GiveUp(st.Reason, until)
			}
			return nil, false
		}
	}
	return nil, true
}

// operate runs one agent operation and records its outcome; it returns the
// failure event, nil on success.
func (r *Runner) operate(ctx context.Context, st Step) Event {
	res := r.g.Resources[r.g.index(st.Resource)]
	a := r.cfg.Agents[st.Resource]
	timeout := res.Timeout
	if st.Action == ActionMonitor {
		timeout = res.MonitorTimeout
	}
	r.mu.Lock()
	r.running = &st
	switch st.Action {
	case ActionStart:
		r.state.Resources[st.Resource] = Starting
	case ActionStop:
		if r.state.Resources[st.Resource] != Stopped {
			r.state.Resources[st.Resource] = Stopping
		}
	}
	r.notifyLocked()
	r.mu.Unlock()

	began := r.now()
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	result := call(opCtx, a, st.Action)
	cancel()
	if opCtx.Err() == context.DeadlineExceeded && !result.Failed() {
		result = Result{Code: Soft, Reason: fmt.Sprintf("%s did not finish within %s", st.Action, timeout)}
	} else if opCtx.Err() == context.DeadlineExceeded && result.Reason == "" {
		result.Reason = fmt.Sprintf("%s timed out after %s", st.Action, timeout)
	}
	took := r.now().Sub(began)

	fields := []zap.Field{zap.String(logging.KeyEvent, string(st.Action)), zap.String("resource", st.Resource),
		zap.Duration("duration", took), zap.String("result", result.String())}
	var ev Event
	r.mu.Lock()
	r.running = nil
	r.last[st.Resource] = result
	switch st.Action {
	case ActionStart:
		if result.Code == OK {
			r.state.Resources[st.Resource] = Started
			r.lastAt[st.Resource] = r.now()
		} else {
			r.state.Resources[st.Resource] = Failed
			ev = StartFailed{Resource: st.Resource, Result: result}
		}
	case ActionStop:
		if result.Code == OK || result.Code == NotRunning {
			r.state.Resources[st.Resource] = Stopped
		} else {
			r.state.Resources[st.Resource] = Failed
			ev = StopFailed{Resource: st.Resource, Result: result}
		}
	case ActionMonitor:
		r.lastAt[st.Resource] = r.now()
		if result.Code != OK {
			ev = MonitorFailed{Resource: st.Resource, Result: result}
		}
	}
	r.notifyLocked()
	r.mu.Unlock()
	if st.Action != ActionMonitor || ev != nil {
		if ev != nil {
			r.log.Warn(string(st.Action)+" failed", fields...)
		} else {
			r.log.Info(string(st.Action)+" done", fields...)
		}
		r.record(EventRecord{At: began, What: string(st.Action) + " " + st.Resource, Result: result.String(), Duration: took})
	}
	return ev
}

// call runs op on a; a promotable agent is started then promoted, and
// demoted then stopped.
func call(ctx context.Context, a Agent, op Action) Result {
	p, promotable := a.(Promoter)
	switch op {
	case ActionStart:
		res := a.Start(ctx)
		if res.Code != OK || !promotable {
			return res
		}
		return p.Promote(ctx)
	case ActionStop:
		if promotable {
			if res := p.Demote(ctx); res.Failed() {
				return res
			}
		}
		return a.Stop(ctx)
	default:
		return a.Monitor(ctx)
	}
}

// nextMonitor is how long until the next monitor is due.
func (r *Runner) nextMonitor() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := time.Hour
	now := r.now()
	for _, res := range r.g.Resources {
		if res.MonitorInterval <= 0 || r.state.Resources[res.ID()] != Started {
			continue
		}
		d := r.lastAt[res.ID()].Add(res.MonitorInterval).Sub(now)
		if d < next {
			next = max(d, time.Millisecond)
		}
	}
	return next
}

// monitorDue monitors every started resource whose interval has passed,
// in order, and handles the first failure.
func (r *Runner) monitorDue(ctx context.Context) {
	now := r.now()
	for _, res := range r.g.Resources {
		r.mu.Lock()
		due := res.MonitorInterval > 0 && r.state.Resources[res.ID()] == Started &&
			!now.Before(r.lastAt[res.ID()].Add(res.MonitorInterval)) && r.state.Blocked == ""
		r.mu.Unlock()
		if !due {
			continue
		}
		if ev := r.operate(ctx, Step{Action: ActionMonitor, Resource: res.ID(), Reason: "monitor interval"}); ev != nil {
			r.execute(ctx, ev)
			return
		}
	}
}

func (r *Runner) record(e EventRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	if len(r.events) > r.cfg.Events {
		r.events = r.events[len(r.events)-r.cfg.Events:]
	}
	r.notifyLocked()
}

func (r *Runner) setPhase() {
	r.mu.Lock()
	defer r.mu.Unlock()
	phase := r.phaseLocked()
	if phase != r.phase {
		r.phase = phase
		r.notifyLocked()
	}
}

func (r *Runner) phaseLocked() string {
	switch {
	case r.state.Blocked != "":
		return "blocked"
	case r.gaveUp != "":
		return "gave up"
	case r.settledLocked(true):
		return "started"
	case r.settledLocked(false):
		return "stopped"
	case r.want:
		return "starting"
	default:
		return "stopping"
	}
}

// ResourceStatus is one resource as the runner sees it.
type ResourceStatus struct {
	ID       string `json:"id"`
	Kind     Kind   `json:"kind"`
	Name     string `json:"name"`
	State    string `json:"state"`
	Last     string `json:"last_result,omitempty"`
	Failures int    `json:"failures"`
}

// Status is the runner's view of its group.
type Status struct {
	Group     string           `json:"group"`
	Want      bool             `json:"want_active"`
	Why       string           `json:"why,omitempty"`
	Phase     string           `json:"phase"` // stopped, starting, started, stopping, blocked, gave up
	Running   string           `json:"running,omitempty"`
	Blocked   string           `json:"blocked,omitempty"`
	GaveUp    string           `json:"gave_up,omitempty"`
	Banned    string           `json:"banned,omitempty"`
	Resources []ResourceStatus `json:"resources"`
	Events    []EventRecord    `json:"events,omitempty"`
}

// Status returns the runner's view now.
func (r *Runner) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	st := Status{Group: r.g.Name, Want: r.want, Why: r.why, Phase: r.phaseLocked(), Blocked: r.state.Blocked, GaveUp: r.gaveUp}
	st.Banned, _ = r.g.Banned(r.state, now)
	if r.running != nil {
		st.Running = r.running.String()
	}
	for _, res := range r.g.Resources {
		rs := ResourceStatus{ID: res.ID(), Kind: res.Kind, Name: res.Name, State: r.state.Resources[res.ID()].String(),
			Failures: r.state.Failures.Count(res.ID(), now, r.g.FailureTimeout)}
		if l, ok := r.last[res.ID()]; ok {
			rs.Last = l.String()
		}
		st.Resources = append(st.Resources, rs)
	}
	st.Events = append([]EventRecord(nil), r.events...)
	return st
}

// Wait returns when the group is settled for active (every resource
// started, or every resource stopped), blocked or given up, or ctx ends.
func (r *Runner) Wait(ctx context.Context, active bool) error {
	for {
		r.mu.Lock()
		ch := r.changed
		done := r.settledLocked(active) || r.state.Blocked != "" || (active && r.gaveUp != "")
		blocked, gaveUp := r.state.Blocked, r.gaveUp
		r.mu.Unlock()
		if done {
			switch {
			case blocked != "":
				return fmt.Errorf("group %q is blocked: %s", r.g.Name, blocked)
			case active && gaveUp != "":
				return fmt.Errorf("group %q gave up this node: %s", r.g.Name, gaveUp)
			}
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
