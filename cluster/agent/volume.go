package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/internal/logging"
	"github.com/hactl/hactl/replicate"
	"github.com/hactl/hactl/replicate/attach"
	"github.com/hactl/hactl/replicate/decide"
	"github.com/hactl/hactl/replicate/meta"
	"github.com/hactl/hactl/replicate/nbd"
	"github.com/hactl/hactl/replicate/txlog"
)

// volumeSpec is what a running volume was started from; a reload that
// changes it restarts the volume (when that is safe).
type volumeSpec struct {
	Volume   config.Volume
	Peer     string
	Local    netip.AddrPort // where this node listens, if it does
	Remote   netip.AddrPort // where this node dials, if it does
	Secret   string
	Dialer   bool
	Internal bool
}

// volumeRun is one volume this node runs: the engine, its NBD server and,
// while Primary, its attachment.
type volumeRun struct {
	spec      volumeSpec
	log       *zap.Logger
	vol       *replicate.Volume
	closeDisk func()
	lis       *replicate.Listener
	srv       *nbd.Server
	nbdL      net.Listener
	socket    string
	cancel    context.CancelFunc
	done      chan struct{}

	mu  sync.Mutex // serialises role changes and guards att
	att *attach.Attachment
}

// volumeSet runs every volume this node has a disk of.
type volumeSet struct {
	log        *zap.Logger
	node       string
	runtimeDir string

	// fence makes a volume's Config.Fence (fence.go); nil: writes
	// complete alone without asking.
	fence func(volume, peer string) func(context.Context) error

	mu     sync.Mutex
	runs   map[string]*volumeRun
	want   map[string]volumeSpec
	failed map[string]string // volume → why it could not start (or the spec error)
}

func newVolumeSet(log *zap.Logger, node, runtimeDir string) *volumeSet {
	return &volumeSet{
		log: log, node: node, runtimeDir: runtimeDir,
		runs: map[string]*volumeRun{}, want: map[string]volumeSpec{}, failed: map[string]string{},
	}
}

// specFor works out how this node runs vol: its peer, who dials whom.
func specFor(c *config.Cluster, vol config.Volume, self string) (volumeSpec, error) {
	var peers []string
	for n := range vol.Disk {
		if n != self {
			peers = append(peers, n)
		}
	}
	sort.Strings(peers)
	if len(peers) != 1 {
		return volumeSpec{}, fmt.Errorf("volume %s: a volume has exactly two disks here, found the peers %v", vol.Name, peers)
	}
	peer := peers[0]
	addr := func(name string) (netip.Addr, error) {
		n, ok := c.Node(name)
		if !ok {
			return netip.Addr{}, fmt.Errorf("volume %s: no node %q", vol.Name, name)
		}
		if n.ReplicationAddress.IsValid() {
			return n.ReplicationAddress, nil
		}
		return n.Address, nil
	}
	la, err := addr(self)
	if err != nil {
		return volumeSpec{}, err
	}
	ra, err := addr(peer)
	if err != nil {
		return volumeSpec{}, err
	}
	secret, err := os.ReadFile(c.SecretFile)
	if err != nil {
		return volumeSpec{}, fmt.Errorf("volume %s: reading the cluster secret: %w", vol.Name, err)
	}
	return volumeSpec{
		Volume: vol, Peer: peer,
		Local:  netip.AddrPortFrom(la, vol.Port),
		Remote: netip.AddrPortFrom(ra, vol.Port),
		Secret: string(bytes.TrimSpace(secret)),
		// The lower node name dials, the other listens: one link, no race.
		Dialer:   self < peer,
		Internal: vol.MetaInternal,
	}, nil
}

// apply makes the running volumes match c. A volume whose configuration
// changed is restarted only while it is Secondary and unattached; a
// Primary keeps running with its old configuration until it is demoted
// (the reload says so).
func (s *volumeSet) apply(c *config.Cluster) {
	next := map[string]volumeSpec{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range c.Volumes {
		if _, ok := v.Disk[s.node]; !ok {
			continue
		}
		spec, err := specFor(c, v, s.node)
		if err != nil {
			s.failed[v.Name] = err.Error()
			continue
		}
		next[v.Name] = spec
	}
	for name, run := range s.runs {
		spec, ok := next[name]
		if ok && reflect.DeepEqual(spec, run.spec) {
			continue
		}
		if run.vol.Role() == replicate.Primary {
			s.log.Warn("volume changed in the cluster file but is Primary here; the change applies after demotion and a reload",
				zap.String(logging.KeyEvent, "volume-reload-deferred"), zap.String("volume", name))
			next[name] = run.spec
			continue
		}
		s.stopRun(run, "removed or changed in the cluster file")
		delete(s.runs, name)
	}
	s.want = next
	for name := range s.failed {
		if _, ok := next[name]; ok {
			delete(s.failed, name)
		}
	}
	s.startMissing()
}

// retry starts the volumes that could not start before.
func (s *volumeSet) retry() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startMissing()
}

