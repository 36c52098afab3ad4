package resources

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hactl/hactl/cluster/config"
)

// testGroup is volume:data, filesystem:/srv, service:pg (monitored),
// exec:warm (no monitor command) and vip:VI_1.
func testGroup(t *testing.T, threshold int, timeout time.Duration) Group {
	t.Helper()
	g, err := NewGroup(config.Group{
		Name: "db", VRRP: "VI_1", Volume: "data",
		Filesystem: &config.Filesystem{Mountpoint: "/srv", FSType: "ext4"},
		Resources: []config.Resource{
			{Kind: config.KindService, Name: "pg", Unit: "postgresql.service"},
			{Kind: config.KindExec, Name: "warm", Start: []string{"/usr/local/bin/warm"}},
		},
		MigrationThreshold: threshold,
		FailureTimeout:     timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

const (
	vol  = "volume:data"
	fs   = "filesystem:/srv"
	pg   = "service:pg"
	warm = "exec:warm"
	vip  = "vip:VI_1"
)

// running is a state with the named resources Started and the rest
// Stopped; with sets others.
func running(ids ...string) State {
	s := State{Resources: map[string]ResourceState{}}
	for _, id := range ids {
		s.Resources[id] = Started
	}
	return s
}

func (s State) with(id string, st ResourceState) State {
	s.Resources[id] = st
	return s
}

func (s State) failedAt(id string, ago ...time.Duration) State {
	for _, d := range ago {
		s.Failures.Add(id, t0.Add(-d), Soft)
	}
	return s
}

func (s State) hardAt(id string, ago time.Duration) State {
	s.Failures.Add(id, t0.Add(-ago), Hard)
	return s
}

var (
	soft       = Result{Code: Soft, Reason: "unit exited"}
	hard       = Result{Code: Hard, Reason: "binary missing"}
	fatal      = Result{Code: Fatal, Reason: "bad parameters"}
	notRunning = Result{Code: NotRunning, Reason: "inactive"}
)

func TestPlan(t *testing.T) {
	all := []string{vol, fs, pg, warm, vip}
	tests := []struct {
		name      string
		threshold int           // default 3
		timeout   time.Duration // default 10m
		stop      config.OnStopFailure
		state     State
		event     Event
		want      []string // "action resource"
		err       error    // errors.Is
		errText   string   // or a substring of the error
	}{
		// Activate: start in order, idempotently.
		{
			name:  "activate starts every resource in order, each service after its first monitor",
			state: running(), event: Activate{Reason: "won election"},
			want: []string{"start " + vol, "start " + fs, "start " + pg, "monitor " + pg, "start " + warm, "start " + vip},
		},
		{
			name:  "activate skips resources already started",
			state: running(vol, fs), event: Activate{},
			want: []string{"start " + pg, "monitor " + pg, "start " + warm, "start " + vip},
		},
		{
			name:  "activate with every resource started does nothing",
			state: running(all...), event: Activate{},
		},
		{
			name:  "activate restarts from a failed resource, stopping what runs on top of it first",
			state: running(all...).with(pg, Failed), event: Activate{},
			want: []string{"stop " + vip, "stop " + warm, "stop " + pg, "start " + pg, "monitor " + pg, "start " + warm, "start " + vip},
		},
		{
			name:  "activate stops a resource left starting before starting it again",
			state: running(vol, fs).with(pg, Starting), event: Activate{},
			want: []string{"stop " + pg, "start " + pg, "monitor " + pg, "start " + warm, "start " + vip},
		},
		{
			name:  "activate on a node where a resource reached migration_threshold gives the group up",
			state: running().failedAt(pg, 3*time.Minute, 2*time.Minute, time.Minute), event: Activate{},
			want: []string{"give-up"},
		},
		{
			name:  "activate on a banned node stops what still runs before giving up",
			state: running(vol).failedAt(pg, 3*time.Minute, 2*time.Minute, time.Minute), event: Activate{},
			want: []string{"stop " + vol, "give-up"},
		},
		{
			name:  "activate after a hard failure that still counts gives the group up, below migration_threshold",
			state: running().hardAt(pg, time.Minute), event: Activate{},
			want: []string{"give-up"},
		},
		{
			name: "activate after a hard failure gives the group up with migration_threshold 0", threshold: -1,
			state: running().hardAt(pg, time.Minute), event: Activate{},
			want: []string{"give-up"},
		},
		{
			name:  "activate once the hard failure is older than failure_timeout starts the group",
			state: running(vol, fs, pg, warm).hardAt(pg, 10*time.Minute), event: Activate{},
			want: []string{"start " + vip},
		},
		{
			name:  "activate once the failures are older than failure_timeout starts the group",
			state: running(vol, fs, pg, warm).failedAt(pg, 30*time.Minute, 20*time.Minute, 11*time.Minute), event: Activate{},
			want: []string{"start " + vip},
		},

		// Deactivate: stop in reverse, idempotently.
		{
			name:  "deactivate stops every resource in reverse order",
			state: running(all...), event: Deactivate{Reason: "failover to bravo"},
			want: []string{"stop " + vip, "stop " + warm, "stop " + pg, "stop " + fs, "stop " + vol},
		},
		{
			name:  "deactivate skips resources already stopped",
			state: running(vol, fs), event: Deactivate{},
			want: []string{"stop " + fs, "stop " + vol},
		},
		{
			name:  "deactivate stops failed and starting resources",
			state: running(vol, fs).with(pg, Failed).with(warm, Starting), event: Deactivate{},
			want: []string{"stop " + warm, "stop " + pg, "stop " + fs, "stop " + vol},
		},
		{
			name:  "deactivate with every resource stopped does nothing",
			state: running(), event: Deactivate{},
		},

		// Blocked: nothing runs but a cleanup.
		{
			name:  "deactivate while blocked plans nothing and says why",
			state: State{Blocked: "service:pg failed to stop"}, event: Deactivate{Reason: "shutdown"},
			err: ErrBlocked,
		},
		{
			name:  "a resource that failed to stop blocks the group",
			state: running(vol, fs).with(pg, Blocked), event: Deactivate{},
			err: ErrBlocked,
		},
		{
			name:  "activate while blocked plans nothing",
			state: State{Blocked: "fatal failure of service:pg"}, event: Activate{},
			err: ErrBlocked,
		},
		{
			name:  "failures while blocked plan nothing",
			state: running(vol, fs, pg).with(warm, Blocked), event: MonitorFailed{Resource: pg, Result: soft},
			err: ErrBlocked,
		},

		// Soft failures: recover in place until migration_threshold.
		{
			name:  "soft monitor failure below the threshold restarts the resource and what follows it",
			state: running(all...).failedAt(pg, time.Minute), event: MonitorFailed{Resource: pg, Result: soft},
			want: []string{"record-failure " + pg, "stop " + vip, "stop " + warm, "stop " + pg, "start " + pg, "monitor " + pg, "start " + warm, "start " + vip},
		},
		{
			name:  "a monitor finding the resource not running is a soft failure",
			state: running(all...).with(pg, Failed), event: MonitorFailed{Resource: pg, Result: notRunning},
			want: []string{"record-failure " + pg, "stop " + vip, "stop " + warm, "stop " + pg, "start " + pg, "monitor " + pg, "start " + warm, "start " + vip},
		},
		{
			name:  "soft failure of the last resource restarts only it",
			state: running(all...), event: MonitorFailed{Resource: vip, Result: soft},
			want: []string{"record-failure " + vip, "stop " + vip, "start " + vip},
		},
		{
			name:  "soft failure of the first resource restarts the whole group",
			state: running(all...), event: MonitorFailed{Resource: vol, Result: soft},
			want: []string{"record-failure " + vol, "stop " + vip, "stop " + warm, "stop " + pg, "stop " + fs, "stop " + vol,
				"start " + vol, "start " + fs, "start " + pg, "monitor " + pg, "start " + warm, "start " + vip},
		},
		{
			name:  "soft failure reaching migration_threshold stops the group and gives it up",
			state: running(all...).failedAt(pg, 5*time.Minute, time.Minute), event: MonitorFailed{Resource: pg, Result: soft},
			want: []string{"record-failure " + pg, "stop " + vip, "stop " + warm, "stop " + pg, "stop " + fs, "stop " + vol, "give-up"},
		},
		{
			name:  "failures older than failure_timeout are forgotten when counting",
			state: running(all...).failedAt(pg, 11*time.Minute, 10*time.Minute), event: MonitorFailed{Resource: pg, Result: soft},
			want: []string{"record-failure " + pg, "stop " + vip, "stop " + warm, "stop " + pg, "start " + pg, "monitor " + pg, "start " + warm, "start " + vip},
		},
		{
			name: "without failure_timeout old failures still count", timeout: -1,
			state: running(all...).failedAt(pg, 72*time.Hour, 48*time.Hour), event: MonitorFailed{Resource: pg, Result: soft},
			want: []string{"record-failure " + pg, "stop " + vip, "stop " + warm, "stop " + pg, "stop " + fs, "stop " + vol, "give-up"},
		},
		{
			name:  "failures of other resources do not count toward the threshold",
			state: running(all...).failedAt(vip, 2*time.Minute, time.Minute), event: MonitorFailed{Resource: pg, Result: soft},
			want: []string{"record-failure " + pg, "stop " + vip, "stop " + warm, "stop " + pg, "start " + pg, "monitor " + pg, "start " + warm, "start " + vip},
		},
		{
			name: "migration_threshold 0 never moves the group", threshold: -1,
			state: running(all...).failedAt(pg, 5, 4, 3, 2, 1), event: MonitorFailed{Resource: vip, Result: soft},
			want: []string{"record-failure " + vip, "stop " + vip, "start " + vip},
		},
		{
			name:  "a stale monitor failure of a stopped resource is ignored",
			state: running(vol, fs), event: MonitorFailed{Resource: pg, Result: soft},
		},
		{
			name:  "a stale monitor failure of a stopping resource is ignored",
			state: running(vol, fs).with(pg, Stopping), event: MonitorFailed{Resource: pg, Result: notRunning},
		},
		{
			name:  "soft start failure stops the failed resource and starts from it again",
			state: running(vol, fs).with(pg, Failed), event: StartFailed{Resource: pg, Result: soft},
			want: []string{"record-failure " + pg, "stop " + pg, "start " + pg, "monitor " + pg, "start " + warm, "start " + vip},
		},
		{
			name:  "a start that left the resource stopped still stops it before retrying",
			state: running(vol, fs), event: StartFailed{Resource: pg, Result: notRunning},
			want: []string{"record-failure " + pg, "stop " + pg, "start " + pg, "monitor " + pg, "start " + warm, "start " + vip},
		},
		{
			name:  "soft start failure reaching migration_threshold gives the group up",
			state: running(vol, fs).with(pg, Failed).failedAt(pg, 2*time.Minute, time.Minute), event: StartFailed{Resource: pg, Result: soft},
			want: []string{"record-failure " + pg, "stop " + pg, "stop " + fs, "stop " + vol, "give-up"},
		},

		// Hard and fatal failures.
		{
			name:  "hard monitor failure moves the group away at once",
			state: running(all...), event: MonitorFailed{Resource: pg, Result: hard},
			want: []string{"record-failure " + pg, "stop " + vip, "stop " + warm, "stop " + pg, "stop " + fs, "stop " + vol, "give-up"},
		},
		{
			name:  "hard start failure moves the group away at once",
			state: running(vol, fs).with(pg, Failed), event: StartFailed{Resource: pg, Result: hard},
			want: []string{"record-failure " + pg, "stop " + pg, "stop " + fs, "stop " + vol, "give-up"},
		},
		{
			name: "hard failure moves the group away even with migration_threshold 0", threshold: -1,
			state: running(all...), event: MonitorFailed{Resource: vip, Result: hard},
			want: []string{"record-failure " + vip, "stop " + vip, "stop " + warm, "stop " + pg, "stop " + fs, "stop " + vol, "give-up"},
		},
		{
			name:  "fatal failure stops everything and blocks the group",
			state: running(all...), event: MonitorFailed{Resource: pg, Result: fatal},
			want: []string{"record-failure " + pg, "stop " + vip, "stop " + warm, "stop " + pg, "stop " + fs, "stop " + vol, "block"},
		},
		{
			name:  "fatal start failure stops what started and blocks the group",
			state: running(vol, fs).with(pg, Failed), event: StartFailed{Resource: pg, Result: fatal},
			want: []string{"record-failure " + pg, "stop " + pg, "stop " + fs, "stop " + vol, "block"},
		},

		// Failed stops: never retried.
		{
			name: "failed stop with on_stop_failure block blocks the group and runs nothing else", stop: config.StopFailureBlock,
			state: running(vol, fs).with(pg, Stopping), event: StopFailed{Resource: pg, Result: soft},
			want: []string{"record-failure " + pg, "block " + pg},
		},
		{
			name: "failed stop with on_stop_failure self-fence fences this node", stop: config.StopFailureSelfFence,
			state: running(vol, fs).with(pg, Stopping), event: StopFailed{Resource: pg, Result: soft},
			want: []string{"record-failure " + pg, "self-fence"},
		},
		{
			name: "failed stop without on_stop_failure blocks", stop: "",
			state: running(vol, fs).with(pg, Stopping), event: StopFailed{Resource: pg, Result: soft},
			want: []string{"record-failure " + pg, "block " + pg},
		},
		{
			name: "a hard or fatal stop failure is still only a failed stop", stop: config.StopFailureBlock,
			state: running(vol).with(fs, Stopping), event: StopFailed{Resource: fs, Result: fatal},
			want: []string{"record-failure " + fs, "block " + fs},
		},

		// Cleanup.
		{
			name:  "cleanup forgets the failures and unblocks the group",
			state: running(vol, fs).with(pg, Blocked).failedAt(pg, time.Minute), event: Cleanup{Reason: "operator"},
			want: []string{"reset-failures", "unblock"},
		},
		{
			name:  "cleanup of a group blocked after a fatal failure unblocks it",
			state: State{Blocked: "fatal failure of service:pg"}, event: Cleanup{},
			want: []string{"unblock"},
		},
		{
			name:  "cleanup forgets expired failures too",
			state: running().failedAt(pg, 48*time.Hour), event: Cleanup{},
			want: []string{"reset-failures"},
		},
		{
			name:  "cleanup with nothing recorded does nothing",
			state: running(all...), event: Cleanup{},
		},

		// Mistakes of the caller.
		{
			name:  "failure of an unknown resource is an error",
			state: running(all...), event: MonitorFailed{Resource: "service:nope", Result: soft},
			errText: "unknown resource",
		},
		{
			name:  "failure event with a successful result is an error",
			state: running(all...), event: StartFailed{Resource: pg, Result: Result{Code: OK}},
			errText: "reported as failed",
		},
		{
			name:  "a stop reported failed with not running is an error: not running is stopped",
			state: running(vol, fs).with(pg, Stopping), event: StopFailed{Resource: pg, Result: notRunning},
			errText: "reported as failed",
		},
		{
			name:  "no event is an error",
			state: running(), event: nil,
			errText: "no event",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			threshold, timeout := 3, 10*time.Minute
			if tc.threshold < 0 {
				threshold = 0
			} else if tc.threshold > 0 {
				threshold = tc.threshold
			}
			if tc.timeout < 0 {
				timeout = 0
			} else if tc.timeout > 0 {
				timeout = tc.timeout
			}
			g := testGroup(t, threshold, timeout)
			g.OnStopFailure = tc.stop
			if tc.stop == "" && strings.Contains(tc.name, "self-fence") {
				t.Fatal("test case needs on_stop_failure")
			}
			before := copyState(tc.state)

			p, err := g.Plan(tc.state, tc.event, t0)

			switch {
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
			case tc.errText != "":
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v, want one containing %q", err, tc.errText)
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			}
			if got := compact(p.Steps); !slices.Equal(got, tc.want) {
				t.Errorf("steps\n  %s\nwant\n  %s\nplan:\n%s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "), p)
			}
			if !reflect.DeepEqual(before, tc.state) {
				t.Errorf("Plan changed the state: %+v, was %+v", tc.state, before)
			}
			checkInvariants(t, g, p, err)
		})
	}
}

// checkInvariants holds for every plan: each step says why; nothing runs
// after a step that ends the group's life here; the plan says why it has
// no steps; the resources named exist.
func checkInvariants(t *testing.T, g Group, p Plan, err error) {
	t.Helper()
	for i, s := range p.Steps {
		if s.Reason == "" {
			t.Errorf("step %d (%s) has no reason", i+1, s)
		}
		switch s.Action {
		case ActionBlock, ActionSelfFence, ActionGiveUp:
			if i != len(p.Steps)-1 {
				t.Errorf("step %d (%s) is followed by %s", i+1, s.Action, p.Steps[i+1])
			}
		}
		if s.Resource != "" && g.index(s.Resource) < 0 {
			t.Errorf("step %d names unknown resource %q", i+1, s.Resource)
		}
	}
	if err == nil && p.Reason == "" {
		t.Errorf("plan without a reason:\n%s", p)
	}
	if errors.Is(err, ErrBlocked) && (len(p.Steps) != 0 || !strings.Contains(p.Reason, "blocked")) {
		t.Errorf("blocked plan has steps or no reason:\n%s", p)
	}
}

func compact(steps []Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, strings.TrimSpace(string(s.Action)+" "+s.Resource))
	}
	return out
}

