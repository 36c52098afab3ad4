// Package lab builds a whole hactl cluster on one Linux host: a network
// namespace per node plus a client, two bridged networks inside a
// lab-owned switch namespace, a sparse disk file per data node, a
// persistent mount namespace per node and a generated cluster file. Tests,
// `make demo` and `hactl lab` use it to rehearse a failover.
//
// Nothing the lab creates touches the host's own network: every interface
// lives in a namespace the lab made, and addresses come only from the
// documentation ranges 192.0.2.0/24 and 198.51.100.0/24.
//
// The pure parts (names, addresses, the plan recorded in lab.json, the
// cluster file) live in files without an OS suffix; everything that makes
// syscalls lives in *_linux.go.
package lab

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
)

// Defaults for Options fields left zero.
const (
	DefaultName      = "lab"
	DefaultStateRoot = "/run/hactl-lab"
	DefaultDiskSize  = 256 << 20
	DefaultNodes     = 2
)

// Fixed names and numbers of the lab topology.
const (
	// NetnsPrefix starts every network namespace name the lab creates:
	// "hactl-<lab>-<node>". Down finds leftovers by it.
	NetnsPrefix = "hactl-"
	// WitnessName and ClientName are the non-data members.
	WitnessName = "witness"
	ClientName  = "client"
	// switchRole is the namespace suffix of the namespace holding the bridges.
	switchRole = "sw"

	maxNameLen    = 8 // keeps derived names short (see ValidateName)
	clientHost    = 50
	firstHost     = 11 // the Nth node gets .10+N
	stateFileName = "lab.json"
)

// VirtualIP is the address of VRRP instance VI_1 in the generated cluster file.
var VirtualIP = netip.MustParsePrefix("192.0.2.100/24")

var (
	serviceNet     = netip.MustParsePrefix("192.0.2.0/24")
	replicationNet = netip.MustParsePrefix("198.51.100.0/24")
)

// dataNodeNames are the data nodes in address order.
var dataNodeNames = []string{"alpha", "bravo", "charlie"}

// Sentinel errors callers branch on.
var (
	ErrExists   = errors.New("already exists")
	ErrNotFound = errors.New("not found")
	ErrNotRoot  = errors.New("hactl lab needs root (it creates network namespaces)")
)

// Options selects what Up builds. Zero fields take the defaults.
type Options struct {
	Name      string // [a-z0-9-], at most 8 characters; default "lab"
	Nodes     int    // data nodes, 2 or 3; default 2
	Witness   bool   // add a diskless witness node
	DiskSize  int64  // bytes per data node disk; default 256 MiB
	StateRoot string // absolute directory holding every lab's state; default /run/hactl-lab
	// NoGroup leaves the resource group out of the cluster file, for tests
	// of VRRP or replicated volumes alone (a group would let the
	// orchestrator promote and mount on its own).
	NoGroup bool
}

// Role says what a lab member is.
type Role string

// Roles of lab members.
const (
	RoleData    Role = "data"
	RoleWitness Role = "witness"
	RoleClient  Role = "client"
)

// Network is one bridged segment of the lab.
type Network struct {
	Name   string       `json:"name"`   // "service" or "replication"
	Bridge string       `json:"bridge"` // bridge name inside the switch namespace
	Prefix netip.Prefix `json:"prefix"`
}

// Link is one veth pair between the switch namespace and a node.
type Link struct {
	Network   string       `json:"network"`
	SwitchEnd string       `json:"switch_end"` // name inside the switch namespace
	NodeEnd   string       `json:"node_end"`   // name inside the node: eth0 or eth1
	Address   netip.Prefix `json:"address"`
}

// Node is one member namespace of the lab: a data node, the witness or the client.
type Node struct {
	Name    string `json:"name"`
	Role    Role   `json:"role"`
	Netns   string `json:"netns"`    // name under /run/netns
	MountNS string `json:"mount_ns"` // file the persistent mount namespace is pinned on
	Links   []Link `json:"links"`
	// Directories bind-mounted inside the node on /etc/hactl and /var/lib/hactl.
	EtcDir string `json:"etc_dir"`
	LibDir string `json:"lib_dir"`
	Disk   string `json:"disk,omitempty"` // data nodes only
}

// Address is the node's service/cluster address (eth0).
func (n Node) Address() netip.Addr { return n.linkAddr("service") }

// ReplicationAddress is the node's replication address (eth1), or the
// zero Addr when the node has none.
func (n Node) ReplicationAddress() netip.Addr { return n.linkAddr("replication") }

