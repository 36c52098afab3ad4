package gate

import (
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	// base: a Secondary whose UpToDate peer is connected, long after start.
	base := func() Input {
		return Input{
			HasVolume: true, Disk: "UpToDate", Connected: true, PeerRole: "Secondary", Peer: "bravo",
			PeerHeardVia: []string{"membership", "replication"}, PeerEverHeard: true,
			Quorum: QuorumAuto, Voters: 2, Reachable: 2, SinceStart: time.Hour, StartupWait: 30 * time.Second,
		}
	}
	silent := func(in Input) Input {
		in.Connected, in.PeerRole, in.PeerHeardVia, in.Reachable = false, "", nil, 1
		return in
	}
	tests := []struct {
		name   string
		edit   func(Input) Input
		open   bool
		reason string // a substring of the reason
	}{
		{"connected secondary peer", func(in Input) Input { return in }, true, "connected and Secondary"},
		{"connected primary peer", func(in Input) Input { in.PeerRole = "Primary"; return in }, false, "must demote first"},
		{"outdated local disk", func(in Input) Input { in.Disk = "Outdated"; return in }, false, "disk is Outdated"},
		{"inconsistent local disk", func(in Input) Input { in.Disk = "Inconsistent"; return in }, false, "disk is Inconsistent"},
		{"inconsistent even with silent peer", func(in Input) Input { in = silent(in); in.Disk = "Inconsistent"; return in }, false, "Inconsistent"},
		{"split brain", func(in Input) Input { in.SplitBrain = true; in.Connected = false; return in }, false, "split brain"},
		{"link down, peer outdated", func(in Input) Input {
			in.Connected, in.PeerOutdated, in.PeerHeardVia = false, true, []string{"membership"}
			return in
		}, true, "acknowledged being Outdated"},
		{"link down, peer heard via membership", func(in Input) Input {
			in.Connected, in.PeerHeardVia = false, []string{"membership"}
			return in
		}, false, "heard via membership"},
		{"link down, peer heard via vrrp and membership", func(in Input) Input {
			in.Connected, in.PeerHeardVia = false, []string{"vrrp", "membership"}
			return in
		}, false, "vrrp and membership"},
		{"peer silent, two nodes", silent, true, "two_node rule"},
		{"peer silent, two_node explicit", func(in Input) Input { in = silent(in); in.Quorum = QuorumTwoNode; return in }, true, "two_node"},
		{"peer silent, majority of 3 with witness", func(in Input) Input {
			in = silent(in)
			in.Voters, in.Reachable = 3, 2
			return in
		}, true, "majority (2 of 3"},
		{"peer silent, isolated of 3", func(in Input) Input {
			in = silent(in)
			in.Voters, in.Reachable = 3, 1
			return in
		}, false, "no majority (1 of 3"},
		{"peer silent, majority mode with 2 voters", func(in Input) Input {
			in = silent(in)
			in.Quorum = QuorumMajority
			return in
		}, false, "no majority"},
		{"peer never heard, within startup_wait", func(in Input) Input {
			in = silent(in)
			in.PeerEverHeard, in.SinceStart = false, 10*time.Second
			return in
		}, false, "startup_wait 30s, 20s left"},
		{"peer never heard, startup_wait passed", func(in Input) Input {
			in = silent(in)
			in.PeerEverHeard, in.SinceStart = false, 31*time.Second
			return in
		}, true, "silent on every path"},
		{"consistent data, peer silent, within startup_wait", func(in Input) Input {
			in = silent(in)
			in.Disk, in.SinceStart = "Consistent", 5*time.Second
			return in
		}, false, "not known UpToDate"},
		{"consistent data, peer silent, after startup_wait", func(in Input) Input {
			in = silent(in)
			in.Disk = "Consistent"
			return in
		}, true, "the local disk is Consistent"},
		{"consistent data, connected", func(in Input) Input { in.Disk = "Consistent"; return in }, true, "connected"},
		{"no volume, peer heard", func(in Input) Input { in.HasVolume, in.Disk = false, ""; return in }, false, "heard via"},
		{"no volume, peer silent", func(in Input) Input { in = silent(in); in.HasVolume, in.Disk = false, ""; return in }, true, "silent"},
		{"no volume, no quorum", func(in Input) Input {
			in = silent(in)
			in.HasVolume, in.Voters = false, 3
			return in
		}, false, "no majority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.edit(base()))
			if d.Open != tt.open || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("Decide = open %v %q; want open %v with %q", d.Open, d.Reason, tt.open, tt.reason)
			}
			if want := strings.Contains(tt.reason, "must demote first"); d.PeerPrimary != want {
				t.Fatalf("PeerPrimary = %v, want %v", d.PeerPrimary, want)
			}
		})
	}
}

func TestHasQuorum(t *testing.T) {
	tests := []struct {
		mode              string
		voters, reachable int
		want              bool
	}{
		{QuorumAuto, 1, 1, true},
		{QuorumAuto, 2, 1, true},
		{QuorumTwoNode, 2, 1, true},
		{QuorumMajority, 2, 1, false},
		{QuorumMajority, 2, 2, true},
		{QuorumAuto, 3, 1, false},
		{QuorumAuto, 3, 2, true},
		{QuorumMajority, 4, 2, false},
		{QuorumMajority, 4, 3, true},
		{QuorumAuto, 5, 3, true},
	}
	for _, tt := range tests {
		if got, why := HasQuorum(tt.mode, tt.voters, tt.reachable); got != tt.want {
			t.Errorf("HasQuorum(%s, %d, %d) = %v (%s), want %v", tt.mode, tt.voters, tt.reachable, got, why, tt.want)
		}
	}
}
