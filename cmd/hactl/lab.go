package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hactl/hactl/internal/lab"
)

// labFlags are the flags every lab subcommand shares.
type labFlags struct {
	name      string
	stateRoot string
}

// hint returns the flags to repeat in a suggested command line.
func (o *labFlags) hint() string {
	s := ""
	if o.name != lab.DefaultName {
		s += " --name " + o.name
	}
	if o.stateRoot != lab.DefaultStateRoot {
		s += " --state-root " + o.stateRoot
	}
	return s
}

func (o *labFlags) validate() error {
	if err := lab.ValidateName(o.name); err != nil {
		return usageErrorf("--name: %v", err)
	}
	if !strings.HasPrefix(o.stateRoot, "/") {
		return usageErrorf("--state-root %q: want an absolute path", o.stateRoot)
	}
	return nil
}

func requireLabRoot() error {
	if os.Geteuid() != 0 {
		return &exitError{code: exitFailure, err: lab.ErrNotRoot}
	}
	return nil
}

func newLabCmd(_ *globals) *cobra.Command {
	o := &labFlags{}
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Build a whole cluster in network namespaces on this host, for tests and rehearsals",
		Long: `hactl lab builds a cluster on one host: a network namespace per node (alpha,
bravo, charlie and an optional witness) plus a client, a service network
192.0.2.0/24 (eth0) and a replication network 198.51.100.0/24 (eth1) bridged
inside a lab-owned namespace, a sparse disk file per data node, a persistent
mount namespace per node and a generated cluster file. Nothing touches the
host's own network. Needs root.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown lab command %q (want up, exec, status, isolate, rejoin, cable or down)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.name, "name", lab.DefaultName, "lab name: up to 8 characters of a-z, 0-9 and '-'")
	pf.StringVar(&o.stateRoot, "state-root", lab.DefaultStateRoot, "directory holding the state of every lab")
	cmd.AddCommand(newLabUpCmd(o), newLabExecCmd(o), newLabStatusCmd(o), newLabDownCmd(o),
		newLabFaultCmd(o, true), newLabFaultCmd(o, false), newLabCableCmd(o))
	return cmd
}

func newLabUpCmd(o *labFlags) *cobra.Command {
	var (
		nodes    int
		witness  bool
		diskSize string
	)
	cmd := &cobra.Command{
		Use:   "up [--name N] [--nodes 2] [--witness] [--disk-size 256M]",
		Short: "Create a lab",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			if nodes != 2 && nodes != 3 {
				return usageErrorf("--nodes %d: a lab has 2 or 3 data nodes", nodes)
			}
			size, err := lab.ParseSize(diskSize)
			if err != nil {
				return usageErrorf("--disk-size: %v", err)
			}
			if size < 1<<20 || size%4096 != 0 {
				return usageErrorf("--disk-size %s: want at least 1M and a multiple of 4K", diskSize)
			}
			if err := requireLabRoot(); err != nil {
				return err
			}
			// Ctrl-C during up rolls back what was created.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			l, err := lab.Up(ctx, lab.Options{
				Name: o.name, Nodes: nodes, Witness: witness, DiskSize: size, StateRoot: o.stateRoot,
			})
			if err != nil {
				return err
			}
			printLabUp(cmd.OutOrStdout(), l, o)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&nodes, "nodes", lab.DefaultNodes, "data nodes: 2 or 3")
	f.BoolVar(&witness, "witness", false, "add a diskless witness node")
	f.StringVar(&diskSize, "disk-size", "256M", "size of each data node's sparse disk file (e.g. 256M, 1G)")
	return cmd
}

func printLabUp(w io.Writer, l *lab.Lab, o *labFlags) {
	fmt.Fprintf(w, "lab %q is up (state %s)\n\n", l.Name, l.Dir)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tROLE\tADDRESS (eth0)\tREPLICATION (eth1)\tNETNS")
	for _, n := range l.Nodes {
		rep := "-"
		if a := n.ReplicationAddress(); a.IsValid() {
			rep = a.String()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", n.Name, n.Role, n.Address(), rep, n.Netns)
	}
	tw.Flush()
	var disks []string
	for _, n := range l.DataNodes() {
		disks = append(disks, n.Disk)
	}
	fmt.Fprintf(w, "\n  networks:     bridged inside namespace %s", l.Switch)
	for _, nw := range l.Networks {
		fmt.Fprintf(w, "; %s %s", nw.Name, nw.Prefix)
	}
	fmt.Fprintf(w, "\n  virtual IP:   %s (vrrp %s)\n", l.VirtualIP.Addr(), lab.VRRPInstance)
	fmt.Fprintf(w, "  cluster file: %s (every node sees it as %s)\n", l.ClusterFile, lab.NodeClusterFile)
	fmt.Fprintf(w, "  disks:        %s (%d MiB each, sparse)\n\n", strings.Join(disks, ", "), l.DiskSize>>20)
	h := o.hint()
	fmt.Fprintf(w, "Run a command in a node:  hactl lab exec%s alpha -- ip -br addr\n", h)
	fmt.Fprintf(w, "Start a node's agent:     hactl lab exec%s alpha -- hactl agent\n", h)
	fmt.Fprintf(w, "Show the lab:             hactl lab status%s\n", h)
	fmt.Fprintf(w, "Tear it down:             hactl lab down%s\n", h)
}

func newLabExecCmd(o *labFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec [--name N] NODE -- CMD [ARG...]",
		Short: "Run a command inside a lab node (its network and mount namespaces)",
		Long: `Run a command inside a lab node's network namespace and persistent mount
namespace: mounts made by one command are seen by the next. The command's exit
status is passed through. Nodes: alpha, bravo, charlie, witness, client.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			if len(args) == 0 {
				return usageErrorf("lab exec: missing NODE and command")
			}
			node, argv := args[0], args[1:]
			if len(argv) > 0 && argv[0] == "--" {
				argv = argv[1:]
			}
			if err := lab.CheckNodeName(node); err != nil {
				return usageErrorf("%v", err)
			}
			if len(argv) == 0 {
				return usageErrorf("lab exec %s: missing command after --", node)
			}
			l, err := openLabNode(o, node)
			if err != nil {
				return err
			}
			return runInNode(cmd, l, node, argv)
		},
	}
	// Everything after NODE belongs to the command, even without "--".
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// runInNode runs the command in the foreground and passes its exit status
// through. SIGTERM and SIGHUP sent to hactl are forwarded, so `kill` on
// hactl stops the command too; SIGINT is only caught, because Ctrl-C
// already reaches the command through the terminal's process group.
func runInNode(cmd *cobra.Command, l *lab.Lab, node string, argv []string) error {
	c := l.Command(node, argv...)
	c.Stdin, c.Stdout, c.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigc)
	if err := c.Start(); err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("lab %s: %s: %w", l.Name, node, err)}
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigc:
				if s != os.Interrupt {
					_ = c.Process.Signal(s)
				}
			case <-done:
				return
			}
		}
	}()
	err := c.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal()) // the shell's convention
		}
		return &exitError{code: code}
	default:
		return &exitError{code: exitFailure, err: fmt.Errorf("lab %s: %s: %w", l.Name, node, err)}
	}
}

