// Package runner runs one VRRP instance on this node: it feeds the pure
// state machine of package vrrp with adverts from the raw socket, timer
// expiries, link states and health checks, and carries out its actions
// with the socket, netlink and gratuitous ARP.
//
// One goroutine owns the machine. It never waits on anything but its own
// events: checks run in their own goroutines, adverts are read by another,
// and state changes reach subscribers through unbounded queues.
package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/internal/logging"
	"github.com/hactl/hactl/vrrp"
	"github.com/hactl/hactl/vrrp/check"
	"github.com/hactl/hactl/vrrp/vrrpnet"
)

// Change is a state transition of an instance, delivered to subscribers in
// the order it happened.
type Change struct {
	Instance string
	From, To vrrp.State
	Reason   string
	At       time.Time
}

// Options configure one instance.
type Options struct {
	Instance config.VRRPInstance
	Node     string // this node's name in the cluster file
	Log      *zap.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Orchestrated hands the virtual IPs to a resource group: becoming
	// Master adds no address and sends no GARP until Claim, which the
	// group calls as its last start step (DESIGN §3.2 step 5). Leaving
	// Master still removes them at once.
	Orchestrated bool
	// Hold starts the instance held (see Hold): an orchestrated instance
	// waits for its group's controller to say whether it may take over,
	// so a restarted node cannot preempt before its gate is asked.
	Hold string
}

// Instance is one running VRRP instance. Its methods are safe for
// concurrent use.
type Instance struct {
	cfg  config.VRRPInstance
	log  *zap.Logger
	now  func() time.Time
	base uint8

	conn *vrrpnet.Conn
	link *vrrpnet.Link // where the VIPs live and GARPs leave: the VMAC when configured
	vmac string
	// restoreSysctls are the parent's settings before the VMAC changed them.
	restoreSysctls map[string]int
	filter         vrrp.Filter
	machine        *vrrp.Machine       // owned by the loop goroutine
	dsts           []netip.Addr        // the group, or the unicast peers
	owned          map[netip.Addr]bool // VIPs the owner (priority 255) had on the interface: never removed
	cs             vrrp.Checksum
	addrs          []netip.Addr

	adverts chan vrrp.AdvertReceived
	wake    chan struct{} // a check or link changed; coalesced
	checks  *check.Runner
	links   <-chan vrrpnet.LinkState

	orchestrated bool

	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex // guards the fields below
	status   Status
	failing  map[string]check.Update
	linkDown map[string]string // tracked interface → why it is down
	subs     []*queue
	lastLog  map[vrrp.Reason]time.Time
	// hold keeps the instance out of service (in FAULT: a priority 0
	// advert if it was Master, and no takeover) for a reason given by the
	// orchestrator: a closed promotion gate, standby, a group given up.
	hold string
	// claimed: an orchestrated Master's group added the VIPs (Claim).
	claimed bool
	// yield lowers the effective priority to 1 for a reason (a failover's
	// preference for another node): still a backup, never preferred.
	yield string
}

// invalidLogEvery limits how often one reason for dropping adverts is
// logged: a misconfigured peer sends ten a second.
const invalidLogEvery = time.Minute