func (n Node) linkAddr(network string) netip.Addr {
	for _, l := range n.Links {
		if l.Network == network {
			return l.Address.Addr()
		}
	}
	return netip.Addr{}
}

// Lab describes one lab: what Up planned and created. It is stored as
// lab.json in the lab's state directory so that Open, Status and Down work
// from a fresh process.
type Lab struct {
	Version     int          `json:"version"`
	Name        string       `json:"name"`
	StateRoot   string       `json:"state_root"`
	Dir         string       `json:"dir"`
	Switch      string       `json:"switch_netns"` // netns holding the bridges
	Networks    []Network    `json:"networks"`
	Nodes       []Node       `json:"nodes"` // data nodes, witness, then client
	NSDir       string       `json:"ns_dir"`
	ClusterFile string       `json:"cluster_file"`
	SecretFile  string       `json:"secret_file"`
	DiskSize    int64        `json:"disk_size"`
	VirtualIP   netip.Prefix `json:"virtual_ip"`
	NoGroup     bool         `json:"no_group,omitempty"`
}

// Node returns the member with the given name.
func (l *Lab) Node(name string) (Node, bool) {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// DataNodes returns the data nodes in order.
func (l *Lab) DataNodes() []Node {
	var out []Node
	for _, n := range l.Nodes {
		if n.Role == RoleData {
			out = append(out, n)
		}
	}
	return out
}

// Mount points every node namespace gets. They must exist in the host's
// file system, because a mount namespace shares the host's directories.
const (
	nodeRunDir = "/run/hactl"
	nodeEtcDir = "/etc/hactl"
	nodeLibDir = "/var/lib/hactl"
)

// nodeMountPoints lists the directories that must exist for the node mounts.
var nodeMountPoints = []string{nodeRunDir, nodeEtcDir, nodeLibDir}

// ValidateName checks a lab name: 1 to 8 characters of [a-z0-9-], not
// starting or ending with '-', so derived namespace names stay short and
// unambiguous.
func ValidateName(name string) error {
	if name == "" {
		return errors.New("lab name is empty")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("lab name %q is too long: at most %d characters", name, maxNameLen)
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return fmt.Errorf("lab name %q: only a-z, 0-9 and '-' are allowed", name)
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return fmt.Errorf("lab name %q must not start or end with '-'", name)
	}
	return nil
}

// memberNames returns every member name a lab can have, in address order.
func memberNames() []string {
	return append(append(append([]string(nil), dataNodeNames...), WitnessName), ClientName)
}

// CheckNodeName reports whether name can be a lab member at all.
func CheckNodeName(name string) error {
	for _, n := range memberNames() {
		if n == name {
			return nil
		}
	}
	return fmt.Errorf("unknown lab node %q: want one of %s", name, strings.Join(memberNames(), ", "))
}

// netnsName is the network namespace of one lab member.
func netnsName(lab, member string) string { return NetnsPrefix + lab + "-" + member }

// parseNetnsName splits a namespace name made by netnsName. Because lab
// names may contain '-', only known member suffixes are accepted: lab "a"
// must never claim "hactl-a-b-alpha" of lab "a-b".
func parseNetnsName(ns string) (lab, member string, ok bool) {
	rest, found := strings.CutPrefix(ns, NetnsPrefix)
	if !found {
		return "", "", false
	}
	for _, m := range append(memberNames(), switchRole) {
		if l, found := strings.CutSuffix(rest, "-"+m); found && ValidateName(l) == nil {
			return l, m, true
		}
	}
	return "", "", false
}

// hostAddr returns the address with the given last octet in a /24.
func hostAddr(p netip.Prefix, host int) netip.Prefix {
	a := p.Addr().As4()
	a[3] = byte(host)
	return netip.PrefixFrom(netip.AddrFrom4(a), p.Bits())
}

// switchEnd names the switch-side veth of a member on a network, e.g.
// "alpha-svc". It only has to be unique inside the lab's own switch
// namespace, so it needs no lab-name hash; the longest is 11 bytes,
// within IFNAMSIZ-1.
func switchEnd(member, network string) string { return member + "-" + network[:3] }

// plan turns options into the full description of a lab without touching
// the system.
func plan(opts Options) (*Lab, error) {
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if err := ValidateName(opts.Name); err != nil {
		return nil, err
	}
	if opts.Nodes == 0 {
		opts.Nodes = DefaultNodes
	}
	if opts.Nodes < 2 || opts.Nodes > len(dataNodeNames) {
		return nil, fmt.Errorf("a lab has 2 or 3 data nodes, not %d", opts.Nodes)
	}
	if opts.DiskSize == 0 {
		opts.DiskSize = DefaultDiskSize
	}
	if err := checkDiskSize(opts.DiskSize); err != nil {
		return nil, err
	}
	if opts.StateRoot == "" {
		opts.StateRoot = DefaultStateRoot
	}
	if err := checkStateRoot(opts.StateRoot); err != nil {
		return nil, err
	}
	root := filepath.Clean(opts.StateRoot)
	dir := filepath.Join(root, opts.Name)
	l := &Lab{
		Version:     1,
		Name:        opts.Name,
		StateRoot:   root,
		Dir:         dir,
		Switch:      netnsName(opts.Name, switchRole),
		NSDir:       filepath.Join(dir, "ns"),
		ClusterFile: filepath.Join(dir, "cluster.hcl"),
		SecretFile:  filepath.Join(dir, "secret"),
		DiskSize:    opts.DiskSize,
		NoGroup:     opts.NoGroup,
		VirtualIP:   VirtualIP,
		Networks: []Network{
			{Name: "service", Bridge: "br-svc", Prefix: serviceNet},
			{Name: "replication", Bridge: "br-rep", Prefix: replicationNet},
		},
	}
	members := append([]string(nil), dataNodeNames[:opts.Nodes]...)
	if opts.Witness {
		members = append(members, WitnessName)
	}
	members = append(members, ClientName)
	for i, m := range members {
		role := RoleData
		host := firstHost + i
		switch m {
		case WitnessName:
			role = RoleWitness
		case ClientName:
			role, host = RoleClient, clientHost
		}
		n := Node{
			Name:    m,
			Role:    role,
			Netns:   netnsName(l.Name, m),
			MountNS: filepath.Join(l.NSDir, m+".mnt"),
			EtcDir:  filepath.Join(dir, m, "etc"),
			LibDir:  filepath.Join(dir, m, "lib"),
			Links: []Link{{
				Network: "service", SwitchEnd: switchEnd(m, "service"), NodeEnd: "eth0",
				Address: hostAddr(serviceNet, host),
			}},
		}
		if role == RoleData {
			n.Links = append(n.Links, Link{
				Network: "replication", SwitchEnd: switchEnd(m, "replication"), NodeEnd: "eth1",
				Address: hostAddr(replicationNet, host),
			})
			n.Disk = filepath.Join(dir, m, "disk.img")
		}
		l.Nodes = append(l.Nodes, n)
	}
	return l, nil
}

// checkStateRoot refuses roots that would make generated paths ambiguous
// (relative, or unquotable in the cluster file).
func checkStateRoot(root string) error {
	if !filepath.IsAbs(root) {
		return fmt.Errorf("state root %q is not an absolute path", root)
	}
	if filepath.Clean(root) == "/" {
		return errors.New("state root must not be /")
	}
	for _, c := range root {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("state root %q contains a control character", root)
		}
	}
	return nil
}

