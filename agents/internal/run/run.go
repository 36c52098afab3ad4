// Package run runs one agent command: an argv without a shell, in its own
// process group, with a minimal environment, a deadline and bounded
// output. The exec and ocf agents and the filesystem agent's fsck share it.
package run

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultPath is the PATH a command gets when its environment sets none.
// hactl's own PATH is not passed on: what a command finds must not depend
// on how the daemon was started.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultGrace is how long a timed-out command's process group has between
// SIGTERM and SIGKILL.
const DefaultGrace = 2 * time.Second

// outputLimit bounds the output kept of each stream: the tail is kept,
// since that is where programs say why they failed.
const outputLimit = 64 << 10

// Cmd is one command to run.
type Cmd struct {
	Argv []string
	// Env is the complete environment as KEY=value. PATH is added as
	// DefaultPath when Env has none.
	Env []string
	// Dir is the working directory; "" means "/", so a command never pins
	// the directory hactl happens to run in (which could be a mountpoint).
	Dir string
	// Grace is the time between SIGTERM and SIGKILL once ctx is done;
	// 0 means DefaultGrace.
	Grace time.Duration
}

// Outcome is what happened to a command.
type Outcome struct {
	// Exit is the exit status, or -1 when the command did not exit
	// normally (not started, killed by a signal).
	Exit int
	// NotFound is set when the executable does not exist or cannot be
	// executed: running it again on this node fails the same way.
	NotFound bool
	// TimedOut is set when ctx ended before the command did and its
	// process group was killed.
	TimedOut bool
	// Signal is the signal that ended the command, if any.
	Signal syscall.Signal
	// Err says why the command did not run or exit normally; nil after an
	// exit, whatever its status.
	Err error
	// Stdout and Stderr are the tails (up to 64 KiB) of the output.
	Stdout, Stderr string
	Duration       time.Duration
}

// Describe says in a few words how the command ended.
func (o Outcome) Describe() string {
	switch {
	case o.NotFound:
		return o.Err.Error()
	case o.TimedOut:
		return fmt.Sprintf("timed out after %s, process group killed", o.Duration.Round(time.Millisecond))
	case o.Signal != 0:
		return fmt.Sprintf("killed by signal %s", unix.SignalName(o.Signal))
	case o.Err != nil:
		return o.Err.Error()
	}
	return fmt.Sprintf("exit status %d", o.Exit)
}

// Run runs c until it exits or ctx is done. When ctx is done first, the
// command's whole process group gets SIGTERM, and SIGKILL after the grace
// time, so a shell script's children die with it; Run then returns at
// most about twice the grace after ctx ended.
//
// Output is read from pipes. A command that leaves a background process
// holding them (a start command that forks a daemon without redirecting
// its output) does not block Run: once the command itself has exited, the
// pipes are closed after the grace time, and that process sees EPIPE or
// SIGPIPE on its next write. Daemons must detach their output, as OCF
// agents do.
func Run(ctx context.Context, c Cmd) Outcome {
	start := time.Now()
	o := Outcome{Exit: -1}
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		o.Err = errors.New("empty command")
		return o
	}
	env := c.Env
	pathEnv, ok := lookupEnv(env, "PATH")
	if !ok {
		pathEnv = DefaultPath
		env = append(env[:len(env):len(env)], "PATH="+DefaultPath)
	}
	prog, err := LookPath(c.Argv[0], pathEnv)
	if err != nil {
		o.NotFound, o.Err = true, err
		return o
	}
	grace := c.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	dir := c.Dir
	if dir == "" {
		dir = "/"
	}
	stdout, stderr := &tail{}, &tail{}
	cmd := &exec.Cmd{
		Path:        prog,
		Args:        c.Argv,
		Env:         env,
		Dir:         dir,
		Stdout:      stdout,
		Stderr:      stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
		// Bounds the wait for pipes held open by background processes
		// once the command has exited (see above).
		WaitDelay: grace,
	}
	if err := cmd.Start(); err != nil {
		o.Err = fmt.Errorf("start %s: %w", prog, err)
		o.NotFound = errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) ||
			errors.Is(err, unix.ENOEXEC)
		return o
	}
	pgid := cmd.Process.Pid // Setpgid: the command leads its own group
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		o.TimedOut = true
		_ = unix.Kill(-pgid, unix.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case waitErr = <-done:
			t.Stop()
		case <-t.C:
		}
		// Always finish the group off: the leader may have exited on TERM
		// while children that ignore it still run. The group id cannot be
		// reused while any member lives; once all are gone this is ESRCH.
		_ = unix.Kill(-pgid, unix.SIGKILL)
		if waitErr == nil {
			waitErr = <-done
		}
	}
	o.Duration = time.Since(start)
	o.Stdout, o.Stderr = stdout.String(), stderr.String()
	if ps := cmd.ProcessState; ps != nil {
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			o.Signal = ws.Signal()
		} else {
			o.Exit = ps.ExitCode()
		}
	}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) && !errors.Is(waitErr, exec.ErrWaitDelay) {
		o.Err = fmt.Errorf("wait for %s: %w", prog, waitErr)
	}
	if o.TimedOut && o.Err == nil {
		o.Err = context.Cause(ctx)
	}
	return o
}

// LookPath finds name as exec.LookPath does, but in pathEnv instead of
// hactl's own PATH, so the command found is the one the command's
// environment names.
func LookPath(name, pathEnv string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("executable %s: %w", name, err)
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // a relative PATH entry depends on the cwd: ignore it
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable %q not found in PATH %s: %w", name, pathEnv, fs.ErrNotExist)
}

func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fs.ErrPermission
	}
	return nil
}

func lookupEnv(env []string, key string) (string, bool) {
	v, ok := "", false
	for _, kv := range env {
		if k, val, found := strings.Cut(kv, "="); found && k == key {
			v, ok = val, true // the last one wins, as in exec
		}
	}
	return v, ok
}

// Env turns a map into KEY=value entries sorted by key, so a command's
// environment (and a test's expectation) does not depend on map order.
func Env(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// tail keeps the last outputLimit bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= outputLimit {
		p = p[len(p)-outputLimit:]
		t.buf = t.buf[:0]
		t.cut = true
	}
	if over := len(t.buf) + len(p) - outputLimit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cut {
		// drop the partial first line
		if i := strings.IndexByte(string(t.buf), '\n'); i >= 0 {
			return string(t.buf[i+1:])
		}
	}
	return string(t.buf)
}

// LastLines returns the last n non-empty lines of s, joined by "; ", each
// line cut to 200 bytes: enough for a reason, never a wall of text.
func LastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	var out []string
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" {
			continue
		}
		if len(l) > 200 {
			l = l[:200] + "…"
		}
		out = append(out, l)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return strings.Join(out, "; ")
}
