package resources

import (
	"errors"
	"fmt"
	"time"

	"github.com/hactl/hactl/cluster/config"
)

// Kind says what a resource is and which agent runs it.
type Kind string

const (
	// KindVolume is the group's replicated volume: started means Primary
	// (and attached), stopped means Secondary. Replication runs either way.
	KindVolume Kind = "volume"
	// KindFilesystem is the volume's mount; its name is the mountpoint.
	KindFilesystem Kind = "filesystem"
	KindService    Kind = Kind(config.KindService) // a systemd unit
	KindExec       Kind = Kind(config.KindExec)    // argv start/stop/monitor commands
	KindOCF        Kind = Kind(config.KindOCF)     // an OCF resource-agent script
	// KindVIP is the virtual IPs of the group's VRRP instance; its name is
	// the instance's.
	KindVIP Kind = "vip"
)

// Defaults for durations the cluster file leaves unset or cannot set (the
// volume and the VIPs have no timeouts of their own). They are the cluster
// file's defaults for service, exec and ocf blocks, so a Group built from a
// hand-made config.Group behaves like one loaded from a file.
const (
	DefaultTimeout         = 60 * time.Second // start and stop
	DefaultMonitorInterval = 10 * time.Second
	DefaultMonitorTimeout  = 20 * time.Second
)

// Resource is one member of a group.
type Resource struct {
	Kind Kind
	// Name is the declared name for service, exec and ocf resources, the
	// volume's name, the mountpoint, or the VRRP instance's name.
	Name            string
	Timeout         time.Duration // start and stop
	MonitorInterval time.Duration // 0: not monitored (an exec block without a monitor command)
	MonitorTimeout  time.Duration
}

// ID is "kind:name", unique within a group; events, steps and State name
// resources by it.
func (r Resource) ID() string { return string(r.Kind) + ":" + r.Name }

// Group is a resource group in failover order: Resources start first to
// last and stop last to first.
type Group struct {
	Name               string
	Resources          []Resource
	OnStopFailure      config.OnStopFailure // "" is treated as block
	MigrationThreshold int                  // failures of one resource on a node before the group moves away; 0 = never
	FailureTimeout     time.Duration        // failures older than this are not counted; 0 = never forgotten
}

// NewGroup builds the group of c in the order of DESIGN §3.2: the volume
// (if any), the filesystem (if any), the service, exec and ocf resources in
// declared order, and the VRRP instance's VIPs last. Durations that are
// zero get the Default values; an exec resource without a monitor command
// is not monitored. The errors are those config validation already
// reports for a file, so a loaded cluster never gets one.
func NewGroup(c config.Group) (Group, error) {
	g := Group{
		Name:               c.Name,
		OnStopFailure:      c.OnStopFailure,
		MigrationThreshold: c.MigrationThreshold,
		FailureTimeout:     c.FailureTimeout,
	}
	if g.OnStopFailure == "" {
		g.OnStopFailure = config.StopFailureBlock
	}
	if c.Name == "" {
		return Group{}, errors.New("group without a name")
	}
	bad := func(format string, args ...any) (Group, error) {
		return Group{}, fmt.Errorf("group %q: %s", c.Name, fmt.Sprintf(format, args...))
	}
	switch g.OnStopFailure {
	case config.StopFailureBlock, config.StopFailureSelfFence:
	default:
		return bad("on_stop_failure %q is not %q or %q", g.OnStopFailure, config.StopFailureBlock, config.StopFailureSelfFence)
	}
	if g.MigrationThreshold < 0 {
		return bad("migration_threshold %d is negative", g.MigrationThreshold)
	}
	if g.FailureTimeout < 0 {
		return bad("failure_timeout %s is negative", g.FailureTimeout)
	}
	if c.VRRP == "" {
		return bad("no vrrp instance")
	}
	if c.Volume != "" {
		g.Resources = append(g.Resources, withDefaults(Resource{Kind: KindVolume, Name: c.Volume}))
	}
	if fs := c.Filesystem; fs != nil {
		if c.Volume == "" {
			return bad("a filesystem needs a volume")
		}
		g.Resources = append(g.Resources, withDefaults(Resource{Kind: KindFilesystem, Name: fs.Mountpoint, Timeout: fs.Timeout}))
	}
	for _, r := range c.Resources {
		k := Kind(r.Kind)
		switch k {
		case KindService, KindExec, KindOCF:
		default:
			return bad("resource %q has kind %q, not service, exec or ocf", r.Name, r.Kind)
		}
		res := withDefaults(Resource{Kind: k, Name: r.Name, Timeout: r.Timeout, MonitorInterval: r.MonitorInterval, MonitorTimeout: r.MonitorTimeout})
		if k == KindExec && len(r.Monitor) == 0 {
			res.MonitorInterval, res.MonitorTimeout = 0, 0
		}
		g.Resources = append(g.Resources, res)
	}
	g.Resources = append(g.Resources, withDefaults(Resource{Kind: KindVIP, Name: c.VRRP}))

	seen := make(map[string]bool, len(g.Resources))
	for _, r := range g.Resources {
		if r.Name == "" {
			return bad("a %s resource has no name", r.Kind)
		}
		if seen[r.ID()] {
			return bad("resource %s appears twice", r.ID())
		}
		seen[r.ID()] = true
	}
	return g, nil
}

func withDefaults(r Resource) Resource {
	if r.Timeout <= 0 {
		r.Timeout = DefaultTimeout
	}
	if r.MonitorInterval <= 0 {
		r.MonitorInterval = DefaultMonitorInterval
	}
	if r.MonitorTimeout <= 0 {
		r.MonitorTimeout = DefaultMonitorTimeout
	}
	return r
}

// index returns the position of the resource with this ID, or -1.
func (g Group) index(id string) int {
	for i, r := range g.Resources {
		if r.ID() == id {
			return i
		}
	}
	return -1
}

// firstMonitor reports whether a start of r is followed by a monitor
// before the next resource starts (DESIGN §3.2 step 4: each service must
// pass its first monitor). The volume, filesystem and VIP agents verify
// their own start; a systemd unit or a script may report success early.
func (r Resource) firstMonitor() bool {
	switch r.Kind {
	case KindService, KindExec, KindOCF:
		return r.MonitorInterval > 0
	}
	return false
}