func (s *volumeSet) startMissing() {
	names := make([]string, 0, len(s.want))
	for n := range s.want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := s.runs[name]; ok {
			continue
		}
		run, err := s.start(s.want[name])
		if err != nil {
			if s.failed[name] != err.Error() {
				s.log.Error("volume cannot start; retrying", zap.String(logging.KeyEvent, "volume-start-failed"),
					zap.String("volume", name), zap.Error(err))
			}
			s.failed[name] = err.Error()
			continue
		}
		delete(s.failed, name)
		s.runs[name] = run
	}
}

// start opens a volume's disk and metadata and starts its engine and NBD
// server. It cleans up what a crashed agent left attached first.
func (s *volumeSet) start(spec volumeSpec) (*volumeRun, error) {
	name := spec.Volume.Name
	log := s.log.With(zap.String("volume", name))
	disk := VolumeDisk{Volume: spec.Volume, Node: s.node, Disk: spec.Volume.Disk[s.node], MetaPath: spec.Volume.Disk[s.node]}
	if !spec.Volume.MetaInternal {
		disk.MetaPath = spec.Volume.Meta[s.node]
	}
	data, mc, closeDisk, err := disk.Open(false)
	if err != nil {
		return nil, err
	}
	m, err := meta.Open(mc)
	if err != nil {
		closeDisk()
		if errors.Is(err, meta.ErrNoMetadata) {
			return nil, fmt.Errorf("%s has no hactl metadata: run 'hactl volume create-md %s' on this node", disk.MetaPath, name)
		}
		return nil, fmt.Errorf("metadata on %s: %w", disk.MetaPath, err)
	}
	// What a crashed agent left attached goes first (only now that the
	// disk is known to be there: nothing is created for a volume that
	// cannot run).
	cleanCtx, cancelClean := context.WithTimeout(context.Background(), 10*time.Second)
	err = attach.CleanStale(cleanCtx, s.runtimeDir, name)
	cancelClean()
	if err != nil {
		closeDisk()
		return nil, fmt.Errorf("cleaning up a previous attachment: %w", err)
	}
	run := &volumeRun{spec: spec, log: log, closeDisk: closeDisk, done: make(chan struct{})}
	cfg := replicate.Config{
		Volume:   name,
		Node:     s.node,
		Peer:     spec.Peer,
		Protocol: txlog.Protocol(spec.Volume.Protocol[0]),
		Disk:     replicate.NewFileDisk(data),
		Meta:     m,
		Secret:   []byte(spec.Secret),
		Policy:   decide.Policies(spec.Volume.SplitBrain),
		Log:      s.log,

		ResyncRate:     int64(spec.Volume.Resync.Rate),
		ResyncMinRate:  int64(spec.Volume.Resync.MinRate),
		ResyncMaxRate:  int64(spec.Volume.Resync.MaxRate),
		ResyncChecksum: spec.Volume.Resync.Checksum,
	}
	if s.fence != nil {
		cfg.Fence = s.fence(name, spec.Peer)
	}
	if spec.Dialer {
		cfg.Connect = replicate.Dial(spec.Remote.String())
	} else {
		run.lis = replicate.NewListener(spec.Local.String())
		cfg.Connect = run.lis.Connect
	}
	v, err := replicate.Open(cfg)
	if err != nil {
		closeDisk()
		return nil, err
	}
	run.vol = v

	run.socket = filepath.Join(s.runtimeDir, "nbd", name+".sock")
	if err := os.MkdirAll(filepath.Dir(run.socket), 0o700); err != nil {
		_ = v.Close()
		closeDisk()
		return nil, err
	}
	_ = os.Remove(run.socket) // a stale socket from a crashed agent
	l, err := net.Listen("unix", run.socket)
	if err != nil {
		_ = v.Close()
		closeDisk()
		return nil, fmt.Errorf("NBD socket: %w", err)
	}
	if err := os.Chmod(run.socket, 0o600); err != nil {
		l.Close()
		_ = v.Close()
		closeDisk()
		return nil, err
	}
	run.nbdL = l
	run.srv = nbd.NewServer(log.Named("nbd"), nbd.Export{Name: name, Backend: v})
	go func() { _ = run.srv.Serve(l) }()

	ctx, cancel := context.WithCancel(context.Background())
	run.cancel = cancel
	go func() { defer close(run.done); _ = v.Run(ctx) }()
	log.Info("volume started", zap.String(logging.KeyEvent, "volume-start"), zap.String("peer", spec.Peer),
		zap.Bool("dials", spec.Dialer), zap.String("socket", run.socket), zap.String("disk", disk.Disk))
	return run, nil
}

