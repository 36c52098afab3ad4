package agent

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/cluster/gate"
	"github.com/hactl/hactl/internal/logging"
	"github.com/hactl/hactl/replicate"
	"github.com/hactl/hactl/resources"
	"github.com/hactl/hactl/vrrp"
)

// controlEvery is how often a group's controller looks at VRRP, the
// volume and the membership when nothing woke it earlier.
const controlEvery = 50 * time.Millisecond

// peerSeen tells whether a node was heard on the cluster network lately
// (membership). nil: no membership path.
type peerSeen func(node string) bool

// groupSet is the orchestrator: one controller per group this node can
// run (it has a priority in the group's VRRP instance). A controller ties
// the instance's state, the promotion gate and the group's runner
// together; the runner does the steps, one at a time, off the VRRP loop.
type groupSet struct {
	log     *zap.Logger
	self    string
	now     func() time.Time
	started time.Time
	vrrp    *vrrpSet
	vols    *volumeSet
	seen    peerSeen
	// peerState is what a node last published over the membership (ok
	// false when it is not heard). nil: no membership.
	peerState func(node string) (api.NodeState, bool)

	mu   sync.Mutex
	conf *config.Cluster
	runs map[string]*groupRun
	// standby: this node is drained (hactl standby).
	standby string
}

// groupRun is one group's controller and runner.
type groupRun struct {
	set    *groupSet
	conf   config.Group
	runner *resources.Runner
	log    *zap.Logger
	// The controller and the runner stop separately: the controller first,
	// so it cannot ask the runner to start again while the group stops.
	stopControl context.CancelFunc
	stopRunner  context.CancelFunc
	done        chan struct{} // the controller ended
	wake        chan struct{}

	mu        sync.Mutex
	gate      gate.Decision
	held      string
	gaveUp    string
	gaveUntil time.Time
	// handoff: a graceful failover moves the group away from this node
	// (to handoffTo, "" = any) until handoffUntil.
	handoff      string
	handoffTo    string
	handoffAt    time.Time
	handoffUntil time.Time
	// handedOver: the group runs elsewhere now; the preference only lowers
	// this node's priority until it expires.
	handedOver bool
	everHeard  bool
	lastProbe  time.Time
}

func newGroupSet(log *zap.Logger, self string, now func() time.Time, vr *vrrpSet, vols *volumeSet) *groupSet {
	return &groupSet{log: log, self: self, now: now, started: now(), vrrp: vr, vols: vols, runs: map[string]*groupRun{}}
}

// apply starts controllers for new groups and stops those of removed or
// changed ones (after deactivating them).
func (s *groupSet) apply(c *config.Cluster) {
	s.mu.Lock()
	s.conf = c
	next := map[string]config.Group{}
	for _, g := range c.Groups {
		if v, ok := c.VRRPInstance(g.VRRP); ok && v.Priority[s.self] != 0 {
			next[g.Name] = g
		}
	}
	var stop []*groupRun
	for name, run := range s.runs {
		if g, ok := next[name]; ok && reflect.DeepEqual(g, run.conf) {
			continue
		}
		stop = append(stop, run)
		delete(s.runs, name)
	}
	s.mu.Unlock()
	for _, run := range stop {
		run.stop("removed or changed in the cluster file")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(next))
	for n := range next {
		if s.runs[n] == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		run, err := s.start(next[n])
		if err != nil {
			s.log.Error("group cannot run here", zap.String(logging.KeyGroup, n), zap.Error(err))
			continue
		}
		s.runs[n] = run
	}
}

