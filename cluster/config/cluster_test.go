package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestLocalNode(t *testing.T) {
	c := &Cluster{Name: "shop", Nodes: []Node{
		{Name: "alpha", Address: addr("192.0.2.11"), ReplicationAddress: addr("198.51.100.11")},
		{Name: "bravo", Address: addr("192.0.2.12"), ReplicationAddress: addr("198.51.100.12")},
		{Name: "witness", Address: addr("192.0.2.13"), Witness: true},
	}}
	tests := []struct {
		name     string
		addrs    []string
		hostname string
		want     string
		wantErr  string
	}{
		{"by address", []string{"127.0.0.1", "192.0.2.12"}, "db2.example", "bravo", ""},
		{"by replication address", []string{"198.51.100.11"}, "", "alpha", ""},
		{"by mapped address", []string{"::ffff:192.0.2.13"}, "", "witness", ""},
		{"address wins over hostname", []string{"192.0.2.11"}, "bravo", "alpha", ""},
		{"by hostname", []string{"203.0.113.5"}, "bravo", "bravo", ""},
		{"by short hostname", nil, "witness.example.net", "witness", ""},
		{"several nodes", []string{"192.0.2.11", "198.51.100.12"}, "", "", "several nodes (alpha, bravo)"},
		{"none", []string{"203.0.113.5"}, "laptop", "", "pass --node"},
		{"no hostname", nil, "", "", "pass --node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addrs []netip.Addr
			for _, a := range tt.addrs {
				addrs = append(addrs, netip.MustParseAddr(a))
			}
			got, err := LocalNode(c, addrs, tt.hostname)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LocalNode = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("LocalNode = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := LocalNode(c, nil, "laptop"); !errors.Is(err, ErrNotANode) {
		t.Errorf("error %v is not ErrNotANode", err)
	}
}

func TestSummary(t *testing.T) {
	c := &Cluster{Name: "x", Nodes: []Node{{Name: "a"}}, VRRP: make([]VRRPInstance, 2)}
	if got, want := c.Summary(), `cluster "x": 1 node, 2 vrrp instances, 0 volumes, 0 groups`; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	c.Nodes = append(c.Nodes, Node{Name: "w1", Witness: true}, Node{Name: "w2", Witness: true})
	if got := c.Summary(); !strings.Contains(got, "3 nodes (2 witnesses)") {
		t.Errorf("Summary() = %q", got)
	}
}
