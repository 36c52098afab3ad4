// Package api is the agent's local API: an HTTP server on a unix socket
// (mode 0600) that the hactl CLI talks to, and the client the CLI uses.
//
// The JSON it serves is a public interface: scripts read `hactl status
// --json`. Fields are only ever added; a breaking change bumps Schema.
package api

import (
	"time"

	"github.com/hactl/hactl/cluster/config"
)

// Schema is the version of the Status JSON.
const Schema = 1

// Status is one node's view of the cluster.
type Status struct {
	Schema     int       `json:"schema"`
	Cluster    string    `json:"cluster"`
	Node       string    `json:"node"` // this node
	Version    string    `json:"version"`
	ConfigFile string    `json:"config_file"`
	StartedAt  time.Time `json:"started_at"`

	Nodes   []NodeStatus   `json:"nodes"`
	VRRP    []VRRPStatus   `json:"vrrp"`
	Volumes []VolumeStatus `json:"volumes"`
	Groups  []GroupStatus  `json:"groups"`
}

// NodeStatus is a configured cluster member.
type NodeStatus struct {
	Name               string `json:"name"`
	Address            string `json:"address"`
	ReplicationAddress string `json:"replication_address,omitempty"`
	Witness            bool   `json:"witness"`
	Self               bool   `json:"self"`
	// Membership is how the cluster network sees the node: alive, silent
	// (no heartbeat lately), dead, left, unknown; "self" for this node.
	Membership string `json:"membership,omitempty"`
	// Paths is how this node hears the other one on each path:
	// "membership", "replication" (per volume), "vrrp" (per instance).
	Paths       map[string]string `json:"paths,omitempty"`
	LastHeardMS *int64            `json:"last_heard_ms,omitempty"`
	State       *NodeState        `json:"state,omitempty"` // what the node last published
}

// NodeState is what a node publishes about itself over the membership.
type NodeState struct {
	VRRP    map[string]string `json:"vrrp,omitempty"`    // instance → state
	Volumes map[string]string `json:"volumes,omitempty"` // volume → role/disk/connection
	Groups  map[string]string `json:"groups,omitempty"`  // group → state
	// Outdate names the volumes whose peer this node, their Primary,
	// asks to mark itself Outdated: the replication link is down and
	// writes wait for the peer's answer (fencing).
	Outdate []string `json:"outdate,omitempty"`
	// Requests are this node's requests to other nodes' agents (hactl
	// standby NODE, hactl failover of a group another node holds); Done
	// are "ID OUTCOME" of the requests this node carried out.
	Requests []NodeRequest `json:"requests,omitempty"`
	Done     []string      `json:"done,omitempty"`
}

// NodeRequest asks another node's agent to act.
type NodeRequest struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"` // standby, unstandby, failover
	Node  string `json:"node"` // who is asked
	Group string `json:"group,omitempty"`
	To    string `json:"to,omitempty"`
}

// VRRPStatus is one VRRP instance as this node runs it. The live fields
// are empty while the instance does not run here.
type VRRPStatus struct {
	Name           string         `json:"name"`
	Interface      string         `json:"interface"`
	VRID           int            `json:"vrid"`
	Version        int            `json:"version"`
	AdvertInterval string         `json:"advert_interval"` // configured
	Priority       int            `json:"priority"`        // this node's configured priority; 0 = does not run it
	Priorities     map[string]int `json:"priorities"`
	Preempt        bool           `json:"preempt"`
	VirtualIPs     []string       `json:"virtual_ips"`
	State          string         `json:"state"` // init, backup, master, fault; or not-running, not-member, failed

	EffectivePriority   int             `json:"effective_priority,omitempty"` // after check weights
	Fault               string          `json:"fault,omitempty"`              // why it is in fault, or why it failed to start
	Master              string          `json:"master,omitempty"`             // the master's address as last heard
	MasterPriority      int             `json:"master_priority,omitempty"`
	AdvertIntervalInUse string          `json:"advert_interval_in_use,omitempty"` // a v3 backup learns the master's
	MasterDown          string          `json:"master_down,omitempty"`            // Master_Down_Interval in use
	LastTransition      *VRRPTransition `json:"last_transition,omitempty"`
	Counters            *VRRPCounters   `json:"counters,omitempty"`
	LastInvalid         *InvalidAdvert  `json:"last_invalid,omitempty"`
	Tracks              []TrackStatus   `json:"track_interfaces,omitempty"`
	Checks              []CheckStatus   `json:"checks,omitempty"`
}

