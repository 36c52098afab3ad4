package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hactl/hactl/cluster/agent"
	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/replicate/meta"
)

// newVolumeCmd is "hactl volume": work on this node's disk of a volume.
// These commands act on the disk directly, like drbdadm create-md.
func newVolumeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume",
		Short: "Work on this node's disk of a replicated volume (metadata)",
		Long: `Work on this node's disk of a replicated volume. The volume and its disk come
from the cluster file (--config); this node is found by its addresses or
hostname, or named with --node.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown volume command %q (want create-md, dump-md, primary, secondary, resolve or verify)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCreateMDCmd(g), newDumpMDCmd(g), newVolumeRoleCmd(g, "primary"), newVolumeRoleCmd(g, "secondary"), newResolveCmd(g), newVerifyCmd(g))
	return cmd
}

func newCreateMDCmd(g *globals) *cobra.Command {
	var node string
	var force bool
	cmd := &cobra.Command{
		Use:   "create-md VOLUME [--node NAME] [--force]",
		Short: "Write fresh metadata for this node's disk of a volume",
		Long: `Write fresh metadata (superblock, activity log, empty bitmap) for this node's
disk of VOLUME: at the end of the disk with meta = "internal", else in this
node's metadata file. Existing hactl metadata is never overwritten without
--force; the refusal says what was found. With internal metadata the last
part of the disk becomes metadata: run it before putting a filesystem on
the volume, never on a disk with data on it.`,
		Args: exactArgs(1, "a VOLUME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := volumeDisk(g, args[0], node)
			if err != nil {
				return err
			}
			_, dev, closeAll, err := d.Open(true)
			if err != nil {
				return err
			}
			defer closeAll()
			// A disk that has no metadata yet but a filesystem would lose the
			// filesystem's end. (Existing metadata is Create's to report.)
			if _, err := meta.Open(dev); dev.Internal && !force && errors.Is(err, meta.ErrNoMetadata) {
				if fs := filesystemOn(dev.Device); fs != "" {
					return fmt.Errorf("volume %s on %s: %s holds a %s filesystem; internal metadata would overwrite its end. "+
						"Create the metadata before the filesystem (then mkfs on the attached volume), use an external meta file, or --force to destroy it",
						d.Volume.Name, d.Node, d.Disk, fs)
				}
			}
			m, err := meta.Create(dev, meta.CreateOptions{
				NodeID:     nodeID(d.Node),
				NodeName:   d.Node,
				VolumeName: d.Volume.Name,
				Force:      force,
			})
			if err != nil {
				if errors.Is(err, meta.ErrExists) {
					return fmt.Errorf("%w\nTo replace it (this forgets the volume's history on this node): hactl volume create-md %s --force", err, d.Volume.Name)
				}
				return fmt.Errorf("volume %s on %s: %w", d.Volume.Name, d.Node, err)
			}
			l := m.Layout()
			fmt.Fprintf(cmd.OutOrStdout(), "volume %s on %s: metadata created on %s (%s); data size %d bytes, volume UUID %s\n",
				d.Volume.Name, d.Node, d.MetaPath, map[bool]string{true: "internal", false: "external"}[l.Internal],
				l.DataSize, m.Super().VolumeUUID)
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "act as this node of the cluster file (default: this machine)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing metadata")
	return cmd
}

func newDumpMDCmd(g *globals) *cobra.Command {
	var node string
	cmd := &cobra.Command{
		Use:   "dump-md VOLUME [--node NAME]",
		Short: "Print the metadata of this node's disk of a volume",
		Args:  exactArgs(1, "a VOLUME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := volumeDisk(g, args[0], node)
			if err != nil {
				return err
			}
			_, dev, closeAll, err := d.Open(false)
			if err != nil {
				return err
			}
			defer closeAll()
			m, err := meta.Open(dev)
			if err != nil {
				return fmt.Errorf("volume %s on %s (%s): %w", d.Volume.Name, d.Node, d.MetaPath, err)
			}
			return m.Dump(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "act as this node of the cluster file (default: this machine)")
	return cmd
}

// newVolumeRoleCmd is "hactl volume primary|secondary VOLUME": asks this
// node's agent to change the volume's role.
func newVolumeRoleCmd(g *globals, action string) *cobra.Command {
	var force, asJSON bool
	cmd := &cobra.Command{
		Args: exactArgs(1, "a VOLUME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			plan, err := api.NewClient(g.socket).Volume(ctx, api.VolumeRequest{Volume: args[0], Action: action, Force: force})
			if err != nil {
				return agentError(err)
			}
			return writePlan(cmd.OutOrStdout(), plan, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the steps taken as JSON")
	if action == "primary" {
		cmd.Use = "primary VOLUME [--force]"
		cmd.Short = "Promote this node's side of a volume to Primary and attach it"
		cmd.Long = `Promote VOLUME to Primary on this node (through its agent) and attach it as a
block device as the volume's attach setting says. While the nodes are
connected the peer is asked first: a volume is never Primary on both.
The data must be UpToDate (or Consistent with the peer away); --force
promotes Inconsistent data, for the first promotion of a fresh volume: its
data becomes the volume's and the peer is synced from it in full.`
		cmd.Flags().BoolVar(&force, "force", false, "promote data that is not UpToDate (first promotion of a fresh volume)")
	} else {
		cmd.Use = "secondary VOLUME"
		cmd.Short = "Detach this node's side of a volume and demote it to Secondary"
		cmd.Long = `Detach VOLUME's block device and demote it to Secondary on this node (through
its agent). It is refused, naming who holds it, while the device is mounted
or open, or while NBD clients are connected to its socket; I/O in flight
is completed first.`
	}
	return cmd
}