func labNotFound(err error, o *labFlags) error {
	if errors.Is(err, lab.ErrNotFound) {
		err = fmt.Errorf("lab %q not found; create it with 'hactl lab up%s'", o.name, o.hint())
	}
	return &exitError{code: exitFailure, err: err}
}

func newLabStatusCmd(o *labFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--name N] [--json]",
		Short: "Show the labs on this host and whether their namespaces exist",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			if err := requireLabRoot(); err != nil {
				return err
			}
			infos, err := lab.Status(o.stateRoot)
			if err != nil {
				return err
			}
			// Without --name, every lab is shown.
			if cmd.Flags().Changed("name") {
				var one []lab.Info
				for _, in := range infos {
					if in.Name == o.name {
						one = append(one, in)
					}
				}
				if len(one) == 0 {
					return labNotFound(lab.ErrNotFound, o)
				}
				infos = one
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if infos == nil {
					infos = []lab.Info{}
				}
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(infos)
			}
			if len(infos) == 0 {
				fmt.Fprintf(w, "no labs (state root %s)\n", o.stateRoot)
				return nil
			}
			for i, in := range infos {
				if i > 0 {
					fmt.Fprintln(w)
				}
				printLabInfo(w, in)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printLabInfo(w io.Writer, in lab.Info) {
	state := "up"
	switch {
	case !in.Described:
		state = "leftover (no lab.json): run 'hactl lab down --name " + in.Name + "'"
	case !in.Complete:
		state = "incomplete: run 'hactl lab down --name " + in.Name + "'"
	}
	fmt.Fprintf(w, "lab %q: %s\n", in.Name, state)
	fmt.Fprintf(w, "  state dir: %s\n", in.Dir)
	if in.ClusterFile != "" {
		fmt.Fprintf(w, "  cluster file: %s\n", in.ClusterFile)
	}
	fmt.Fprintf(w, "  switch: %s %s\n", in.Switch, labOK(in.SwitchExists))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tROLE\tADDRESS\tREPLICATION\tNETNS\tNET\tMOUNT\tDISK")
	for _, n := range in.Nodes {
		disk := "-"
		if n.Disk != "" {
			disk = labOK(n.DiskExists)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, dash(string(n.Role)), dash(n.Address),
			dash(n.ReplicationAddress), n.Netns, labOK(n.NetnsExists), labOK(n.MountNSExists), disk)
	}
	tw.Flush()
}

func labOK(ok bool) string {
	if ok {
		return "ok"
	}
	return "missing"
}

func newLabDownCmd(o *labFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "down [--name N]",
		Short: "Remove a lab: its processes, mounts, loop devices, namespaces and state",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			if err := requireLabRoot(); err != nil {
				return err
			}
			if err := lab.Down(context.Background(), o.name, o.stateRoot); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %q is down\n", o.name)
			return nil
		},
	}
}