// VRRPTransition is an instance's last state change.
type VRRPTransition struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

// VRRPCounters count an instance's packets since it started.
type VRRPCounters struct {
	Transitions     uint64            `json:"transitions"`
	AdvertsSent     uint64            `json:"adverts_sent"`
	AdvertsReceived uint64            `json:"adverts_received"`
	GARPsSent       uint64            `json:"garps_sent"`
	OtherVRID       uint64            `json:"other_vrid"`        // other virtual routers on the segment: normal
	Invalid         map[string]uint64 `json:"invalid,omitempty"` // dropped adverts by reason: a peer that does not match
}

// InvalidAdvert is the last advert an instance dropped.
type InvalidAdvert struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	Reason string    `json:"reason"`
	Detail string    `json:"detail"`
}

// TrackStatus is a tracked interface.
type TrackStatus struct {
	Name   string `json:"name"`
	Weight int    `json:"weight"` // 0: the instance is in fault while the interface is down
	Up     bool   `json:"up"`
	Detail string `json:"detail,omitempty"`
}

// CheckStatus is a health check of an instance.
type CheckStatus struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Weight  int    `json:"weight"`
	Failing bool   `json:"failing"`
	Detail  string `json:"detail,omitempty"` // the last probe's result
}

// VolumeStatus is one replicated volume on this node.
type VolumeStatus struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Port     int    `json:"port"`
	Disk     string `json:"disk,omitempty"` // this node's backing device; "" when it holds none
	Attach   string `json:"attach"`
	Role     string `json:"role"`

	// Live state, while the agent runs the volume here.
	Peer       string        `json:"peer,omitempty"`
	PeerRole   string        `json:"peer_role,omitempty"` // "" while not connected
	DiskState  string        `json:"disk_state,omitempty"`
	PeerDisk   string        `json:"peer_disk_state,omitempty"`
	Connection string        `json:"connection,omitempty"` // StandAlone, Connecting, Connected, SyncSource, SyncTarget
	OutOfSync  uint64        `json:"out_of_sync_bytes"`
	Resync     *ResyncStatus `json:"resync,omitempty"`
	// Generations are the generation identifiers, current:bitmap:history.
	Generations string `json:"generations,omitempty"`
	// Flags are the metadata flags (consistent, peer-outdated, …).
	Flags string `json:"flags,omitempty"`
	// Device is the block device the volume is attached as while Primary;
	// Socket is its NBD socket.
	Device string `json:"device,omitempty"`
	Socket string `json:"socket,omitempty"`
	// Problem says why the link is down, why the volume failed to start,
	// or what a split brain needs.
	Problem string `json:"problem,omitempty"`
	// SplitBrain is set while the data diverged and no policy resolved it.
	SplitBrain *SplitBrainStatus `json:"split_brain,omitempty"`
	// Verify is the last online verify run from this node.
	Verify *VerifyStatus `json:"verify,omitempty"`
}

// VerifyStatus is an online verify's progress or result.
type VerifyStatus struct {
	Running   bool      `json:"running"`
	Total     uint64    `json:"total_bytes"`
	Done      uint64    `json:"done_bytes"`
	OutOfSync uint64    `json:"out_of_sync_bytes"`
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// SplitBrainStatus is an unresolved split brain: what each node changed
// while apart and the commands that resolve it.
type SplitBrainStatus struct {
	Primaries    int               `json:"primaries"`
	ChangedBytes map[string]uint64 `json:"changed_bytes"`
	Resolve      []string          `json:"resolve"`
	Pending      string            `json:"discard_pending,omitempty"` // a resolution given, not yet applied
}

// ResyncStatus is a running resync.
type ResyncStatus struct {
	Direction string  `json:"direction"` // source or target
	Total     uint64  `json:"total_bytes"`
	Done      uint64  `json:"done_bytes"`
	Percent   float64 `json:"percent"`
	Rate      float64 `json:"rate_bytes_per_second"`
	ETA       string  `json:"eta,omitempty"`
}

// GroupStatus is one resource group on this node.
type GroupStatus struct {
	Name      string   `json:"name"`
	VRRP      string   `json:"vrrp"`
	Volume    string   `json:"volume,omitempty"`
	Resources []string `json:"resources"` // "kind:name" in start order, volume first and VIP last
	// State is stopped, starting, started, stopping, blocked or gave up
	// while the orchestrator runs the group here.
	State string `json:"state"`

	Why     string      `json:"why,omitempty"`     // why the group is wanted (or not) here
	Running string      `json:"running,omitempty"` // the step under way
	Gate    *GateStatus `json:"gate,omitempty"`
	// Held says why the group's VRRP instance is kept out of service here
	// (priority 0): a closed gate, standby, a failover away, a block.
	Held           string          `json:"held,omitempty"`
	Preference     string          `json:"preference,omitempty"` // a failover's temporary preference, with its expiry
	Blocked        string          `json:"blocked,omitempty"`
	GaveUp         string          `json:"gave_up,omitempty"`
	Banned         string          `json:"banned,omitempty"`
	ResourceStates []ResourceState `json:"resource_states,omitempty"`
	Events         []GroupEvent    `json:"events,omitempty"` // the last steps and decisions, oldest first
}

// GateStatus is the promotion gate's current answer on this node.
type GateStatus struct {
	Open   bool   `json:"open"`
	Reason string `json:"reason"`
}

// ResourceState is one resource of a group on this node.
type ResourceState struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Last     string `json:"last_result,omitempty"`
	Failures int    `json:"failures"`
}

