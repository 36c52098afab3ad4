// Package decide is the connect-time decision of a two-node replicated
// volume: given both nodes' generation identifiers (GI), dirty bit
// counts, disk flags and roles, and the configured split-brain policies,
// who resyncs from whom, by bitmap or in full, or why the connection must
// be refused.
//
// Decide is a pure function. It implements the simplified table of
// research/replication.md §9.2: rows 1–16 evaluated top to bottom (first
// match wins), then the post-steps in order:
//
//  1. inconsistent-side override (the consistent side is Source);
//  2. split-brain policies by the number of Primaries now;
//  3. discard-my-data (exactly one side requested it → that side is Target);
//  4. refuse if the would-be Source is Inconsistent (or Outdated while
//     the would-be Target is UpToDate);
//  5. refuse if the would-be Target is a Primary with consistent data
//     (rr-conflict "disconnect").
//
// Each node calls Decide with itself as Self and its peer as Peer. The
// two calls must agree: Decide(a, b) mirrors Decide(b, a) (Source ↔
// Target, same Kind otherwise, same Full). To guarantee this even for
// tuples no real history produces, the table is evaluated from both
// viewpoints and a contradiction refuses the connection; every tie-break
// uses the same shared key (the lower Node id keeps its data).
package decide

import (
	"fmt"

	"github.com/hactl/hactl/replicate/meta"
)

// Kind is what the connection does.
type Kind uint8

const (
	// NoSync: the replicas are in sync; connect without resync.
	NoSync Kind = iota
	// Source: this node sends data to the peer.
	Source
	// Target: this node receives data from the peer (its differing
	// blocks are overwritten).
	Target
	// SplitBrain: the data diverged and no policy resolved it; the
	// connection is dropped until an operator runs one of Resolve.
	SplitBrain
	// Unrelated: the two disks share no history; refuse the connection.
	Unrelated
	// Refuse: a safety check refused the connection (see Reason).
	Refuse
)

