package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hactl/hactl/internal/lab"
)

// TestAgentInLabNode runs the agent as a real process inside a lab node,
// where it must find itself by address, and talks to it from inside.
func TestAgentInLabNode(t *testing.T) {
	l := newLab(t, lab.Options{Nodes: 2, Witness: true})

	// hactl in a node: this test binary, told to act as hactl.
	inNode := func(node string, args ...string) *exec.Cmd {
		cmd := l.Command(node, append([]string{os.Args[0]}, args...)...)
		cmd.Env = append(os.Environ(), beHactl+"=1")
		return cmd
	}

	var out bytes.Buffer
	validate := inNode("alpha", "validate", "/etc/hactl/cluster.hcl")
	validate.Stdout, validate.Stderr = &out, &out
	if err := validate.Run(); err != nil {
		t.Fatalf("the lab's cluster file does not validate inside alpha: %v\n%s", err, out.String())
	}

	agent := inNode("alpha", "agent", "--log-format", "console")
	logs := &syncBuffer{}
	agent.Stdout, agent.Stderr = logs, logs
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	// exited closes when the agent is gone; waitErr is its result.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = agent.Wait(); close(exited) }()
	defer func() {
		_ = agent.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("agent output:\n%s", logs.String())
		}
	}()

	var st map[string]any
	waitFor(t, "status from the agent in alpha", func() bool {
		var stdout bytes.Buffer
		c := inNode("alpha", "status", "--json")
		c.Stdout = &stdout
		if c.Run() != nil {
			return false
		}
		return json.Unmarshal(stdout.Bytes(), &st) == nil
	})
	if st["node"] != "alpha" || st["schema"] != float64(1) {
		t.Errorf("agent in alpha reports node %v schema %v; want alpha, 1", st["node"], st["schema"])
	}

	// bravo has its own /run/hactl: no agent there.
	var errOut bytes.Buffer
	c := inNode("bravo", "status")
	c.Stderr = &errOut
	err := c.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitNoAgent || !strings.Contains(errOut.String(), "not running on this node") {
		t.Errorf("status in bravo: %v, %q; want exit %d", err, errOut.String(), exitNoAgent)
	}

	if err := agent.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("agent exit after SIGTERM: %v\n%s", waitErr, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not stop on SIGTERM")
	}
	if !strings.Contains(logs.String(), "agent stopped") {
		t.Errorf("agent log lacks the stop line:\n%s", logs.String())
	}
}
