package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/cluster/membership"
	"github.com/hactl/hactl/internal/logging"
)

// Requests to another node's agent (hactl standby NODE, hactl failover of a
// group another node holds) travel in the published state, like the
// outdate requests: the asking node lists the request with a random id,
// the target carries it out once and lists the id with its outcome under
// "done"; the asker waits for that, then drops the request.

// remoteTimeout bounds how long a request waits for the target's answer.
const remoteTimeout = 15 * time.Second

// remoteRequests are this node's requests to others and the answers it
// gave to theirs.
type remoteRequests struct {
	mu      sync.Mutex
	pending map[string]api.NodeRequest
	done    map[string]string // id → outcome ("ok" or the error), answered here
	order   []string          // ids in done, oldest first, to bound it
}

const keepDone = 64

func (r *remoteRequests) add(req api.NodeRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[string]api.NodeRequest{}
	}
	r.pending[req.ID] = req
}

func (r *remoteRequests) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pending, id)
}

func (r *remoteRequests) publish(ns *api.NodeState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, req := range r.pending {
		ns.Requests = append(ns.Requests, req)
	}
	sort.Slice(ns.Requests, func(i, j int) bool { return ns.Requests[i].ID < ns.Requests[j].ID })
	for _, id := range r.order {
		ns.Done = append(ns.Done, id+" "+r.done[id])
	}
}

// answered reports whether id was carried out here, and records it if not.
func (r *remoteRequests) claim(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.done[id]; ok {
		return false
	}
	if r.done == nil {
		r.done = map[string]string{}
	}
	r.done[id] = "running"
	r.order = append(r.order, id)
	if len(r.order) > keepDone {
		delete(r.done, r.order[0])
		r.order = r.order[1:]
	}
	return true
}

func (r *remoteRequests) finish(id string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.done[id]; !ok {
		return
	}
	r.done[id] = "ok"
	if err != nil {
		r.done[id] = "error: " + strings.ReplaceAll(err.Error(), "\n", " ")
	}
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// memberState is what node last published, and whether it is heard now.
func (a *Agent) memberState(node string) (api.NodeState, bool) {
	for _, m := range a.members.view() {
		if m.Name != node {
			continue
		}
		var ns api.NodeState
		if m.Status != membership.StatusAlive || m.Silent || json.Unmarshal(m.State, &ns) != nil {
			return api.NodeState{}, false
		}
		return ns, true
	}
	return api.NodeState{}, false
}

// holder is the node that publishes group as started or starting.
func (a *Agent) holder(group string) string {
	for _, m := range a.members.view() {
		var ns api.NodeState
		if m.Status != membership.StatusAlive || m.Silent || json.Unmarshal(m.State, &ns) != nil {
			continue
		}
		if s := ns.Groups[group]; strings.HasPrefix(s, "started") || strings.HasPrefix(s, "starting") {
			return m.Name
		}
	}
	return ""
}

// ask sends req to req.Node and waits for its outcome.
func (a *Agent) ask(ctx context.Context, req api.NodeRequest) error {
	if _, ok := a.memberState(req.Node); !ok {
		return fmt.Errorf("node %s is not heard on the cluster network; run the command there", req.Node)
	}
	req.ID = newRequestID()
	a.remote.add(req)
	defer a.remote.remove(req.ID)
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	for {
		if ns, ok := a.memberState(req.Node); ok {
			for _, d := range ns.Done {
				id, outcome, _ := strings.Cut(d, " ")
				if id != req.ID || outcome == "running" {
					continue
				}
				if outcome == "ok" {
					return nil
				}
				return fmt.Errorf("%s: %s", req.Node, strings.TrimPrefix(outcome, "error: "))
			}
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s did not answer within %s (is its agent running?)", req.Node, remoteTimeout)
		case <-t.C:
		}
	}
}

// answerRequests carries out the requests other nodes address to this one.
func (a *Agent) answerRequests() {
	_, self := a.snapshot()
	for _, m := range a.members.view() {
		if m.Status != membership.StatusAlive {
			continue
		}
		var ns api.NodeState
		if json.Unmarshal(m.State, &ns) != nil {
			continue
		}
		for _, req := range ns.Requests {
			if req.Node != self || !a.remote.claim(req.ID) {
				continue
			}
			a.log.Info("request from another node", zap.String(logging.KeyEvent, "remote-request"),
				zap.String(logging.KeyNode, m.Name), zap.String("kind", req.Kind), zap.String(logging.KeyGroup, req.Group))
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
				defer cancel()
				var err error
				switch req.Kind {
				case "standby":
					_, err = a.Standby(ctx, api.StandbyRequest{Node: self})
				case "unstandby":
					_, err = a.Standby(ctx, api.StandbyRequest{Node: self, Off: true})
				case "failover":
					_, err = a.Failover(ctx, api.FailoverRequest{Group: req.Group, To: req.To})
				default:
					err = errors.New("unknown request " + req.Kind)
				}
				a.remote.finish(req.ID, err)
			}()
		}
	}
}

