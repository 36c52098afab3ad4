package agent

import (
	"fmt"
	"os"

	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/replicate/meta"
)

// VolumeDisk is one node's disk of a volume as the cluster file gives it.
type VolumeDisk struct {
	Volume   config.Volume
	Node     string
	Disk     string // the backing device or file
	MetaPath string // where the metadata lives: Disk itself when internal
}

// FindVolumeDisk finds node's disk of the named volume in c.
func FindVolumeDisk(c *config.Cluster, volume, node string) (VolumeDisk, error) {
	v, ok := c.Volume(volume)
	if !ok {
		return VolumeDisk{}, fmt.Errorf("no volume %q in %s", volume, c.File)
	}
	disk, ok := v.Disk[node]
	if !ok {
		return VolumeDisk{}, fmt.Errorf("node %q holds no disk of volume %q (its disk map names the nodes that do)", node, volume)
	}
	d := VolumeDisk{Volume: v, Node: node, Disk: disk, MetaPath: disk}
	if !v.MetaInternal {
		p, ok := v.Meta[node]
		if !ok {
			return VolumeDisk{}, fmt.Errorf("volume %q has no metadata file for node %q in its meta map", volume, node)
		}
		d.MetaPath = p
	}
	return d, nil
}

// Open opens the disk (and the metadata file when external) and returns
// the data file and the meta.Config for it; closeAll closes both. create
// allows a missing external metadata file.
func (d VolumeDisk) Open(create bool) (data *os.File, mc meta.Config, closeAll func(), err error) {
	data, err = os.OpenFile(d.Disk, os.O_RDWR, 0)
	if err != nil {
		return nil, meta.Config{}, nil, fmt.Errorf("volume %s on %s: disk: %w", d.Volume.Name, d.Node, err)
	}
	size, err := meta.BackingSize(data)
	if err != nil {
		data.Close()
		return nil, meta.Config{}, nil, fmt.Errorf("volume %s on %s: %w", d.Volume.Name, d.Node, err)
	}
	if d.Volume.MetaInternal {
		return data, meta.Config{Device: data, Internal: true, BackingSize: size}, func() { data.Close() }, nil
	}
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	mf, err := os.OpenFile(d.MetaPath, flags, 0o600)
	if err != nil {
		data.Close()
		return nil, meta.Config{}, nil, fmt.Errorf("volume %s on %s: metadata file: %w", d.Volume.Name, d.Node, err)
	}
	return data, meta.Config{Device: mf, BackingSize: size}, func() { mf.Close(); data.Close() }, nil
}
