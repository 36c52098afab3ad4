package agent

import (
	"errors"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/vrrp/runner"
)

// recorder is the log of what the agent did; stopAll stops instances in
// parallel.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, s)
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lines
	r.lines = nil
	return out
}

// fakeInstance records what the agent does with an instance.
type fakeInstance struct {
	name string
	log  *recorder
}

func (f *fakeInstance) Status() runner.Status {
	return runner.Status{Name: f.name, State: "backup", EffectivePriority: 80, MasterAddr: "192.0.2.12",
		Invalid: map[string]uint64{"interval-mismatch": 2}}
}

func (f *fakeInstance) Stop() { f.log.add("stop " + f.name) }

func instance(name string, prio uint8) config.VRRPInstance {
	return config.VRRPInstance{
		Name: name, Interface: "eth0", VRID: 1, Version: 3, AdvertInterval: time.Second,
		Priority:   map[string]uint8{"alpha": prio},
		VirtualIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")},
	}
}

// TestVRRPSetApply checks that a reload touches only what changed, and
// that an instance that cannot start is retried and reported.
func TestVRRPSetApply(t *testing.T) {
	log := &recorder{}
	failing := map[string]bool{}
	startInstance = func(opts runner.Options) (vrrpInstance, error) {
		if failing[opts.Instance.Name] {
			log.add("fail " + opts.Instance.Name)
			return nil, errors.New("interface eth9 missing")
		}
		log.add("start " + opts.Instance.Name)
		return &fakeInstance{name: opts.Instance.Name, log: log}, nil
	}
	defer func() { startInstance = func(opts runner.Options) (vrrpInstance, error) { return runner.Start(opts) } }()

	s := newVRRPSet(zap.NewNop(), "alpha", time.Now)
	other := instance("other", 0) // alpha has no priority: not run here
	other.Priority = map[string]uint8{"bravo": 100}
	failing["broken"] = true
	s.apply(&config.Cluster{VRRP: []config.VRRPInstance{instance("a", 100), instance("b", 100), other, instance("broken", 50)}})
	if got, want := log.take(), []string{"start a", "start b", "fail broken"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first apply: %v, want %v", got, want)
	}

	st := api.Status{VRRP: []api.VRRPStatus{{Name: "a"}, {Name: "broken"}, {Name: "other", State: api.StateNotMember}}}
	s.fill(&st)
	if a := st.VRRP[0]; a.State != "backup" || a.EffectivePriority != 80 || a.Master != "192.0.2.12" || a.Counters.Invalid["interval-mismatch"] != 2 {
		t.Errorf("live status of a: %+v", a)
	}
	if b := st.VRRP[1]; b.State != api.StateFailed || b.Fault != "interface eth9 missing" {
		t.Errorf("status of broken: %+v", b)
	}
	if o := st.VRRP[2]; o.State != api.StateNotMember {
		t.Errorf("status of other: %+v", o)
	}

	// Reload: a unchanged, b changed, broken removed, c new.
	b2 := instance("b", 90)
	s.apply(&config.Cluster{VRRP: []config.VRRPInstance{instance("a", 100), b2, instance("c", 100)}})
	if got, want := log.take(), []string{"stop b", "start b", "start c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("reload: %v, want %v", got, want)
	}

	// A failed start is retried until it works.
	failing["d"] = true
	s.apply(&config.Cluster{VRRP: []config.VRRPInstance{instance("a", 100), b2, instance("c", 100), instance("d", 100)}})
	s.retry()
	failing["d"] = false
	s.retry()
	s.retry()
	if got, want := log.take(), []string{"fail d", "fail d", "start d"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("retries: %v, want %v", got, want)
	}

	s.stopAll()
	if got := log.take(); len(got) != 4 {
		t.Errorf("stopAll stopped %v, want a, b, c and d", got)
	}
}
