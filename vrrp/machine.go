package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// This file is the VRRP router state machine of RFC 5798 §6.4 (and RFC
// 3768 §6.4 for version 2), written in the style of etcd's raft: the
// machine is a value that is fed events with the time they happened and
// answers with the actions to carry out. It never reads a clock, starts a
// goroutine or touches a socket. Its timers are plain deadlines: the
// runner sleeps until Deadline() and then steps a Timeout. Everything the
// protocol leaves open follows keepalived, the implementation hactl has to
// share a segment with.

// State is a VRRP router state. Fault is not in the RFC; it is keepalived's
// state for "a tracked interface or check says we must not serve".
type State int

const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "init"
	case StateBackup:
		return "backup"
	case StateMaster:
		return "master"
	case StateFault:
		return "fault"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Config is one virtual router's protocol settings. Zero values that make
// no sense get the RFC or keepalived default in New (see there).
type Config struct {
	VRID            uint8
	Version         int           // 2 or 3
	Priority        uint8         // configured priority 1..255 (255 = address owner)
	AdvertInterval  time.Duration // ours
	Preempt         bool
	PreemptDelay    time.Duration
	Address         netip.Addr    // our primary address: breaks ties between equal priorities (higher wins)
	GARPCount       int           // GARPs per burst on becoming master (keepalived: 5)
	GARPRepeatDelay time.Duration // a second burst this long after becoming master (0 = none; keepalived: 5s)
	GARPRefresh     time.Duration // while master, one GARP every this (0 = off)
}

// Defaults New applies to zero or out-of-range settings.
const (
	DefaultPriority       = 100 // keepalived's VRRP_PRIO_DFL
	DefaultAdvertInterval = time.Second
	downTimerAdverts      = 3 // the "3 ×" in Master_Down_Interval
)

// Event is something that happened to the router.
type Event interface{ isEvent() }

// Start takes the router out of Init: to Backup, or straight to Master
// when our priority is 255 (RFC 5798 §6.4.1), or to Fault when a fault was
// reported before Start.
type Start struct{}

// Shutdown takes the router back to Init. A master resigns with a
// priority 0 advert and removes its addresses first. All timers stop.
type Shutdown struct{}

// AdvertReceived is an advert that passed the filter.
type AdvertReceived struct {
	From     netip.Addr
	Priority uint8
	Interval time.Duration
}

// Timeout tells the machine that Deadline() has come. It carries nothing:
// every Step first fires the timers due at its time, so Timeout is simply
// the event with nothing else to do.
type Timeout struct{}

// SetPriority changes the effective priority (configured priority plus
// check weights). 0 is not a priority a router may claim (it means "I
// resign") and is treated as 1.
type SetPriority struct {
	Priority uint8
	Reason   string
}

// SetFault reports that the router must not serve (a tracked interface is
// down or a weight-0 check fails), or that it may again.
type SetFault struct {
	Fault  bool
	Reason string
}

func (Start) isEvent()          {}
func (Shutdown) isEvent()       {}
func (AdvertReceived) isEvent() {}
func (Timeout) isEvent()        {}
func (SetPriority) isEvent()    {}
func (SetFault) isEvent()       {}

// Action is something the runner must do, in the order Step returns them.
type Action interface{ isAction() }

// SendAdvert sends one advert with this priority.
type SendAdvert struct{ Priority uint8 }

// AddVIPs configures the virtual addresses on the interface.
type AddVIPs struct{}

// RemoveVIPs removes the virtual addresses from the interface.
type RemoveVIPs struct{}

// SendGARP sends Count gratuitous ARPs for every virtual address.
type SendGARP struct{ Count int }

// Transition reports a state change and why, for the journal and status.
type Transition struct {
	From, To State
	Reason   string
}

func (SendAdvert) isAction() {}
func (AddVIPs) isAction()    {}
func (RemoveVIPs) isAction() {}
func (SendGARP) isAction()   {}
func (Transition) isAction() {}

// Snapshot is the machine's state for status output.
type Snapshot struct {
	State          State
	Priority       uint8         // effective priority in use
	MasterAddr     netip.Addr    // the current master's address (ours when master; zero when unknown)
	MasterPriority uint8         // the current master's priority (ours when master; 0 when unknown)
	MasterInterval time.Duration // the advert interval in use (v3 backup: learned from the master)
	MasterDown     time.Duration // Master_Down_Interval in use
	LastTransition time.Time
	LastReason     string
}