// newLabFaultCmd is "lab isolate" (cut) or "lab rejoin" (undo).
func newLabFaultCmd(o *labFlags, cut bool) *cobra.Command {
	var network string
	use, short := "rejoin [--name N] [--network service|replication] NODE", "Reconnect a node that lab isolate cut off"
	if cut {
		use, short = "isolate [--name N] [--network service|replication] NODE",
			"Cut a node off a network silently, as a dead switch port would (its carrier stays up)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1, "a NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			if network != "service" && network != "replication" {
				return usageErrorf("--network %q: want service or replication", network)
			}
			node := args[0]
			l, err := openLabNode(o, node)
			if err != nil {
				return err
			}
			if cut {
				err = l.Isolate(node, network)
			} else {
				err = l.Rejoin(node, network)
			}
			if err != nil {
				return err
			}
			verb := "rejoined"
			if cut {
				verb = "isolated from"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s the %s network\n", node, verb, network)
			return nil
		},
	}
	cmd.Flags().StringVar(&network, "network", "service", "which network: service (eth0) or replication (eth1)")
	return cmd
}

// newLabCableCmd is "lab cable NODE NETWORK up|down": pull or plug a node's
// cable. Unlike isolate, the node's interface loses its carrier.
func newLabCableCmd(o *labFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cable [--name N] NODE service|replication up|down",
		Short: "Pull (down) or plug (up) a node's cable: its interface loses or regains its carrier",
		Args:  exactArgs(3, "a NODE, a network (service or replication) and up or down"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			node, network, state := args[0], args[1], args[2]
			if network != "service" && network != "replication" {
				return usageErrorf("lab cable: network %q: want service or replication", network)
			}
			if state != "up" && state != "down" {
				return usageErrorf("lab cable: %q: want up or down", state)
			}
			l, err := openLabNode(o, node)
			if err != nil {
				return err
			}
			if err := l.SetCable(node, network, state == "up"); err != nil {
				return err
			}
			verb := "plugged into"
			if state == "down" {
				verb = "pulled from"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s's cable %s the %s network\n", node, verb, network)
			return nil
		},
	}
}

// openLabNode opens the lab (as root) and checks that it has node.
func openLabNode(o *labFlags, node string) (*lab.Lab, error) {
	if err := requireLabRoot(); err != nil {
		return nil, err
	}
	l, err := lab.Open(o.name, o.stateRoot)
	if err != nil {
		return nil, labNotFound(err, o)
	}
	if _, ok := l.Node(node); !ok {
		var names []string
		for _, n := range l.Nodes {
			names = append(names, n.Name)
		}
		return nil, usageErrorf("lab %s has no node %q (nodes: %s)", l.Name, node, strings.Join(names, ", "))
	}
	return l, nil
}