func (s *groupSet) start(g config.Group) (*groupRun, error) {
	rg, err := resources.NewGroup(g)
	if err != nil {
		return nil, err
	}
	log := s.log.With(zap.String(logging.KeyGroup, g.Name))
	run := &groupRun{set: s, conf: g, log: log, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	agents, err := groupAgents(g, rg, s.vols, s.vrrp, log)
	if err != nil {
		return nil, err
	}
	run.runner, err = resources.NewRunner(resources.RunnerConfig{
		Group: rg, Agents: agents, Log: log, Now: s.now,
		GiveUp: func(reason string, until time.Time) {
			run.mu.Lock()
			run.gaveUp, run.gaveUntil = reason, until
			run.mu.Unlock()
			run.poke()
		},
		SelfFence: selfFence(log),
	})
	if err != nil {
		return nil, err
	}
	runCtx, stopRunner := context.WithCancel(context.Background())
	ctlCtx, stopControl := context.WithCancel(context.Background())
	run.stopRunner, run.stopControl = stopRunner, stopControl
	go run.runner.Run(runCtx)
	go run.control(ctlCtx)
	return run, nil
}

func (run *groupRun) poke() {
	select {
	case run.wake <- struct{}{}:
	default:
	}
}

// stop deactivates the group, waits (bounded by the resources' own
// timeouts) and ends the controller.
func (run *groupRun) stop(why string) {
	run.stopControl()
	<-run.done
	run.runner.Deactivate(why)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	if err := run.runner.Wait(ctx, false); err != nil {
		run.log.Error("group did not stop cleanly", zap.String(logging.KeyEvent, "stop"), zap.Error(err))
	}
	cancel()
	run.stopRunner()
}

// stopAll deactivates every group (SIGTERM): VIP, services, filesystem,
// volume, in that order; the VRRP instances resign after this.
func (s *groupSet) stopAll(why string) {
	s.mu.Lock()
	runs := make([]*groupRun, 0, len(s.runs))
	for _, r := range s.runs {
		runs = append(runs, r)
	}
	s.runs = map[string]*groupRun{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() { defer wg.Done(); r.stop(why) }()
	}
	wg.Wait()
}

// control is the group's controller loop: it never does a step itself,
// only asks the runner and holds or releases the VRRP instance.
func (run *groupRun) control(ctx context.Context) {
	defer close(run.done)
	t := time.NewTicker(controlEvery)
	defer t.Stop()
	for {
		run.tick()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-run.wake:
		case <-run.runner.Changed():
		}
	}
}

