package resources

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hactl/hactl/cluster/config"
)

// scripted is an agent whose results the test sets; it records every call
// in a journal shared by the group's agents.
type scripted struct {
	id      string
	journal *journal

	mu      sync.Mutex
	running bool
	start   []Result // consumed one per call; empty: OK
	stop    []Result
	monitor []Result
}

type journal struct {
	mu    sync.Mutex
	calls []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.calls = append(j.calls, s)
	j.mu.Unlock()
}

func (j *journal) take() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := j.calls
	j.calls = nil
	return out
}

func next(q *[]Result) Result {
	if len(*q) == 0 {
		return Result{Code: OK}
	}
	r := (*q)[0]
	*q = (*q)[1:]
	return r
}

func (a *scripted) Start(context.Context) Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.journal.add("start " + a.id)
	r := next(&a.start)
	a.running = r.Code == OK
	return r
}

func (a *scripted) Stop(context.Context) Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.journal.add("stop " + a.id)
	r := next(&a.stop)
	if r.Code == OK {
		a.running = false
	}
	return r
}

func (a *scripted) Monitor(context.Context) Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.journal.add("monitor " + a.id)
	if len(a.monitor) > 0 {
		return next(&a.monitor)
	}
	if !a.running {
		return Result{Code: NotRunning}
	}
	return Result{Code: OK}
}

type giveUps struct {
	mu      sync.Mutex
	reasons []string
}

func (g *giveUps) add(reason string, _ time.Time) {
	g.mu.Lock()
	g.reasons = append(g.reasons, reason)
	g.mu.Unlock()
}

func (g *giveUps) get() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.reasons...)
}

// newTestRunner runs a group of exec resources a, b, c (monitored every
// hour, so only first monitors run unless the test asks).
func newTestRunner(t *testing.T, threshold int, edit func(map[string]*scripted)) (*Runner, *journal, *giveUps) {
	t.Helper()
	cg := config.Group{Name: "web", VRRP: "VI_1", MigrationThreshold: threshold}
	for _, n := range []string{"a", "b", "c"} {
		cg.Resources = append(cg.Resources, config.Resource{Kind: config.KindExec, Name: n, Start: []string{"x"}, Monitor: []string{"x"},
			MonitorInterval: time.Hour})
	}
	g, err := NewGroup(cg)
	if err != nil {
		t.Fatal(err)
	}
	j := &journal{}
	agents := map[string]*scripted{}
	all := map[string]Agent{}
	for _, r := range g.Resources {
		agents[r.ID()] = &scripted{id: r.ID(), journal: j}
		all[r.ID()] = agents[r.ID()]
	}
	if edit != nil {
		edit(agents)
	}
	gu := &giveUps{}
	r, err := NewRunner(RunnerConfig{Group: g, Agents: all, RetryDelay: time.Millisecond, GiveUp: gu.add})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r, j, gu
}

func wait(t *testing.T, r *Runner, active bool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := r.Wait(ctx, active)
	if err == context.DeadlineExceeded {
		t.Fatalf("group did not settle: %+v", r.Status())
	}
	return err
}

func TestRunnerStartsInOrderStopsInReverse(t *testing.T) {
	r, j, _ := newTestRunner(t, 0, nil)
	r.Activate("test")
	if err := wait(t, r, true); err != nil {
		t.Fatal(err)
	}
	want := "start exec:a,monitor exec:a,start exec:b,monitor exec:b,start exec:c,monitor exec:c,start vip:VI_1"
	if got := strings.Join(j.take(), ","); got != want {
		t.Fatalf("activate calls:\n got %s\nwant %s", got, want)
	}
	if st := r.Status(); st.Phase != "started" {
		t.Fatalf("phase %q", st.Phase)
	}
	r.Deactivate("test")
	if err := wait(t, r, false); err != nil {
		t.Fatal(err)
	}
	want = "stop vip:VI_1,stop exec:c,stop exec:b,stop exec:a"
	if got := strings.Join(j.take(), ","); got != want {
		t.Fatalf("deactivate calls:\n got %s\nwant %s", got, want)
	}
}

