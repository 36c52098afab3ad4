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
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "failover [GROUP]",
		Short: "Move a resource group (or all) gracefully to another node",
		Long: `Move GROUP (every group when omitted) to another node in the failover order:
on the current node the VIP is removed, services stop in reverse order, the
filesystem is unmounted and the volume demoted; then the target node promotes
the volume, mounts, starts the services and takes the VIP.
--to picks the target node; --dry-run prints the plan without changing anything.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.FailoverRequest{To: to, DryRun: dryRun}
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
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return cmd
}

func newStandbyCmd(g *globals) *cobra.Command {
	var off, dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "standby NODE",
		Short: "Drain a node for maintenance (or bring it back with --off)",
		Long: `Put NODE in standby: every group it runs moves to another node and it takes
no group until "hactl standby NODE --off". --dry-run prints the plan.`,
		Args: exactArgs(1, "the name of the node to drain"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			plan, err := api.NewClient(g.socket).Standby(ctx, api.StandbyRequest{Node: args[0], Off: off, DryRun: dryRun})
			if err != nil {
				return agentError(err)
			}
			return writePlan(cmd.OutOrStdout(), plan, asJSON)
		},
	}
	cmd.Flags().BoolVar(&off, "off", false, "leave standby: the node may take groups again")
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