// newResolveCmd is "hactl volume resolve VOLUME --discard NODE" (also
// "hactl resolve"): an operator's split-brain decision.
func newResolveCmd(g *globals) *cobra.Command {
	var discard string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "resolve VOLUME --discard NODE",
		Short: "Resolve a split brain: discard the changes NODE made while apart",
		Long: `Resolve a split brain of VOLUME: the changes NODE made while the nodes were
apart are thrown away, and NODE resyncs the blocks either node changed from
the other (not the whole device). Run it on either node of the volume: the
next handshake carries the decision. hactl status names the nodes and what
each changed.`,
		Args: exactArgs(1, "a VOLUME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if discard == "" {
				return usageErrorf("--discard NODE is required: the node whose changes are thrown away")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			plan, err := api.NewClient(g.socket).Volume(ctx, api.VolumeRequest{Volume: args[0], Action: "resolve", Discard: discard})
			if err != nil {
				return agentError(err)
			}
			return writePlan(cmd.OutOrStdout(), plan, asJSON)
		},
	}
	cmd.Flags().StringVar(&discard, "discard", "", "the node whose changes are discarded")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// newVerifyCmd is "hactl volume verify VOLUME [--wait]".
func newVerifyCmd(g *globals) *cobra.Command {
	var wait, asJSON bool
	cmd := &cobra.Command{
		Use:   "verify VOLUME [--wait]",
		Short: "Compare this node's copy of a volume with the peer's, online",
		Long: `Start an online verify of VOLUME: this node hashes its copy range by range and
the connected peer compares each with its own, while the volume stays in
use. Ranges that differ are marked out of sync on both nodes and resynced
from the Primary as soon as the verify ends. hactl status shows the
progress; --wait waits for the end and exits 1 when differences were found.`,
		Args: exactArgs(1, "a VOLUME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := api.NewClient(g.socket)
			ctx := cmd.Context()
			plan, err := c.Volume(ctx, api.VolumeRequest{Volume: args[0], Action: "verify"})
			if err != nil {
				return agentError(err)
			}
			if !wait {
				return writePlan(cmd.OutOrStdout(), plan, asJSON)
			}
			for {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(500 * time.Millisecond):
				}
				st, err := c.Status(ctx)
				if err != nil {
					return agentError(err)
				}
				var vf *api.VerifyStatus
				for _, vs := range st.Volumes {
					if vs.Name == args[0] {
						vf = vs.Verify
					}
				}
				if vf == nil || vf.Running {
					continue
				}
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					if err := enc.Encode(vf); err != nil {
						return err
					}
				}
				switch {
				case vf.Error != "":
					return fmt.Errorf("verify of %s stopped after %s: %s", args[0], bytesText(vf.Done), vf.Error)
				case vf.OutOfSync > 0:
					if !asJSON {
						fmt.Fprintf(cmd.OutOrStdout(), "verify of %s: %s checked, %s differ from the peer; they are being resynced\n",
							args[0], bytesText(vf.Done), bytesText(vf.OutOfSync))
					}
					return &exitError{code: 1}
				}
				if !asJSON {
					fmt.Fprintf(cmd.OutOrStdout(), "verify of %s: %s checked in %s, no differences\n",
						args[0], bytesText(vf.Done), vf.Finished.Sub(vf.Started).Round(time.Millisecond))
				}
				return nil
			}
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the verify to finish; exit 1 when differences were found")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

// volumeDisk finds this node's disk of volume in the cluster file.
func volumeDisk(g *globals, volume, node string) (agent.VolumeDisk, error) {
	c, diags := config.Load(g.configPath, config.Options{})
	if diags.HasErrors() {
		var text strings.Builder
		_ = diags.WriteText(&text, false)
		return agent.VolumeDisk{}, fmt.Errorf("%s is not valid ('hactl validate' shows the same):\n%s", g.configPath, strings.TrimRight(text.String(), "\n"))
	}
	if node != "" {
		if _, ok := c.Node(node); !ok {
			return agent.VolumeDisk{}, fmt.Errorf("no node %q in %s", node, g.configPath)
		}
	} else {
		hostname, _ := os.Hostname()
		n, err := config.LocalNode(c, machineAddrs(), hostname)
		if err != nil {
			return agent.VolumeDisk{}, fmt.Errorf("%w; name it with --node", err)
		}
		node = n
	}
	if _, ok := c.Volume(volume); !ok {
		return agent.VolumeDisk{}, usageErrorf("no volume %q in %s", volume, g.configPath)
	}
	return agent.FindVolumeDisk(c, volume, node)
}

// nodeID is a node's number in metadata: derived from its name, so it does
// not change when nodes are reordered or added in the cluster file.
func nodeID(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32()
}

// filesystemOn names the filesystem whose superblock is at the start of
// dev, or "" when it recognises none. It knows the common Linux ones.
func filesystemOn(dev io.ReaderAt) string {
	buf := make([]byte, 65536+72)
	n, _ := dev.ReadAt(buf, 0)
	buf = buf[:n]
	has := func(off int, magic string) bool {
		return len(buf) >= off+len(magic) && string(buf[off:off+len(magic)]) == magic
	}
	switch {
	case has(1080, "\x53\xef"):
		return "ext2/3/4"
	case has(0, "XFSB"):
		return "xfs"
	case has(65600, "_BHRfS_M"):
		return "btrfs"
	case has(4086, "SWAPSPACE2"):
		return "swap"
	case has(512, "LABELONE"):
		return "LVM physical volume"
	}
	return ""
}
