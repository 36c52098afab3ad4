package runner

import (
	"slices"
	"testing"

	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/vrrp/check"
)

func TestAssess(t *testing.T) {
	tracks := []config.TrackInterface{{Name: "eth0"}, {Name: "eth1", Weight: -30}}
	dns := check.Update{Check: "dns", Failing: true, Weight: -20, Detail: "exit status 1"}
	gate := check.Update{Check: "gateway", Failing: true, Weight: 0, Detail: "timed out after 1s"}
	tests := []struct {
		name       string
		base       uint8
		down       map[string]string
		checks     []check.Update
		wantPrio   uint8
		wantFaults []string
		wantReason string
	}{
		{"all well", 100, nil, nil, 100, nil, "nothing tracked is down or failing"},
		{"weighted interface down", 100, map[string]string{"eth1": "no carrier"}, nil, 70, nil, "down or failing: interface eth1 -30"},
		{"fault interface down", 100, map[string]string{"eth0": "admin down"}, nil, 100, []string{"interface eth0: admin down"}, "nothing tracked is down or failing"},
		{"weights add up", 100, map[string]string{"eth1": "no carrier"}, []check.Update{dns}, 50, nil, "down or failing: check dns -20, interface eth1 -30"},
		{"weight-0 check faults", 100, nil, []check.Update{gate}, 100, []string{"check gateway: timed out after 1s"}, "nothing tracked is down or failing"},
		{"clamped at 1", 20, map[string]string{"eth1": "no carrier"}, []check.Update{dns}, 1, nil, "down or failing: check dns -20, interface eth1 -30"},
		{"untracked interface ignored", 100, map[string]string{"eth9": "missing"}, nil, 100, nil, "nothing tracked is down or failing"},
		{"owner drops below 255", 255, map[string]string{"eth1": "no carrier"}, nil, 225, nil, "down or failing: interface eth1 -30"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := assess(tc.base, tracks, tc.down, tc.checks)
			if a.prio != tc.wantPrio || !slices.Equal(a.faults, tc.wantFaults) || a.reason != tc.wantReason {
				t.Errorf("assess = prio %d faults %q reason %q; want %d %q %q", a.prio, a.faults, a.reason, tc.wantPrio, tc.wantFaults, tc.wantReason)
			}
		})
	}
}