// Machine is one VRRP virtual router. It is not safe for concurrent use;
// the runner owns it from one goroutine.
type Machine struct {
	cfg   Config
	state State
	prio  uint8 // effective priority

	// fault is remembered in every state, Init included, so that a fault
	// reported before Start (or across a Shutdown/Start) is honoured.
	fault       bool
	faultReason string

	// Master_Adver_Interval: our own interval, or in a v3 backup the one
	// the master advertises.
	masterInterval time.Duration
	masterAddr     netip.Addr
	masterPrio     uint8

	// heardAt is when a master last told us it was alive: the last
	// accepted advert, or entering Backup. Only used to explain takeovers.
	heardAt time.Time
	// resignedBy is set when the master sent priority 0 and the
	// master-down timer was cut to Skew_Time.
	resignedBy netip.Addr
	// lower is a live master with a priority below ours that we are
	// preempting (its adverts do not reset the master-down timer).
	lower lowerMaster

	// Timers, as deadlines; the zero time means stopped. Only masterDown
	// runs in Backup, only the other three in Master, none elsewhere.
	masterDown  time.Time
	advert      time.Time
	garpRepeat  time.Time
	garpRefresh time.Time

	lastTransition time.Time
	lastReason     string

	out []Action // actions of the Step in progress
}

// lowerMaster remembers the lower-priority master a preempting backup has
// heard since it entered Backup, for preempt_delay.
type lowerMaster struct {
	addr  netip.Addr
	prio  uint8
	first time.Time // first advert heard in this Backup period; zero = none
	last  time.Time // latest advert
}

