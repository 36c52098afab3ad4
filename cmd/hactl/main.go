// Command hactl is the high-availability cluster manager: the agent that
// runs on every node, and the CLI that talks to it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/hactl/hactl/cluster/api"
)

// Exit codes shared by every subcommand.
const (
	exitOK        = 0
	exitFailure   = 1 // the command ran and failed (invalid file, failed action)
	exitUsage     = 2 // bad flags or arguments
	exitNoAgent   = 3 // the local agent is not running
	defaultConfig = "/etc/hactl/cluster.hcl"
)

// exitError carries an exit code up to main. Its message, when not empty,
// is printed once as "hactl: <message>".
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports bad flags or arguments (exit 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// globals are the flags every subcommand sees.
type globals struct {
	configPath string
	logFormat  string
	logLevel   string
	socket     string
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "hactl",
		Short: "High-availability cluster manager: VRRP, replicated volumes and resource groups in one binary",
		Long: `hactl keeps a service and its data available on two or three Linux nodes.
One HCL cluster file describes the nodes, the virtual IPs (VRRP), the replicated
volumes and the resource groups; "hactl agent" runs on every node under systemd
and the other subcommands talk to the local agent.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", defaultConfig, "cluster file")
	root.PersistentFlags().StringVar(&g.socket, "socket", api.DefaultSocket, "unix socket of the local agent's API")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "", "log output: console, json or journald (default: journald under systemd, else console)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.AddCommand(
		newAgentCmd(g),
		newStatusCmd(g),
		newFailoverCmd(g),
		newStandbyCmd(g),
		newUnstandbyCmd(g),
		newCleanupCmd(g),
		newValidateCmd(g),
		newLabCmd(g),
		newVolumeCmd(g),
		newResolveCmd(g), // "hactl resolve" is "hactl volume resolve" (DESIGN §3.3 names it so)
		newVersionCmd(),
	)
	return root
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	var g globals
	root := newRootCmd(&g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	} else if isUsageError(err) {
		code = exitUsage
	}
	msg := err.Error()
	if code == exitUsage && msg != "" {
		// One line: what is wrong and where the help for it is.
		msg = fmt.Sprintf("%s (see '%s --help')", msg, cmd.CommandPath())
	}
	if msg != "" {
		fmt.Fprintf(stderr, "hactl: %s\n", msg)
	}
	return code
}