// Start opens the sockets, removes any virtual IP a crashed run left on the
// interface, and starts the instance in Backup (Master at once for an
// address owner). ctx bounds nothing after Start returns; use Stop.
func Start(opts Options) (*Instance, error) {
	v := opts.Instance
	prio := v.Priority[opts.Node]
	if prio == 0 {
		return nil, fmt.Errorf("vrrp %s: node %q has no priority in it", v.Name, opts.Node)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	in := &Instance{
		cfg:      v,
		log:      opts.Log.With(zap.String(logging.KeyInstance, v.Name), zap.Int(logging.KeyVRID, int(v.VRID))),
		now:      opts.Now,
		base:     prio,
		adverts:  make(chan vrrp.AdvertReceived, 64),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		failing:  map[string]check.Update{},
		linkDown: map[string]string{},
		lastLog:  map[vrrp.Reason]time.Time{},

		orchestrated: opts.Orchestrated,
		hold:         opts.Hold,
	}
	for _, p := range v.VirtualIPs {
		in.addrs = append(in.addrs, p.Addr())
	}
	in.cs = vrrp.ChecksumPlain
	if v.V3PseudoHeader {
		in.cs = vrrp.ChecksumPseudoHeader
	}
	if err := in.open(opts.Node); err != nil {
		in.closeAll()
		return nil, fmt.Errorf("vrrp %s: %w", v.Name, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	names := make([]string, len(v.TrackInterfaces))
	for i, t := range v.TrackInterfaces {
		names[i] = t.Name
	}
	links, err := vrrpnet.WatchLinks(ctx, names)
	if err != nil {
		cancel()
		in.closeAll()
		return nil, fmt.Errorf("vrrp %s: tracking interfaces: %w", v.Name, err)
	}
	in.links = links
	in.checks = check.Start(ctx, v.Checks, in.checkChanged)

	in.status = Status{
		Name: v.Name, State: vrrp.StateInit.String(), Priority: int(prio), EffectivePriority: int(prio),
		AdvertInterval: v.AdvertInterval.String(), Invalid: map[string]uint64{},
	}
	go in.receive()
	go in.loop(ctx)
	return in, nil
}

// open binds the sockets and links and builds the filter and machine.
func (in *Instance) open(node string) error {
	v := in.cfg
	var err error
	unicast := len(v.UnicastPeers) > 0
	in.conn, err = vrrpnet.Listen(v.Interface, vrrpnet.ConnOptions{Unicast: unicast, Source: v.Source(node)})
	if err != nil {
		return err
	}
	src := in.conn.Source()
	vipIf := v.Interface
	if v.VMAC {
		if in.vmac, err = vrrpnet.AddVMAC(v.Interface, v.VRID); err != nil {
			return err
		}
		vipIf = in.vmac
		// Only the VMAC may speak ARP for the VIPs, or clients learn the
		// parent's MAC (see vrrpnet.VMACSysctls).
		in.restoreSysctls = map[string]int{}
		for key, val := range vrrpnet.VMACSysctls {
			old, err := vrrpnet.SetSysctl(v.Interface, key, val)
			if err != nil {
				return err
			}
			in.restoreSysctls[key] = old
		}
	}
	if in.link, err = vrrpnet.OpenLink(vipIf); err != nil {
		return err
	}
	// A crashed run (kill -9) leaves its VIPs behind; holding them while
	// Backup would duplicate the address the new master announces. The
	// address owner (priority 255) is the exception: the addresses are its
	// own, configured on the interface, and never to be removed.
	in.owned = map[netip.Addr]bool{}
	for _, p := range v.VirtualIPs {
		has, err := in.link.HasAddr(p.Addr())
		if err != nil {
			return err
		}
		if has && in.base == vrrp.PriorityOwner {
			in.owned[p.Addr()] = true
			continue
		}
		if has {
			if err := in.link.DelAddr(p); err != nil {
				return err
			}
			in.log.Warn("removed a virtual IP left by an earlier run",
				zap.String(logging.KeyEvent, "stale-vip"), zap.String("vip", p.String()))
		}
	}
	if unicast {
		for _, p := range v.UnicastPeers {
			if p != src {
				in.dsts = append(in.dsts, p)
			}
		}
	} else {
		in.dsts = []netip.Addr{vrrp.MulticastGroup}
	}
	in.filter = vrrp.Filter{
		Version:  v.Version,
		VRID:     v.VRID,
		Interval: v.AdvertInterval,
		Addrs:    in.addrs,
		Checksum: in.cs,
		Unicast:  unicast,
		Peers:    in.dsts,
		Self:     []netip.Addr{src},
	}
	if v.AuthPass != "" {
		in.filter.AuthType = vrrp.AuthPass
		in.filter.AuthPass = v.AuthPass
	}
	in.machine = vrrp.New(vrrp.Config{
		VRID:            v.VRID,
		Version:         v.Version,
		Priority:        in.base,
		AdvertInterval:  v.AdvertInterval,
		Preempt:         v.Preempt,
		PreemptDelay:    v.PreemptDelay,
		Address:         src,
		GARPCount:       v.GARPCount,
		GARPRepeatDelay: v.GARPRepeatDelay,
		GARPRefresh:     v.GARPRefresh,
	})
	return nil
}

func (in *Instance) closeAll() {
	if in.conn != nil {
		in.conn.Close()
	}
	if in.link != nil {
		in.link.Close()
	}
	if in.vmac != "" {
		if err := vrrpnet.RemoveVMAC(in.cfg.Interface, in.cfg.VRID); err != nil {
			in.log.Warn("removing the VMAC interface", zap.Error(err))
		}
		// The last VMAC on the parent puts the parent's settings back.
		if left, err := vrrpnet.VMACsOn(in.cfg.Interface); err == nil && !left {
			for key, old := range in.restoreSysctls {
				if _, err := vrrpnet.SetSysctl(in.cfg.Interface, key, old); err != nil {
					in.log.Warn("restoring a sysctl of the VMAC's parent", zap.String("sysctl", key), zap.Error(err))
				}
			}
		}
	}
}

// Stop resigns gracefully (an advert with priority 0 and the VIPs removed
// when Master), stops the checks and closes the sockets. It returns when
// all of that is done.
func (in *Instance) Stop() {
	in.cancel()
	<-in.done
}

// Subscribe returns a channel that receives every later state change in
// order. The channel is closed after Stop.
func (in *Instance) Subscribe() <-chan Change {
	q := newQueue()
	in.mu.Lock()
	in.subs = append(in.subs, q)
	in.mu.Unlock()
	return q.out
}

// receive reads adverts until the socket is closed, counting and logging
// the ones the filter drops.
func (in *Instance) receive() {
	for {
		p, err := in.conn.Receive()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			in.log.Warn("receiving adverts", zap.Error(err))
			continue
		}
		ad, err := in.filter.Accept(p)
		if err != nil {
			in.dropped(p, err)
			continue
		}
		in.mu.Lock()
		in.status.AdvertsReceived++
		if ad.Priority > 0 {
			in.status.LastAdvertAt = in.now()
			in.status.LastAdvertFrom = p.Src.String()
		}
		in.mu.Unlock()
		select {
		case in.adverts <- vrrp.AdvertReceived{From: p.Src, Priority: ad.Priority, Interval: ad.Interval}:
		case <-in.done: // the loop is gone; Close is on its way
			return
		}
	}
}

// dropped accounts for a rejected advert. Another router's VRID on the
// same segment is normal and only counted; everything else is a
// misconfiguration that could end in two masters, so it is logged (at most
// once a minute per reason) and shown in status.
func (in *Instance) dropped(p vrrp.Packet, err error) {
	var ve *vrrp.Error
	reason := vrrp.Reason("unknown")
	if errors.As(err, &ve) {
		reason = ve.Reason
	}
	now := in.now()
	in.mu.Lock()
	switch reason {
	case vrrp.ReasonOwnAdvert:
		in.mu.Unlock()
		return
	case vrrp.ReasonVRID:
		in.status.OtherVRID++
		in.mu.Unlock()
		return
	}
	in.status.Invalid[string(reason)]++
	in.status.LastInvalid = &Invalid{At: now, From: p.Src.String(), Reason: string(reason), Detail: err.Error()}
	logIt := now.Sub(in.lastLog[reason]) >= invalidLogEvery
	if logIt {
		in.lastLog[reason] = now
	}
	in.mu.Unlock()
	if logIt {
		in.log.Warn("advert dropped: the peer's settings do not match ours",
			zap.String(logging.KeyEvent, "advert-invalid"), zap.String(logging.KeyReason, string(reason)),
			zap.String("from", p.Src.String()), zap.String("detail", err.Error()))
	}
}

// checkChanged is called from check goroutines; it must not block.
func (in *Instance) checkChanged(u check.Update) {
	in.mu.Lock()
	if u.Failing {
		in.failing[u.Check] = u
	} else {
		delete(in.failing, u.Check)
	}
	in.mu.Unlock()
	in.log.Info("health check changed", zap.String(logging.KeyEvent, "check"), zap.String("check", u.Check),
		zap.Bool("failing", u.Failing), zap.Int("weight", u.Weight), zap.String(logging.KeyReason, u.Detail))
	in.poke()
}

// poke wakes the loop to reassess health; wakes coalesce, it never blocks.
func (in *Instance) poke() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// addVIPs puts the virtual IPs on the interface (the VMAC when configured);
// each failure is logged and the first returned.
func (in *Instance) addVIPs() error {
	var first error
	for _, p := range in.cfg.VirtualIPs {
		if err := in.link.AddAddr(p); err != nil {
			in.log.Error("adding a virtual IP", zap.String("vip", p.String()), zap.Error(err))
			if first == nil {
				first = fmt.Errorf("vrrp %s: adding %s: %w", in.cfg.Name, p, err)
			}
		}
	}
	return first
}

// removeVIPs takes the virtual IPs away, except those the interface owned
// before (priority 255); each failure is logged and the first returned.
func (in *Instance) removeVIPs() error {
	var first error
	for _, p := range in.cfg.VirtualIPs {
		if in.owned[p.Addr()] {
			continue
		}
		if err := in.link.DelAddr(p); err != nil {
			in.log.Error("removing a virtual IP", zap.String("vip", p.String()), zap.Error(err))
			if first == nil {
				first = fmt.Errorf("vrrp %s: removing %s: %w", in.cfg.Name, p, err)
			}
		}
	}
	return first
}

// sendGARPs sends count gratuitous ARPs for every virtual IP.
func (in *Instance) sendGARPs(count int) {
	sent := 0
	for range count {
		for _, ip := range in.addrs {
			if err := in.link.GARP(ip); err != nil {
				in.log.Warn("sending gratuitous ARP", zap.String("vip", ip.String()), zap.Error(err))
				continue
			}
			sent++
		}
	}
	in.mu.Lock()
	in.status.GARPsSent += uint64(sent)
	in.mu.Unlock()
}

func (in *Instance) loop(ctx context.Context) {
	defer close(in.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Faults known before Start (a hold) take effect at Start.
	fault, prio := in.health(false, in.base)
	in.step(vrrp.Start{})
	for {
		if d := in.machine.Deadline(); d.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(d.Sub(in.now()))
		}
		select {
		case <-ctx.Done():
			in.step(vrrp.Shutdown{})
			in.checks.Stop()
			in.closeAll()
			in.mu.Lock()
			for _, q := range in.subs {
				q.close()
			}
			in.subs = nil
			in.mu.Unlock()
			return
		case ad := <-in.adverts:
			in.step(ad)
		case <-timer.C:
			in.step(vrrp.Timeout{})
		case ls, ok := <-in.links:
			if !ok {
				in.links = nil
				continue
			}
			in.mu.Lock()
			if ls.Up {
				delete(in.linkDown, ls.Name)
			} else {
				in.linkDown[ls.Name] = ls.Detail
			}
			in.mu.Unlock()
			fault, prio = in.health(fault, prio)
		case <-in.wake:
			fault, prio = in.health(fault, prio)
		}
	}
}

// health recomputes fault and effective priority from the tracked links
// and the failing checks and tells the machine what changed.
func (in *Instance) health(wasFault bool, wasPrio uint8) (bool, uint8) {
	in.mu.Lock()
	checks := make([]check.Update, 0, len(in.failing))
	for _, u := range in.failing {
		checks = append(checks, u)
	}
	h := assess(in.base, in.cfg.TrackInterfaces, in.linkDown, checks)
	if in.hold != "" {
		h.faults = append(h.faults, "held: "+in.hold)
	}
	if in.yield != "" && h.prio > 1 {
		h.prio, h.reason = 1, "yielding: "+in.yield
	}
	in.status.Fault = strings.Join(h.faults, "; ")
	in.status.Held = in.hold
	in.mu.Unlock()

	fault := len(h.faults) > 0
	if fault != wasFault {
		reason := "tracked interfaces and checks healthy again"
		if fault {
			reason = strings.Join(h.faults, "; ")
		}
		in.step(vrrp.SetFault{Fault: fault, Reason: reason})
	}
	if h.prio != wasPrio {
		in.step(vrrp.SetPriority{Priority: h.prio, Reason: h.reason})
		in.log.Info("effective priority changed", zap.String(logging.KeyEvent, "priority"),
			zap.Int("from", int(wasPrio)), zap.Int("to", int(h.prio)), zap.String(logging.KeyReason, h.reason))
	}
	return fault, h.prio
}

// assessment is what tracked interfaces and checks say about an instance.
type assessment struct {
	prio   uint8    // effective priority
	reason string   // why prio is what it is
	faults []string // why the instance must be in fault; empty: it need not
}

// assess combines the base priority, the tracked interfaces that are down
// (name → why) and the failing checks. A down interface with a weight
// counts like a failing check with that weight; one with weight 0, like a
// failing check with weight 0, puts the instance in fault.
func assess(base uint8, tracks []config.TrackInterface, down map[string]string, checks []check.Update) assessment {
	failing := append([]check.Update(nil), checks...)
	for _, t := range tracks {
		if detail, isDown := down[t.Name]; isDown {
			failing = append(failing, check.Update{Check: "interface " + t.Name, Failing: true, Weight: t.Weight, Detail: detail})
		}
	}
	sort.Slice(failing, func(i, j int) bool { return failing[i].Check < failing[j].Check })
	var a assessment
	a.prio, _ = check.Priority(base, failing)
	var weighted []string
	for _, u := range failing {
		name := u.Check
		if !strings.HasPrefix(name, "interface ") {
			name = "check " + name
		}
		if u.Weight == 0 {
			a.faults = append(a.faults, fmt.Sprintf("%s: %s", name, u.Detail))
		} else {
			weighted = append(weighted, fmt.Sprintf("%s %+d", name, u.Weight))
		}
	}
	a.reason = "nothing tracked is down or failing"
	if len(weighted) > 0 {
		a.reason = "down or failing: " + strings.Join(weighted, ", ")
	}
	return a
}

// step feeds one event to the machine and carries out its actions.
func (in *Instance) step(ev vrrp.Event) {
	now := in.now()
	for _, a := range in.machine.Step(ev, now) {
		in.do(a, now)
	}
	snap := in.machine.Snapshot()
	in.mu.Lock()
	in.status.State = snap.State.String()
	in.status.EffectivePriority = int(snap.Priority)
	in.status.MasterAddr = ""
	if snap.MasterAddr.IsValid() {
		in.status.MasterAddr = snap.MasterAddr.String()
	}
	in.status.MasterPriority = int(snap.MasterPriority)
	in.status.AdvertInterval = snap.MasterInterval.String()
	in.status.MasterDown = snap.MasterDown.String()
	in.mu.Unlock()
}

func (in *Instance) do(a vrrp.Action, now time.Time) {
	switch a := a.(type) {
	case vrrp.SendAdvert:
		in.sendAdvert(a.Priority)
	case vrrp.AddVIPs:
		in.mu.Lock()
		orchestrated := in.orchestrated
		in.mu.Unlock()
		if orchestrated {
			return // the group adds them as its last step: Claim
		}
		_ = in.addVIPs()
	case vrrp.RemoveVIPs:
		in.mu.Lock()
		in.claimed = false
		in.mu.Unlock()
		_ = in.removeVIPs()
	case vrrp.SendGARP:
		in.mu.Lock()
		unclaimed := in.orchestrated && !in.claimed
		in.mu.Unlock()
		if unclaimed {
			return
		}
		in.sendGARPs(a.Count)
	case vrrp.Transition:
		c := Change{Instance: in.cfg.Name, From: a.From, To: a.To, Reason: a.Reason, At: now}
		in.log.Info("vrrp state change", zap.String(logging.KeyEvent, "transition"),
			zap.String(logging.KeyFrom, a.From.String()), zap.String(logging.KeyTo, a.To.String()),
			zap.String(logging.KeyReason, a.Reason))
		in.mu.Lock()
		in.status.LastTransition = &Transition{At: now, From: a.From.String(), To: a.To.String(), Reason: a.Reason}
		in.status.Transitions++
		for _, q := range in.subs {
			q.push(c)
		}
		in.mu.Unlock()
	}
}

func (in *Instance) sendAdvert(prio uint8) {
	ad := vrrp.Advert{
		Version:  in.cfg.Version,
		VRID:     in.cfg.VRID,
		Priority: prio,
		Interval: in.cfg.AdvertInterval,
		Addrs:    in.addrs,
	}
	if in.cfg.Version == 2 {
		ad.AuthType = in.filter.AuthType
		ad.AuthData = in.filter.AuthData()
	}
	sent := 0
	for _, dst := range in.dsts {
		b, err := ad.Marshal(in.cs, in.conn.Source(), dst)
		if err == nil {
			err = in.conn.Send(dst, b)
		}
		if err != nil {
			in.log.Warn("sending an advert", zap.String("to", dst.String()), zap.Error(err))
			continue
		}
		sent++
	}
	in.mu.Lock()
	in.status.AdvertsSent += uint64(sent)
	in.mu.Unlock()
}

// Status returns the instance's live view.
func (in *Instance) Status() Status {
	in.mu.Lock()
	st := in.status
	st.Invalid = make(map[string]uint64, len(in.status.Invalid))
	for k, v := range in.status.Invalid {
		st.Invalid[k] = v
	}
	for _, ti := range in.cfg.TrackInterfaces {
		t := Track{Name: ti.Name, Weight: ti.Weight, Up: true}
		if d, down := in.linkDown[ti.Name]; down {
			t.Up, t.Detail = false, d
		}
		st.Tracks = append(st.Tracks, t)
	}
	in.mu.Unlock()
	if in.checks != nil {
		st.Checks = in.checks.Status()
	}
	return st
}

// Hold keeps the instance out of service for reason: it goes to FAULT (a
// Master resigns with a priority 0 advert and removes its addresses) and
// takes nothing over until Hold(""). The orchestrator holds an instance
// while its group's promotion gate is closed, for standby, and while a
// graceful failover hands the group to another node.
func (in *Instance) Hold(reason string) {
	in.mu.Lock()
	changed := in.hold != reason
	in.hold = reason
	in.mu.Unlock()
	if changed {
		in.poke()
	}
}

// Yield lowers the instance's effective priority to 1 for reason until
// Yield(""): it stays a backup that takes over if every other router
// goes, but never preempts. A graceful failover sets it on the old owner
// while the preference for the new one lasts.
func (in *Instance) Yield(reason string) {
	in.mu.Lock()
	changed := in.yield != reason
	in.yield = reason
	in.mu.Unlock()
	if changed {
		in.poke()
	}
}

// SetOrchestrated hands the VIPs to a group (or takes them back) without
// restarting the instance: a reload that adds or removes the group must
// not make a Master resign. A Master's addresses count as claimed; a
// Master given back its addresses adds them (the group that held them
// has stopped and removed them).
func (in *Instance) SetOrchestrated(on bool) {
	in.mu.Lock()
	in.orchestrated = on
	master := in.status.State == vrrp.StateMaster.String()
	in.claimed = on && master
	in.mu.Unlock()
	if !on && master {
		_ = in.addVIPs()
	}
}

// ErrNotMaster: Claim was called when the instance is not Master (it lost
// the election or was held meanwhile).
var ErrNotMaster = errors.New("the vrrp instance is not Master")

// Claim adds the virtual IPs and sends the GARP burst of an orchestrated
// Master: the last step of its group's start. The repeat burst and the
// split-brain-heal GARPs follow from the machine's timers once claimed.
func (in *Instance) Claim() error {
	in.mu.Lock()
	if in.status.State != vrrp.StateMaster.String() {
		in.mu.Unlock()
		return fmt.Errorf("vrrp %s: %w (it is %s)", in.cfg.Name, ErrNotMaster, in.status.State)
	}
	in.claimed = true
	in.mu.Unlock()
	if err := in.addVIPs(); err != nil {
		return err
	}
	in.sendGARPs(in.cfg.GARPCount)
	in.mu.Lock()
	lost := in.status.State != vrrp.StateMaster.String()
	in.mu.Unlock()
	if lost {
		// The instance left Master while we added them: its RemoveVIPs
		// may have run first, so take them away again.
		_ = in.Unclaim()
		return fmt.Errorf("vrrp %s: %w (it left Master during the claim)", in.cfg.Name, ErrNotMaster)
	}
	return nil
}

// Unclaim removes the virtual IPs of an orchestrated instance (the first
// step of its group's stop) without leaving Master. Addresses the
// interface owned before (priority 255) stay.
func (in *Instance) Unclaim() error {
	in.mu.Lock()
	in.claimed = false
	in.mu.Unlock()
	return in.removeVIPs()
}

// Claimed reports whether the VIPs are on the interface: always when
// Master for an instance that is not orchestrated.
func (in *Instance) Claimed() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.orchestrated {
		return in.status.State == vrrp.StateMaster.String()
	}
	return in.claimed
}
