package runner

import (
	"time"

	"github.com/hactl/hactl/vrrp/check"
)

// Status is an instance's live view, for hactl status and metrics.
type Status struct {
	Name              string
	State             string
	Priority          int    // configured for this node
	EffectivePriority int    // after check weights
	Fault             string // why the instance is in fault; "" otherwise
	Held              string // why the orchestrator holds it out of service; "" otherwise
	MasterAddr        string // the master's address as last heard (ours when master)
	MasterPriority    int
	AdvertInterval    string // in use: a v3 backup learns the master's
	MasterDown        string // Master_Down_Interval in use
	LastTransition    *Transition
	Transitions       uint64

	AdvertsSent     uint64
	AdvertsReceived uint64 // accepted
	// LastAdvertAt is when the last accepted advert with a priority
	// (not a resignation) arrived, and LastAdvertFrom who sent it: another
	// router alive on the service network.
	LastAdvertAt   time.Time
	LastAdvertFrom string
	GARPsSent      uint64
	OtherVRID      uint64            // adverts of other virtual routers on the segment
	Invalid        map[string]uint64 // dropped adverts by reason
	LastInvalid    *Invalid

	Tracks []Track
	Checks []check.Status
}

// Transition is the last state change.
type Transition struct {
	At       time.Time
	From, To string
	Reason   string
}

// Invalid is the last dropped advert.
type Invalid struct {
	At     time.Time
	From   string
	Reason string
	Detail string
}

// Track is a tracked interface.
type Track struct {
	Name   string
	Weight int // 0: fault while down
	Up     bool
	Detail string
}