func TestRunnerRecoversInPlaceThenGivesUp(t *testing.T) {
	fail := Result{Code: Soft, Reason: "boom"}
	r, j, gu := newTestRunner(t, 2, func(a map[string]*scripted) {
		a["exec:b"].start = []Result{fail, fail}
	})
	r.Activate("test")
	if err := wait(t, r, true); err == nil || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("Wait = %v, want a give-up", err)
	}
	calls := strings.Join(j.take(), ",")
	// First failure: b restarts in place (stop b, start b); second: the
	// threshold is reached and everything stops.
	want := "start exec:a,monitor exec:a,start exec:b,stop exec:b,start exec:b,stop exec:b,stop exec:a"
	if calls != want {
		t.Fatalf("calls:\n got %s\nwant %s", calls, want)
	}
	if g := gu.get(); len(g) != 1 || !strings.Contains(g[0], "migration_threshold 2") {
		t.Fatalf("give-ups %q", g)
	}
	st := r.Status()
	if st.Phase != "gave up" || st.Banned == "" || st.Resources[1].Failures != 2 {
		t.Fatalf("status %+v", st)
	}
	// A cleanup forgets the failures; asked again, the group starts.
	r.Cleanup("operator")
	r.Activate("again")
	if err := wait(t, r, true); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.Resources[1].Failures != 0 || st.Banned != "" {
		t.Fatalf("after cleanup %+v", st)
	}
}

func TestRunnerFailedStopBlocks(t *testing.T) {
	r, j, _ := newTestRunner(t, 0, func(a map[string]*scripted) {
		a["exec:b"].stop = []Result{{Code: Soft, Reason: "still busy"}}
	})
	r.Activate("test")
	if err := wait(t, r, true); err != nil {
		t.Fatal(err)
	}
	j.take()
	r.Deactivate("test")
	err := wait(t, r, false)
	if err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("Wait = %v, want blocked", err)
	}
	// Never retried, and nothing below b is stopped: a must keep b's data.
	if got := strings.Join(j.take(), ","); got != "stop vip:VI_1,stop exec:c,stop exec:b" {
		t.Fatalf("calls %s", got)
	}
	st := r.Status()
	if st.Phase != "blocked" || st.Resources[1].State != "blocked" || st.Resources[0].State != "started" {
		t.Fatalf("status %+v", st)
	}
	if _, err := r.Plan(Activate{}); err == nil {
		t.Fatal("a blocked group planned an activation")
	}
	r.Cleanup("stopped by hand")
	deadline := time.After(30 * time.Second)
	for {
		ch := r.Changed()
		if r.Status().Blocked == "" {
			break
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("the cleanup did not unblock the group")
		}
	}
	if err := wait(t, r, false); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(j.take(), ","); got != "stop exec:b,stop exec:a" {
		t.Fatalf("calls after cleanup %s", got)
	}
}

func TestRunnerMonitorFailureRestarts(t *testing.T) {
	r, j, _ := newTestRunner(t, 0, nil)
	r.Activate("test")
	if err := wait(t, r, true); err != nil {
		t.Fatal(err)
	}
	j.take()
	// c dies; the next monitor finds it and c and the VIP restart.
	r.mu.Lock()
	r.lastAt["exec:c"] = time.Time{}
	r.mu.Unlock()
	r.cfg.Agents["exec:c"].(*scripted).monitor = []Result{{Code: NotRunning}}
	r.monitorDue(context.Background())
	got := strings.Join(j.take(), ",")
	want := "monitor exec:c,stop vip:VI_1,stop exec:c,start exec:c,monitor exec:c,start vip:VI_1"
	if got != want {
		t.Fatalf("calls:\n got %s\nwant %s", got, want)
	}
	if st := r.Status(); st.Resources[2].Failures != 1 || st.Phase != "started" {
		t.Fatalf("status %+v", st)
	}
}
