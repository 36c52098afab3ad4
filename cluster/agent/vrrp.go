package agent

import (
	"reflect"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/internal/logging"
	"github.com/hactl/hactl/vrrp/runner"
)

// vrrpRetryEvery is how often an instance that could not start (its
// interface missing, say) is tried again.
const vrrpRetryEvery = 5 * time.Second

// startInstance is runner.Start; tests of the agent without network
// namespaces replace it.
var startInstance = func(opts runner.Options) (vrrpInstance, error) { return runner.Start(opts) }

// vrrpInstance is what the agent needs of a running instance.
type vrrpInstance interface {
	Status() runner.Status
	Stop()
}

// vrrpSet runs this node's VRRP instances: every vrrp block in which the
// node has a priority.
type vrrpSet struct {
	log  *zap.Logger
	node string
	now  func() time.Time

	mu      sync.Mutex
	want    map[string]vrrpWant // the configuration each instance runs with
	running map[string]vrrpInstance
	failed  map[string]string // instance → why it could not start
}

// vrrpWant is how an instance runs: its block of the cluster file, and
// whether a group orchestrates it (then the group adds its VIPs).
type vrrpWant struct {
	config.VRRPInstance
	Orchestrated bool
}

func newVRRPSet(log *zap.Logger, node string, now func() time.Time) *vrrpSet {
	return &vrrpSet{
		log: log, node: node, now: now,
		want:    map[string]vrrpWant{},
		running: map[string]vrrpInstance{},
		failed:  map[string]string{},
	}
}

// apply makes the running instances match c: instances that are gone or
// changed are stopped (a Master resigns with priority 0), new and changed
// ones start. Unchanged instances keep running untouched.
func (s *vrrpSet) apply(c *config.Cluster) {
	orchestrated := map[string]bool{}
	for _, g := range c.Groups {
		orchestrated[g.VRRP] = true
	}
	next := map[string]vrrpWant{}
	for _, v := range c.VRRP {
		if v.Priority[s.node] != 0 {
			next[v.Name] = vrrpWant{VRRPInstance: v, Orchestrated: orchestrated[v.Name]}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, old := range s.want {
		v, ok := next[name]
		if ok && reflect.DeepEqual(v, old) {
			continue
		}
		if in, running := s.running[name].(interface{ SetOrchestrated(bool) }); ok && running &&
			reflect.DeepEqual(v.VRRPInstance, old.VRRPInstance) {
			// Only a group came or went: no restart, no resignation.
			in.SetOrchestrated(v.Orchestrated)
			s.want[name] = v
			s.log.Info("vrrp instance handed to a group or back", zap.String(logging.KeyInstance, name),
				zap.Bool("orchestrated", v.Orchestrated))
			continue
		}
		if in, ok := s.running[name]; ok {
			s.log.Info("stopping vrrp instance", zap.String(logging.KeyEvent, "vrrp-stop"),
				zap.String(logging.KeyInstance, name), zap.String(logging.KeyReason, "removed or changed in the cluster file"))
			in.Stop()
			delete(s.running, name)
		}
		delete(s.failed, name)
		delete(s.want, name)
	}
	names := make([]string, 0, len(next))
	for name := range next {
		if _, ok := s.want[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		s.want[name] = next[name]
		s.start(name)
	}
}

// start runs one wanted instance; s.mu is held.
func (s *vrrpSet) start(name string) {
	w := s.want[name]
	opts := runner.Options{Instance: w.VRRPInstance, Orchestrated: w.Orchestrated, Node: s.node, Log: s.log, Now: s.now}
	if w.Orchestrated {
		opts.Hold = "starting: waiting for the group's first decision"
	}
	in, err := startInstance(opts)
	if err != nil {
		if s.failed[name] != err.Error() {
			s.log.Error("vrrp instance cannot start; retrying", zap.String(logging.KeyEvent, "vrrp-start-failed"),
				zap.String(logging.KeyInstance, name), zap.Error(err), zap.Duration("retry_every", vrrpRetryEvery))
		}
		s.failed[name] = err.Error()
		return
	}
	if _, was := s.failed[name]; was {
		s.log.Info("vrrp instance started after earlier failures", zap.String(logging.KeyInstance, name))
	}
	delete(s.failed, name)
	s.running[name] = in
}

// retry starts the instances that failed to.
func (s *vrrpSet) retry() {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.failed))
	for name := range s.failed {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s.start(name)
	}
}

// stopAll stops every instance, Masters resigning first of all so that the
// peers take over after their skew time rather than Master_Down.
func (s *vrrpSet) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var wg sync.WaitGroup
	for _, in := range s.running {
		wg.Add(1)
		go func() { defer wg.Done(); in.Stop() }()
	}
	wg.Wait()
	s.running = map[string]vrrpInstance{}
}

// fill puts the live state of each instance into st.
func (s *vrrpSet) fill(st *api.Status) {
	s.mu.Lock()
	running := make(map[string]vrrpInstance, len(s.running))
	for k, v := range s.running {
		running[k] = v
	}
	failed := make(map[string]string, len(s.failed))
	for k, v := range s.failed {
		failed[k] = v
	}
	s.mu.Unlock()
	for i := range st.VRRP {
		vs := &st.VRRP[i]
		if why, ok := failed[vs.Name]; ok {
			vs.State, vs.Fault = api.StateFailed, why
			continue
		}
		in, ok := running[vs.Name]
		if !ok {
			continue
		}
		fillVRRP(vs, in.Status())
	}
}

func fillVRRP(vs *api.VRRPStatus, r runner.Status) {
	vs.State = r.State
	vs.EffectivePriority = r.EffectivePriority
	vs.Fault = r.Fault
	vs.Master = r.MasterAddr
	vs.MasterPriority = r.MasterPriority
	vs.AdvertIntervalInUse = r.AdvertInterval
	vs.MasterDown = r.MasterDown
	if t := r.LastTransition; t != nil {
		vs.LastTransition = &api.VRRPTransition{At: t.At.UTC(), From: t.From, To: t.To, Reason: t.Reason}
	}
	vs.Counters = &api.VRRPCounters{
		Transitions:     r.Transitions,
		AdvertsSent:     r.AdvertsSent,
		AdvertsReceived: r.AdvertsReceived,
		GARPsSent:       r.GARPsSent,
		OtherVRID:       r.OtherVRID,
		Invalid:         r.Invalid,
	}
	if li := r.LastInvalid; li != nil {
		vs.LastInvalid = &api.InvalidAdvert{At: li.At.UTC(), From: li.From, Reason: li.Reason, Detail: li.Detail}
	}
	vs.Tracks = nil
	for _, t := range r.Tracks {
		vs.Tracks = append(vs.Tracks, api.TrackStatus{Name: t.Name, Weight: t.Weight, Up: t.Up, Detail: t.Detail})
	}
	byName := map[string]int{}
	for i, c := range vs.Checks {
		byName[c.Name] = i
	}
	for _, c := range r.Checks {
		if i, ok := byName[c.Name]; ok {
			vs.Checks[i].Failing = c.Failing
			vs.Checks[i].Detail = c.LastDetail
		}
	}
}

// orchestrable is what a group needs of its VRRP instance.
type orchestrable interface {
	Status() runner.Status
	Hold(reason string)
	Yield(reason string)
	Claim() error
	Unclaim() error
	Claimed() bool
}

// instance returns the running instance name, or nil.
func (s *vrrpSet) instance(name string) orchestrable {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, _ := s.running[name].(orchestrable)
	return in
}