func copyState(s State) State {
	c := State{Resources: maps.Clone(s.Resources), Blocked: s.Blocked}
	for id, ts := range s.Failures {
		if c.Failures == nil {
			c.Failures = Failures{}
		}
		c.Failures[id] = slices.Clone(ts)
	}
	return c
}

func TestPlanStringIsTheDryRunOutput(t *testing.T) {
	g := testGroup(t, 3, 10*time.Minute)
	p, err := g.Plan(running(vol, fs, pg, vip), Deactivate{Reason: "failover to bravo"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := `group db (deactivate: failover to bravo): stop 4 of 5 resources in reverse order
 1. stop vip:VI_1 (deactivate: failover to bravo)
 2. stop service:pg (deactivate: failover to bravo)
 3. stop filesystem:/srv (deactivate: failover to bravo)
 4. stop volume:data (deactivate: failover to bravo)
`
	if got := p.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	p, err = g.Plan(running(vol, fs), Activate{Reason: "won election"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	want = `group db (activate: won election): start 3 of 5 resources in order
 1. start service:pg (activate: won election)
 2. monitor service:pg (first monitor after start, before starting exec:warm)
 3. start exec:warm (activate: won election)
 4. start vip:VI_1 (activate: won election)
`
	if got := p.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	p, _ = g.Plan(running(), Deactivate{}, t0)
	if got, want := p.String(), "group db (deactivate): nothing to do: every resource is already stopped\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The reasons are what the operator reads in the journal, status and
// --dry-run; each decision must say what happened and what follows.
func TestPlanReasonsExplainTheDecision(t *testing.T) {
	tests := []struct {
		name  string
		stop  config.OnStopFailure
		state State
		event Event
		want  []string // substrings of the plan's String()
	}{
		{
			name:  "restart counts the failure against the threshold",
			state: running(vol, fs, pg, warm, vip).failedAt(pg, time.Minute), event: MonitorFailed{Resource: pg, Result: soft},
			want: []string{"recover in place", "record a soft failure of service:pg (monitor: soft failure: unit exited; failure 2 of 3 within 10m0s)",
				"stop vip:VI_1 (restart after soft failure of service:pg, failure 2 of 3 within 10m0s)"},
		},
		{
			name:  "moving away names the threshold",
			state: running(vol, fs, pg, warm, vip).failedAt(pg, 2*time.Minute, time.Minute), event: MonitorFailed{Resource: pg, Result: soft},
			want: []string{"give up the group on this node (migration_threshold 3 reached: service:pg failed 3 times within 10m0s; the group moves to another node)"},
		},
		{
			name:  "a ban after a hard failure says so",
			state: running().hardAt(pg, 90*time.Second), event: Activate{},
			want: []string{"banned from this node until 2025-03-04T12:08:30Z or a cleanup: service:pg had a hard failure 1m30s ago: it cannot run on this node"},
		},
		{
			name:  "a ban says until when",
			state: running().failedAt(pg, 3*time.Minute, 2*time.Minute, time.Minute), event: Activate{},
			want: []string{"banned from this node until 2025-03-04T12:07:00Z or a cleanup: service:pg failed 3 times within 10m0s (migration_threshold 3)"},
		},
		{
			name:  "hard failure says it cannot run here",
			state: running(vol, fs, pg), event: MonitorFailed{Resource: pg, Result: hard},
			want: []string{"hard failure of service:pg (hard failure: binary missing): it cannot run on this node"},
		},
		{
			name:  "fatal failure says no node may run it",
			state: running(vol, fs, pg), event: MonitorFailed{Resource: pg, Result: fatal},
			want: []string{"block the group (fatal failure of service:pg (fatal failure: bad parameters): the group must not run on any node"},
		},
		{
			name: "a block after a failed stop says the peer must not take over", stop: config.StopFailureBlock,
			state: running(vol, fs).with(pg, Stopping), event: StopFailed{Resource: pg, Result: Result{Code: Soft, Reason: "timed out after 1m0s"}},
			want: []string{"block, never retry a failed stop", "service:pg failed to stop (soft failure: timed out after 1m0s)",
				`on_stop_failure = "block": the peer must not take over while service:pg may still run here`},
		},
		{
			name: "self-fence says why", stop: config.StopFailureSelfFence,
			state: running(vol, fs).with(pg, Stopping), event: StopFailed{Resource: pg, Result: soft},
			want: []string{`self-fence: reboot this node (service:pg failed to stop; on_stop_failure = "self-fence": reboot so the peer can take over safely)`},
		},
		{
			name:  "blocked names the cause",
			state: State{Blocked: "service:pg failed to stop"}, event: Deactivate{Reason: "shutdown"},
			want: []string{"group db (deactivate: shutdown): blocked, nothing runs until a cleanup: service:pg failed to stop"},
		},
		{
			name:  "a hard failure shows no count: the threshold does not apply",
			state: running(vol, fs, pg), event: MonitorFailed{Resource: pg, Result: hard},
			want: []string{"record a hard failure of service:pg (monitor: hard failure: binary missing)\n"},
		},
		{
			name:  "activate says why it stops resources that run",
			state: running(vol, fs, warm, vip).with(pg, Failed), event: Activate{Reason: "won election"},
			want: []string{"stop vip:VI_1 (activate: won election; service:pg is failed, so it and what follows it start again)"},
		},
		{
			name:  "a stale monitor result says why it is ignored",
			state: running(vol), event: MonitorFailed{Resource: pg, Result: soft},
			want: []string{"ignored: service:pg is stopped"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := testGroup(t, 3, 10*time.Minute)
			if tc.stop != "" {
				g.OnStopFailure = tc.stop
			}
			p, _ := g.Plan(tc.state, tc.event, t0)
			out := p.String()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("plan does not contain %q:\n%s", w, out)
				}
			}
		})
	}
}

// fakeRunner carries out plans the way the runner is meant to, with every
// step succeeding.
type fakeRunner struct {
	t   *testing.T
	g   Group
	s   State
	now time.Time
}

func (r *fakeRunner) plan(ev Event) Plan {
	r.t.Helper()
	p, err := r.g.Plan(r.s, ev, r.now)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, st := range p.Steps {
		switch st.Action {
		case ActionStart:
			r.s.Resources[st.Resource] = Started
		case ActionStop:
			r.s.Resources[st.Resource] = Stopped
		case ActionRecordFailure:
			r.s.Failures.Add(st.Resource, r.now, st.Class)
		case ActionResetFailures:
			r.s.Failures = nil
		}
	}
	return p
}

// Feeding every plan's outcome back ends with the group moved away after
// migration_threshold soft failures; Cleanup lets it start here again.
func TestRunnerLoopGivesUpAfterThresholdAndCleanupLetsItBack(t *testing.T) {
	r := &fakeRunner{t: t, g: testGroup(t, 3, 10*time.Minute), s: running(), now: t0}
	r.plan(Activate{})
	for i := 1; i <= 3; i++ {
		r.now = r.now.Add(time.Minute)
		r.s.Resources[pg] = Failed
		p := r.plan(MonitorFailed{Resource: pg, Result: soft})
		if gaveUp := slices.Contains(compact(p.Steps), "give-up"); gaveUp != (i == 3) {
			t.Fatalf("failure %d: gave up %v:\n%s", i, gaveUp, p)
		}
	}
	for id, st := range r.s.Resources {
		if st != Stopped {
			t.Errorf("%s is %s after giving up", id, st)
		}
	}
	if p := r.plan(Activate{}); !slices.Equal(compact(p.Steps), []string{"give-up"}) {
		t.Errorf("activate while banned:\n%s", p)
	}
	r.plan(Cleanup{})
	if p := r.plan(Activate{}); len(p.Steps) != 6 || p.Steps[0].Action != ActionStart {
		t.Errorf("activate after cleanup:\n%s", p)
	}
}

// A hard failure moves the group away and keeps it off this node until
// the failure is failure_timeout old.
func TestRunnerLoopHardFailureBansTheNodeUntilFailureTimeout(t *testing.T) {
	r := &fakeRunner{t: t, g: testGroup(t, 0, 10*time.Minute), s: running(), now: t0}
	r.plan(Activate{})
	if p := r.plan(MonitorFailed{Resource: fs, Result: hard}); !slices.Contains(compact(p.Steps), "give-up") {
		t.Fatalf("hard failure did not give up:\n%s", p)
	}
	r.now = r.now.Add(10*time.Minute - time.Second)
	if p := r.plan(Activate{}); !slices.Equal(compact(p.Steps), []string{"give-up"}) {
		t.Errorf("activate before failure_timeout:\n%s", p)
	}
	r.now = r.now.Add(time.Second)
	if p := r.plan(Activate{}); len(p.Steps) != 6 || p.Steps[0].Action != ActionStart {
		t.Errorf("activate after failure_timeout:\n%s", p)
	}
}

func TestStepStringSaysWhatHappensToWhat(t *testing.T) {
	tests := []struct {
		step Step
		want string
	}{
		{Step{Action: ActionStart, Resource: pg, Reason: "activate"}, "start service:pg (activate)"},
		{Step{Action: ActionStop, Resource: vip}, "stop vip:VI_1"},
		{Step{Action: ActionMonitor, Resource: pg, Reason: "first monitor"}, "monitor service:pg (first monitor)"},
		{Step{Action: ActionRecordFailure, Resource: pg, Class: Hard, Reason: "x"}, "record a hard failure of service:pg (x)"},
		{Step{Action: ActionRecordFailure, Resource: pg, Reason: "x"}, "record a failure of service:pg (x)"},
		{Step{Action: ActionResetFailures, Reason: "x"}, "forget the failures recorded on this node (x)"},
		{Step{Action: ActionBlock, Resource: pg, Reason: "x"}, "block the group (x)"},
		{Step{Action: ActionUnblock, Reason: "x"}, "unblock the group (x)"},
		{Step{Action: ActionSelfFence, Reason: "x"}, "self-fence: reboot this node (x)"},
		{Step{Action: ActionGiveUp, Reason: "x"}, "give up the group on this node (x)"},
	}
	for _, tc := range tests {
		if got := tc.step.String(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.step.Action, got, tc.want)
		}
	}
}
