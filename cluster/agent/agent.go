// Package agent is `hactl agent`: it loads the cluster file, works out
// which node it is, serves the local API and (as later subsystems land)
// runs VRRP, the replicated volumes and the resource groups.
package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/internal/logging"
	"github.com/hactl/hactl/internal/sdnotify"
	"github.com/hactl/hactl/replicate/attach"
)

// Options configure one agent.
type Options struct {
	ConfigPath string
	Socket     string // default api.DefaultSocket
	Node       string // "" = find this node by address or hostname
	Version    string
	Log        *zap.Logger
	// Reload delivers a request to re-read the cluster file (SIGHUP).
	Reload <-chan struct{}
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Notify tells systemd READY/STOPPING and kicks its watchdog every
	// WatchdogInterval (0 = no watchdog). The zero value does nothing.
	Notify           sdnotify.Notifier
	WatchdogInterval time.Duration
	// RuntimeDir holds the volumes' NBD sockets and attachment state.
	// Default attach.DefaultRuntimeDir.
	RuntimeDir string
}

// Agent is a running agent. Its methods are safe for concurrent use.
type Agent struct {
	opts    Options
	log     *zap.Logger
	started time.Time

	vrrp     *vrrpSet
	vols     *volumeSet
	groups   *groupSet
	members  *memberSet
	outdates outdateRequests
	remote   remoteRequests

	mu   sync.RWMutex
	conf *config.Cluster
	self string
}

// Load reads and validates the cluster file and finds this node in it.
// Host checks run: the agent needs the secret and the disks to be there.
// Warnings are logged; any error refuses the file.
func Load(opts Options, log *zap.Logger) (*config.Cluster, string, error) {
	c, diags := config.Load(opts.ConfigPath, config.Options{Node: opts.Node, HostChecks: true})
	for _, d := range diags {
		if d.Severity == config.SeverityWarning {
			log.Warn(d.Summary, zap.String(logging.KeyEvent, "config"), zap.String(logging.KeyReason, d.Detail),
				zap.String("file", d.File), zap.Int("line", d.Line), zap.Int("column", d.Column))
		}
	}
	if diags.HasErrors() {
		var text strings.Builder
		_ = diags.WriteText(&text, false)
		return nil, "", fmt.Errorf("cluster file %s is not valid (%d errors; 'hactl validate' shows the same):\n%s",
			opts.ConfigPath, diags.Errors(), strings.TrimRight(text.String(), "\n"))
	}
	self := opts.Node
	if self == "" {
		addrs, err := localAddrs()
		if err != nil {
			return nil, "", err
		}
		host, _ := os.Hostname()
		if self, err = config.LocalNode(c, addrs, host); err != nil {
			return nil, "", err
		}
	} else if _, ok := c.Node(self); !ok {
		return nil, "", fmt.Errorf("node %q is not in %s", self, opts.ConfigPath)
	}
	return c, self, nil
}

func localAddrs() ([]netip.Addr, error) {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing this machine's addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range ifAddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out, nil
}

