// Package config reads the hactl cluster file: HCL decoded into raw
// structs, validated, and built into the immutable model in this file that
// the rest of the program uses. Nothing outside this package sees HCL.
//
// The model is plain data. Load returns a fresh *Cluster; callers treat it
// as read-only and share it freely between goroutines.
package config

import (
	"net/netip"
	"time"
)

// Cluster is one validated cluster file.
type Cluster struct {
	Name        string
	File        string        // path the file was read from
	SecretFile  string        // absolute path (relative paths resolve against File's directory)
	Quorum      QuorumMode    // as configured ("auto" stays QuorumAuto)
	StartupWait time.Duration // wait for the peer's state before starting groups (DRBD's wfc-timeout)

	Nodes   []Node // in file order
	VRRP    []VRRPInstance
	Volumes []Volume
	Groups  []Group
}

// QuorumMode selects how a node decides it may act alone.
type QuorumMode string

const (
	QuorumAuto     QuorumMode = "auto"     // majority with 3+ voters, two_node with 2
	QuorumMajority QuorumMode = "majority" // strict majority of voters; needs 3+ voters
	QuorumTwoNode  QuorumMode = "two_node" // a peer silent on every path is enough
)

// Node is one cluster member. A witness votes in quorum and holds no data.
type Node struct {
	Name               string
	Address            netip.Addr // cluster network: memberlist, API between nodes
	ReplicationAddress netip.Addr // replication network; invalid (zero) when unset
	Witness            bool
}

// VRRPInstance is one virtual router.
type VRRPInstance struct {
	Name           string
	Interface      string
	VRID           uint8 // 1..255
	Version        int   // 2 or 3
	AdvertInterval time.Duration
	// Priority per node name (1..255). Only nodes listed here run the
	// instance, and only they can become Master.
	Priority     map[string]uint8
	Preempt      bool
	PreemptDelay time.Duration
	VirtualIPs   []netip.Prefix // address plus the interface's subnet
	// TrackInterfaces are watched for carrier and admin state; see
	// TrackInterface.
	TrackInterfaces []TrackInterface
	UnicastPeers    []netip.Addr // empty: multicast to 224.0.0.18
	// UnicastSource is each node's source address for unicast adverts (the
	// file is the same on every node, so one address cannot serve them
	// all). A node without an entry uses the interface's primary address;
	// see Source.
	UnicastSource map[string]netip.Addr
	AuthPass      string // v2 PASS authentication; "" = none
	// V3PseudoHeader includes the IPv4 pseudo-header in the v3 checksum
	// (keepalived's default). False gives RFC 9568 / router behaviour.
	V3PseudoHeader  bool
	GARPCount       int           // gratuitous ARPs sent at once on takeover
	GARPRepeatDelay time.Duration // then GARPCount more after this delay (0 = no repeat)
	GARPRefresh     time.Duration // periodic refresh while Master (0 = off)
	VMAC            bool          // use a macvlan with 00:00:5e:00:01:VRID
	Checks          []Check
}

// TrackInterface is an interface a VRRP instance watches.
type TrackInterface struct {
	Name string
	// Weight is added to the priority while the interface is down (no
	// carrier or administratively down); 0 puts the instance in FAULT
	// instead, as for checks.
	Weight int
}

// CheckKind says which probe a Check runs.
type CheckKind string

const (
	CheckExec CheckKind = "exec"
	CheckTCP  CheckKind = "tcp"
	CheckHTTP CheckKind = "http"
	CheckDNS  CheckKind = "dns"
)

// Check is a health check that moves a VRRP instance's priority.
type Check struct {
	Name     string
	Kind     CheckKind
	Exec     []string // argv, no shell (CheckExec)
	Address  string   // host:port (CheckTCP), URL (CheckHTTP), server host:port (CheckDNS)
	Status   int      // expected HTTP status (CheckHTTP)
	Query    string   // DNS name to resolve (CheckDNS)
	Interval time.Duration
	Timeout  time.Duration
	Rise     int
	Fall     int
	// Weight is added to the priority while the check fails; 0 puts the
	// instance in FAULT instead (keepalived's convention).
	Weight int
}

