package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/hactl/hactl/cluster/agent"
	"github.com/hactl/hactl/internal/logging"
	"github.com/hactl/hactl/internal/sdnotify"
	"github.com/hactl/hactl/replicate/attach"
)

func newAgentCmd(g *globals) *cobra.Command {
	var node, runtimeDir string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the cluster agent on this node (under systemd)",
		Long: `Run the hactl agent on this node. It loads and validates the cluster file
(--config), works out which node it is (the node whose address is on this
machine, else the one named like the hostname, else --node), and serves the
local API on a unix socket (mode 0600) that the other subcommands use.

SIGTERM and SIGINT stop it cleanly; SIGHUP re-reads the cluster file, and a
file that does not validate is refused with the running one kept.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(g)
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()

			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{}, 1)
			go forwardReloads(ctx, hup, reload)

			err = agent.Run(ctx, agent.Options{
				ConfigPath:       g.configPath,
				Socket:           g.socket,
				Node:             node,
				RuntimeDir:       runtimeDir,
				Version:          version,
				Log:              log,
				Reload:           reload,
				Notify:           sdnotify.Default(),
				WatchdogInterval: sdnotify.WatchdogInterval(os.Getenv, os.Getpid()),
			})
			if err != nil {
				// Logged once, where the operator looks for it (the
				// journal under systemd); the exit code tells the rest.
				log.Error("agent failed", zap.String("event", "exit"), zap.String("reason", err.Error()))
				return &exitError{code: exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "this node's name in the cluster file (default: found by address, then hostname)")
	cmd.Flags().StringVar(&runtimeDir, "runtime-dir", attach.DefaultRuntimeDir, "where the volumes' NBD sockets and attachment state live")
	return cmd
}

// forwardReloads turns SIGHUPs into reload requests; several signals while
// one reload is pending collapse into one.
func forwardReloads(ctx context.Context, hup <-chan os.Signal, reload chan<- struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}
}

func newLogger(g *globals) (*zap.Logger, error) {
	format, err := logging.ParseFormat(g.logFormat)
	if err != nil {
		return nil, usageErrorf("--log-format: %v", err)
	}
	level, err := logging.ParseLevel(g.logLevel)
	if err != nil {
		return nil, usageErrorf("--log-level: %v", err)
	}
	return logging.New(logging.Options{Format: format, Level: level})
}
