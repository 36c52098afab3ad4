package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/hactl/hactl/cluster/api"
)

func newFailoverCmd(g *globals) *cobra.Command {
	var to string
	var dryRun, asJSON, wait bool
	cmd := &cobra.Command{
		Use:   "failover [GROUP]",
		Short: "Move a resource group (or all) gracefully to another node",
		Long: `Move GROUP (every group when omitted) to another node in the failover order:
on the current node the VIP is removed, services stop in reverse order, the
filesystem is unmounted and the volume demoted; then the target node promotes
the volume, mounts, starts the services and takes the VIP.
Run it on the node that holds the group. --to picks the target node (default:
the other node with the highest priority); --wait returns once the other node
serves the group; --dry-run prints the plan without changing anything.

When the group's VRRP instance preempts, this node yields its priority for
an hour so the group does not come straight back; status shows the
preference and its expiry.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.FailoverRequest{To: to, DryRun: dryRun, Wait: wait}
			if len(args) == 1 {
				req.Group = args[0]
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			plan, err := api.NewClient(g.socket).Failover(ctx, req)
			if err != nil {
				return agentError(err)
			}
			return writePlan(cmd.OutOrStdout(), plan, asJSON)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "target node (default: the best other node)")
	cmd.Flags().BoolVar(&wait, "wait", false, "return once another node serves the group")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}

func newStandbyCmd(g *globals) *cobra.Command {
	var off, dryRun, asJSON, wait bool
	cmd := &cobra.Command{
		Use:   "standby NODE",
		Short: "Drain a node for maintenance (or bring it back with --off)",
		Long: `Put NODE in standby: every group it runs moves to another node and it takes
no group until "hactl unstandby NODE" (or "hactl standby NODE --off"). Run it on
NODE. --wait returns once every group stopped there; --dry-run prints the plan.`,
		Args: exactArgs(1, "the name of the node to drain"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			plan, err := api.NewClient(g.socket).Standby(ctx, api.StandbyRequest{Node: args[0], Off: off, DryRun: dryRun, Wait: wait})
			if err != nil {
				return agentError(err)
			}
			return writePlan(cmd.OutOrStdout(), plan, asJSON)
		},
	}
	cmd.Flags().BoolVar(&off, "off", false, "leave standby: the node may take groups again")
	cmd.Flags().BoolVar(&wait, "wait", false, "return once every group stopped on the node")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}

func newUnstandbyCmd(g *globals) *cobra.Command {
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "unstandby NODE",
		Short: "Bring a node back from standby: it may take groups again",
		Args:  exactArgs(1, "the name of the node"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			plan, err := api.NewClient(g.socket).Standby(ctx, api.StandbyRequest{Node: args[0], Off: true, DryRun: dryRun})
			if err != nil {
				return agentError(err)
			}
			return writePlan(cmd.OutOrStdout(), plan, asJSON)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}

func newCleanupCmd(g *globals) *cobra.Command {
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "cleanup GROUP",
		Short: "Forget a group's failures on this node and lift a block or ban",
		Long: `Forget the failures recorded for GROUP on this node (so migration_threshold
counts from zero) and lift a block left by a failed stop — only after you made
sure the resource that failed to stop is really stopped. --dry-run prints what
would be forgotten.`,
		Args: exactArgs(1, "the name of the group"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			plan, err := api.NewClient(g.socket).Cleanup(ctx, api.CleanupRequest{Group: args[0], DryRun: dryRun})
			if err != nil {
				return agentError(err)
			}
			return writePlan(cmd.OutOrStdout(), plan, asJSON)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}

func writePlan(w io.Writer, p api.Plan, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	for i, s := range p.Steps {
		fmt.Fprintf(w, "%2d. %s\n", i+1, s)
	}
	return nil
}
