package resources

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// ResourceState is where one resource of a group is on this node.
type ResourceState int

const (
	Stopped  ResourceState = iota // not running (also: never started)
	Starting                      // a start (or promote) is under way
	Started                       // running, and its monitors pass
	Stopping                      // a stop (or demote) is under way
	Failed                        // a start or monitor failed; it may be partly running
	Blocked                       // its stop failed: it may still run, and nothing else may happen
)

func (s ResourceState) String() string {
	switch s {
	case Stopped:
		return "stopped"
	case Starting:
		return "starting"
	case Started:
		return "started"
	case Stopping:
		return "stopping"
	case Failed:
		return "failed"
	case Blocked:
		return "blocked"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// State is one node's view of one group: where each resource is and the
// failures recorded on this node. The runner owns it and updates it as
// steps complete (see the package documentation); Plan only reads it.
type State struct {
	Resources map[string]ResourceState // by Resource.ID(); a missing resource is Stopped
	Failures  Failures
	// Blocked says why the group is blocked on this node; "" when it is
	// not. A blocked group runs no step until a Cleanup.
	Blocked string
}

func (s State) of(id string) ResourceState { return s.Resources[id] }

// blocked returns why the group is blocked, or "".
func (s State) blocked(g Group) string {
	if s.Blocked != "" {
		return s.Blocked
	}
	for _, r := range g.Resources {
		if s.of(r.ID()) == Blocked {
			return r.ID() + " is blocked"
		}
	}
	return ""
}

// maxFailures bounds the failures kept per resource, so a resource that
// fails forever (migration_threshold 0) cannot grow the state without
// limit. Counts saturate there, far above any sensible threshold.
const maxFailures = 1 << 12

// Failure is one recorded failure of a resource.
type Failure struct {
	At    time.Time
	Class Code // Soft, Hard or Fatal
}

// Failures are the failures of a group's resources on one node, by
// Resource.ID(), oldest first. A failure counts for the group's
// failure_timeout after it happened (forever when that is 0).
type Failures map[string][]Failure

// Add records a failure of resource at t.
func (f *Failures) Add(resource string, t time.Time, class Code) {
	if *f == nil {
		*f = make(Failures)
	}
	fs := (*f)[resource]
	i := sort.Search(len(fs), func(i int) bool { return fs[i].At.After(t) })
	fs = slices.Insert(fs, i, Failure{At: t, Class: class})
	if len(fs) > maxFailures {
		fs = slices.Clone(fs[len(fs)-maxFailures:])
	}
	(*f)[resource] = fs
}

// counting returns the failures of resource that still count at now:
// those less than timeout old, or all of them when timeout is 0. Failures
// dated after now (a clock step) count.
func (f Failures) counting(resource string, now time.Time, timeout time.Duration) []Failure {
	fs := f[resource]
	if timeout <= 0 {
		return fs
	}
	return fs[sort.Search(len(fs), func(i int) bool { return fs[i].At.After(now.Add(-timeout)) }):]
}

// Count returns how many failures of resource still count at now (see
// Failures).
func (f Failures) Count(resource string, now time.Time, timeout time.Duration) int {
	return len(f.counting(resource, now, timeout))
}

// total returns the number of failures recorded, counting or not.
func (f Failures) total() int {
	n := 0
	for _, fs := range f {
		n += len(fs)
	}
	return n
}

// Banned reports whether failures keep the group off this node, as
// OCF's "do not retry here" for hard failures and Pacemaker's
// migration-threshold ban: reason says why, "" when the group may run
// here. A resource bans the node while a Hard failure of it counts, or
// while its count reaches migration_threshold (when that is not 0).
// until is when the ban lifts by itself, as failures grow older than
// failure_timeout; it is the zero time when only a Cleanup lifts it.
func (g Group) Banned(s State, now time.Time) (reason string, until time.Time) {
	ban := func(why string, expires time.Time) {
		if reason == "" {
			reason = why
		}
		if g.FailureTimeout > 0 && expires.After(until) {
			until = expires
		}
	}
	for _, r := range g.Resources {
		id := r.ID()
		fs := s.Failures.counting(id, now, g.FailureTimeout)
		for i := len(fs) - 1; i >= 0; i-- {
			if fs[i].Class == Hard {
				ban(fmt.Sprintf("%s had a hard failure %s ago: it cannot run on this node", id, now.Sub(fs[i].At).Round(time.Second)),
					fs[i].At.Add(g.FailureTimeout))
				break
			}
		}
		if g.MigrationThreshold > 0 && len(fs) >= g.MigrationThreshold {
			// The count drops below the threshold when the failure
			// threshold-th from the newest expires.
			ban(fmt.Sprintf("%s failed %s (migration_threshold %d)", id, times(len(fs), g.FailureTimeout), g.MigrationThreshold),
				fs[len(fs)-g.MigrationThreshold].At.Add(g.FailureTimeout))
		}
	}
	return reason, until
}

// times is "3 times" or "3 times within 10m0s".
func times(n int, timeout time.Duration) string {
	s := fmt.Sprintf("%d times", n)
	if n == 1 {
		s = "once"
	}
	if timeout > 0 {
		s += " within " + timeout.String()
	}
	return s
}
