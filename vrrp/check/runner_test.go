package check

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hactl/hactl/cluster/config"
)

// recorder collects the updates a Runner sends.
type recorder struct {
	mu      sync.Mutex
	updates []Update
}

func (r *recorder) notify(u Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, u)
}

func (r *recorder) get() []Update {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Update(nil), r.updates...)
}

// statusOf returns the Status of the named check.
func statusOf(t *testing.T, r *Runner, name string) Status {
	t.Helper()
	for _, s := range r.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for check %q", name)
	return Status{}
}

// TestRunnerRiseFall drives an exec check through fall failures and rise
// successes and expects exactly one Update per change. It waits on probe
// counts, not on time, so extra probes only make the test stronger.
func TestRunnerRiseFall(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "healthy")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	var runner atomic.Pointer[Runner]
	var statusFromNotify atomic.Int32
	notify := func(u Update) {
		// Status from inside notify deadlocks if notify runs under a lock.
		if r := runner.Load(); r != nil {
			_ = r.Status()
			statusFromNotify.Add(1)
		}
		rec.notify(u)
	}
	r := Start(context.Background(), []config.Check{{
		Name: "flag", Kind: config.CheckExec, Exec: []string{"test", "-e", flag},
		Interval: 20 * time.Millisecond, Timeout: 10 * time.Second, Rise: 2, Fall: 3, Weight: -20,
	}}, notify)
	runner.Store(r)
	defer r.Stop()

	waitFor(t, "5 passing probes", func() bool { return statusOf(t, r, "flag").ConsecutiveOK >= 5 })
	if got := rec.get(); len(got) != 0 {
		t.Fatalf("updates while passing: %+v", got)
	}

	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "6 failing probes", func() bool { return statusOf(t, r, "flag").ConsecutiveFail >= 6 })
	got := rec.get()
	if len(got) != 1 || !got[0].Failing || got[0].Check != "flag" || got[0].Weight != -20 ||
		!strings.HasPrefix(got[0].Detail, "exit status 1 after ") {
		t.Fatalf("updates after failing %+v, want one: flag failing, weight -20, exit status 1", got)
	}
	s := statusOf(t, r, "flag")
	if !s.Failing || s.Kind != "exec" || !strings.HasPrefix(s.LastDetail, "exit status 1") || s.LastRun.IsZero() || s.LastDuration <= 0 {
		t.Errorf("status while failing: %+v", s)
	}

	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "5 passing probes again", func() bool { return statusOf(t, r, "flag").ConsecutiveOK >= 5 })
	got = rec.get()
	if len(got) != 2 || got[1].Failing || got[1].Weight != -20 || !strings.HasPrefix(got[1].Detail, "exit status 0 after ") ||
		got[1].At.Before(got[0].At) {
		t.Fatalf("updates after recovering %+v, want failing then passing", got)
	}
	if s := statusOf(t, r, "flag"); s.Failing || s.ConsecutiveFail != 0 {
		t.Errorf("status after recovering: %+v", s)
	}
	if n := statusFromNotify.Load(); n != 2 {
		t.Errorf("Status called from notify %d times, want 2", n)
	}
}

// TestHungProbeDoesNotBlockOthers: one check's probe hangs for its whole
// (long) timeout while another keeps probing; Status stays available and
// lists the checks in config order.
func TestHungProbeDoesNotBlockOthers(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	var rec recorder
	r := Start(context.Background(), []config.Check{
		{Name: "hung", Kind: config.CheckExec, Exec: []string{"sh", "-c", `echo $$ > "$0"; exec sleep 600`, pidFile},
			Interval: time.Hour, Timeout: time.Hour, Rise: 1, Fall: 1},
		{Name: "quick", Kind: config.CheckExec, Exec: []string{"true"},
			Interval: 20 * time.Millisecond, Timeout: 10 * time.Second, Rise: 1, Fall: 1},
	}, rec.notify)

	pgid := readPID(t, pidFile)
	waitFor(t, "5 probes of the quick check", func() bool { return statusOf(t, r, "quick").ConsecutiveOK >= 5 })
	st := r.Status()
	if len(st) != 2 || st[0].Name != "hung" || st[1].Name != "quick" {
		t.Fatalf("status %+v, want hung then quick", st)
	}
	if !st[0].LastRun.IsZero() {
		t.Errorf("hung check finished a probe: %+v", st[0])
	}

	r.Stop()
	if got := rec.get(); len(got) != 0 {
		t.Errorf("updates %+v: a probe cut short by Stop must not count", got)
	}
	if st := statusOf(t, r, "hung"); !st.LastRun.IsZero() || st.ConsecutiveFail != 0 {
		t.Errorf("hung check after Stop: %+v", st)
	}
	waitFor(t, "the hung probe's process group to die", func() bool { return !groupAlive(t, pgid) })
}

// TestStopKillsExec: Stop ends a running script and its children, and
// returns only when the probe goroutine has.
func TestStopKillsExec(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	var rec recorder
	r := Start(context.Background(), []config.Check{{
		Name: "hung", Kind: config.CheckExec,
		Exec:     []string{"sh", "-c", `echo $$ > "$0"; sleep 600 & sleep 600`, pidFile},
		Interval: time.Hour, Timeout: time.Hour, Rise: 1, Fall: 1,
	}}, rec.notify)
	pgid := readPID(t, pidFile)
	if !groupAlive(t, pgid) {
		t.Fatal("script not running")
	}
	r.Stop()
	r.Stop() // again: a no-op
	waitFor(t, "the script's process group to die", func() bool { return !groupAlive(t, pgid) })
	if got := rec.get(); len(got) != 0 {
		t.Errorf("updates %+v after Stop", got)
	}
}

// TestContextEndsChecks: cancelling Start's context stops the checks as
// Stop does.
func TestContextEndsChecks(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	r := Start(ctx, []config.Check{{
		Name: "hung", Kind: config.CheckExec, Exec: []string{"sh", "-c", `echo $$ > "$0"; exec sleep 600`, pidFile},
		Interval: time.Hour, Timeout: time.Hour,
	}}, nil)
	pgid := readPID(t, pidFile)
	cancel()
	waitFor(t, "the script's process group to die", func() bool { return !groupAlive(t, pgid) })
	r.Stop()
}

func TestStartNoChecks(t *testing.T) {
	r := Start(context.Background(), nil, nil)
	if st := r.Status(); len(st) != 0 {
		t.Errorf("status %+v, want none", st)
	}
	r.Stop()
}