// Run loads the cluster file, serves the local API and returns when ctx is
// cancelled (SIGTERM, SIGINT) after a clean shutdown.
func Run(ctx context.Context, opts Options) error {
	if opts.Socket == "" {
		opts.Socket = api.DefaultSocket
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.RuntimeDir == "" {
		opts.RuntimeDir = attach.DefaultRuntimeDir
	}
	log := opts.Log.Named("agent")
	conf, self, err := Load(opts, log)
	if err != nil {
		return err
	}
	a := &Agent{opts: opts, log: log, started: opts.Now(), conf: conf, self: self}
	a.vrrp = newVRRPSet(opts.Log.Named("vrrp"), self, opts.Now)
	a.vrrp.apply(conf)
	// Whatever happens next, Masters resign and remove their addresses.
	defer a.vrrp.stopAll()
	a.members = newMemberSet(opts.Log.Named("membership"), self)
	a.members.apply(conf)
	defer a.members.stop()
	cleanupStaleMounts(conf, self, opts.Log.Named("group"))
	a.vols = newVolumeSet(opts.Log.Named("volume"), self, opts.RuntimeDir)
	a.vols.fence = a.fenceFor
	a.vols.apply(conf)
	defer a.vols.stopAll()
	a.groups = newGroupSet(opts.Log.Named("group"), self, opts.Now, a.vrrp, a.vols)
	a.groups.seen = a.members.seen
	a.groups.peerState = a.memberState
	a.groups.apply(conf)
	// Deferred last, so it runs first: groups stop (VIP, services,
	// filesystem, volume) before the instances resign.
	defer a.groups.stopAll("agent stopping")

	l, err := api.Listen(opts.Socket)
	if err != nil {
		return err
	}
	srv := api.NewServer(opts.Log.Named("api"), a)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()
	a.log.Info("agent started",
		zap.String(logging.KeyEvent, "start"),
		zap.String(logging.KeyNode, self),
		zap.String("cluster", conf.Name),
		zap.String("config", conf.File),
		zap.String("socket", opts.Socket),
		zap.String("version", opts.Version))
	a.notify(opts.Notify.Ready)

	// The watchdog is kicked from this loop, so a wedged loop gets the
	// agent restarted by systemd.
	var watchdog <-chan time.Time
	if opts.WatchdogInterval > 0 {
		t := time.NewTicker(opts.WatchdogInterval)
		defer t.Stop()
		watchdog = t.C
	}
	retry := time.NewTicker(vrrpRetryEvery)
	defer retry.Stop()
	publish := time.NewTicker(publishEvery)
	defer publish.Stop()
	for {
		select {
		case <-publish.C:
			ns := summarize(a.Status())
			ns.Outdate = a.outdates.list()
			a.remote.publish(&ns)
			a.members.publish(ns)
			a.answerOutdates()
			a.answerRequests()
		case <-watchdog:
			a.notify(opts.Notify.Watchdog)
		case <-retry.C:
			a.vrrp.retry()
			a.vols.retry()
			a.members.apply(a.currentConf())
		case <-ctx.Done():
			a.log.Info("agent stopping", zap.String(logging.KeyEvent, "stop"), zap.String(logging.KeyReason, "signal"))
			a.notify(opts.Notify.Stopping)
			a.groups.stopAll("agent stopping (signal)")
			a.vrrp.stopAll()
			a.vols.stopAll()
			shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := srv.Shutdown(shutCtx)
			cancel()
			l.Close()
			if err != nil {
				return fmt.Errorf("stopping the local API: %w", err)
			}
			a.log.Info("agent stopped", zap.String(logging.KeyEvent, "stopped"))
			return nil
		case err := <-serveErr:
			l.Close()
			return fmt.Errorf("local API: %w", err)
		case <-opts.Reload:
			a.notify(func() error { return opts.Notify.Notify("RELOADING=1") })
			a.reload()
			a.notify(opts.Notify.Ready)
		}
	}
}

func (a *Agent) notify(send func() error) {
	if err := send(); err != nil {
		a.log.Warn("systemd notification failed", zap.Error(err))
	}
}

// reload re-reads the cluster file. A file that does not validate, or that
// no longer names this node, is refused and the running one kept.
func (a *Agent) reload() {
	opts := a.opts
	a.mu.RLock()
	opts.Node = a.self
	a.mu.RUnlock()
	conf, _, err := Load(opts, a.log)
	if err != nil {
		a.log.Error("reload refused, keeping the running configuration",
			zap.String(logging.KeyEvent, "reload"), zap.String(logging.KeyReason, err.Error()))
		return
	}
	a.mu.Lock()
	a.conf = conf
	a.mu.Unlock()
	// Groups first: a removed group stops (and gives its VIPs back) before
	// its instance runs on its own again; an instance that a group now
	// takes keeps running, handed over in place.
	a.groups.apply(conf)
	a.vrrp.apply(conf)
	a.vols.apply(conf)
	a.members.apply(conf)
	a.log.Info("configuration reloaded", zap.String(logging.KeyEvent, "reload"), zap.String("summary", conf.Summary()))
}

func (a *Agent) currentConf() *config.Cluster {
	c, _ := a.snapshot()
	return c
}

func (a *Agent) snapshot() (*config.Cluster, string) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.conf, a.self
}

// Status implements api.Backend.
func (a *Agent) Status() api.Status {
	conf, self := a.snapshot()
	st := api.ConfiguredStatus(conf, self)
	a.vrrp.fill(&st)
	a.vols.fill(&st)
	a.groups.fill(&st)
	a.members.fill(&st, a.opts.Now())
	a.fillPaths(&st)
	st.Version = a.opts.Version
	st.StartedAt = a.started.UTC()
	return st
}

// Volume implements api.Backend: hactl volume primary|secondary.
func (a *Agent) Volume(ctx context.Context, req api.VolumeRequest) (api.Plan, error) {
	conf, _ := a.snapshot()
	if _, ok := conf.Volume(req.Volume); !ok {
		return api.Plan{}, fmt.Errorf("no volume %q in the cluster file", req.Volume)
	}
	return a.vols.change(ctx, req)
}

// canRun says whether node can hold group: it must have a priority in the
// group's VRRP instance.
func canRun(conf *config.Cluster, g config.Group, node string) error {
	if _, ok := conf.Node(node); !ok {
		return fmt.Errorf("no node %q in the cluster file", node)
	}
	v, ok := conf.VRRPInstance(g.VRRP)
	if !ok || v.Priority[node] == 0 {
		return fmt.Errorf("node %q cannot run group %q: it has no priority in vrrp %q", node, g.Name, g.VRRP)
	}
	return nil
}

func groupNames(conf *config.Cluster) string {
	if len(conf.Groups) == 0 {
		return "none"
	}
	s := ""
	for i, g := range conf.Groups {
		if i > 0 {
			s += ", "
		}
		s += g.Name
	}
	return s
}

var _ api.Backend = (*Agent)(nil)
