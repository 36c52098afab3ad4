package check

import (
	"context"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/hactl/hactl/cluster/config"
)

func TestExecProbe(t *testing.T) {
	tests := []struct {
		name       string
		argv       []string
		wantOK     bool
		wantDetail string // regexp
	}{
		{"exit 0", []string{"true"}, true, `^exit status 0 after \d+(\.\d+)?[µm]?s$`},
		{"exit 3 with stderr", []string{"sh", "-c", "echo 'disk full' >&2; echo more >&2; exit 3"}, false,
			`^exit status 3 after \d+(\.\d+)?[µm]?s: disk full$`},
		{"exit 1 quietly", []string{"false"}, false, `^exit status 1 after \d+(\.\d+)?[µm]?s$`},
		{"killed by a signal", []string{"sh", "-c", "kill -9 $$"}, false, `^signal: killed after `},
		{"stdout is not the detail", []string{"sh", "-c", "echo hello; exit 1"}, false, `^exit status 1 after [^:]*$`},
		{"stderr flood is bounded", []string{"sh", "-c", "head -c 1000000 /dev/zero | tr '\\0' x >&2; exit 1"}, false,
			`^exit status 1 after [^:]*: x{200}\.\.\.$`},
		{"not found", []string{"/nonexistent/check"}, false, `no such file or directory`},
		{"no argv", nil, false, `^no command to run$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			detail, err := execProbe(tt.argv)(ctx)
			if (err == nil) != tt.wantOK {
				t.Fatalf("ok = %v (detail %q, error %v), want %v", err == nil, detail, err, tt.wantOK)
			}
			if err != nil {
				detail = err.Error()
			}
			if !regexp.MustCompile(tt.wantDetail).MatchString(detail) {
				t.Errorf("detail %q does not match %s", detail, tt.wantDetail)
			}
		})
	}
}

// TestExecTimeoutKillsGroup runs a script that hangs with a child of its
// own: the timeout must end the probe at once and kill both.
func TestExecTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	updates := make(chan Update, 10)
	start := time.Now()
	r := Start(context.Background(), []config.Check{{
		Name: "hang", Kind: config.CheckExec,
		Exec:     []string{"sh", "-c", `echo $$ > "$0"; sleep 60 & sleep 60`, pidFile},
		Interval: time.Hour, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1, Weight: -10,
	}}, func(u Update) { updates <- u })
	defer r.Stop()

	var u Update
	select {
	case u = <-updates:
	case <-time.After(30 * time.Second):
		t.Fatal("no update 30 s after a 500ms timeout: the probe did not end")
	}
	// Not a timing assertion: the script sleeps 60 s, so ending well before
	// that shows it was cut short rather than waited for.
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("probe took %s", took)
	}
	if !u.Failing || u.Check != "hang" || u.Weight != -10 || u.Detail != "timed out after 500ms" || u.At.IsZero() {
		t.Errorf("update %+v, want hang failing with weight -10, timed out after 500ms", u)
	}
	pgid := readPID(t, pidFile)
	waitFor(t, "the script's process group to die", func() bool { return !groupAlive(t, pgid) })
}

// TestExecLeftoversKilled: a script that exits 0 but leaves a background
// job passes, and the job does not outlive the probe.
func TestExecLeftoversKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	detail, err := execProbe([]string{"sh", "-c", `echo $$ > "$0"; sleep 60 >/dev/null 2>&1 & exit 0`, pidFile})(ctx)
	if err != nil {
		t.Fatalf("probe failed: %v", err)
	}
	t.Logf("detail: %s", detail)
	pgid := readPID(t, pidFile)
	waitFor(t, "the background job to die", func() bool { return !groupAlive(t, pgid) })
}

// TestExecLeftoverHoldingStderr: a background job that keeps stderr open
// must not hold the probe until it ends.
func TestExecLeftoverHoldingStderr(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := execProbe([]string{"sh", "-c", `echo $$ > "$0"; sleep 60 & exit 0`, pidFile})(ctx)
	if err != nil {
		t.Fatalf("probe failed: %v", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("probe took %s: it waited for the background job", took)
	}
	pgid := readPID(t, pidFile)
	waitFor(t, "the background job to die", func() bool { return !groupAlive(t, pgid) })
}
