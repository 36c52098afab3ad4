package main

import (
	"bytes"
	"strings"
	"testing"
)

func runCapture(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the one-line error
	}{
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"nosuch"}, `unknown command "nosuch"`},
		{[]string{"status", "extra"}, `hactl status takes no arguments, got "extra"`},
		{[]string{"status", "--json=maybe"}, "invalid argument"},
		{[]string{"failover", "a", "b"}, "at most 1 argument"},
		{[]string{"standby"}, "needs the name of the node"},
		{[]string{"version", "x"}, "takes no arguments"},
		{[]string{"agent", "--log-format", "xml"}, "--log-format"},
		{[]string{"agent", "--node"}, "flag needs an argument"},
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
			if n := strings.Count(strings.TrimRight(stderr, "\n"), "\n"); n != 0 {
				t.Errorf("usage error takes %d lines, want one: %q", n+1, stderr)
			}
		})
	}
}

func TestHelpExplainsEveryCommand(t *testing.T) {
	for _, sub := range []string{"agent", "status", "failover", "standby", "validate", "lab", "version"} {
		code, stdout, stderr := runCapture(sub, "--help")
		if code != exitOK {
			t.Errorf("%s --help: exit %d, stderr %q", sub, code, stderr)
		}
		if !strings.Contains(stdout, "Usage:") || !strings.Contains(stdout, "hactl "+sub) {
			t.Errorf("%s --help does not show its usage:\n%s", sub, stdout)
		}
	}
	_, stdout, _ := runCapture("--help")
	for _, sub := range []string{"agent", "status", "failover", "standby", "validate", "lab", "version"} {
		if !strings.Contains(stdout, "  "+sub+" ") {
			t.Errorf("hactl --help does not list %s", sub)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCapture("version")
	if code != exitOK || !strings.HasPrefix(stdout, "hactl ") {
		t.Fatalf("version: exit %d, %q", code, stdout)
	}
}