// GroupEvent is a step or decision of the group's runner.
type GroupEvent struct {
	At     time.Time `json:"at"`
	What   string    `json:"what"`
	Result string    `json:"result,omitempty"`
	Millis int64     `json:"duration_ms,omitempty"`
}

// States shown until the subsystems that own them run in the agent.
const (
	StateNotRunning = "not-running" // this agent does not run the subsystem yet
	StateNotMember  = "not-member"  // this node has no part in it
	StateFailed     = "failed"      // it could not start here; see the reason
	RoleUnknown     = "unknown"
)

// ConfiguredStatus builds the status of a node from the cluster file alone:
// what is configured, with no live state.
func ConfiguredStatus(c *config.Cluster, self string) Status {
	st := Status{Schema: Schema, Cluster: c.Name, Node: self, ConfigFile: c.File}
	for _, n := range c.Nodes {
		ns := NodeStatus{Name: n.Name, Address: n.Address.String(), Witness: n.Witness, Self: n.Name == self}
		if n.ReplicationAddress.IsValid() {
			ns.ReplicationAddress = n.ReplicationAddress.String()
		}
		st.Nodes = append(st.Nodes, ns)
	}
	for _, v := range c.VRRP {
		vs := VRRPStatus{
			Name:           v.Name,
			Interface:      v.Interface,
			VRID:           int(v.VRID),
			Version:        v.Version,
			AdvertInterval: v.AdvertInterval.String(),
			Priority:       int(v.Priority[self]),
			Priorities:     map[string]int{},
			Preempt:        v.Preempt,
			State:          StateNotRunning,
		}
		if vs.Priority == 0 {
			vs.State = StateNotMember
		}
		for n, p := range v.Priority {
			vs.Priorities[n] = int(p)
		}
		for _, ip := range v.VirtualIPs {
			vs.VirtualIPs = append(vs.VirtualIPs, ip.String())
		}
		for _, ch := range v.Checks {
			vs.Checks = append(vs.Checks, CheckStatus{Name: ch.Name, Kind: string(ch.Kind), Weight: ch.Weight})
		}
		st.VRRP = append(st.VRRP, vs)
	}
	for _, v := range c.Volumes {
		vs := VolumeStatus{
			Name:     v.Name,
			Protocol: string(v.Protocol),
			Port:     int(v.Port),
			Disk:     v.Disk[self],
			Attach:   string(v.Attach),
			Role:     RoleUnknown,
		}
		st.Volumes = append(st.Volumes, vs)
	}
	for _, g := range c.Groups {
		gs := GroupStatus{Name: g.Name, VRRP: g.VRRP, Volume: g.Volume, State: StateNotRunning}
		if g.Volume != "" {
			gs.Resources = append(gs.Resources, "volume:"+g.Volume)
		}
		if g.Filesystem != nil {
			gs.Resources = append(gs.Resources, "filesystem:"+g.Filesystem.Mountpoint)
		}
		for _, r := range g.Resources {
			gs.Resources = append(gs.Resources, string(r.Kind)+":"+r.Name)
		}
		gs.Resources = append(gs.Resources, "vip:"+g.VRRP)
		st.Groups = append(st.Groups, gs)
	}
	return st
}
