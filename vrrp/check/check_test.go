package check

import (
	"testing"
)

// TestCounter feeds probe results ('+' pass, 'x' fail) and expects a
// change marker per result: 'F' became failing, 'P' became passing, '.'
// no change.
func TestCounter(t *testing.T) {
	tests := []struct {
		name       string
		rise, fall int
		results    string
		want       string
	}{
		{"starts passing", 2, 3, "+++", "..."},
		{"fall failures make it fail", 2, 3, "xxx", "..F"},
		{"a success resets the fall count", 2, 3, "xx+xx", "....."},
		{"failing is reported once", 2, 3, "xxxxx", "..F.."},
		{"rise successes make it pass", 2, 3, "xxx++", "..F.P"},
		{"a failure resets the rise count", 2, 3, "xxx+x++", "..F...P"},
		{"passing is reported once", 2, 3, "xxx++++", "..F.P.."},
		{"rise and fall 1 follow every result", 1, 1, "x+x+", "FPFP"},
		{"zero rise and fall act as 1", 0, 0, "x+", "FP"},
		{"long fall", 1, 5, "xxxxx+", "....FP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCounter(tt.rise, tt.fall)
			got := make([]byte, len(tt.results))
			for i, r := range []byte(tt.results) {
				got[i] = '.'
				if c.record(r == '+') {
					got[i] = 'P'
					if c.failing {
						got[i] = 'F'
					}
				}
			}
			if string(got) != tt.want {
				t.Errorf("results %s: changes %s, want %s", tt.results, got, tt.want)
			}
		})
	}
}

func TestCounterConsecutive(t *testing.T) {
	c := newCounter(2, 3)
	for _, r := range []bool{true, true, false, false} {
		c.record(r)
	}
	if c.ok != 0 || c.fail != 2 || c.failing {
		t.Errorf("after ++xx: ok=%d fail=%d failing=%v, want 0 2 false", c.ok, c.fail, c.failing)
	}
	c.record(true)
	if c.ok != 1 || c.fail != 0 {
		t.Errorf("after ++xx+: ok=%d fail=%d, want 1 0", c.ok, c.fail)
	}
}

func TestPriority(t *testing.T) {
	fail := func(w int) Update { return Update{Check: "c", Failing: true, Weight: w} }
	pass := func(w int) Update { return Update{Check: "c", Weight: w} }
	tests := []struct {
		name      string
		base      uint8
		failing   []Update
		wantPrio  uint8
		wantFault bool
	}{
		{"nothing failing", 100, nil, 100, false},
		{"owner with nothing failing stays owner", 255, nil, 255, false},
		{"one negative weight", 100, []Update{fail(-30)}, 70, false},
		{"weights add up", 100, []Update{fail(-30), fail(-20)}, 50, false},
		{"positive weight raises", 100, []Update{fail(20)}, 120, false},
		{"entries that pass are ignored", 100, []Update{pass(-30), fail(-20), pass(0)}, 80, false},
		{"clamped to 1, never resigning", 10, []Update{fail(-50)}, 1, false},
		{"clamped to 254, never owning", 250, []Update{fail(20)}, 254, false},
		{"owner lowered", 255, []Update{fail(-10)}, 245, false},
		{"owner raised still below owner", 255, []Update{fail(10)}, 254, false},
		{"owner with weights summing to 0 is no longer owner", 255, []Update{fail(-10), fail(10)}, 254, false},
		{"weight 0 is fault", 100, []Update{fail(0)}, 100, true},
		{"fault keeps the weighted priority", 100, []Update{fail(0), fail(-20)}, 80, true},
		{"owner with only a fault", 255, []Update{fail(0)}, 255, true},
		{"weight 0 passing is no fault", 100, []Update{pass(0)}, 100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prio, fault := Priority(tt.base, tt.failing)
			if prio != tt.wantPrio || fault != tt.wantFault {
				t.Errorf("Priority(%d, ...) = %d, %v; want %d, %v", tt.base, prio, fault, tt.wantPrio, tt.wantFault)
			}
		})
	}
}

func TestFirstLine(t *testing.T) {
	long := make([]byte, 1000)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"disk full\n", "disk full"},
		{"\n\n  disk full  \nsecond\n", "disk full"},
		{string(long), string(long[:maxDetailLine]) + "..."},
		{"bad \xff byte", "bad ? byte"},
	}
	for _, tt := range tests {
		if got := firstLine([]byte(tt.in)); got != tt.want {
			t.Errorf("firstLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
