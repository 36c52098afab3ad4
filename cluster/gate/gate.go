// Package gate is the promotion gate of DESIGN §3.2 step 1 and §7: one
// pure function that says whether this node may take a group (promote its
// volume), with the reason for every answer.
//
// The rule is DRBD's "fencing resource-only" plus quorum, decided from
// what this node knows on each path to its peer:
//
//   - the local disk must be UpToDate (not Outdated, not Inconsistent) and
//     not in split brain;
//   - the peer is connected on the replication link and Secondary: open;
//   - the peer is connected and Primary: closed, it must demote first;
//   - the replication link is down but the peer acknowledged being
//     Outdated: open (it cannot promote, so there is no divergence);
//   - the replication link is down and the peer is still heard on another
//     path (membership, VRRP adverts): closed, promoting would let both
//     write (the "multicast blocked, two masters" case);
//   - the peer is silent on every path: open if this node has quorum —
//     a strict majority of voters with three or more (a witness votes),
//     or the two_node rule with two — and, after a start, only once the
//     peer has been heard or startup_wait has passed. Consistent data (not
//     known UpToDate: it was attached after a restart and has not met its
//     peer) always waits startup_wait.
package gate

import (
	"fmt"
	"time"
)

// Quorum modes, as in the cluster file.
const (
	QuorumMajority = "majority"
	QuorumTwoNode  = "two_node"
	QuorumAuto     = "auto"
)

// Input is what the node knows when it asks. Durations come from the
// caller's clock; the function reads none.
type Input struct {
	// HasVolume is false for a group without a volume: only quorum and
	// the startup wait apply.
	HasVolume bool
	// Disk is the local disk state: "UpToDate", "Consistent", "Outdated",
	// "Inconsistent", "Diskless", …
	Disk string
	// SplitBrain: the replication handshake found both sides changed.
	SplitBrain bool
	// Connected: the replication link to the peer is up; PeerRole is then
	// the peer's role as the link says ("Primary" or "Secondary").
	Connected bool
	PeerRole  string
	// PeerOutdated: the peer acknowledged being Outdated (persisted here).
	PeerOutdated bool

	// Peer is the peer's name, for reasons.
	Peer string
	// PeerHeardVia names the paths on which the peer is heard now
	// ("membership", "vrrp", "replication"); empty means silent on every
	// path.
	PeerHeardVia []string
	// PeerEverHeard: the peer was heard on some path since this agent
	// started.
	PeerEverHeard bool

	// Quorum is the cluster file's mode; Voters the number of voting nodes
	// (data nodes and witnesses); Reachable the voters this node hears,
	// itself included.
	Quorum    string
	Voters    int
	Reachable int

	// SinceStart is how long the agent has run; StartupWait the configured
	// wait for the peer's state (0: none).
	SinceStart  time.Duration
	StartupWait time.Duration
}

// Decision is the gate's answer.
type Decision struct {
	Open   bool
	Reason string
	// PeerPrimary: closed only because the peer is Primary on a live
	// replication link. It opens by itself once the peer demotes, as a
	// peer that lost the VRRP election does; a caller may wait for that
	// rather than resign.
	PeerPrimary bool
}

func open(format string, a ...any) Decision {
	return Decision{Open: true, Reason: fmt.Sprintf(format, a...)}
}

func closed(format string, a ...any) Decision {
	return Decision{Open: false, Reason: fmt.Sprintf(format, a...)}
}

// HasQuorum applies the quorum rule alone: with three or more voters a
// strict majority must be reachable; with two (mode auto or two_node) one
// is enough, because "the peer is silent on every path" is the only
// evidence a two-node cluster can have. majority with fewer than three
// voters never has quorum without every voter.
func HasQuorum(mode string, voters, reachable int) (bool, string) {
	if voters <= 1 {
		return true, "a single voter"
	}
	majority := 2*reachable > voters
	switch {
	case mode == QuorumTwoNode || (mode != QuorumMajority && voters == 2):
		return reachable >= 1, fmt.Sprintf("two_node rule (%d of %d voters reachable)", reachable, voters)
	case majority:
		return true, fmt.Sprintf("majority (%d of %d voters reachable)", reachable, voters)
	default:
		return false, fmt.Sprintf("no majority (%d of %d voters reachable)", reachable, voters)
	}
}

// Decide is the promotion gate.
func Decide(in Input) Decision {
	peer := in.Peer
	if peer == "" {
		peer = "the peer"
	}
	if in.HasVolume {
		switch {
		case in.SplitBrain:
			return closed("split brain: resolve it first (hactl volume resolve)")
		case in.Disk != "UpToDate" && in.Disk != "Consistent":
			return closed("the local disk is %s, not UpToDate", in.Disk)
		}
		if in.Connected {
			if in.PeerRole == "Primary" {
				d := closed("%s is Primary on the replication link: it must demote first", peer)
				d.PeerPrimary = true
				return d
			}
			return open("%s is connected and %s", peer, in.PeerRole)
		}
		if in.PeerOutdated {
			return open("%s acknowledged being Outdated", peer)
		}
	}
	if len(in.PeerHeardVia) > 0 {
		if in.HasVolume {
			return closed("the replication link to %s is down but %s is heard via %s: promoting would let both write",
				peer, peer, joinPaths(in.PeerHeardVia))
		}
		return closed("%s is heard via %s", peer, joinPaths(in.PeerHeardVia))
	}
	if !in.PeerEverHeard && in.SinceStart < in.StartupWait {
		return closed("waiting for %s after start (startup_wait %s, %s left)", peer, in.StartupWait,
			(in.StartupWait - in.SinceStart).Round(time.Second))
	}
	if in.HasVolume && in.Disk != "UpToDate" && in.SinceStart < in.StartupWait {
		// Consistent, not known UpToDate: data from before a restart. Only
		// the peer can say whether it is behind, so give it startup_wait.
		return closed("the local disk is %s (not known UpToDate) and %s has not been heard: waiting startup_wait %s (%s left)",
			in.Disk, peer, in.StartupWait, (in.StartupWait - in.SinceStart).Round(time.Second))
	}
	ok, why := HasQuorum(in.Quorum, in.Voters, in.Reachable)
	if !ok {
		return closed("%s is silent on every path but this node has %s", peer, why)
	}
	if in.HasVolume && in.Disk != "UpToDate" {
		return open("%s is silent on every path and startup_wait has passed; quorum by %s (the local disk is %s)", peer, why, in.Disk)
	}
	return open("%s is silent on every path; quorum by %s", peer, why)
}

func joinPaths(p []string) string {
	s := ""
	for i, x := range p {
		switch {
		case i == 0:
		case i == len(p)-1:
			s += " and "
		default:
			s += ", "
		}
		s += x
	}
	return s
}