// tick decides what the group wants now.
func (run *groupRun) tick() {
	s := run.set
	now := s.now()
	in := s.vrrp.instance(run.conf.VRRP)
	rs := run.runner.Status()
	d, notReady, quorum := run.decideGate(in, now)

	run.mu.Lock()
	run.gate = d
	if run.gaveUp != "" && !run.gaveUntil.IsZero() && now.After(run.gaveUntil) {
		run.log.Info("ban expired; the group may run here again", zap.String(logging.KeyEvent, "ban-expired"))
		run.gaveUp = ""
		run.runner.Retry()
	}
	if run.handoff != "" && now.After(run.handoffUntil) {
		run.log.Info("failover preference expired", zap.String(logging.KeyEvent, "handoff-expired"), zap.String(logging.KeyReason, run.handoff))
		run.handoff, run.handedOver = "", false
	}
	gaveUp, handoff, handoffAt, handedOver := run.gaveUp, run.handoff, run.handoffAt, run.handedOver
	run.mu.Unlock()
	s.mu.Lock()
	standby, cconf := s.standby, s.conf
	s.mu.Unlock()

	state := vrrp.StateInit.String()
	var vs struct{ lastAdvert, masterSince time.Time }
	if in != nil {
		st := in.Status()
		state = st.State
		vs.lastAdvert = st.LastAdvertAt
		if t := st.LastTransition; t != nil && t.To == vrrp.StateMaster.String() {
			vs.masterSince = t.At
		}
	}
	master := state == vrrp.StateMaster.String()
	stopped := rs.Phase == "stopped" || rs.Phase == "gave up" || rs.Phase == "blocked"
	conf, _ := cconf.VRRPInstance(run.conf.VRRP)
	yield := ""
	if handoff != "" && !handedOver && stopped && vs.lastAdvert.After(handoffAt) && now.Sub(vs.lastAdvert) < time.Second {
		// Another router serves the group now. Without preemption this
		// node can simply be a backup again; with it, it yields its
		// priority while the preference lasts.
		run.mu.Lock()
		if conf.Preempt {
			run.handedOver = true
		} else {
			run.handoff = ""
		}
		run.mu.Unlock()
		run.log.Info("group handed over", zap.String(logging.KeyEvent, "handoff-done"), zap.Bool("preempt", conf.Preempt))
		handedOver = conf.Preempt
		if !handedOver {
			handoff = ""
		}
	}
	if handedOver {
		if master {
			// Elected anyway (the other node went away or handed the
			// group back): the preference is over.
			run.mu.Lock()
			run.handoff, run.handedOver = "", false
			run.mu.Unlock()
		} else {
			yield = handoff
		}
		handoff = ""
	}

	// Holds that drain first: the group stops, then the instance resigns.
	drain := ""
	switch {
	case standby != "":
		drain = "standby: " + standby
	case handoff != "":
		drain = handoff
	case rs.Blocked != "":
		drain = "blocked: " + rs.Blocked
	case gaveUp != "":
		drain = "gave up this node: " + gaveUp
	case quorum != "":
		// Cut off from the majority: whoever has it may take the group,
		// so stop it here (its writes already fail: fence.go) and stay
		// out until the majority is back.
		drain = quorum
	}
	hold := ""
	switch {
	case drain != "":
		run.runner.Deactivate(drain)
		if stopped {
			hold = drain
		}
	case master && (rs.Phase != "stopped" || d.Open):
		run.runner.Activate("vrrp Master; gate: " + d.Reason)
	case master && d.PeerPrimary && now.Sub(vs.masterSince) < peerDemoteWait && !run.peerStillMaster(now, vs.masterSince):
		// We won the election (preemption, or the peer resigned) and the
		// peer is still demoting: it gives the volume up by itself.
		run.runner.Deactivate("vrrp Master, waiting for the peer to demote: " + d.Reason)
	case master:
		hold = "promotion gate closed: " + d.Reason
		run.runner.Deactivate(hold)
	default:
		run.runner.Deactivate("vrrp " + state)
		// A node held by a closed gate stays out while nobody serves the
		// group; it comes back as Backup when the gate opens or when
		// another router advertises (it can then take over if that one
		// goes away, asking the gate again).
		run.mu.Lock()
		wasGate := strings.HasPrefix(run.held, "promotion gate closed")
		run.mu.Unlock()
		if wasGate && !d.Open && now.Sub(vs.lastAdvert) > time.Second {
			hold = "promotion gate closed: " + d.Reason
		}
		if notReady != "" && yield == "" {
			// Data that could not serve must not win an election (and
			// preempt the node that serves); a lowest-priority backup
			// still takes over when nothing else is left, and then the
			// gate decides.
			yield = notReady
		}
	}
	run.mu.Lock()
	changed := run.held != hold
	run.held = hold
	run.mu.Unlock()
	if changed {
		if hold != "" {
			run.log.Warn("vrrp instance held out of service", zap.String(logging.KeyEvent, "hold"),
				zap.String(logging.KeyInstance, run.conf.VRRP), zap.String(logging.KeyReason, hold))
		} else {
			run.log.Info("vrrp instance released", zap.String(logging.KeyEvent, "release"), zap.String(logging.KeyInstance, run.conf.VRRP))
		}
	}
	if in != nil {
		// Yield first: a release must not let a node that should yield
		// preempt for a moment.
		in.Yield(yield)
		in.Hold(hold)
	}
}