// failoverElsewhere asks the node that holds group to fail it over.
func (a *Agent) failoverElsewhere(ctx context.Context, req api.FailoverRequest, group, self string) (api.Plan, error) {
	holder := a.holder(group)
	switch {
	case holder == "":
		return api.Plan{}, fmt.Errorf("no node is heard running group %s (hactl status shows each node's groups)", group)
	case holder == req.To:
		return api.Plan{}, fmt.Errorf("group %s already runs on %s", group, holder)
	}
	plan := api.Plan{Steps: []string{fmt.Sprintf("ask %s, which holds group %s, to fail it over%s (over the cluster network)", holder, group, toText(req.To))}}
	if req.DryRun {
		return plan, nil
	}
	if err := a.ask(ctx, api.NodeRequest{Kind: "failover", Node: holder, Group: group, To: req.To}); err != nil {
		return plan, err
	}
	plan.Steps = append(plan.Steps, holder+" accepted: the group drains there")
	if !req.Wait {
		return plan, nil
	}
	for {
		if h := a.holder(group); h != "" && h != holder {
			if ns, ok := a.memberState(h); h == self || ok && strings.HasPrefix(ns.Groups[group], "started") {
				plan.Steps = append(plan.Steps, "done: "+h+" runs the group")
				return plan, nil
			}
		}
		if run := a.groups.get(group); run != nil && run.runner.Status().Phase == "started" {
			plan.Steps = append(plan.Steps, "done: "+self+" runs the group")
			return plan, nil
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return plan, fmt.Errorf("waiting for another node to run group %s: %w", group, ctx.Err())
		case <-t.C:
		}
	}
}

func toText(to string) string {
	if to == "" {
		return ""
	}
	return " to " + to
}

// standbyElsewhere asks req.Node to go into (or out of) standby.
func (a *Agent) standbyElsewhere(ctx context.Context, req api.StandbyRequest) (api.Plan, error) {
	kind := "standby"
	if req.Off {
		kind = "unstandby"
	}
	plan := api.Plan{Steps: []string{fmt.Sprintf("ask %s to %s (over the cluster network)", req.Node, kind)}}
	if req.DryRun {
		return plan, nil
	}
	if err := a.ask(ctx, api.NodeRequest{Kind: kind, Node: req.Node}); err != nil {
		return plan, err
	}
	plan.Steps = append(plan.Steps, req.Node+" accepted")
	if req.Off || !req.Wait {
		return plan, nil
	}
	for {
		if ns, ok := a.memberState(req.Node); ok {
			busy := false
			for _, s := range ns.Groups {
				if !strings.HasPrefix(s, "stopped") && !strings.HasPrefix(s, "gave up") {
					busy = true
				}
			}
			if !busy {
				plan.Steps = append(plan.Steps, "done: every group stopped on "+req.Node)
				return plan, nil
			}
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return plan, fmt.Errorf("waiting for %s to stop its groups: %w", req.Node, ctx.Err())
		case <-t.C:
		}
	}
}
