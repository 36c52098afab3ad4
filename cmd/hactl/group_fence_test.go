package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/internal/lab"
)

// This file tests fencing and quorum at the group level: a cut
// replication link outdates the peer instead of promoting it, and a
// primary cut off from a witness and its peer gives the group up.

// TestGroupReplicationLinkCut cuts only the replication link while both
// nodes are up: the backup sees the primary through the membership and
// does not promote; the primary outdates it (persisted on the backup) and
// goes on serving writes; on heal the backup resyncs, no split brain.
func TestGroupReplicationLinkCut(t *testing.T) {
	g := newGroupLab(t)
	acked := g.writeSome("before", 5)

	if err := g.l.SetCable("bravo", "replication", false); err != nil {
		t.Fatal(err)
	}
	// The primary outdates bravo before completing writes alone.
	st := g.gWait("bravo", "bravo marked Outdated", time.Minute, func(st api.Status) bool {
		return st.Volumes[0].DiskState == "Outdated"
	})
	if v := st.Volumes[0]; v.Role != "Secondary" {
		t.Fatalf("bravo promoted with the primary alive: %+v", v)
	}
	more := g.writeSome("cut", 5)
	if len(more) != 5 {
		t.Fatalf("only %d of 5 writes acknowledged by alpha with bravo outdated", len(more))
	}
	g.checkAll(more)
	a, _ := g.status("alpha")
	if a.Groups[0].State != "started" || !strings.Contains(a.Volumes[0].Flags, "peer-outdated") {
		t.Errorf("alpha with the replication link cut:\n%s\nflags %s", groupShow(a), a.Volumes[0].Flags)
	}
	b, _ := g.status("bravo")
	if gr := b.Groups[0]; gr.State != "stopped" || gr.Gate == nil || gr.Gate.Open {
		t.Errorf("bravo's group with the link cut:\n%s", groupShow(b))
	}

	if err := g.l.SetCable("bravo", "replication", true); err != nil {
		t.Fatal(err)
	}
	g.gWait("bravo", "bravo resynced", 2*time.Minute, func(st api.Status) bool {
		v := st.Volumes[0]
		return connected(v) && v.DiskState == "UpToDate" && v.OutOfSync == 0 && v.SplitBrain == nil
	})
	if a, _ := g.status("alpha"); a.Volumes[0].SplitBrain != nil || a.Groups[0].State != "started" {
		t.Errorf("alpha after the heal:\n%s", groupShow(a))
	}
	g.checkAll(acked)
	g.checkAll(more)
}

// TestGroupWitnessIsolatesPrimary cuts the primary off from both the
// backup and the witness: it loses quorum, stops the group and demotes;
// the backup, with the witness's vote, takes over; on heal the old primary
// resyncs as Secondary with no split brain.
func TestGroupWitnessIsolatesPrimary(t *testing.T) {
	g := newGroupLabWith(t, true)
	g.gWait("alpha", "the witness heard", time.Minute, func(st api.Status) bool {
		for _, n := range st.Nodes {
			if n.Name == lab.WitnessName {
				return n.Membership == "alive"
			}
		}
		return false
	})
	acked := g.writeSome("before", 10)

	for _, netw := range []string{"service", "replication"} {
		if err := g.l.SetCable("alpha", netw, false); err != nil {
			t.Fatal(err)
		}
	}
	st := g.gWait("alpha", "alpha gave the group up", 2*time.Minute, func(st api.Status) bool {
		return st.Groups[0].State == "stopped" && st.Volumes[0].Role == "Secondary"
	})
	if held := st.Groups[0].Held; !strings.Contains(held, "lost quorum") {
		t.Errorf("alpha's hold: %q, want lost quorum", held)
	}
	st = g.waitGroup("bravo", "started")
	if gr := st.Groups[0]; gr.Gate == nil || !strings.Contains(gr.Gate.Reason, "majority (2 of 3") {
		t.Errorf("bravo's gate: %+v", gr.Gate)
	}
	g.checkAll(acked)
	more := g.writeSome("after", 5)
	if len(more) != 5 {
		t.Fatalf("only %d of 5 writes acknowledged on bravo", len(more))
	}

	for _, netw := range []string{"service", "replication"} {
		if err := g.l.SetCable("alpha", netw, true); err != nil {
			t.Fatal(err)
		}
	}
	// alpha comes back behind: it resyncs from bravo, never split brain.
	// (The lab's VRRP preempts, so once alpha is UpToDate and connected
	// the group may move back to it: either way exactly one node runs it.)
	g.gWait("alpha", "alpha resynced", 2*time.Minute, func(st api.Status) bool {
		v := st.Volumes[0]
		return v.SplitBrain == nil && connected(v) && v.DiskState == "UpToDate" && v.OutOfSync == 0
	})
	g.gWait("bravo", "one owner after the heal", 2*time.Minute, func(b api.Status) bool {
		a, ok := g.status("alpha")
		return ok && b.Volumes[0].SplitBrain == nil && a.Volumes[0].SplitBrain == nil &&
			(a.Groups[0].State == "started") != (b.Groups[0].State == "started") &&
			(a.Groups[0].State == "started" || a.Groups[0].State == "stopped") &&
			(b.Groups[0].State == "started" || b.Groups[0].State == "stopped")
	})
	g.checkAll(acked)
	g.checkAll(more)
}
