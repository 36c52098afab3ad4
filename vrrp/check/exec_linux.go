package check

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// waitDelay bounds how long we wait for the stderr pipe after the command
// exited or was killed: a background child of the script may still hold
// it open.
const waitDelay = 250 * time.Millisecond

// execProbe passes when argv exits with status 0. It runs without a shell
// in a process group of its own, and the whole group is killed when the
// probe times out or the runner stops, and after the command exits: a
// check script runs every few seconds, so anything it leaves behind (a
// hung curl, a forgotten background job) would otherwise pile up.
func execProbe(argv []string) probe {
	return func(ctx context.Context) (string, error) {
		if len(argv) == 0 {
			return "", errors.New("no command to run")
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Setpgid: true,
			// If hactl itself dies, do not leave the script running.
			Pdeathsig: syscall.SIGKILL,
		}
		cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
		cmd.WaitDelay = waitDelay
		var stderr headBuffer
		cmd.Stderr = &stderr // stdin and stdout are /dev/null

		start := time.Now()
		err := cmd.Run()
		took := roundDuration(time.Since(start))
		if cmd.Process != nil {
			// The leader is reaped; its group lives on only in what it
			// left behind.
			_ = killGroup(cmd.Process.Pid)
		}

		if cmd.ProcessState == nil {
			return "", err // it never started: not found, not executable
		}
		if !cmd.ProcessState.Success() {
			// ProcessState.String gives "exit status 1" or "signal: killed".
			msg := fmt.Sprintf("%s after %s", cmd.ProcessState, took)
			if line := firstLine(stderr.buf); line != "" {
				msg += ": " + line
			}
			return "", errors.New(msg)
		}
		// Exit 0 is a pass even when a leftover child kept stderr open
		// past waitDelay (err is then exec.ErrWaitDelay).
		return fmt.Sprintf("exit status 0 after %s", took), nil
	}
}

// killGroup sends SIGKILL to the process group led by pid. There is no
// SIGTERM first: a timed-out probe has nothing worth shutting down
// cleanly, and the caller waits on it.
func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil // the group is already gone
	}
	return err
}

// headBuffer keeps the first maxStderr bytes written to it and drops the
// rest, so a chatty script can neither grow our memory nor block on a
// full pipe.
type headBuffer struct {
	buf []byte
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if n := maxStderr - len(h.buf); n > 0 {
		h.buf = append(h.buf, p[:min(n, len(p))]...)
	}
	return len(p), nil
}
