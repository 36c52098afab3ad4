package main

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

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
				return usageErrorf("unknown volume command %q (want create-md or dump-md)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCreateMDCmd(g), newDumpMDCmd(g))
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
			dev, closeAll, err := d.open(true)
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
						d.volume.Name, d.node, d.disk, fs)
				}
			}
			m, err := meta.Create(dev, meta.CreateOptions{
				NodeID:     nodeID(d.node),
				NodeName:   d.node,
				VolumeName: d.volume.Name,
				Force:      force,
			})
			if err != nil {
				if errors.Is(err, meta.ErrExists) {
					return fmt.Errorf("%w\nTo replace it (this forgets the volume's history on this node): hactl volume create-md %s --force", err, d.volume.Name)
				}
				return fmt.Errorf("volume %s on %s: %w", d.volume.Name, d.node, err)
			}
			l := m.Layout()
			fmt.Fprintf(cmd.OutOrStdout(), "volume %s on %s: metadata created on %s (%s); data size %d bytes, volume UUID %s\n",
				d.volume.Name, d.node, d.metaPath, map[bool]string{true: "internal", false: "external"}[l.Internal],
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
			dev, closeAll, err := d.open(false)
			if err != nil {
				return err
			}
			defer closeAll()
			m, err := meta.Open(dev)
			if err != nil {
				return fmt.Errorf("volume %s on %s (%s): %w", d.volume.Name, d.node, d.metaPath, err)
			}
			return m.Dump(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "act as this node of the cluster file (default: this machine)")
	return cmd
}

// volumeDiskRef is one node's disk of a volume as the cluster file gives it.
type volumeDiskRef struct {
	volume   config.Volume
	node     string
	disk     string // the backing device or file
	metaPath string // where the metadata lives: disk itself when internal
}

// volumeDisk finds this node's disk of volume in the cluster file.
func volumeDisk(g *globals, volume, node string) (volumeDiskRef, error) {
	c, diags := config.Load(g.configPath, config.Options{})
	if diags.HasErrors() {
		var text strings.Builder
		_ = diags.WriteText(&text, false)
		return volumeDiskRef{}, fmt.Errorf("%s is not valid ('hactl validate' shows the same):\n%s", g.configPath, strings.TrimRight(text.String(), "\n"))
	}
	if node != "" {
		if _, ok := c.Node(node); !ok {
			return volumeDiskRef{}, fmt.Errorf("no node %q in %s", node, g.configPath)
		}
	} else {
		hostname, _ := os.Hostname()
		n, err := config.LocalNode(c, machineAddrs(), hostname)
		if err != nil {
			return volumeDiskRef{}, fmt.Errorf("%w; name it with --node", err)
		}
		node = n
	}
	v, ok := c.Volume(volume)
	if !ok {
		return volumeDiskRef{}, usageErrorf("no volume %q in %s", volume, g.configPath)
	}
	disk, ok := v.Disk[node]
	if !ok {
		return volumeDiskRef{}, fmt.Errorf("node %q holds no disk of volume %q (its disk map names the nodes that do)", node, volume)
	}
	ref := volumeDiskRef{volume: v, node: node, disk: disk, metaPath: disk}
	if !v.MetaInternal {
		p, ok := v.Meta[node]
		if !ok {
			return volumeDiskRef{}, fmt.Errorf("volume %q has no metadata file for node %q in its meta map", volume, node)
		}
		ref.metaPath = p
	}
	return ref, nil
}

// open opens the disk (and the metadata file when external) and returns
// the meta.Config for it. create allows a missing external metadata file.
func (r volumeDiskRef) open(create bool) (meta.Config, func(), error) {
	data, err := os.OpenFile(r.disk, os.O_RDWR, 0)
	if err != nil {
		return meta.Config{}, nil, fmt.Errorf("volume %s on %s: disk: %w", r.volume.Name, r.node, err)
	}
	size, err := meta.BackingSize(data)
	if err != nil {
		data.Close()
		return meta.Config{}, nil, fmt.Errorf("volume %s on %s: %w", r.volume.Name, r.node, err)
	}
	if r.volume.MetaInternal {
		return meta.Config{Device: data, Internal: true, BackingSize: size}, func() { data.Close() }, nil
	}
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	mf, err := os.OpenFile(r.metaPath, flags, 0o600)
	if err != nil {
		data.Close()
		return meta.Config{}, nil, fmt.Errorf("volume %s on %s: metadata file: %w", r.volume.Name, r.node, err)
	}
	return meta.Config{Device: mf, BackingSize: size}, func() { mf.Close(); data.Close() }, nil
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