// peerStillMaster reports whether the group's peer still says it is
// Master of the group's instance a while after this node became Master
// too: adverts do not pass between them (multicast blocked), so the peer
// will not demote for losing the election, and waiting for it is
// pointless — the gate's closed answer holds this node instead.
func (run *groupRun) peerStillMaster(now, masterSince time.Time) bool {
	if run.set.peerState == nil || now.Sub(masterSince) < 1500*time.Millisecond {
		return false
	}
	ns, ok := run.set.peerState(run.peer())
	return ok && ns.VRRP[run.conf.VRRP] == vrrp.StateMaster.String()
}

// peer is the node the group's volume replicates to, or the other node
// with a priority in its instance.
func (run *groupRun) peer() string {
	s := run.set
	s.mu.Lock()
	conf := s.conf
	s.mu.Unlock()
	if vol, ok := conf.Volume(run.conf.Volume); ok {
		for n := range vol.Disk {
			if n != s.self {
				return n
			}
		}
	}
	v, _ := conf.VRRPInstance(run.conf.VRRP)
	var others []string
	for n := range v.Priority {
		if n != s.self {
			others = append(others, n)
		}
	}
	sort.Strings(others)
	if len(others) > 0 {
		return others[0]
	}
	return ""
}

// peerDemoteWait bounds how long a new Master waits for a connected
// Primary peer to demote before it resigns.
const peerDemoteWait = 2 * time.Minute

// decideGate gathers the gate's inputs: the volume, the paths to the
// peer, quorum and the startup wait. notReady says why this node's data
// could not serve now ("" when it could), noQuorum why this node lacks
// quorum ("" when it has it).
func (run *groupRun) decideGate(in orchestrable, now time.Time) (d gate.Decision, notReady, noQuorum string) {
	s := run.set
	s.mu.Lock()
	conf := s.conf
	s.mu.Unlock()
	g := run.conf
	v, _ := conf.VRRPInstance(g.VRRP)
	peer := ""
	if vol, ok := conf.Volume(g.Volume); ok {
		for n := range vol.Disk {
			if n != s.self {
				peer = n
			}
		}
	} else {
		var others []string
		for n := range v.Priority {
			if n != s.self {
				others = append(others, n)
			}
		}
		sort.Strings(others)
		if len(others) > 0 {
			peer = others[0]
		}
	}
	gi := gate.Input{
		HasVolume: g.Volume != "", Peer: peer,
		Quorum: string(conf.Quorum), Voters: len(conf.Nodes), Reachable: 1,
		SinceStart: now.Sub(s.started), StartupWait: conf.StartupWait,
	}
	if g.Volume != "" {
		s.vols.mu.Lock()
		vr := s.vols.runs[g.Volume]
		s.vols.mu.Unlock()
		if vr == nil {
			gi.Disk = "Diskless"
			notReady = "volume " + g.Volume + " does not run here"
		} else {
			st := vr.vol.Status()
			gi.Disk, gi.SplitBrain = st.Disk, st.SplitBrain != nil
			switch st.Connection {
			case string(replicate.Connected), string(replicate.SyncSource), string(replicate.SyncTarget):
				gi.Connected, gi.PeerRole = true, st.PeerRole
				gi.PeerHeardVia = append(gi.PeerHeardVia, "replication")
			}
			gi.PeerOutdated = strings.Contains(st.Flags, "peer-outdated")
			switch {
			case st.SplitBrain != nil:
				notReady = "split brain on volume " + g.Volume
			case st.Disk != "UpToDate":
				notReady = "volume " + g.Volume + " is " + st.Disk
			case st.Connection == string(replicate.SyncTarget):
				notReady = "volume " + g.Volume + " is a resync target"
			case !gi.Connected:
				// Only the peer can say whether this data is behind (a
				// node back from a partition is): do not preempt it.
				notReady = "volume " + g.Volume + " is not connected to " + peer
			}
		}
	}
	if in != nil {
		st := in.Status()
		window := 3 * v.AdvertInterval
		if window < time.Second {
			window = time.Second
		}
		if !st.LastAdvertAt.IsZero() && now.Sub(st.LastAdvertAt) < window && st.State != vrrp.StateMaster.String() {
			gi.PeerHeardVia = append(gi.PeerHeardVia, "vrrp")
		}
	}
	for _, n := range conf.Nodes {
		if n.Name == s.self || s.seen == nil || !s.seen(n.Name) {
			continue
		}
		gi.Reachable++
		if n.Name == peer {
			gi.PeerHeardVia = append(gi.PeerHeardVia, "membership")
		}
	}
	if in != nil && g.Volume != "" && len(gi.PeerHeardVia) == 1 && gi.PeerHeardVia[0] == "replication" {
		// Elected (or held by the gate) while only the replication link
		// still says the peer lives: ask the link now rather than wait
		// for its next ping.
		if st := in.Status().State; st == vrrp.StateMaster.String() || st == vrrp.StateFault.String() {
			run.probe(g.Volume, now)
		}
	}
	if peer != "" && gi.Reachable == 1 && len(gi.PeerHeardVia) > 0 {
		gi.Reachable++ // heard on the replication link or VRRP only
	}
	run.mu.Lock()
	if len(gi.PeerHeardVia) > 0 {
		run.everHeard = true
	}
	gi.PeerEverHeard = run.everHeard
	run.mu.Unlock()
	if ok, why := gate.HasQuorum(gi.Quorum, gi.Voters, gi.Reachable); !ok {
		noQuorum = "lost quorum: " + why
	}
	return gate.Decide(gi), notReady, noQuorum
}

