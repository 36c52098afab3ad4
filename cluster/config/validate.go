package config

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Validation is the second phase: checks that relate values to each other
// (references, duplicates, cross-block rules). It runs on the raw structs
// even when decoding found problems, so one run reports everything; each
// check skips values that were already reported as invalid.

type validator struct {
	d       *decoder
	f       *rawFile
	nodes   map[string]*rawNode // first declaration of each name
	vrrps   map[string]*rawVRRP
	volumes map[string]*rawVolume
}

func validate(d *decoder, f *rawFile) {
	v := &validator{
		d:       d,
		f:       f,
		nodes:   index(d, "node", "", f.Nodes),
		vrrps:   index(d, "vrrp instance", "", f.VRRP),
		volumes: index(d, "volume", "", f.Volumes),
	}
	index(d, "group", "", f.Groups)
	v.clusters()
	v.nodeAddresses()
	v.quorum()
	for _, r := range f.VRRP {
		v.vrrp(r)
	}
	v.vrids()
	v.virtualIPs()
	for _, vol := range f.Volumes {
		v.volume(vol)
	}
	v.volumePorts()
	v.replicationAddresses()
	for _, g := range f.Groups {
		v.group(g)
	}
	v.groupsShare()
}

// named is what index needs from a raw block.
type namedBlock interface{ lbl() label }

func (l label) lbl() label { return l }

// index maps names to their first block and reports later duplicates.
// scope, when not empty, says where the names must be unique.
func index[T namedBlock](d *decoder, what, scope string, blocks []T) map[string]T {
	m := make(map[string]T, len(blocks))
	for _, b := range blocks {
		lb := b.lbl()
		if first, dup := m[lb.Name]; dup {
			d.errorf(lb.NameRange, fmt.Sprintf("Duplicate %s %q", what, lb.Name),
				"A %s named %q is already declared%s at line %d; names must be unique. Rename or remove one of them.", what, lb.Name, scope, first.lbl().DefRange.Start.Line)
			continue
		}
		m[lb.Name] = b
	}
	return m
}

