package resources

import (
	"strings"
	"testing"
)

func TestFromOCFClassesExitCodesAsPacemakerDoes(t *testing.T) {
	tests := []struct {
		name     string
		op       Op
		exit     int
		code     Code
		promoted bool
		degraded bool
	}{
		{"success of start", OpStart, 0, OK, false, false},
		{"success of stop", OpStop, 0, OK, false, false},
		{"success of monitor means running", OpMonitor, 0, OK, false, false},
		{"success of promote", OpPromote, 0, OK, false, false},
		{"generic error is soft", OpStart, 1, Soft, false, false},
		{"generic error of monitor is soft", OpMonitor, 1, Soft, false, false},
		{"invalid arguments are hard", OpStart, 2, Hard, false, false},
		{"unimplemented action is hard", OpPromote, 3, Hard, false, false},
		{"unimplemented monitor causes no recovery", OpMonitor, 3, OK, false, false},
		{"insufficient privileges are hard", OpStart, 4, Hard, false, false},
		{"missing component is hard", OpMonitor, 5, Hard, false, false},
		{"invalid configuration is fatal", OpStart, 6, Fatal, false, false},
		{"invalid configuration from monitor is fatal", OpMonitor, 6, Fatal, false, false},
		{"not running from monitor is a clean stop", OpMonitor, 7, NotRunning, false, false},
		{"not running from stop is success", OpStop, 7, OK, false, false},
		{"not running from start is soft", OpStart, 7, Soft, false, false},
		{"not running from demote is soft", OpDemote, 7, Soft, false, false},
		{"running promoted from monitor is ok and promoted", OpMonitor, 8, OK, true, false},
		{"running promoted from start is unexpected", OpStart, 8, Soft, true, false},
		{"failed promoted from monitor is soft and promoted", OpMonitor, 9, Soft, true, false},
		{"failed promoted from stop is soft", OpStop, 9, Soft, true, false},
		{"degraded from monitor is ok and degraded", OpMonitor, 190, OK, false, true},
		{"degraded promoted from monitor is ok, promoted and degraded", OpMonitor, 191, OK, true, true},
		{"degraded from start is unexpected", OpStart, 190, Soft, false, false},
		{"unknown code is soft", OpMonitor, 42, Soft, false, false},
		{"killed by a signal is soft", OpStop, -9, Soft, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := FromOCF(tc.op, tc.exit, "")
			if r.Code != tc.code || r.Promoted != tc.promoted || r.Degraded != tc.degraded {
				t.Errorf("FromOCF(%s, %d) = %+v, want code %s promoted %v degraded %v", tc.op, tc.exit, r, tc.code, tc.promoted, tc.degraded)
			}
			if r.Reason == "" {
				t.Errorf("FromOCF(%s, %d) has no reason", tc.op, tc.exit)
			}
		})
	}
}

func TestFromOCFReasonNamesTheCodeAndKeepsTheAgentsWords(t *testing.T) {
	r := FromOCF(OpStart, 1, "Couldn't mount device /dev/nbd0")
	want := "OCF_ERR_GENERIC (1): Couldn't mount device /dev/nbd0"
	if r.Reason != want {
		t.Errorf("reason %q, want %q", r.Reason, want)
	}
	if got := r.String(); got != "soft failure: "+want {
		t.Errorf("String() = %q", got)
	}
	if r := FromOCF(OpStart, 8, ""); !strings.Contains(r.Reason, "unexpected from start") {
		t.Errorf("unexpected code reason %q does not say so", r.Reason)
	}
}

func TestResultFailedOnlyForFailureClasses(t *testing.T) {
	for c, want := range map[Code]bool{OK: false, NotRunning: false, Soft: true, Hard: true, Fatal: true} {
		if got := (Result{Code: c}).Failed(); got != want {
			t.Errorf("Result{%s}.Failed() = %v, want %v", c, got, want)
		}
	}
}