// stopRun stops a volume: detach (by force if it must: the agent is
// going away), NBD server, engine, files.
func (s *volumeSet) stopRun(run *volumeRun, why string) {
	run.mu.Lock()
	if run.att != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := run.att.Detach(ctx, false); err != nil {
			run.log.Error("volume is in use while stopping; detaching by force (its users get I/O errors)",
				zap.String(logging.KeyEvent, "volume-force-detach"), zap.Error(err))
			_ = run.att.Detach(ctx, true)
		}
		cancel()
		run.att = nil
	}
	run.mu.Unlock()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = run.srv.Shutdown(shut)
	cancel()
	if err := run.vol.Close(); err != nil {
		run.log.Error("closing the volume", zap.Error(err))
	}
	run.cancel()
	<-run.done
	if run.lis != nil {
		_ = run.lis.Close()
	}
	run.closeDisk()
	_ = os.Remove(run.socket)
	run.log.Info("volume stopped", zap.String(logging.KeyEvent, "volume-stop"), zap.String(logging.KeyReason, why))
}

func (s *volumeSet) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, run := range s.runs {
		s.stopRun(run, "agent stopping")
		delete(s.runs, name)
	}
}

// change carries out `hactl volume primary|secondary`.
func (s *volumeSet) change(ctx context.Context, req api.VolumeRequest) (api.Plan, error) {
	s.mu.Lock()
	run, ok := s.runs[req.Volume]
	why, failed := s.failed[req.Volume]
	s.mu.Unlock()
	if !ok {
		if failed {
			return api.Plan{}, fmt.Errorf("volume %s is not running on %s: %s", req.Volume, s.node, why)
		}
		return api.Plan{}, fmt.Errorf("no volume %q with a disk on %s", req.Volume, s.node)
	}
	switch req.Action {
	case "primary":
		return run.promote(ctx, req.Force, s.runtimeDir)
	case "secondary":
		return run.demote(ctx)
	case "verify":
		if err := run.vol.Verify(); err != nil {
			return api.Plan{}, fmt.Errorf("volume %s: %w", req.Volume, err)
		}
		return api.Plan{Steps: []string{"online verify started against " + run.spec.Peer + "; hactl status shows its progress"}}, nil
	case "resolve":
		if err := run.vol.Resolve(req.Discard); err != nil {
			return api.Plan{}, fmt.Errorf("volume %s: %w", req.Volume, err)
		}
		return api.Plan{Steps: []string{"the changes of " + req.Discard + " will be discarded at the next handshake (it resyncs the blocks either node changed)"}}, nil
	}
	return api.Plan{}, fmt.Errorf("unknown volume action %q (want primary, secondary, resolve or verify)", req.Action)
}

func (run *volumeRun) promote(ctx context.Context, force bool, runtimeDir string) (api.Plan, error) {
	run.mu.Lock()
	defer run.mu.Unlock()
	var plan api.Plan
	if run.vol.Role() != replicate.Primary {
		if err := run.vol.Promote(ctx, force); err != nil {
			return plan, fmt.Errorf("volume %s: %w", run.spec.Volume.Name, err)
		}
		plan.Steps = append(plan.Steps, "promoted to Primary")
	}
	if run.att == nil && run.spec.Volume.Attach != config.AttachNone {
		nbdOpts, err := run.nbdOptions(ctx)
		var att *attach.Attachment
		if err == nil {
			att, err = attach.Attach(ctx, attach.Options{
				Volume:     run.spec.Volume.Name,
				Mode:       attach.Mode(run.spec.Volume.Attach),
				RuntimeDir: runtimeDir,
				Device:     run.vol.Device(),
				NBD:        nbdOpts,
			})
		}
		if err != nil {
			// Not usable here: do not stay Primary behind the operator's back.
			if derr := run.vol.Demote(ctx); derr != nil {
				err = errors.Join(err, derr)
			}
			return plan, fmt.Errorf("volume %s: attaching: %w (demoted again)", run.spec.Volume.Name, err)
		}
		run.att = att
		plan.Steps = append(plan.Steps, "attached as "+att.Info().Path)
	}
	if len(plan.Steps) == 0 {
		plan.Steps = append(plan.Steps, "already Primary")
	}
	return plan, nil
}

