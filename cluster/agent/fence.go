package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/cluster/gate"
	"github.com/hactl/hactl/cluster/membership"
	"github.com/hactl/hactl/internal/logging"
	"github.com/hactl/hactl/replicate"
)

// Resource-level fencing over the membership (DESIGN §7): a Primary whose
// replication link is down asks its peer, through the cluster network, to
// mark its data Outdated, and completes no write alone until the peer
// says it did — or until the peer is silent on every path and this node
// has quorum. The request and the answer travel in the nodes' published
// state: the Primary lists the volume under "outdate", the peer's volume
// state turns ".../Outdated/...".

// outdateRequests are the volumes this node asks its peers to outdate.
type outdateRequests struct {
	mu   sync.Mutex
	vols map[string]int
}

func (o *outdateRequests) add(v string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.vols == nil {
		o.vols = map[string]int{}
	}
	o.vols[v]++
}

func (o *outdateRequests) remove(v string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.vols[v]--; o.vols[v] <= 0 {
		delete(o.vols, v)
	}
}

func (o *outdateRequests) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.vols))
	for v := range o.vols {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// fenceEvery is how often a waiting fence looks at the peer's answer;
// fencePrimaryWait how long a peer that says it is Primary may go on
// saying so (while heard) before writes alone are refused.
const (
	fenceEvery       = 100 * time.Millisecond
	fencePrimaryWait = 5 * time.Second
)

// fenceFor is the Fence of volume vol, whose peer is peer.
func (a *Agent) fenceFor(vol, peer string) func(context.Context) error {
	return func(ctx context.Context) error {
		log := a.log.With(zap.String(logging.KeyVolume, vol), zap.String(logging.KeyNode, peer))
		a.outdates.add(vol)
		defer a.outdates.remove(vol)
		start := a.opts.Now()
		logged := false
		for {
			conf := a.currentConf()
			var pm *membership.Member
			reachable := 1
			for _, m := range a.members.view() {
				if m.Status != membership.StatusAlive || m.Silent {
					continue
				}
				reachable++
				if m.Name == peer {
					pm = &m
				}
			}
			if pm == nil {
				ok, why := gate.HasQuorum(string(conf.Quorum), len(conf.Nodes), reachable)
				if !ok {
					log.Error("writes refused: the peer is silent on every path and this node has no quorum",
						zap.String(logging.KeyEvent, "fence"), zap.String(logging.KeyReason, why))
					return fmt.Errorf("%s is silent and this node has %s", peer, why)
				}
				log.Warn("writing alone: the peer is silent on every path", zap.String(logging.KeyEvent, "fence"),
					zap.String(logging.KeyReason, why))
				return nil
			}
			var ns api.NodeState
			_ = json.Unmarshal(pm.State, &ns)
			state := ns.Volumes[vol]
			switch {
			case strings.Contains(state, "/Outdated/") || strings.Contains(state, "/Inconsistent/"):
				a.vols.mu.Lock()
				run := a.vols.runs[vol]
				a.vols.mu.Unlock()
				if run != nil {
					if err := run.vol.MarkPeerOutdated(); err != nil {
						return err
					}
				}
				log.Warn("peer outdated: writing alone", zap.String(logging.KeyEvent, "fence"),
					zap.Duration("waited", a.opts.Now().Sub(start)), zap.String("peer_state", state))
				return nil
			case strings.HasPrefix(state, "Primary/"):
				// Its last word, maybe: a peer that just died still looks
				// alive (and Primary) until its heartbeats are missed.
				// One that stays Primary while heard is a split brain in
				// the making: refuse then.
				if a.opts.Now().Sub(start) > fencePrimaryWait {
					log.Error("writes refused: the peer is Primary too", zap.String(logging.KeyEvent, "fence"))
					return fmt.Errorf("%s is Primary too", peer)
				}
			}
			if !logged {
				log.Warn("replication link down but the peer is alive: writes wait until it marks itself Outdated",
					zap.String(logging.KeyEvent, "fence"))
				logged = true
			}
			t := time.NewTimer(fenceEvery)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}

// answerOutdates marks this node's volumes Outdated when their Primary
// peer asks (its published state lists them) and the link is down here too.
func (a *Agent) answerOutdates() {
	for _, m := range a.members.view() {
		if m.Status != membership.StatusAlive || len(m.State) == 0 {
			continue
		}
		var ns api.NodeState
		if json.Unmarshal(m.State, &ns) != nil {
			continue
		}
		for _, vol := range ns.Outdate {
			a.vols.mu.Lock()
			run := a.vols.runs[vol]
			a.vols.mu.Unlock()
			if run == nil || run.spec.Peer != m.Name {
				continue
			}
			st := run.vol.Status()
			if st.Disk == "Outdated" || st.Disk == "Inconsistent" || st.Connection != string(replicate.Connecting) && st.Connection != string(replicate.StandAlone) {
				continue
			}
			if err := run.vol.Outdate(); err != nil {
				a.log.Warn("peer asked to outdate this node's data; refused", zap.String(logging.KeyVolume, vol),
					zap.String(logging.KeyNode, m.Name), zap.Error(err))
				continue
			}
			a.log.Warn("data marked Outdated at the Primary's request (replication link down)", zap.String(logging.KeyEvent, "outdated"),
				zap.String(logging.KeyVolume, vol), zap.String(logging.KeyNode, m.Name))
		}
	}
}
