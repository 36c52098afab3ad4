package main

import (
	"strings"
	"testing"

	"github.com/hactl/hactl/internal/lab"
)

// TestLabCableUsage checks the arguments of hactl lab cable; it needs
// neither root nor a lab.
func TestLabCableUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"lab", "cable"}, "needs a NODE, a network"},
		{[]string{"lab", "cable", "alpha", "service"}, "needs a NODE, a network"},
		{[]string{"lab", "cable", "alpha", "storage", "down"}, `network "storage": want service or replication`},
		{[]string{"lab", "cable", "alpha", "service", "off"}, `"off": want up or down`},
		{[]string{"lab", "cable", "--name", "Bad!", "alpha", "service", "down"}, "--name"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := runCapture(tt.args...)
			if code != exitUsage {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.want)
			}
		})
	}
}

// TestLabCable pulls alpha's service cable and plugs it back in: alpha's
// eth0 loses its carrier and regains it; its replication link is untouched.
func TestLabCable(t *testing.T) {
	l := newLab(t, lab.Options{Nodes: 2})
	carrier := func(dev string) string {
		t.Helper()
		out, err := l.Command("alpha", "cat", "/sys/class/net/"+dev+"/carrier").CombinedOutput()
		if err != nil {
			// Reading carrier of an interface whose carrier is down
			// fails on some kernels (EINVAL): that is "0" too.
			return "0"
		}
		return strings.TrimSpace(string(out))
	}
	cable := func(state string) {
		t.Helper()
		code, stdout, stderr := runCapture("lab", "--name", l.Name, "--state-root", l.StateRoot, "cable", "alpha", "service", state)
		if code != 0 {
			t.Fatalf("lab cable alpha service %s: exit %d: %s", state, code, stderr)
		}
		if !strings.Contains(stdout, "alpha's cable") {
			t.Errorf("lab cable alpha service %s printed %q", state, stdout)
		}
	}
	if got := carrier("eth0"); got != "1" {
		t.Fatalf("alpha's eth0 carrier before: %q", got)
	}
	cable("down")
	if got := carrier("eth0"); got != "0" {
		t.Errorf("alpha's eth0 carrier with the cable pulled: %q, want 0", got)
	}
	if got := carrier("eth1"); got != "1" {
		t.Errorf("alpha's eth1 carrier with the service cable pulled: %q, want 1", got)
	}
	cable("up")
	if got := carrier("eth0"); got != "1" {
		t.Errorf("alpha's eth0 carrier with the cable plugged back: %q, want 1", got)
	}
	code, _, stderr := runCapture("lab", "--name", l.Name, "--state-root", l.StateRoot, "cable", "delta", "service", "down")
	if code != exitUsage || !strings.Contains(stderr, `no node "delta"`) {
		t.Errorf("lab cable delta: exit %d, stderr %q", code, stderr)
	}
}