func (run *volumeRun) demote(ctx context.Context) (api.Plan, error) {
	run.mu.Lock()
	defer run.mu.Unlock()
	var plan api.Plan
	if run.att != nil {
		dev := run.att.Info().Path
		if err := run.att.Detach(ctx, false); err != nil {
			return plan, fmt.Errorf("volume %s stays Primary: %w", run.spec.Volume.Name, err)
		}
		run.att = nil
		plan.Steps = append(plan.Steps, "detached "+dev)
	}
	if run.vol.Role() == replicate.Primary {
		if n := run.srv.Stats().ConnsOpen; n > 0 {
			return plan, fmt.Errorf("volume %s stays Primary: %d NBD client(s) connected to %s; disconnect them first",
				run.spec.Volume.Name, n, run.socket)
		}
		if err := run.vol.Demote(ctx); err != nil {
			return plan, fmt.Errorf("volume %s: %w", run.spec.Volume.Name, err)
		}
		plan.Steps = append(plan.Steps, "demoted to Secondary")
	}
	if len(plan.Steps) == 0 {
		plan.Steps = append(plan.Steps, "already Secondary")
	}
	return plan, nil
}

// nbdOptions lets the kernel NBD client reach the volume's socket: each
// connection is negotiated here and handed over in the transmission phase.
func (run *volumeRun) nbdOptions(ctx context.Context) (attach.NBDOptions, error) {
	if mode, _ := attach.Resolve(attach.Mode(run.spec.Volume.Attach)); mode != attach.ModeNBD {
		return attach.NBDOptions{}, nil
	}
	f, info, err := nbd.DialUnix(ctx, run.socket, run.spec.Volume.Name)
	if err != nil {
		return attach.NBDOptions{}, err
	}
	f.Close()
	return attach.NBDOptions{
		Dial: func(ctx context.Context) (*os.File, error) {
			f, _, err := nbd.DialUnix(ctx, run.socket, run.spec.Volume.Name)
			return f, err
		},
		Size:        info.Size,
		Flags:       info.Flags,
		Connections: 1,
	}, nil
}

// fill adds the live state of the volumes to st.
func (s *volumeSet) fill(st *api.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range st.Volumes {
		vs := &st.Volumes[i]
		if why, ok := s.failed[vs.Name]; ok {
			vs.Role = api.StateFailed
			vs.Problem = why
			continue
		}
		run, ok := s.runs[vs.Name]
		if !ok {
			continue
		}
		rs := run.vol.Status()
		vs.Role = rs.Role
		vs.Peer = rs.Peer
		vs.PeerRole = rs.PeerRole
		vs.DiskState = rs.Disk
		vs.PeerDisk = rs.PeerDisk
		vs.Connection = rs.Connection
		vs.OutOfSync = rs.OutOfSync
		vs.Generations = rs.GI
		vs.Flags = rs.Flags
		vs.Socket = run.socket
		vs.Problem = rs.LastError
		if rs.Failed != "" {
			vs.Problem = "disk failed: " + rs.Failed
		}
		if sb := rs.SplitBrain; sb != nil && sb.Discard == "" {
			vs.SplitBrain = &api.SplitBrainStatus{Primaries: sb.Primaries, ChangedBytes: rs.SplitBrainChanged, Resolve: sb.Resolve, Pending: rs.Discard}
			vs.Problem = "split brain: both nodes changed the data while apart (" + strconv.Itoa(sb.Primaries) +
				" Primary now); nothing is overwritten until you choose whose changes to discard: " + strings.Join(sb.Resolve, "  or  ")
			if rs.Discard != "" {
				vs.Problem += "; resolution given: discard " + rs.Discard + ", waiting for the next handshake"
			}
		}
		if vf := rs.Verify; vf != nil {
			vs.Verify = &api.VerifyStatus{Running: vf.Running, Total: vf.Total, Done: vf.Done, OutOfSync: vf.OutOfSync,
				Started: vf.Started, Finished: vf.Finished, Error: vf.Error}
		}
		if r := rs.Resync; r != nil {
			vs.Resync = &api.ResyncStatus{Direction: r.Direction, Total: r.Total, Done: r.Done, Percent: r.Percent, Rate: r.RateBps, ETA: r.ETA}
		}
		run.mu.Lock()
		if run.att != nil {
			vs.Device = run.att.Info().Path
		}
		run.mu.Unlock()
	}
}
