package config

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Lookups on the model. Names are unique per block type (validated), so
// each returns the one match.

// Node returns the node called name.
func (c *Cluster) Node(name string) (Node, bool) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// VRRPInstance returns the vrrp instance called name.
func (c *Cluster) VRRPInstance(name string) (VRRPInstance, bool) {
	for _, v := range c.VRRP {
		if v.Name == name {
			return v, true
		}
	}
	return VRRPInstance{}, false
}

// Volume returns the volume called name.
func (c *Cluster) Volume(name string) (Volume, bool) {
	for _, v := range c.Volumes {
		if v.Name == name {
			return v, true
		}
	}
	return Volume{}, false
}

// Group returns the group called name.
func (c *Cluster) Group(name string) (Group, bool) {
	for _, g := range c.Groups {
		if g.Name == name {
			return g, true
		}
	}
	return Group{}, false
}

// Voters returns the number of nodes that vote in quorum: every node,
// witnesses included.
func (c *Cluster) Voters() int { return len(c.Nodes) }

// EffectiveQuorum resolves QuorumAuto: majority with three or more
// voters, two_node with two.
func (c *Cluster) EffectiveQuorum() QuorumMode {
	if c.Quorum != QuorumAuto {
		return c.Quorum
	}
	if c.Voters() >= 3 {
		return QuorumMajority
	}
	return QuorumTwoNode
}

// Summary describes the cluster in one line:
//
//	cluster "shop": 3 nodes (1 witness), 1 vrrp instance, 1 volume, 1 group
func (c *Cluster) Summary() string {
	witnesses := 0
	for _, n := range c.Nodes {
		if n.Witness {
			witnesses++
		}
	}
	nodes := plural(len(c.Nodes), "node", "nodes")
	if witnesses > 0 {
		nodes += " (" + plural(witnesses, "witness", "witnesses") + ")"
	}
	return fmt.Sprintf("cluster %q: %s, %s, %s, %s", c.Name, nodes,
		plural(len(c.VRRP), "vrrp instance", "vrrp instances"),
		plural(len(c.Volumes), "volume", "volumes"),
		plural(len(c.Groups), "group", "groups"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Source returns the unicast source address node uses for this instance;
// invalid when unset (use the interface's primary address).
func (v VRRPInstance) Source(node string) netip.Addr {
	return v.UnicastSource[node]
}

// HasDisk reports whether node holds a disk of the volume.
func (v Volume) HasDisk(node string) bool {
	_, ok := v.Disk[node]
	return ok
}

// ErrNotANode is returned by LocalNode when no node matches this machine.
var ErrNotANode = errors.New("this machine is not a node of the cluster")

// LocalNode finds the node this machine is: the node whose address or
// replication_address is one of addrs, else the node named like hostname
// (or its first label). It fails when none or several match.
func LocalNode(c *Cluster, addrs []netip.Addr, hostname string) (string, error) {
	mine := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		mine[a.Unmap().WithZone("")] = true
	}
	var byAddr []string
	for _, n := range c.Nodes {
		if (n.Address.IsValid() && mine[n.Address]) || (n.ReplicationAddress.IsValid() && mine[n.ReplicationAddress]) {
			byAddr = append(byAddr, n.Name)
		}
	}
	switch len(byAddr) {
	case 1:
		return byAddr[0], nil
	case 0:
	default:
		sort.Strings(byAddr)
		return "", fmt.Errorf("this machine has the addresses of several nodes (%s) of cluster %q; pass --node NAME", strings.Join(byAddr, ", "), c.Name)
	}
	short, _, _ := strings.Cut(hostname, ".")
	for _, cand := range []string{hostname, short} {
		if cand == "" {
			continue
		}
		if n, ok := c.Node(cand); ok {
			return n.Name, nil
		}
	}
	return "", fmt.Errorf("%w %q: none of its addresses is a node address and no node is named %q; pass --node NAME", ErrNotANode, c.Name, hostname)
}
