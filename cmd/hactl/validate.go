package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hactl/hactl/cluster/config"
)

func newValidateCmd(g *globals) *cobra.Command {
	var (
		asJSON     bool
		node       string
		hostChecks bool
	)
	cmd := &cobra.Command{
		Use:   "validate [FILE...]",
		Short: "Check cluster files and report every problem",
		Long: `Check one or more cluster files (default: --config) and report every problem
found, each with file:line:column, the offending source line and what to do
about it. Nothing is changed and no agent is needed.

Checked everywhere:
  - syntax, unknown attributes and blocks (with "did you mean"), missing
    required attributes, value types, durations, sizes, IP addresses, CIDRs
    and the allowed values of every setting;
  - references: every node, vrrp instance and volume named in priority,
    disk, meta, unicast_source, discard-node-NAME, and a group's vrrp and
    volume must exist; names are unique per block type;
  - VRRP: priorities 1-255, one virtual router ID per interface, virtual IPs
    that agree on each interface's subnet, advert intervals the version can
    carry (v2: whole seconds; v3: 10ms steps up to 40.95s), auth_pass only
    with v2 and at most 8 bytes, checks with exactly one probe and a timeout
    within their interval;
  - volumes and groups: protocol A/B/C, disks on two data nodes that have a
    replication_address, no witness with a priority or a disk, a disk on
    every node that can win a group's VRRP instance, one group per volume,
    a filesystem only with a volume, absolute paths, non-empty commands;
  - quorum: "majority" needs three voters, "two_node" exactly two.

Host checks look at this machine as well: the secret file must be readable
and not empty (an error), and for the node being checked its interfaces
should exist and carry the virtual IPs' subnets and its disks should exist
(warnings: the agent still starts without them). They are on with --node,
or when this machine is a node of the cluster (one of its addresses is a
node address, or the hostname is a node name); --host-checks=false turns
them off, --host-checks forces them on.

Exit status: 0 when every file is valid (warnings allowed), 1 otherwise.`,
		Example: `  hactl validate
  hactl validate examples/*.hcl
  hactl validate --node alpha /etc/hactl/cluster.hcl
  hactl validate --json cluster.hcl | jq '.[] | .summary'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			files := args
			if len(files) == 0 {
				files = []string{g.configPath}
			}
			v := validation{
				node:       node,
				hostChecks: hostChecks,
				forced:     cmd.Flags().Changed("host-checks"),
				stdout:     cmd.OutOrStdout(),
				stderr:     cmd.ErrOrStderr(),
				asJSON:     asJSON,
			}
			return v.run(files)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print all diagnostics as one JSON array ([] when there are none)")
	cmd.Flags().StringVar(&node, "node", "", "check as this node of the cluster (turns on host checks)")
	cmd.Flags().BoolVar(&hostChecks, "host-checks", false, "check this machine too: secret file, interfaces, disks (default: on when this machine is a node)")
	return cmd
}

// validation is one run of "hactl validate".
type validation struct {
	node       string
	hostChecks bool
	forced     bool // --host-checks given explicitly
	asJSON     bool
	stdout     io.Writer
	stderr     io.Writer
}

func (v *validation) run(files []string) error {
	all := config.Diagnostics{}
	var failures []string
	for _, file := range files {
		diags, failure := v.file(file)
		all = append(all, diags...)
		if failure != "" {
			failures = append(failures, failure)
		}
	}
	if v.asJSON {
		enc := json.NewEncoder(v.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			return err
		}
		if len(failures) > 0 {
			return &exitError{code: exitFailure}
		}
		return nil
	}
	if len(failures) > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("%s", strings.Join(failures, "; "))}
	}
	return nil
}

// file validates one file, prints its result in text mode, and returns
// its diagnostics and, when it is not valid, a short reason.
func (v *validation) file(file string) (config.Diagnostics, string) {
	src, err := os.ReadFile(file)
	if err != nil {
		return config.Diagnostics{{
			Severity: config.SeverityError,
			Summary:  "Cannot read the cluster file",
			Detail:   err.Error(),
			File:     file,
		}}, err.Error()
	}
	opts, asNode := v.options(src, file)
	c, diags := config.Parse(src, file, opts)
	if v.asJSON {
		return diags, failureText(file, diags)
	}
	if len(diags) > 0 {
		_ = diags.WriteText(v.stderr, colorFor(v.stderr))
		fmt.Fprintln(v.stderr)
	}
	if c == nil {
		return diags, failureText(file, diags)
	}
	var notes []string
	if n := diags.Warnings(); n > 0 {
		notes = append(notes, quantity(n, "warning", "warnings"))
	}
	switch {
	case asNode != "" && opts.HostChecks:
		notes = append(notes, fmt.Sprintf("host checks as node %q", asNode))
	case opts.HostChecks:
		notes = append(notes, "host checks")
	case asNode != "":
		notes = append(notes, fmt.Sprintf("as node %q", asNode))
	}
	line := fmt.Sprintf("%s: valid: %s", file, c.Summary())
	if len(notes) > 0 {
		line += " (" + strings.Join(notes, ", ") + ")"
	}
	fmt.Fprintln(v.stdout, line)
	return diags, ""
}

// options decides the checks for one file. Without --node and
// --host-checks, host checks are on when this machine is one of the file's
// nodes: validate on a node checks what the agent will need there, while
// the same file on a workstation is checked on its own.
func (v *validation) options(src []byte, file string) (config.Options, string) {
	switch {
	case v.forced:
		return config.Options{Node: v.node, HostChecks: v.hostChecks}, v.node
	case v.node != "":
		return config.Options{Node: v.node, HostChecks: true}, v.node
	}
	c, _ := config.Parse(src, file, config.Options{})
	if c == nil {
		return config.Options{}, "" // the errors are reported by the real run
	}
	hostname, _ := os.Hostname()
	name, err := config.LocalNode(c, machineAddrs(), hostname)
	if err != nil {
		return config.Options{}, ""
	}
	return config.Options{Node: name, HostChecks: true}, name
}

func failureText(file string, diags config.Diagnostics) string {
	if !diags.HasErrors() {
		return ""
	}
	return fmt.Sprintf("%s is not valid (%s)", file, quantity(diags.Errors(), "error", "errors"))
}

// machineAddrs lists this machine's addresses; errors leave it empty (the
// hostname may still identify the node).
func machineAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// colorFor reports whether w is a terminal that wants colors.
func colorFor(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func quantity(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