// Probing the replication link: how long it has to answer, and how often.
const (
	probeTimeout = 250 * time.Millisecond
	probeEvery   = 400 * time.Millisecond
)

func (run *groupRun) probe(volume string, now time.Time) {
	run.mu.Lock()
	due := now.Sub(run.lastProbe) >= probeEvery
	if due {
		run.lastProbe = now
	}
	run.mu.Unlock()
	if !due {
		return
	}
	s := run.set
	s.vols.mu.Lock()
	vr := s.vols.runs[volume]
	s.vols.mu.Unlock()
	if vr != nil {
		vr.vol.ProbePeer(probeTimeout)
	}
}

// fill adds the live state of the groups to st.
func (s *groupSet) fill(st *api.Status) {
	s.mu.Lock()
	runs := make(map[string]*groupRun, len(s.runs))
	for k, v := range s.runs {
		runs[k] = v
	}
	s.mu.Unlock()
	for i := range st.Groups {
		gs := &st.Groups[i]
		run, ok := runs[gs.Name]
		if !ok {
			gs.State = api.StateNotMember
			continue
		}
		rs := run.runner.Status()
		run.mu.Lock()
		gs.Gate = &api.GateStatus{Open: run.gate.Open, Reason: run.gate.Reason}
		gs.Held = run.held
		if run.handoff != "" {
			gs.Preference = fmt.Sprintf("%s (expires %s)", run.handoff, run.handoffUntil.UTC().Format(time.RFC3339))
		}
		run.mu.Unlock()
		gs.State = rs.Phase
		gs.Why = rs.Why
		gs.Running = rs.Running
		gs.Blocked = rs.Blocked
		gs.GaveUp = rs.GaveUp
		gs.Banned = rs.Banned
		gs.ResourceStates = nil
		for _, r := range rs.Resources {
			gs.ResourceStates = append(gs.ResourceStates, api.ResourceState{ID: r.ID, State: r.State, Last: r.Last, Failures: r.Failures})
		}
		gs.Events = nil
		for _, e := range rs.Events {
			gs.Events = append(gs.Events, api.GroupEvent{At: e.At.UTC(), What: e.What, Result: e.Result, Millis: e.Duration.Milliseconds()})
		}
	}
}

func (s *groupSet) get(name string) *groupRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[name]
}

func (s *groupSet) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.runs))
	for n := range s.runs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
