package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/internal/logging"
	"github.com/hactl/hactl/resources"
	"github.com/hactl/hactl/vrrp"
)

// HandoffFor is how long a graceful failover's preference for the new node
// lasts on the old one when the VRRP instance preempts (without
// preemption the old node is a plain backup as soon as the new one
// serves). It shows in status with its expiry.
const HandoffFor = time.Hour

// owned reports whether this node runs (or is starting) the group.
func (run *groupRun) owned() bool {
	switch run.runner.Status().Phase {
	case "started", "starting":
		return true
	}
	return false
}

// Failover implements api.Backend: hactl failover [GROUP] [--to NODE]. It
// runs on the node that holds the group: that node drains the group (VIP,
// services, filesystem, volume), resigns its VRRP instance, and the next
// node in the failover order takes over through its own gate.
func (a *Agent) Failover(ctx context.Context, req api.FailoverRequest) (api.Plan, error) {
	conf, self := a.snapshot()
	names := []string{req.Group}
	if req.Group == "" {
		names = nil
		for _, n := range a.groups.names() {
			if run := a.groups.get(n); run != nil && run.owned() {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return api.Plan{}, fmt.Errorf("this node (%s) runs no group; run hactl failover on the node that does", self)
		}
	}
	var plan api.Plan
	var runs []*groupRun
	for _, name := range names {
		g, ok := conf.Group(name)
		if !ok {
			return api.Plan{}, fmt.Errorf("no group %q in the cluster file (groups: %s)", name, groupNames(conf))
		}
		to, err := failoverTarget(conf, g, self, req.To)
		if err != nil {
			return api.Plan{}, err
		}
		run := a.groups.get(name)
		if run == nil || !run.owned() {
			return a.failoverElsewhere(ctx, req, name, self)
		}
		why := "failover to " + to + " requested"
		p, err := run.runner.Plan(resources.Deactivate{Reason: why})
		if err != nil {
			return api.Plan{}, err
		}
		for _, st := range p.Steps {
			plan.Steps = append(plan.Steps, fmt.Sprintf("%s on %s: %s", name, self, st))
		}
		plan.Steps = append(plan.Steps,
			fmt.Sprintf("%s on %s: resign vrrp %s (priority 0 advert)", name, self, g.VRRP),
			fmt.Sprintf("%s on %s: vrrp %s Master, gate, then start %s", name, to, g.VRRP, strings.Join(groupResources(g), ", ")))
		runs = append(runs, run)
		if !req.DryRun {
			run.mu.Lock()
			run.handoff, run.handoffTo, run.handedOver = why, to, false
			run.handoffAt = a.opts.Now()
			run.handoffUntil = run.handoffAt.Add(HandoffFor)
			run.mu.Unlock()
			run.poke()
			a.log.Info("failover requested", zap.String(logging.KeyEvent, "failover"), zap.String(logging.KeyGroup, name),
				zap.String(logging.KeyFrom, self), zap.String(logging.KeyTo, to))
		}
	}
	if req.DryRun || !req.Wait {
		return plan, nil
	}
	for _, run := range runs {
		if err := run.waitHandedOver(ctx); err != nil {
			return plan, err
		}
	}
	plan.Steps = append(plan.Steps, "done: the groups stopped here and another node serves their VRRP instances")
	return plan, nil
}

// waitHandedOver returns when the group is stopped here and another router
// serves its instance.
func (run *groupRun) waitHandedOver(ctx context.Context) error {
	for {
		ch := run.runner.Changed()
		rs := run.runner.Status()
		if rs.Blocked != "" {
			return fmt.Errorf("group %s is blocked: %s", run.conf.Name, rs.Blocked)
		}
		in := run.set.vrrp.instance(run.conf.VRRP)
		run.mu.Lock()
		at := run.handoffAt
		run.mu.Unlock()
		if in != nil && rs.Phase == "stopped" {
			st := in.Status()
			if st.LastAdvertAt.After(at) && st.State != vrrp.StateMaster.String() && run.set.now().Sub(st.LastAdvertAt) < time.Second &&
				run.servedElsewhere() {
				return nil
			}
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("group %s: waiting for the other node to take over: %w", run.conf.Name, ctx.Err())
		}
		t.Stop()
	}
}

// servedElsewhere: another node publishes the group as started (true
// without a membership to ask: the VRRP advert is then all there is).
func (run *groupRun) servedElsewhere() bool {
	s := run.set
	if s.peerState == nil {
		return true
	}
	s.mu.Lock()
	conf := s.conf
	s.mu.Unlock()
	heard := false
	for _, n := range conf.Nodes {
		if n.Name == s.self {
			continue
		}
		ns, ok := s.peerState(n.Name)
		if !ok {
			continue
		}
		heard = true
		if strings.HasPrefix(ns.Groups[run.conf.Name], "started") {
			return true
		}
	}
	return !heard
}

// failoverTarget picks the node a group moves to: --to, or the other node
// with the highest priority in the group's instance.
func failoverTarget(conf *config.Cluster, g config.Group, self, to string) (string, error) {
	if to != "" {
		if to == self {
			return "", fmt.Errorf("--to %s is this node, which already holds group %s", to, g.Name)
		}
		return to, canRun(conf, g, to)
	}
	v, _ := conf.VRRPInstance(g.VRRP)
	best, prio := "", uint8(0)
	for n, p := range v.Priority {
		if n != self && (p > prio || p == prio && n < best) {
			best, prio = n, p
		}
	}
	if best == "" {
		return "", fmt.Errorf("group %s has no other node in vrrp %s to move to", g.Name, g.VRRP)
	}
	return best, nil
}

func groupResources(g config.Group) []string {
	var out []string
	if g.Volume != "" {
		out = append(out, "volume:"+g.Volume)
	}
	if g.Filesystem != nil {
		out = append(out, "filesystem:"+g.Filesystem.Mountpoint)
	}
	for _, r := range g.Resources {
		out = append(out, string(r.Kind)+":"+r.Name)
	}
	return append(out, "vip:"+g.VRRP)
}

// Standby implements api.Backend: hactl standby NODE [--off] for this
// node. Its groups drain and its instances stay held until --off.
func (a *Agent) Standby(ctx context.Context, req api.StandbyRequest) (api.Plan, error) {
	conf, self := a.snapshot()
	if _, ok := conf.Node(req.Node); !ok {
		return api.Plan{}, fmt.Errorf("no node %q in the cluster file", req.Node)
	}
	if req.Node != self {
		return a.standbyElsewhere(ctx, req)
	}
	var plan api.Plan
	for _, name := range a.groups.names() {
		run := a.groups.get(name)
		if run == nil {
			continue
		}
		if req.Off {
			plan.Steps = append(plan.Steps, fmt.Sprintf("%s: release vrrp %s: this node may take the group again", name, run.conf.VRRP))
			continue
		}
		p, err := run.runner.Plan(resources.Deactivate{Reason: "standby"})
		if err != nil {
			return api.Plan{}, err
		}
		for _, st := range p.Steps {
			plan.Steps = append(plan.Steps, fmt.Sprintf("%s: %s", name, st))
		}
		plan.Steps = append(plan.Steps, fmt.Sprintf("%s: hold vrrp %s out of service (priority 0) until hactl unstandby %s", name, run.conf.VRRP, self))
	}
	if req.DryRun {
		return plan, nil
	}
	a.groups.mu.Lock()
	if req.Off {
		a.groups.standby = ""
	} else {
		a.groups.standby = "requested at " + a.opts.Now().UTC().Format(time.RFC3339)
	}
	a.groups.mu.Unlock()
	a.log.Info("standby changed", zap.String(logging.KeyEvent, "standby"), zap.String(logging.KeyNode, self), zap.Bool("on", !req.Off))
	for _, name := range a.groups.names() {
		if run := a.groups.get(name); run != nil {
			run.poke()
		}
	}
	if req.Off || !req.Wait {
		return plan, nil
	}
	for _, name := range a.groups.names() {
		run := a.groups.get(name)
		if run == nil {
			continue
		}
		if err := run.runner.Wait(ctx, false); err != nil {
			return plan, err
		}
	}
	plan.Steps = append(plan.Steps, "done: every group stopped on "+self)
	return plan, nil
}

// Cleanup implements api.Backend: hactl cleanup GROUP forgets its failures
// on this node and lifts a block or ban.
func (a *Agent) Cleanup(_ context.Context, req api.CleanupRequest) (api.Plan, error) {
	conf, self := a.snapshot()
	if _, ok := conf.Group(req.Group); !ok {
		return api.Plan{}, fmt.Errorf("no group %q in the cluster file (groups: %s)", req.Group, groupNames(conf))
	}
	run := a.groups.get(req.Group)
	if run == nil {
		return api.Plan{}, fmt.Errorf("group %s does not run on this node (%s)", req.Group, self)
	}
	p, err := run.runner.Plan(resources.Cleanup{Reason: "hactl cleanup"})
	if err != nil {
		return api.Plan{}, err
	}
	var plan api.Plan
	for _, st := range p.Steps {
		plan.Steps = append(plan.Steps, st.String())
	}
	if len(plan.Steps) == 0 {
		plan.Steps = append(plan.Steps, p.Reason)
	}
	if req.DryRun {
		return plan, nil
	}
	run.mu.Lock()
	run.gaveUp, run.gaveUntil = "", time.Time{}
	run.mu.Unlock()
	run.runner.Cleanup("hactl cleanup")
	run.poke()
	return plan, nil
}
