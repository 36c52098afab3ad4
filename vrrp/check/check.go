// Package check runs the health checks that move a VRRP instance's
// priority, as keepalived's vrrp_script and track_script do: each check
// probes something (a command, a TCP port, an HTTP URL, a DNS server) every
// interval, turns failing after fall consecutive failures and passing again
// after rise consecutive successes, and while failing adds its weight to
// the instance's priority, or puts the instance in FAULT when the weight
// is 0.
//
// The decisions (counter and Priority) are pure code; the probes and the
// goroutines that drive them are in probe.go, exec.go, dns.go and
// runner.go.
package check

import "time"

// Update is a check changing between passing and failing (after rise
// successes or fall failures). It is not sent for every probe.
type Update struct {
	Check   string // config.Check.Name
	Failing bool
	Weight  int    // config.Check.Weight
	Detail  string // why: the result of the probe that made the change
	At      time.Time
}

// Status is one check's current view, for hactl status.
type Status struct {
	Name, Kind      string
	Failing         bool
	ConsecutiveOK   int
	ConsecutiveFail int
	LastDetail      string // "" before the first probe finished
	LastRun         time.Time
	LastDuration    time.Duration
}

// Priority is the effective priority of an instance with base priority
// base while the given checks fail (one Update per check, as last
// notified; entries with Failing false are ignored, so a caller may pass
// its latest Update of every check).
//
// A failing check with weight 0 puts the instance in FAULT. The returned
// priority then still counts the other failing checks, so it is already
// right when the fault clears. The priority is base plus the failing
// weights, clamped to 1..254: a lowered instance must not claim to own the
// addresses (255) nor resign (0). Only a base of 255 with no weight to
// apply stays 255.
func Priority(base uint8, failing []Update) (prio uint8, fault bool) {
	sum, weighted := 0, false
	for _, u := range failing {
		switch {
		case !u.Failing:
		case u.Weight == 0:
			fault = true
		default:
			sum += u.Weight
			weighted = true
		}
	}
	if !weighted && base == 255 {
		return 255, fault
	}
	return uint8(min(max(int(base)+sum, 1), 254)), fault
}

// counter turns probe results into passing or failing with keepalived's
// hysteresis: fall consecutive failures make a passing check fail, rise
// consecutive successes make a failing check pass. A check starts passing
// (keepalived without init_fail), so a healthy service does not move the
// priority at startup.
type counter struct {
	rise, fall int
	failing    bool
	ok, fail   int // consecutive successes and failures so far
}

func newCounter(rise, fall int) counter {
	// The config enforces 1..100; a zero value must still mean "at once"
	// rather than never.
	return counter{rise: max(rise, 1), fall: max(fall, 1)}
}

// record feeds one probe result and reports whether the check changed
// between passing and failing.
func (c *counter) record(ok bool) (changed bool) {
	if ok {
		c.ok, c.fail = c.ok+1, 0
		if c.failing && c.ok >= c.rise {
			c.failing = false
			return true
		}
		return false
	}
	c.ok, c.fail = 0, c.fail+1
	if !c.failing && c.fail >= c.fall {
		c.failing = true
		return true
	}
	return false
}
