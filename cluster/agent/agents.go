package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/hactl/hactl/agents/execagent"
	"github.com/hactl/hactl/agents/filesystem"
	"github.com/hactl/hactl/agents/ocf"
	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/internal/logging"
	"github.com/hactl/hactl/replicate"
	"github.com/hactl/hactl/resources"
)

// The agents that drive this node's own subsystems: the replicated volume
// and the VRRP instance's addresses. The others live in agents/.

// volumeAgent promotes and demotes a replicated volume (with its
// attachment). Start and Stop only check that the engine runs: it runs as
// Secondary whether or not the group is here.
type volumeAgent struct {
	vols *volumeSet
	name string
}

func (a *volumeAgent) run() (*volumeRun, resources.Result) {
	a.vols.mu.Lock()
	run, ok := a.vols.runs[a.name]
	why := a.vols.failed[a.name]
	a.vols.mu.Unlock()
	if !ok {
		if why == "" {
			why = "it has no disk on this node"
		}
		return nil, resources.Result{Code: resources.Hard, Reason: fmt.Sprintf("volume %s does not run on this node: %s", a.name, why)}
	}
	return run, resources.Result{Code: resources.OK}
}

func (a *volumeAgent) Start(context.Context) resources.Result {
	_, res := a.run()
	return res
}

func (a *volumeAgent) Stop(context.Context) resources.Result {
	return resources.Result{Code: resources.OK}
}

func (a *volumeAgent) Promote(ctx context.Context) resources.Result {
	run, res := a.run()
	if run == nil {
		return res
	}
	plan, err := run.promote(ctx, false, a.vols.runtimeDir)
	switch {
	case err == nil:
		return resources.Result{Code: resources.OK, Reason: joinSteps(plan.Steps)}
	case errors.Is(err, replicate.ErrNoUpToDateData):
		// This node's data cannot be the volume's: another node's can.
		return resources.Result{Code: resources.Hard, Reason: err.Error()}
	default:
		return resources.Result{Code: resources.Soft, Reason: err.Error()}
	}
}

func (a *volumeAgent) Demote(ctx context.Context) resources.Result {
	run, _ := a.run()
	if run == nil {
		return resources.Result{Code: resources.OK, Reason: "the volume does not run here"}
	}
	plan, err := run.demote(ctx)
	if err != nil {
		return resources.Result{Code: resources.Soft, Reason: err.Error()}
	}
	return resources.Result{Code: resources.OK, Reason: joinSteps(plan.Steps)}
}

func (a *volumeAgent) Monitor(context.Context) resources.Result {
	run, res := a.run()
	if run == nil {
		return res
	}
	st := run.vol.Status()
	switch {
	case st.Failed != "":
		return resources.Result{Code: resources.Hard, Reason: "disk failure: " + st.Failed}
	case st.Role != replicate.Primary.String():
		return resources.Result{Code: resources.NotRunning, Reason: "the volume is " + st.Role}
	}
	run.mu.Lock()
	attached := run.att != nil || run.spec.Volume.Attach == config.AttachNone
	run.mu.Unlock()
	if !attached {
		return resources.Result{Code: resources.Soft, Reason: "Primary but not attached"}
	}
	return resources.Result{Code: resources.OK, Promoted: true}
}