// Protocol is the replication protocol of a volume.
type Protocol string

const (
	ProtocolA Protocol = "A" // complete when written locally and sent
	ProtocolB Protocol = "B" // ... and received by the peer
	ProtocolC Protocol = "C" // ... and written by the peer
)

// AttachMode says how a volume is exposed to the OS.
type AttachMode string

const (
	AttachAuto AttachMode = "auto"
	AttachNBD  AttachMode = "nbd"
	AttachLoop AttachMode = "loop"
	AttachNone AttachMode = "none"
)

// Size is a byte count parsed from "200M", "1G", "4096".
type Size int64

// Volume is one replicated block device.
type Volume struct {
	Name     string
	Protocol Protocol
	Port     uint16
	Disk     map[string]string // node name -> backing device or file
	// Meta is "internal" (reserved area at the end of the disk) or, per
	// node, a path to a separate metadata file.
	MetaInternal bool
	Meta         map[string]string
	Attach       AttachMode
	Resync       Resync
	SplitBrain   SplitBrain
}

// Resync holds the resync rate and mode.
type Resync struct {
	Rate     Size // fixed rate in bytes/s; 0 = dynamic controller
	MinRate  Size // dynamic: floor while the application writes
	MaxRate  Size // dynamic: ceiling; 0 = unlimited
	Checksum bool // compare hashes first, copy only differing blocks
}

// SplitBrain holds the automatic recovery policies, DRBD's after-sb-*pri.
type SplitBrain struct {
	After0Pri string // disconnect | discard-younger-primary | discard-older-primary | discard-zero-changes | discard-least-changes | discard-node-NAME
	After1Pri string // disconnect | consensus | discard-secondary
	After2Pri string // disconnect
}

// OnStopFailure is what happens when a resource fails to stop.
type OnStopFailure string

const (
	StopFailureBlock     OnStopFailure = "block"
	StopFailureSelfFence OnStopFailure = "self-fence"
)

// Group is an ordered set of resources that run together on the node
// holding its VRRP instance: volume, filesystem, services, VIP.
type Group struct {
	Name               string
	VRRP               string // instance name
	Volume             string // volume name; "" when the group has no volume
	Filesystem         *Filesystem
	Resources          []Resource // service/exec/ocf blocks in declared order
	OnStopFailure      OnStopFailure
	MigrationThreshold int           // failures before the group moves away; 0 = never
	FailureTimeout     time.Duration // failures older than this are forgotten; 0 = never
}

// Filesystem is the mount of a group's volume.
type Filesystem struct {
	Mountpoint   string
	FSType       string
	Options      []string
	Fsck         bool // run fsck when the volume was not cleanly unmounted
	MonitorWrite bool // monitor writes and reads back a status file
	Timeout      time.Duration
}

// ResourceKind names an agent.
type ResourceKind string

const (
	KindService ResourceKind = "service" // systemd unit
	KindExec    ResourceKind = "exec"    // argv start/stop/monitor
	KindOCF     ResourceKind = "ocf"     // OCF resource-agent script
)

// Resource is one service, exec or ocf block of a group.
type Resource struct {
	Kind ResourceKind
	Name string

	Unit string // KindService

	Start       []string          // KindExec
	Stop        []string          // KindExec
	Monitor     []string          // KindExec
	Environment map[string]string // KindExec

	Agent  string            // KindOCF: path or provider:type, e.g. "heartbeat:IPaddr2"
	Params map[string]string // KindOCF: passed as OCF_RESKEY_<name>

	Timeout         time.Duration // start and stop
	MonitorInterval time.Duration
	MonitorTimeout  time.Duration
}
