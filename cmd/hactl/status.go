package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hactl/hactl/cluster/api"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show this node's view of the cluster",
		Long: `Show the local agent's view of the cluster: nodes, VRRP instances, replicated
volumes and resource groups with their state. --json prints the same as JSON
(with "schema": 1) for scripts. Exits 3 when no agent runs on this node.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			st, err := api.NewClient(g.socket).Status(ctx)
			if err != nil {
				return agentError(err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return writeStatus(cmd.OutOrStdout(), st, time.Now())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

// agentError maps "no agent" to exit 3 and anything else to exit 1.
func agentError(err error) error {
	if errors.Is(err, api.ErrAgentNotRunning) {
		return &exitError{code: exitNoAgent, err: err}
	}
	return &exitError{code: exitFailure, err: err}
}

// writeStatus prints st as tables, one section per kind of object.
func writeStatus(w io.Writer, st api.Status, now time.Time) error {
	fmt.Fprintf(w, "Cluster %s, node %s, hactl %s, agent up %s\n", st.Cluster, st.Node, st.Version, uptime(st.StartedAt, now))
	fmt.Fprintf(w, "Config  %s\n", st.ConfigFile)

	var nodes [][]string
	var nodeNotes []string
	for _, n := range st.Nodes {
		name := n.Name
		if n.Self {
			name += " (this node)"
		}
		kind := "data"
		if n.Witness {
			kind = "witness"
		}
		member := dash(n.Membership)
		if n.LastHeardMS != nil && n.Membership != "self" {
			member += fmt.Sprintf(" (heard %s ago)", (time.Duration(*n.LastHeardMS) * time.Millisecond).Round(time.Millisecond))
		}
		nodes = append(nodes, []string{name, n.Address, dash(n.ReplicationAddress), kind, member})
		if len(n.Paths) > 0 {
			keys := make([]string, 0, len(n.Paths))
			for k := range n.Paths {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var parts []string
			for _, k := range keys {
				parts = append(parts, k+": "+n.Paths[k])
			}
			nodeNotes = append(nodeNotes, fmt.Sprintf("%s heard via %s", n.Name, strings.Join(parts, "; ")))
		}
		if ns := n.State; ns != nil {
			nodeNotes = append(nodeNotes, nodeStateNotes(n.Name, *ns)...)
		}
	}
	var vrrps [][]string
	var vrrpNotes []string
	for _, v := range st.VRRP {
		vrrps = append(vrrps, []string{v.Name, v.Interface, fmt.Sprint(v.VRID), fmt.Sprintf("v%d", v.Version),
			v.State, priority(v), master(v), interval(v), strings.Join(v.VirtualIPs, ",")})
		vrrpNotes = append(vrrpNotes, vrrpDetails(v, now)...)
	}
	var volumes [][]string
	var volumeNotes []string
	for _, v := range st.Volumes {
		volumes = append(volumes, []string{v.Name, v.Protocol, dash(v.Disk), v.Role + peerPart(v.PeerRole),
			dash(v.DiskState) + peerPart(v.PeerDisk), dash(v.Connection), bytesText(v.OutOfSync), dash(v.Device)})
		if r := v.Resync; r != nil {
			volumeNotes = append(volumeNotes, fmt.Sprintf("%s: resync as %s %.1f%% (%s of %s) at %s/s, ETA %s",
				v.Name, r.Direction, r.Percent, bytesText(r.Done), bytesText(r.Total), bytesText(uint64(r.Rate)), dash(r.ETA)))
		}
		if f := v.Verify; f != nil {
			switch {
			case f.Running:
				volumeNotes = append(volumeNotes, fmt.Sprintf("%s: online verify running, %s of %s checked, %s differ so far",
					v.Name, bytesText(f.Done), bytesText(f.Total), bytesText(f.OutOfSync)))
			case f.Error != "":
				volumeNotes = append(volumeNotes, fmt.Sprintf("%s: last online verify stopped after %s: %s", v.Name, bytesText(f.Done), f.Error))
			default:
				volumeNotes = append(volumeNotes, fmt.Sprintf("%s: last online verify %s: %s differed from the peer",
					v.Name, f.Finished.UTC().Format(time.RFC3339), bytesText(f.OutOfSync)))
			}
		}
		if v.Problem != "" {
			volumeNotes = append(volumeNotes, v.Name+": "+v.Problem)
		}
	}
	var groups [][]string
	var groupNotes []string
	for _, gr := range st.Groups {
		res := strings.Join(gr.Resources, " → ")
		if len(gr.ResourceStates) > 0 {
			var parts []string
			for _, r := range gr.ResourceStates {
				p := r.ID + " " + r.State
				if r.Failures > 0 {
					p += fmt.Sprintf(" (%d failures)", r.Failures)
				}
				parts = append(parts, p)
			}
			res = strings.Join(parts, " → ")
		}
		groups = append(groups, []string{gr.Name, gr.VRRP, dash(gr.Volume), res, gr.State})
		groupNotes = append(groupNotes, groupDetails(gr, now)...)
	}
	sections := []struct {
		title  string
		header []string
		rows   [][]string
		notes  []string
	}{
		{"NODES", []string{"NAME", "ADDRESS", "REPLICATION", "KIND", "CLUSTER NETWORK"}, nodes, nodeNotes},
		{"VRRP", []string{"NAME", "INTERFACE", "VRID", "VERSION", "STATE", "PRIORITY", "MASTER", "INTERVAL", "VIPS"}, vrrps, vrrpNotes},
		{"VOLUMES", []string{"NAME", "PROTOCOL", "DISK", "ROLE/PEER", "DATA/PEER", "CONNECTION", "OUT-OF-SYNC", "DEVICE"}, volumes, volumeNotes},
		{"GROUPS", []string{"NAME", "VRRP", "VOLUME", "RESOURCES", "STATE"}, groups, groupNotes},
	}
	for _, sec := range sections {
		if err := writeTable(w, sec.title, sec.header, sec.rows); err != nil {
			return err
		}
		for _, n := range sec.notes {
			if _, err := fmt.Fprintf(w, "  %s\n", n); err != nil {
				return err
			}
		}
	}
	return nil
}

// priority is this node's priority: "effective (configured)" when checks
// moved it, and the other nodes' when it runs nowhere live.
func priority(v api.VRRPStatus) string {
	switch {
	case v.EffectivePriority == 0:
		return priorities(v)
	case v.EffectivePriority != v.Priority:
		return fmt.Sprintf("%d (configured %d)", v.EffectivePriority, v.Priority)
	default:
		return fmt.Sprint(v.Priority)
	}
}

func master(v api.VRRPStatus) string {
	switch {
	case v.Master == "":
		return "-"
	case v.MasterPriority != 0:
		return fmt.Sprintf("%s (%d)", v.Master, v.MasterPriority)
	default:
		return v.Master
	}
}

// interval is the advert interval in use, with the configured one when a
// v3 backup learned a different one from its master.
func interval(v api.VRRPStatus) string {
	if v.AdvertIntervalInUse == "" || v.AdvertIntervalInUse == v.AdvertInterval {
		return v.AdvertInterval
	}
	return fmt.Sprintf("%s (configured %s)", v.AdvertIntervalInUse, v.AdvertInterval)
}

// vrrpDetails are the lines under the VRRP table for one instance: its
// last transition, counters, anything dropped, failing tracks and checks.
func vrrpDetails(v api.VRRPStatus, now time.Time) []string {
	var out []string
	if v.Fault != "" {
		out = append(out, fmt.Sprintf("%s: %s: %s", v.Name, v.State, v.Fault))
	}
	if t := v.LastTransition; t != nil {
		out = append(out, fmt.Sprintf("%s: %s → %s %s ago: %s", v.Name, t.From, t.To, uptime(t.At, now), t.Reason))
	}
	if c := v.Counters; c != nil {
		line := fmt.Sprintf("%s: adverts sent %d, received %d; GARPs %d; transitions %d", v.Name,
			c.AdvertsSent, c.AdvertsReceived, c.GARPsSent, c.Transitions)
		if len(c.Invalid) > 0 {
			reasons := make([]string, 0, len(c.Invalid))
			for r, n := range c.Invalid {
				reasons = append(reasons, fmt.Sprintf("%s %d", r, n))
			}
			sort.Strings(reasons)
			line += "; dropped: " + strings.Join(reasons, ", ")
		}
		out = append(out, line)
	}
	if li := v.LastInvalid; li != nil {
		out = append(out, fmt.Sprintf("%s: last dropped advert from %s %s ago: %s", v.Name, li.From, uptime(li.At, now), li.Detail))
	}
	for _, t := range v.Tracks {
		if !t.Up {
			effect := "fault"
			if t.Weight != 0 {
				effect = fmt.Sprintf("weight %d", t.Weight)
			}
			out = append(out, fmt.Sprintf("%s: tracked interface %s down (%s): %s", v.Name, t.Name, effect, t.Detail))
		}
	}
	for _, c := range v.Checks {
		if c.Failing {
			out = append(out, fmt.Sprintf("%s: check %s failing (weight %d): %s", v.Name, c.Name, c.Weight, c.Detail))
		}
	}
	return out
}

// writeTable prints a titled, indented table with aligned columns and no
// trailing blanks, or "(none configured)" when there are no rows.
func writeTable(w io.Writer, title string, header []string, rows [][]string) error {
	fmt.Fprintf(w, "\n%s\n", title)
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "  (none configured)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, cells := range append([][]string{header}, rows...) {
		fmt.Fprintf(tw, "  %s\n", strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// priorities shows this node's priority first, then the others'.
func priorities(v api.VRRPStatus) string {
	names := make([]string, 0, len(v.Priorities))
	for n := range v.Priorities {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if v.Priorities[names[i]] != v.Priorities[names[j]] {
			return v.Priorities[names[i]] > v.Priorities[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s=%d", n, v.Priorities[n])
	}
	return strings.Join(parts, ",")
}

func uptime(since, now time.Time) string {
	if since.IsZero() {
		return "-"
	}
	return now.Sub(since).Round(time.Second).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// peerPart is "/peer-value" when the peer's value is known.
func peerPart(v string) string {
	if v == "" {
		return ""
	}
	return "/" + v
}

// bytesText is a byte count for people: 0, 512 B, 4.0 KiB, 1.5 GiB.
func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// groupDetails are the notes under the groups table: the gate, holds,
// blocks and the last few events.
func groupDetails(gr api.GroupStatus, now time.Time) []string {
	var out []string
	if g := gr.Gate; g != nil {
		word := "closed"
		if g.Open {
			word = "open"
		}
		out = append(out, fmt.Sprintf("%s: promotion gate %s: %s", gr.Name, word, g.Reason))
	}
	for _, n := range []struct{ what, text string }{
		{"running", gr.Running}, {"held out of service", gr.Held}, {"preference", gr.Preference},
		{"BLOCKED", gr.Blocked}, {"gave up this node", gr.GaveUp}, {"banned", gr.Banned},
	} {
		if n.text != "" {
			out = append(out, fmt.Sprintf("%s: %s: %s", gr.Name, n.what, n.text))
		}
	}
	events := gr.Events
	if len(events) > 5 {
		events = events[len(events)-5:]
	}
	for _, e := range events {
		line := fmt.Sprintf("%s: %s ago %s", gr.Name, ago(now, e.At), e.What)
		if e.Millis > 0 {
			line += fmt.Sprintf(" (%d ms)", e.Millis)
		}
		if e.Result != "" {
			line += ": " + e.Result
		}
		out = append(out, line)
	}
	return out
}

func ago(now, t time.Time) string {
	d := now.Sub(t)
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// nodeStateNotes is what another node last published about itself.
func nodeStateNotes(node string, ns api.NodeState) []string {
	var out []string
	add := func(what string, m map[string]string) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, fmt.Sprintf("%s says: %s %s %s", node, what, k, m[k]))
		}
	}
	add("vrrp", ns.VRRP)
	add("volume", ns.Volumes)
	add("group", ns.Groups)
	return out
}
