package resources

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)

func TestFailuresCountForgetsFailuresOlderThanTheTimeout(t *testing.T) {
	var f Failures
	f.Add("service:pg", t0.Add(-20*time.Minute), Soft)
	f.Add("service:pg", t0.Add(-10*time.Minute), Soft) // exactly timeout old
	f.Add("service:pg", t0.Add(-10*time.Minute+time.Nanosecond), Soft)
	f.Add("service:pg", t0, Soft)
	f.Add("service:pg", t0.Add(time.Minute), Soft) // dated after now: a clock step
	f.Add("vip:VI_1", t0, Soft)

	tests := []struct {
		name     string
		resource string
		timeout  time.Duration
		want     int
	}{
		{"no timeout counts every failure", "service:pg", 0, 5},
		{"a failure exactly timeout old no longer counts", "service:pg", 10 * time.Minute, 3},
		{"a longer timeout counts older failures", "service:pg", time.Hour, 5},
		{"other resources count separately", "vip:VI_1", 10 * time.Minute, 1},
		{"a resource without failures counts none", "exec:warm", 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.Count(tc.resource, t0, tc.timeout); got != tc.want {
				t.Errorf("Count(%s, %s) = %d, want %d", tc.resource, tc.timeout, got, tc.want)
			}
		})
	}
}

func TestFailuresAddKeepsTimesInOrderAndBounded(t *testing.T) {
	var f Failures
	f.Add("r", t0, Soft)
	f.Add("r", t0.Add(-time.Minute), Soft)
	f.Add("r", t0.Add(time.Minute), Soft)
	fs := f["r"]
	if !fs[0].At.Equal(t0.Add(-time.Minute)) || !fs[1].At.Equal(t0) || !fs[2].At.Equal(t0.Add(time.Minute)) {
		t.Errorf("failures not sorted: %v", fs)
	}
	for i := range maxFailures + 10 {
		f.Add("r", t0.Add(time.Duration(i)*time.Second), Soft)
	}
	if n := len(f["r"]); n != maxFailures {
		t.Errorf("%d failures kept, want at most %d", n, maxFailures)
	}
	if last := f["r"][maxFailures-1].At; !last.Equal(t0.Add(time.Duration(maxFailures+9) * time.Second)) {
		t.Errorf("newest failure %v was not kept", last)
	}
}

func TestBannedOnceOneResourceReachesTheThreshold(t *testing.T) {
	g := testGroup(t, 2, 10*time.Minute)
	at := func(ds ...time.Duration) []Failure {
		var fs []Failure
		for _, d := range ds {
			fs = append(fs, Failure{At: t0.Add(-d), Class: Soft})
		}
		return fs
	}
	hard := func(d time.Duration) []Failure { return []Failure{{At: t0.Add(-d), Class: Hard}} }
	tests := []struct {
		name      string
		threshold int
		timeout   time.Duration
		failures  Failures
		banned    bool
		until     time.Time
	}{
		{"below the threshold", 2, 10 * time.Minute, Failures{"service:pg": at(time.Minute)}, false, time.Time{}},
		{"failures of two resources do not add up", 2, 10 * time.Minute,
			Failures{"service:pg": at(time.Minute), "vip:VI_1": at(time.Minute)}, false, time.Time{}},
		{"threshold reached: lifts when the oldest counting failure expires", 2, 10 * time.Minute,
			Failures{"service:pg": at(5*time.Minute, time.Minute)}, true, t0.Add(5 * time.Minute)},
		{"above the threshold: lifts when enough failures expire", 2, 10 * time.Minute,
			Failures{"service:pg": at(30*time.Minute, 9*time.Minute, 5*time.Minute, time.Minute)}, true, t0.Add(5 * time.Minute)},
		{"expired failures do not ban", 2, 10 * time.Minute,
			Failures{"service:pg": at(30*time.Minute, 20*time.Minute, time.Minute)}, false, time.Time{}},
		{"no failure_timeout: only a cleanup lifts it", 2, 0,
			Failures{"service:pg": at(48*time.Hour, time.Hour)}, true, time.Time{}},
		{"migration_threshold 0 never bans for soft failures", 0, 0,
			Failures{"service:pg": at(3, 2, 1)}, false, time.Time{}},
		{"a hard failure bans below the threshold: lifts when it expires", 2, 10 * time.Minute,
			Failures{"service:pg": hard(time.Minute)}, true, t0.Add(9 * time.Minute)},
		{"a hard failure bans with migration_threshold 0", 0, 10 * time.Minute,
			Failures{"service:pg": hard(time.Minute)}, true, t0.Add(9 * time.Minute)},
		{"an expired hard failure does not ban", 2, 10 * time.Minute,
			Failures{"service:pg": hard(10 * time.Minute)}, false, time.Time{}},
		{"a hard failure without failure_timeout bans until a cleanup", 0, 0,
			Failures{"service:pg": hard(48 * time.Hour)}, true, time.Time{}},
		{"the ban lasts until every cause has expired", 2, 10 * time.Minute,
			Failures{"service:pg": at(5*time.Minute, time.Minute), "vip:VI_1": hard(2 * time.Minute)}, true, t0.Add(8 * time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.MigrationThreshold, g.FailureTimeout = tc.threshold, tc.timeout
			reason, until := g.Banned(State{Failures: tc.failures}, t0)
			if (reason != "") != tc.banned || !until.Equal(tc.until) {
				t.Errorf("Banned = %q, %v; want banned %v until %v", reason, until, tc.banned, tc.until)
			}
			if tc.banned && !strings.Contains(reason, "service:pg") {
				t.Errorf("reason %q does not name the resource", reason)
			}
			if tc.banned && !tc.until.IsZero() {
				if r, _ := g.Banned(State{Failures: tc.failures}, tc.until); r != "" {
					t.Errorf("still banned at until: %s", r)
				}
			}
		})
	}
}