func keys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// node resolves a node reference and reports an unknown name at rng.
// what says where the name came from, for the detail.
func (v *validator) node(name string, rng hcl.Range, what string) (*rawNode, bool) {
	n, ok := v.nodes[name]
	if !ok {
		v.d.errorf(rng, fmt.Sprintf("Unknown node %q", name),
			"%s names node %q, but no node block has that name.%s Declared nodes: %s.",
			what, name, didYouMean(name, keys(v.nodes)), orNone(keys(v.nodes)))
	}
	return n, ok
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func (v *validator) clusters() {
	switch len(v.f.Clusters) {
	case 0:
		start := hcl.Pos{Line: 1, Column: 1}
		v.d.errorf(hcl.Range{Filename: v.f.Filename, Start: start, End: start}, "Missing cluster block",
			"A cluster file needs one cluster block, e.g.\n  cluster \"shop\" {\n    secret_file = \"/etc/hactl/secret\"\n  }")
	case 1:
	default:
		for _, c := range v.f.Clusters[1:] {
			v.d.errorf(c.DefRange, "Duplicate cluster block",
				"The file already has cluster %q at line %d; a file describes exactly one cluster. Remove this block or move it to its own file.",
				v.f.Clusters[0].Name, v.f.Clusters[0].DefRange.Start.Line)
		}
	}
	if len(v.f.Nodes) == 0 && len(v.f.Clusters) > 0 {
		v.d.errorf(v.f.Clusters[0].DefRange, "No nodes",
			"The cluster has no node blocks. Declare each machine, e.g. node \"alpha\" { address = \"192.0.2.11\" }.")
	}
	data := 0
	for _, n := range v.f.Nodes {
		if !n.Witness.V {
			data++
		}
	}
	if data == 1 && len(v.f.Clusters) > 0 {
		v.d.warnf(v.f.Clusters[0].DefRange, "Only one data node",
			"Only one node can hold virtual IPs and data, so nothing can fail over. Add a second node.")
	}
}

// nodeAddresses reports an address used by two nodes.
func (v *validator) nodeAddresses() {
	type use struct {
		node string
		line int
	}
	seen := make(map[netip.Addr]use)
	for _, n := range v.f.Nodes {
		for _, a := range []value[netip.Addr]{n.Address, n.ReplicationAddress} {
			if !a.Set || a.Bad {
				continue
			}
			if first, dup := seen[a.V]; dup && first.node != n.Name {
				v.d.errorf(a.Range, "Duplicate node address",
					"%s is already an address of node %q (line %d); every node needs its own addresses.", a.V, first.node, first.line)
				continue
			}
			seen[a.V] = use{n.Name, a.Range.Start.Line}
		}
		if n.Witness.V && n.ReplicationAddress.Set {
			v.d.warnf(n.ReplicationAddress.Range, "Unused replication address",
				"node %q is a witness and holds no data, so it never uses replication_address. Remove it.", n.Name)
		}
	}
}

func (v *validator) quorum() {
	if len(v.f.Clusters) == 0 {
		return
	}
	q := v.f.Clusters[0].Quorum
	if !q.Set || q.Bad {
		return
	}
	voters := len(v.nodes)
	switch {
	case q.V == QuorumMajority && voters < 3:
		v.d.errorf(q.Range, "Majority quorum needs three voters",
			"quorum = \"majority\" needs at least 3 voting nodes and this cluster has %d: losing any node would stop it. Add a witness node (witness = true) or use \"two_node\" (or \"auto\").", voters)
	case q.V == QuorumTwoNode && voters != 2:
		v.d.errorf(q.Range, "two_node quorum needs exactly two nodes",
			"quorum = \"two_node\" is the rule for a cluster of two nodes without a witness; this cluster has %d voters. Use \"majority\" (or \"auto\").", voters)
	}
}

// Advert interval limits of the two VRRP versions.
const (
	maxAdvertV2 = 255 * time.Second            // 8-bit seconds
	maxAdvertV3 = 4095 * 10 * time.Millisecond // 12-bit centiseconds
)

func (v *validator) vrrp(r *rawVRRP) {
	what := fmt.Sprintf("vrrp %q", r.Name)
	for _, e := range r.Priority.Entries {
		if n, ok := v.node(e.Key, e.KeyRange, what+" priority"); ok && n.Witness.V {
			v.d.errorf(e.KeyRange, "Witness with a priority",
				"node %q is a witness: it votes in quorum but never holds virtual IPs. Remove it from priority.", e.Key)
		}
	}
	for _, e := range r.UnicastSource.Entries {
		if _, ok := v.node(e.Key, e.KeyRange, what+" unicast_source"); ok {
			if _, runs := r.Priority.lookup(e.Key); !runs && !r.Priority.Bad {
				v.d.warnf(e.KeyRange, "Unicast source of a node that does not run the instance",
					"node %q has no priority in %s, so it never sends its adverts. Remove it from unicast_source or give it a priority.", e.Key, what)
			}
		}
	}
	if r.UnicastSource.Set && len(r.UnicastPeers.Items) == 0 && !r.UnicastPeers.Bad {
		v.d.warnf(r.UnicastSource.Range, "unicast_source without unicast_peers",
			"Adverts go to multicast 224.0.0.18 when unicast_peers is empty, so unicast_source has no effect. Add unicast_peers or remove it.")
	}
	peers := make(map[netip.Addr]int)
	for _, p := range r.UnicastPeers.Items {
		if line, dup := peers[p.V]; dup {
			v.d.errorf(p.Range, "Duplicate unicast peer", "%s is already listed (line %d); list each peer once.", p.V, line)
		}
		peers[p.V] = p.Range.Start.Line
	}

	if r.Version.usable() && r.AdvertInterval.usable() {
		iv := r.AdvertInterval
		rng := iv.Range
		if !iv.Set {
			rng = r.Version.Range
		}
		switch r.Version.V {
		case 2:
			if iv.V%time.Second != 0 {
				v.d.errorf(rng, "Advert interval not in whole seconds",
					"VRRPv2 carries the advert interval in whole seconds; %s cannot be sent (keepalived would round it). Use e.g. \"1s\", or version = 3 for sub-second adverts.", iv.V)
			} else if iv.V > maxAdvertV2 {
				v.d.errorf(rng, "Advert interval too long", "VRRPv2 allows at most %s; got %s.", maxAdvertV2, iv.V)
			}
		case 3:
			if iv.V%(10*time.Millisecond) != 0 {
				v.d.errorf(rng, "Advert interval not in centiseconds",
					"VRRPv3 carries the advert interval in units of 10ms; %s is not a multiple of 10ms. Use e.g. \"100ms\".", iv.V)
			} else if iv.V > maxAdvertV3 {
				v.d.errorf(rng, "Advert interval too long", "VRRPv3 allows at most %s; got %s.", maxAdvertV3, iv.V)
			}
		}
	}
	if r.Version.usable() && r.Version.V == 3 {
		if r.AuthPass.Set && r.AuthPass.usable() && r.AuthPass.V != "" {
			v.d.errorf(r.AuthPass.Range, "auth_pass needs VRRPv2",
				"VRRPv3 has no authentication field (RFC 5798 removed it). Remove auth_pass, or set version = 2 to talk to v2 routers that use PASS authentication.")
		}
	}
	if r.Version.usable() && r.Version.V == 2 && r.V3PseudoHeader.Set {
		v.d.warnf(r.V3PseudoHeader.Range, "Setting has no effect with VRRPv2",
			"v3_checksum_pseudo_header only changes the VRRPv3 checksum. Remove it.")
	}
	if r.PreemptDelay.Set && r.PreemptDelay.V > 0 && r.Preempt.usable() && !r.Preempt.V {
		v.d.warnf(r.PreemptDelay.Range, "preempt_delay has no effect without preempt",
			"preempt = false never takes over from a lower priority, so there is nothing to delay. Remove preempt_delay or set preempt = true.")
	}
	index(v.d, "check", " in "+what, r.Checks)
}

// vrids reports two instances with one virtual router ID on one interface.
func (v *validator) vrids() {
	type key struct {
		iface string
		vrid  int
	}
	seen := make(map[key]*rawVRRP)
	for _, r := range v.f.VRRP {
		if !r.Interface.Set || r.Interface.Bad || !r.VRID.Set || r.VRID.Bad {
			continue
		}
		k := key{r.Interface.V, r.VRID.V}
		if first, dup := seen[k]; dup {
			v.d.errorf(r.VRID.Range, "Duplicate virtual router ID",
				"vrrp %q uses virtual_router_id %d on %q, like vrrp %q (line %d). Routers on a segment tell instances apart by this ID; pick another number.",
				r.Name, r.VRID.V, r.Interface.V, first.Name, first.DefRange.Start.Line)
			continue
		}
		seen[k] = r
	}
}

// virtualIPs reports a VIP claimed twice and VIPs on one interface that
// disagree about its subnet. A /32 is a host address routed to the node
// and may sit on any interface.
func (v *validator) virtualIPs() {
	type ref struct {
		vip  netip.Prefix
		inst string
		line int
	}
	owner := make(map[netip.Addr]ref)
	subnet := make(map[string]ref)
	for _, r := range v.f.VRRP {
		for _, it := range r.VirtualIPs.Items {
			a := it.V.Addr()
			if first, dup := owner[a]; dup {
				v.d.errorf(it.Range, "Duplicate virtual IP",
					"%s is already a virtual IP of vrrp %q (line %d); an address can move with one instance only.", a, first.inst, first.line)
				continue
			}
			owner[a] = ref{it.V, r.Name, it.Range.Start.Line}
			if it.V.Bits() == 32 || !r.Interface.Set || r.Interface.Bad {
				continue
			}
			first, known := subnet[r.Interface.V]
			if !known {
				subnet[r.Interface.V] = ref{it.V, r.Name, it.Range.Start.Line}
				continue
			}
			want := first.vip.Masked()
			switch {
			case want.Contains(a) && it.V.Bits() != want.Bits():
				v.d.errorf(it.Range, "Inconsistent prefix length",
					"%s says the subnet of %q is /%d, but %s (vrrp %q, line %d) says /%d. Every virtual IP on an interface carries the interface's subnet length; make them agree.",
					it.V, r.Interface.V, it.V.Bits(), first.vip, first.inst, first.line, want.Bits())
			case !want.Contains(a):
				v.d.errorf(it.Range, "Virtual IP outside the interface's subnet",
					"%s is not in %s, the subnet of %q given by %s (vrrp %q, line %d). Fix the address or prefix length, or write it as /32 if it is routed to the node.",
					it.V, want, r.Interface.V, first.vip, first.inst, first.line)
			}
		}
	}
}

func (v *validator) volume(vol *rawVolume) {
	what := fmt.Sprintf("volume %q", vol.Name)
	for _, e := range vol.Disk.Entries {
		if n, ok := v.node(e.Key, e.KeyRange, what+" disk"); ok && n.Witness.V {
			v.d.errorf(e.KeyRange, "Witness with a disk",
				"node %q is a witness and holds no data. Remove it from disk, or make it a data node (remove witness = true).", e.Key)
		}
	}
	if vol.Disk.Set && !vol.Disk.Bad && len(vol.Disk.Entries) < 2 {
		v.d.errorf(vol.Disk.Range, "Volume needs two disks",
			"%s has a disk on %s only; replication needs a disk on two nodes, e.g. disk = { alpha = \"/dev/vg0/data\", bravo = \"/dev/vg0/data\" }.", what, orNone(diskNodes(vol)))
	}
	if !vol.MetaInternal {
		for _, e := range vol.MetaMap.Entries {
			if _, ok := v.node(e.Key, e.KeyRange, what+" meta"); !ok {
				continue
			}
			disk, has := vol.Disk.lookup(e.Key)
			switch {
			case !has && !vol.Disk.Bad:
				v.d.errorf(e.KeyRange, "Metadata for a node without a disk",
					"node %q has no disk in %s, so it has no metadata either. Remove it from meta or add its disk.", e.Key, what)
			case has && disk.V == e.V:
				v.d.errorf(e.Range, "Metadata path is the disk",
					"The metadata file of node %q is its backing disk %s. Use meta = \"internal\" to keep metadata at the end of the disk, or a separate file.", e.Key, e.V)
			}
		}
		if !vol.MetaMap.Bad {
			for _, e := range vol.Disk.Entries {
				if _, known := v.nodes[e.Key]; !known {
					continue // reported with the disk
				}
				if _, ok := vol.MetaMap.lookup(e.Key); !ok {
					v.d.errorf(vol.MetaMap.Range, "Missing metadata path",
						"node %q has a disk in %s but no entry in meta. Add %s = \"/var/lib/hactl/%s.meta\" (or use meta = \"internal\").", e.Key, what, e.Key, vol.Name)
				}
			}
		}
	}

	rs := vol.Resync
	// Only a min_rate written in the file can conflict: the default yields
	// to a lower max_rate (the engine holds the lower of the two).
	if rs.MinRate.Set && rs.MinRate.usable() && rs.MaxRate.usable() && rs.MaxRate.V > 0 && rs.MinRate.V > rs.MaxRate.V {
		rng := rs.MinRate.Range
		if !rs.MinRate.Set {
			rng = rs.MaxRate.Range
		}
		v.d.errorf(rng, "min_rate above max_rate",
			"The resync controller keeps at least min_rate (%s/s) and at most max_rate (%s/s). Lower min_rate or raise max_rate.", rs.MinRate.V, rs.MaxRate.V)
	}
	if rs.Rate.usable() && rs.Rate.V > 0 && (rs.MinRate.Set || rs.MaxRate.Set) {
		rng := rs.MinRate.Range
		if !rs.MinRate.Set {
			rng = rs.MaxRate.Range
		}
		v.d.warnf(rng, "Dynamic resync limits with a fixed rate",
			"rate = %q fixes the resync rate, so min_rate and max_rate are ignored. Remove rate (or set it to \"0\") to use the dynamic controller.", rs.Rate.V)
	}

	a0 := vol.SplitBrain.After0Pri
	if a0.Set && a0.usable() && strings.HasPrefix(a0.V, discardNodePrefix) {
		name := strings.TrimPrefix(a0.V, discardNodePrefix)
		if _, ok := v.node(name, a0.Range, what+" after_0pri"); ok && !vol.Disk.Bad {
			if _, has := vol.Disk.lookup(name); !has {
				v.d.errorf(a0.Range, fmt.Sprintf("Node %q has no disk in this volume", name),
					"after_0pri = %q discards the data of node %q, but it holds no disk of %s. Name one of: %s.", a0.V, name, what, orNone(diskNodes(vol)))
			}
		}
	}
}

func diskNodes(vol *rawVolume) []string {
	var out []string
	for _, e := range vol.Disk.Entries {
		out = append(out, e.Key)
	}
	return out
}

// volumePorts reports two volumes on one replication port.
func (v *validator) volumePorts() {
	seen := make(map[int]*rawVolume)
	for _, vol := range v.f.Volumes {
		if !vol.Port.Set || vol.Port.Bad {
			continue
		}
		if first, dup := seen[vol.Port.V]; dup {
			v.d.errorf(vol.Port.Range, "Duplicate port",
				"volume %q already replicates on port %d (line %d); each volume needs its own port.", first.Name, vol.Port.V, first.Port.Range.Start.Line)
			continue
		}
		seen[vol.Port.V] = vol
	}
}

// replicationAddresses reports data nodes that hold a disk but have no
// replication network address.
func (v *validator) replicationAddresses() {
	for _, n := range v.f.Nodes {
		if v.nodes[n.Name] != n || n.Witness.V || n.ReplicationAddress.Set {
			continue
		}
		var vols []string
		line := 0
		for _, vol := range v.f.Volumes {
			if e, ok := vol.Disk.lookup(n.Name); ok {
				vols = append(vols, fmt.Sprintf("%q", vol.Name))
				if line == 0 {
					line = e.KeyRange.Start.Line
				}
			}
		}
		if len(vols) == 0 {
			continue
		}
		v.d.errorf(n.DefRange, "Missing replication address",
			"node %q holds a disk of %s %s (line %d) and needs replication_address: its address on the replication network, e.g. replication_address = \"198.51.100.11\". With a single network, repeat address.",
			n.Name, plural(len(vols), "volume", "volumes")[2:], strings.Join(vols, ", "), line)
	}
}

func (v *validator) group(g *rawGroup) {
	what := fmt.Sprintf("group %q", g.Name)
	var inst *rawVRRP
	if g.VRRP.Set && g.VRRP.usable() {
		var ok bool
		if inst, ok = v.vrrps[g.VRRP.V]; !ok {
			v.d.errorf(g.VRRP.Range, fmt.Sprintf("Unknown vrrp instance %q", g.VRRP.V),
				"%s follows vrrp %q, but no vrrp block has that name.%s Declared instances: %s.",
				what, g.VRRP.V, didYouMean(g.VRRP.V, keys(v.vrrps)), orNone(keys(v.vrrps)))
		}
	}
	var vol *rawVolume
	if g.Volume.Set && g.Volume.usable() {
		var ok bool
		if vol, ok = v.volumes[g.Volume.V]; !ok {
			v.d.errorf(g.Volume.Range, fmt.Sprintf("Unknown volume %q", g.Volume.V),
				"%s uses volume %q, but no volume block has that name.%s Declared volumes: %s.",
				what, g.Volume.V, didYouMean(g.Volume.V, keys(v.volumes)), orNone(keys(v.volumes)))
		}
	}
	if g.Filesystem != nil && !g.Volume.Set && !g.Volume.Bad {
		v.d.errorf(g.Filesystem.DefRange, "Filesystem without a volume",
			"%s mounts a filesystem but has no volume to mount. Add volume = \"NAME\" to the group, or remove the filesystem block.", what)
	}
	// Every node that can become Master of the instance must be able to
	// promote the volume there.
	if inst != nil && vol != nil && !vol.Disk.Bad && !inst.Priority.Bad {
		for _, e := range inst.Priority.Entries {
			n, known := v.nodes[e.Key]
			if !known || n.Witness.V {
				continue // reported with the priority
			}
			if _, has := vol.Disk.lookup(e.Key); !has {
				v.d.errorf(g.Volume.Range, fmt.Sprintf("No disk on node %q", e.Key),
					"%s runs where vrrp %q is Master, and node %q has a priority there (line %d), but volume %q has no disk on it: the group could not start there. Add %s to the volume's disk, or remove it from the instance's priority.",
					what, inst.Name, e.Key, e.KeyRange.Start.Line, vol.Name, e.Key)
			}
		}
	}
	if g.FailureTimeout.Set && g.FailureTimeout.V > 0 && g.MigrationThreshold.usable() && g.MigrationThreshold.V == 0 {
		v.d.warnf(g.FailureTimeout.Range, "failure_timeout has no effect",
			"Failures are counted only with a migration_threshold; with 0 the group never moves because of them. Set migration_threshold or remove failure_timeout.")
	}
	index(v.d, "resource", " in "+what, g.Resources)
}

// groupsShare reports a volume or mountpoint used by two groups.
func (v *validator) groupsShare() {
	vols := make(map[string]*rawGroup)
	mounts := make(map[string]*rawGroup)
	for _, g := range v.f.Groups {
		if g.Volume.Set && g.Volume.usable() {
			if first, dup := vols[g.Volume.V]; dup {
				v.d.errorf(g.Volume.Range, "Volume used by two groups",
					"group %q already uses volume %q (line %d); a volume is promoted by one group. Put the resources in one group, or give this group its own volume.",
					first.Name, g.Volume.V, first.Volume.Range.Start.Line)
			} else {
				vols[g.Volume.V] = g
			}
		}
		if fs := g.Filesystem; fs != nil && fs.Mountpoint.Set && fs.Mountpoint.usable() {
			mp := strings.TrimRight(fs.Mountpoint.V, "/")
			if first, dup := mounts[mp]; dup {
				v.d.errorf(fs.Mountpoint.Range, "Duplicate mountpoint",
					"group %q already mounts on %s (line %d); use another directory.", first.Name, fs.Mountpoint.V, first.Filesystem.Mountpoint.Range.Start.Line)
			} else {
				mounts[mp] = g
			}
		}
	}
}