// New returns a machine in Init. Zero or invalid settings get defaults:
// Version other than 3 is 2; Priority 0 is 100; AdvertInterval ≤ 0 is
// 1 s; GARPCount < 1 is 1 (a new master must always announce itself, or
// switches keep sending to the old one).
func New(cfg Config) *Machine {
	if cfg.Version != 3 {
		cfg.Version = 2
	}
	if cfg.Priority == 0 {
		cfg.Priority = DefaultPriority
	}
	if cfg.AdvertInterval <= 0 {
		cfg.AdvertInterval = DefaultAdvertInterval
	}
	if cfg.GARPCount < 1 {
		cfg.GARPCount = 1
	}
	return &Machine{
		cfg:            cfg,
		state:          StateInit,
		prio:           cfg.Priority,
		masterInterval: cfg.AdvertInterval,
	}
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Deadline returns the earliest pending timer, or the zero time when none
// runs (always so in Init and Fault). After any Step it is never before
// that Step's time.
func (m *Machine) Deadline() time.Time {
	var d time.Time
	for _, t := range [...]time.Time{m.masterDown, m.advert, m.garpRepeat, m.garpRefresh} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// Snapshot returns the state for status output.
func (m *Machine) Snapshot() Snapshot {
	return Snapshot{
		State:          m.state,
		Priority:       m.prio,
		MasterAddr:     m.masterAddr,
		MasterPriority: m.masterPrio,
		MasterInterval: m.masterInterval,
		MasterDown:     m.masterDownInterval(),
		LastTransition: m.lastTransition,
		LastReason:     m.lastReason,
	}
}

// Step feeds one event that happened at now and returns the actions to
// carry out, in order.
//
// Timers that are due at now fire first, before the event is handled: the
// event came after them, and this keeps Deadline() from ever lying in the
// past. The exceptions are Shutdown and a new fault, which stop every
// timer anyway; firing an overdue master-down timer first would add the
// addresses only to remove them again.
func (m *Machine) Step(ev Event, now time.Time) []Action {
	m.out = nil
	if !m.stopsTimers(ev) {
		m.fireTimers(now)
	}
	switch ev := ev.(type) {
	case Start:
		m.start(now)
	case Shutdown:
		m.shutdown(now)
	case AdvertReceived:
		switch {
		case m.cfg.Address.IsValid() && ev.From == m.cfg.Address:
			// Our own advert looped back. The filter drops these; if
			// one got through, the split-brain answer below would
			// answer itself for ever.
		case m.state == StateBackup:
			m.backupAdvert(ev, now)
		case m.state == StateMaster:
			m.masterAdvert(ev, now)
		}
		// In Init and Fault adverts mean nothing to us.
	case Timeout:
		// Handled by fireTimers above.
	case SetPriority:
		m.setPriority(ev, now)
	case SetFault:
		m.setFault(ev, now)
	}
	out := m.out
	m.out = nil
	return out
}

func (m *Machine) emit(a ...Action) { m.out = append(m.out, a...) }

func (m *Machine) stopsTimers(ev Event) bool {
	switch ev := ev.(type) {
	case Shutdown:
		return true
	case SetFault:
		return ev.Fault && !m.fault
	}
	return false
}

// Timer arithmetic (RFC 5798 §6.1, RFC 3768 §6.1).

// skew is Skew_Time for our effective priority: it makes the
// highest-priority backup's timer run out first, so that it alone takes
// over. v2 counts it in seconds regardless of the interval; v3 scales it
// with Master_Adver_Interval.
func (m *Machine) skew() time.Duration {
	n := time.Duration(256 - int(m.prio))
	if m.cfg.Version == 3 {
		return n * m.masterInterval / 256
	}
	return n * time.Second / 256
}

// masterDownInterval is how long a backup waits without adverts before it
// declares the master dead.
func (m *Machine) masterDownInterval() time.Duration {
	return downTimerAdverts*m.masterInterval + m.skew()
}

// learnedInterval is the Master_Adver_Interval to use after accepting an
// advert carrying interval. v2 ignores the field (RFC 3768 says it is for
// troubleshooting only; keepalived's filter drops mismatches anyway).
func (m *Machine) learnedInterval(interval time.Duration) time.Duration {
	if m.cfg.Version == 3 && interval > 0 {
		return interval
	}
	return m.masterInterval
}

// preempts reports whether we take over from a lower-priority master. The
// address owner always does (RFC 5798 §6.1, Preempt_Mode).
func (m *Machine) preempts() bool {
	return m.cfg.Preempt || m.prio == PriorityOwner
}

// fireTimers runs every timer due at now, earliest first. Each handler
// re-arms its timer after now or stops it, so the loop ends.
func (m *Machine) fireTimers(now time.Time) {
	for {
		t := m.Deadline()
		if t.IsZero() || t.After(now) {
			return
		}
		// Ties go in a fixed order: an advert before GARPs, as in
		// becomeMaster.
		switch {
		case m.masterDown.Equal(t):
			m.masterDown = time.Time{}
			m.masterDownExpired(now)
		case m.advert.Equal(t):
			m.emit(SendAdvert{Priority: m.prio})
			m.advert = now.Add(m.cfg.AdvertInterval)
		case m.garpRepeat.Equal(t):
			m.emit(SendGARP{Count: m.cfg.GARPCount})
			m.garpRepeat = time.Time{}
		case m.garpRefresh.Equal(t):
			m.emit(SendGARP{Count: 1})
			m.garpRefresh = now.Add(m.cfg.GARPRefresh)
		}
	}
}

// masterDownExpired is the Backup's Master_Down_Timer firing (RFC 5798
// §6.4.2): take over, unless preempt_delay holds us back.
func (m *Machine) masterDownExpired(now time.Time) {
	if m.resignedBy.IsValid() {
		m.becomeMaster(now, fmt.Sprintf("master %s resigned (priority 0 advert); took over after skew time %s",
			m.resignedBy, roundMS(m.skew())))
		return
	}
	mdi := m.masterDownInterval()
	if l := m.lower; !l.first.IsZero() && now.Sub(l.last) < mdi {
		// A live master with a lower priority: we are preempting it.
		// keepalived's preempt_delay gives the network (and whatever
		// this node has just started) time to settle before a working
		// master is disturbed. A dead one is replaced at once below.
		if hold := l.first.Add(m.cfg.PreemptDelay); now.Before(hold) {
			// Look again when the delay ends, or when the lower master
			// has been silent for Master_Down_Interval, whichever
			// comes first. Both are after now.
			m.masterDown = earliest(hold, l.last.Add(mdi))
			return
		}
		m.becomeMaster(now, fmt.Sprintf("preempting lower-priority master %s (prio %d)", l.addr, l.prio))
		return
	}
	last := m.heardAt
	if m.lower.last.After(last) {
		last = m.lower.last
	}
	m.becomeMaster(now, fmt.Sprintf("master down timer expired (no advert for %s)", roundMS(now.Sub(last))))
}

// start handles Start (RFC 5798 §6.4.1).
func (m *Machine) start(now time.Time) {
	if m.state != StateInit {
		return
	}
	switch {
	case m.fault:
		m.transition(now, StateFault, "started with a fault: "+orUnknown(m.faultReason))
	case m.prio == PriorityOwner:
		m.becomeMaster(now, "started as the address owner (priority 255)")
	default:
		m.enterBackup(now, "started", m.cfg.AdvertInterval)
	}
}

// shutdown handles Shutdown from any state (RFC 5798 §6.4.2, §6.4.3).
func (m *Machine) shutdown(now time.Time) {
	switch m.state {
	case StateInit:
		return
	case StateMaster:
		// Priority 0 lets the best backup take over after Skew_Time
		// instead of Master_Down_Interval; then drop the addresses.
		m.emit(SendAdvert{Priority: PriorityStop}, RemoveVIPs{})
	}
	m.stopTimers()
	m.forgetMaster()
	m.masterInterval = m.cfg.AdvertInterval
	m.transition(now, StateInit, "shutdown")
}

// backupAdvert handles an advert in Backup (RFC 5798 §6.4.2).
func (m *Machine) backupAdvert(ev AdvertReceived, now time.Time) {
	switch {
	case ev.Priority == PriorityStop:
		// The master resigns: only Skew_Time, so that the
		// highest-priority backup still answers first.
		m.forgetMaster()
		m.resignedBy = ev.From
		m.masterDown = now.Add(m.skew())
	case !m.preempts() || ev.Priority >= m.prio:
		// A master we accept: wait for it again.
		m.masterInterval = m.learnedInterval(ev.Interval)
		m.masterAddr, m.masterPrio = ev.From, ev.Priority
		m.heardAt = now
		m.resignedBy = netip.Addr{}
		m.lower = lowerMaster{}
		m.masterDown = now.Add(m.masterDownInterval())
	default:
		// A lower-priority master we will preempt. The RFC discards the
		// advert so that the timer runs out; remember it for status and
		// for preempt_delay.
		if m.lower.first.IsZero() {
			m.lower.first = now
		}
		m.lower.addr, m.lower.prio, m.lower.last = ev.From, ev.Priority, now
		m.masterAddr, m.masterPrio = ev.From, ev.Priority
	}
}

// masterAdvert handles an advert in Master (RFC 5798 §6.4.3).
func (m *Machine) masterAdvert(ev AdvertReceived, now time.Time) {
	switch {
	case ev.Priority == PriorityStop:
		// Another master is resigning: show at once that one is alive,
		// so that no backup takes over after Skew_Time.
		m.emit(SendAdvert{Priority: m.prio})
		m.advert = now.Add(m.cfg.AdvertInterval)
	case ev.Priority > m.prio:
		m.yield(ev, now, fmt.Sprintf("higher-priority master %s (prio %d)", ev.From, ev.Priority))
	case ev.Priority == m.prio && ev.From.Compare(m.cfg.Address) > 0:
		m.yield(ev, now, fmt.Sprintf("master %s has the same priority (%d) and a higher address", ev.From, ev.Priority))
	default:
		// Two masters, and we win. The RFC just discards the advert,
		// but then the loser's peers and switches may keep pointing at
		// it: keepalived answers with an advert (so the other master
		// yields now) and a GARP burst (so ARP caches come back to us).
		m.emit(SendAdvert{Priority: m.prio}, SendGARP{Count: m.cfg.GARPCount})
		m.advert = now.Add(m.cfg.AdvertInterval)
	}
}

// yield makes a master a backup of the master that sent ev.
func (m *Machine) yield(ev AdvertReceived, now time.Time, reason string) {
	m.emit(RemoveVIPs{})
	m.enterBackup(now, reason, m.learnedInterval(ev.Interval))
	m.masterAddr, m.masterPrio = ev.From, ev.Priority
}

// setPriority handles a change of effective priority.
func (m *Machine) setPriority(ev SetPriority, now time.Time) {
	p := ev.Priority
	if p == PriorityStop {
		p = 1
	}
	if p == m.prio {
		return
	}
	m.prio = p
	switch m.state {
	case StateMaster:
		// Tell the backups now rather than at the next tick, so that a
		// preempting backup with a higher priority takes over sooner.
		// A master never resigns because its own priority fell: that
		// is the peers' decision (and nopreempt peers decline it).
		m.masterPrio = p
		m.emit(SendAdvert{Priority: p})
		m.advert = now.Add(m.cfg.AdvertInterval)
	case StateBackup:
		// The new priority changes Skew_Time from the next advert on.
		// One case cannot wait for it: a lower master we were about to
		// preempt may not be lower any more. Accept it as if its last
		// advert had just been judged with the new priority.
		l := m.lower
		if l.first.IsZero() || (m.preempts() && l.prio < p) {
			return
		}
		if mdi := m.masterDownInterval(); now.Sub(l.last) < mdi {
			m.heardAt = l.last
			m.masterDown = l.last.Add(mdi)
			m.lower = lowerMaster{}
		}
	}
}

// setFault handles a fault being reported or cleared.
func (m *Machine) setFault(ev SetFault, now time.Time) {
	if ev.Fault == m.fault {
		return
	}
	m.fault, m.faultReason = ev.Fault, ev.Reason
	switch {
	case m.state == StateInit:
		// Remembered for Start.
	case ev.Fault:
		if m.state == StateMaster {
			// Resign as on shutdown so that the backup takes over
			// after Skew_Time.
			m.emit(SendAdvert{Priority: PriorityStop}, RemoveVIPs{})
		}
		m.stopTimers()
		m.forgetMaster()
		m.masterInterval = m.cfg.AdvertInterval
		m.transition(now, StateFault, "fault: "+orUnknown(ev.Reason))
	case !ev.Fault && m.state == StateFault:
		// Back to Backup, never straight to Master: another router has
		// probably taken over, and we must hear it before judging.
		m.enterBackup(now, "fault cleared: "+orUnknown(ev.Reason), m.cfg.AdvertInterval)
	}
}

// becomeMaster takes over (RFC 5798 §6.4.1 and §6.4.2 "Master_Down_Timer
// fires", with keepalived's GARP schedule).
func (m *Machine) becomeMaster(now time.Time, reason string) {
	m.stopTimers()
	m.forgetMaster()
	// A v3 master advertises its own interval, whatever it learned.
	m.masterInterval = m.cfg.AdvertInterval
	m.masterAddr, m.masterPrio = m.cfg.Address, m.prio
	m.advert = now.Add(m.cfg.AdvertInterval)
	if m.cfg.GARPRepeatDelay > 0 {
		m.garpRepeat = now.Add(m.cfg.GARPRepeatDelay)
	}
	if m.cfg.GARPRefresh > 0 {
		m.garpRefresh = now.Add(m.cfg.GARPRefresh)
	}
	// The advert first, so that the old master (if alive) and the other
	// backups stand down as early as possible; then take the addresses
	// and tell the switches.
	m.emit(SendAdvert{Priority: m.prio}, AddVIPs{}, SendGARP{Count: m.cfg.GARPCount})
	m.transition(now, StateMaster, reason)
}

// enterBackup starts a Backup period with a fresh master-down timer.
func (m *Machine) enterBackup(now time.Time, reason string, interval time.Duration) {
	m.stopTimers()
	m.forgetMaster()
	m.masterInterval = interval
	m.heardAt = now
	m.masterDown = now.Add(m.masterDownInterval())
	m.transition(now, StateBackup, reason)
}

func (m *Machine) stopTimers() {
	m.masterDown, m.advert, m.garpRepeat, m.garpRefresh = time.Time{}, time.Time{}, time.Time{}, time.Time{}
}

// forgetMaster drops what we knew about the current master, except the
// learned interval: a resigning v3 master's Skew_Time still uses it. Clearing
// lower also restarts preempt_delay on every entry into Backup, including
// leaving Fault (keepalived #1283 lets a router coming out of fault skip
// the delay).
func (m *Machine) forgetMaster() {
	m.masterAddr, m.masterPrio = netip.Addr{}, 0
	m.resignedBy = netip.Addr{}
	m.lower = lowerMaster{}
}

func (m *Machine) transition(now time.Time, to State, reason string) {
	from := m.state
	m.state = to
	m.lastTransition, m.lastReason = now, reason
	m.emit(Transition{From: from, To: to, Reason: reason})
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// roundMS keeps reasons readable: 360.9375ms is shown as 361ms.
func roundMS(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func orUnknown(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}