const (
	minDiskSize = 1 << 20
	maxDiskSize = 1 << 40
)

func checkDiskSize(n int64) error {
	if n < minDiskSize || n > maxDiskSize {
		return fmt.Errorf("disk size %d is out of range: between 1M and 1T", n)
	}
	if n%4096 != 0 {
		return fmt.Errorf("disk size %d is not a multiple of 4096", n)
	}
	return nil
}

// ParseSize reads a byte count such as "256M", "1G", "512KiB" or "4096".
// Suffixes are binary (K = 1024) and case-insensitive.
func ParseSize(s string) (int64, error) {
	bad := fmt.Errorf("invalid size %q: want a number with an optional K, M, G or T suffix, e.g. 256M", s)
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, bad
	}
	upper := strings.ToUpper(t)
	// Accept "M", "MB" and "MiB" alike; a bare "B" or "iB" is not a unit.
	if u, ok := strings.CutSuffix(upper, "B"); ok && u != "" {
		upper = u
		if u, ok := strings.CutSuffix(upper, "I"); ok {
			if u == "" || !strings.ContainsAny(u[len(u)-1:], "KMGT") {
				return 0, bad
			}
			upper = u
		}
	}
	shift := 0
	switch upper[len(upper)-1] {
	case 'K':
		shift = 10
	case 'M':
		shift = 20
	case 'G':
		shift = 30
	case 'T':
		shift = 40
	}
	if shift > 0 {
		upper = upper[:len(upper)-1]
	}
	if upper == "" || len(upper) > 18 {
		return 0, bad
	}
	var n int64
	for _, c := range upper {
		if c < '0' || c > '9' {
			return 0, bad
		}
		n = n*10 + int64(c-'0')
	}
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n << shift, nil
}

func sortedKeys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