func (k Kind) String() string {
	switch k {
	case NoSync:
		return "no-sync"
	case Source:
		return "source"
	case Target:
		return "target"
	case SplitBrain:
		return "split-brain"
	case Unrelated:
		return "unrelated"
	case Refuse:
		return "refuse"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// mirror is the kind the peer must reach for the same pair.
func (k Kind) mirror() Kind {
	switch k {
	case Source:
		return Target
	case Target:
		return Source
	}
	return k
}

// Role is a node's role now.
type Role uint8

const (
	Secondary Role = iota
	Primary
)

// Side is one node's input to the decision.
type Side struct {
	// Node is the node's id: the shared tie-break key (the lower id
	// keeps its data) and the NAME in discard-node-NAME and in the
	// resolution command. The two sides must differ.
	Node string
	// GI is the node's generation-identifier tuple; the role bit is
	// masked for every comparison, but Bitmap's bit 0 is read by the
	// discard-younger/older-primary policies.
	GI meta.GI
	// Dirty is the number of set bits in the node's dirty bitmap.
	Dirty uint64
	// Role is the node's role now.
	Role Role
	// CrashedPrimary: the node was Primary when it last went down
	// uncleanly.
	CrashedPrimary bool
	// Inconsistent: the disk is Inconsistent (e.g. an unfinished resync
	// target); it must never be a resync source.
	Inconsistent bool
	// Outdated: the disk is consistent but known to be behind (fenced).
	Outdated bool
	// DiscardMyData: the operator asked to discard this node's changes
	// on the next split-brain handshake.
	DiscardMyData bool
}

// upToDate reports a disk that is neither Inconsistent nor Outdated.
func (s Side) upToDate() bool { return !s.Inconsistent && !s.Outdated }

// Policies are the after-split-brain policies, DRBD's after-sb-*pri. The
// field names and types match config.SplitBrain so the configuration
// converts directly: decide.Policies(vol.SplitBrain). An empty string
// means "disconnect"; an unknown name also disconnects, with a reason.
type Policies struct {
	After0Pri string // disconnect | discard-younger-primary | discard-older-primary | discard-zero-changes | discard-least-changes | discard-node-NAME
	After1Pri string // disconnect | consensus | discard-secondary
	After2Pri string // disconnect
}

// Policy names.
const (
	PolicyDisconnect            = "disconnect"
	PolicyDiscardYoungerPrimary = "discard-younger-primary"
	PolicyDiscardOlderPrimary   = "discard-older-primary"
	PolicyDiscardZeroChanges    = "discard-zero-changes"
	PolicyDiscardLeastChanges   = "discard-least-changes"
	PolicyDiscardNodePrefix     = "discard-node-"
	PolicyConsensus             = "consensus"
	PolicyDiscardSecondary      = "discard-secondary"
)

// Input is everything the decision depends on.
type Input struct {
	Volume string // for the resolution command
	Self   Side
	Peer   Side
	Policy Policies
}

// Step names the post-step that last changed the outcome of the table.
type Step uint8

const (
	StepNone               Step = iota // the table row decided alone
	StepInconsistent                   // post-step 1: inconsistent-side override
	StepSplitBrainPolicy               // post-step 2: an after-sb policy ran
	StepDiscardMyData                  // post-step 3: discard-my-data resolved a split brain
	StepSourceInconsistent             // post-step 4: refused, would-be source not usable
	StepTargetPrimary                  // post-step 5: refused, would-be target is a consistent Primary
	StepConflict                       // the two viewpoints contradict each other (refused)
)

// SplitBrainOutcome is what happened to a split brain.
type SplitBrainOutcome struct {
	Primaries int    // Primaries now (0, 1 or 2)
	Policy    string // the policy applied ("disconnect" when none resolved it)
	// Discard is the node whose changes are discarded (the resync
	// target); "" when unresolved.
	Discard string
	// Resolve holds, when unresolved, the exact commands an operator
	// can run, one per possible victim, ordered by node id:
	// "hactl volume resolve VOLUME --discard NODE".
	Resolve []string
}

// Decision is the outcome for the Self side.
type Decision struct {
	Kind Kind
	// Full: resync every block rather than the (union of the) dirty
	// bitmaps. Only meaningful for Source and Target.
	Full bool
	// Rule is the row of §9.2 (1–16) that matched from this node's
	// viewpoint; 0 when the input was refused before the table. Some rows
	// name a metadata fix-up the engine applies before the resync (Decide
	// itself changes nothing): rule 4, FinishSyncSource on Self; rule 5,
	// FinishSyncSource on Peer; rule 9, UndoSyncStart on Peer; rule 12,
	// UndoSyncStart on Self. The peer computes the mirror rule.
	Rule int
	// Step is the post-step that changed the row's outcome, if any.
	Step Step
	// Reason explains the decision, for logs and status.
	Reason string
	// SplitBrain is set when the data diverged (rows 7, 14, 15), whether
	// or not a policy resolved it.
	SplitBrain *SplitBrainOutcome
}

func (d Decision) String() string {
	s := fmt.Sprintf("%s rule %d", d.Kind, d.Rule)
	if d.Full {
		s += " full"
	}
	return s + ": " + d.Reason
}

// Decide returns the connect-time decision for in.Self.
func Decide(in Input) Decision {
	if in.Self.Node == in.Peer.Node {
		return Decision{Kind: Refuse, Reason: fmt.Sprintf("both sides claim node id %q; the tie-break key must differ", in.Self.Node)}
	}
	d := table(in.Self, in.Peer)
	m := table(in.Peer, in.Self)
	if d.Kind.mirror() != m.Kind || d.Full != m.Full {
		return Decision{Kind: Refuse, Rule: d.Rule, Step: StepConflict, Reason: fmt.Sprintf(
			"GI tuples contradict each other: from %s rule %d says %s%s, from %s rule %d says %s%s; refusing to connect",
			in.Self.Node, d.Rule, d.Kind, fullWord(d.Full), in.Peer.Node, m.Rule, m.Kind, fullWord(m.Full))}
	}
	d = inconsistentOverride(in, d)
	d = splitBrainPolicy(in, d)
	d = discardMyData(in, d)
	d = refuseSource(in, d)
	d = refuseTarget(in, d)
	return d
}

func fullWord(full bool) string {
	if full {
		return " (full)"
	}
	return ""
}

// tieBreakSelfSource reports whether Self wins a tie-break: the lower
// node id keeps its data (is Source).
func tieBreakSelfSource(self, peer Side) bool { return self.Node < peer.Node }

// sourceIf returns Source if selfSource, else Target.
func sourceIf(selfSource bool) Kind {
	if selfSource {
		return Source
	}
	return Target
}