// device is the volume's block device while attached here.
func (a *volumeAgent) device() string {
	run, _ := a.run()
	if run == nil {
		return ""
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.att == nil {
		return ""
	}
	return run.att.Info().Path
}

func joinSteps(steps []string) string {
	s := ""
	for i, x := range steps {
		if i > 0 {
			s += "; "
		}
		s += x
	}
	return s
}

// filesystemAgent mounts the group's volume: the device is known only once
// the volume is attached, so the filesystem agent is made for each start.
type filesystemAgent struct {
	vol *volumeAgent
	fs  config.Filesystem
	log *zap.Logger

	mu  sync.Mutex
	cur *filesystem.Agent
}

func (a *filesystemAgent) agent() *filesystem.Agent {
	dev := a.vol.device()
	if dev == "" {
		// Not attached (any more): what is mounted there is what a stop
		// must take away, whatever the device.
		if src, ok, _ := filesystem.MountedAt(a.fs.Mountpoint); ok {
			dev = src
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil || dev != "" && dev != a.cur.Device() {
		a.cur = filesystem.New(dev, a.fs, a.log)
	}
	return a.cur
}

func (a *filesystemAgent) Start(ctx context.Context) resources.Result {
	if a.vol.device() == "" {
		return resources.Result{Code: resources.Soft, Reason: "the volume is not attached"}
	}
	return a.agent().Start(ctx)
}

func (a *filesystemAgent) Stop(ctx context.Context) resources.Result {
	fa := a.agent()
	if fa.Device() == "" {
		return resources.Result{Code: resources.OK, Reason: "nothing mounted on " + a.fs.Mountpoint}
	}
	return fa.Stop(ctx)
}

func (a *filesystemAgent) Monitor(ctx context.Context) resources.Result {
	if a.vol.device() == "" {
		return resources.Result{Code: resources.NotRunning, Reason: "the volume is not attached"}
	}
	return a.agent().Monitor(ctx)
}

// cleanupStaleMounts unmounts, before the volumes start, what a crashed
// run left mounted on the groups' mountpoints: at start no volume is
// Primary here, so any such mount is stale (its device usually dead). The
// users of the mount are killed as on any filesystem stop.
func cleanupStaleMounts(conf *config.Cluster, self string, log *zap.Logger) {
	for _, g := range conf.Groups {
		v, ok := conf.VRRPInstance(g.VRRP)
		if !ok || v.Priority[self] == 0 || g.Filesystem == nil {
			continue
		}
		src, mounted, err := filesystem.MountedAt(g.Filesystem.Mountpoint)
		if err != nil || !mounted {
			continue
		}
		log.Warn("stale mount from a previous run: unmounting it before anything starts",
			zap.String(logging.KeyEvent, "stale-mount"), zap.String(logging.KeyGroup, g.Name),
			zap.String("mountpoint", g.Filesystem.Mountpoint), zap.String("device", src))
		fs := *g.Filesystem
		ctx, cancel := context.WithTimeout(context.Background(), 2*resources.DefaultTimeout)
		res := filesystem.New(src, fs, log).Stop(ctx)
		cancel()
		if res.Failed() {
			log.Error("stale mount could not be removed", zap.String(logging.KeyGroup, g.Name), zap.String(logging.KeyReason, res.String()))
		}
	}
}

// vipAgent adds the VRRP instance's addresses last and removes them first.
type vipAgent struct {
	vrrp *vrrpSet
	name string
}

func (a *vipAgent) Start(context.Context) resources.Result {
	in := a.vrrp.instance(a.name)
	if in == nil {
		return resources.Result{Code: resources.Soft, Reason: "vrrp instance " + a.name + " does not run here"}
	}
	if err := in.Claim(); err != nil {
		return resources.Result{Code: resources.Soft, Reason: err.Error()}
	}
	return resources.Result{Code: resources.OK, Reason: "addresses added, gratuitous ARPs sent"}
}

func (a *vipAgent) Stop(context.Context) resources.Result {
	in := a.vrrp.instance(a.name)
	if in == nil {
		return resources.Result{Code: resources.OK, Reason: "vrrp instance not running: it removed its addresses when it stopped"}
	}
	if err := in.Unclaim(); err != nil {
		return resources.Result{Code: resources.Soft, Reason: err.Error()}
	}
	return resources.Result{Code: resources.OK}
}

func (a *vipAgent) Monitor(context.Context) resources.Result {
	in := a.vrrp.instance(a.name)
	if in == nil || !in.Claimed() {
		return resources.Result{Code: resources.NotRunning, Reason: "addresses not on the interface"}
	}
	return resources.Result{Code: resources.OK}
}

// groupAgents makes the agents of g's resources.
func groupAgents(g config.Group, rg resources.Group, vols *volumeSet, vrrp *vrrpSet, log *zap.Logger) (map[string]resources.Agent, error) {
	out := map[string]resources.Agent{}
	var va *volumeAgent
	if g.Volume != "" {
		va = &volumeAgent{vols: vols, name: g.Volume}
		out[string(resources.KindVolume)+":"+g.Volume] = va
	}
	if g.Filesystem != nil {
		out[string(resources.KindFilesystem)+":"+g.Filesystem.Mountpoint] = &filesystemAgent{vol: va, fs: *g.Filesystem, log: log}
	}
	for _, r := range g.Resources {
		id := string(r.Kind) + ":" + r.Name
		switch r.Kind {
		case config.KindExec:
			out[id] = execagent.New(r, log)
		case config.KindOCF:
			out[id] = ocf.New(r, log)
		case config.KindService:
			a, err := newServiceAgent(r, log)
			if err != nil {
				return nil, err
			}
			out[id] = a
		default:
			return nil, fmt.Errorf("group %s: resource %s has an unknown kind %q", g.Name, r.Name, r.Kind)
		}
	}
	out[string(resources.KindVIP)+":"+g.VRRP] = &vipAgent{vrrp: vrrp, name: g.VRRP}
	for _, r := range rg.Resources {
		if out[r.ID()] == nil {
			return nil, fmt.Errorf("group %s: no agent for %s", g.Name, r.ID())
		}
	}
	return out, nil
}
