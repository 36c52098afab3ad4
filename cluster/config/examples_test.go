package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestExamplesValidate checks that every shipped example is valid as it
// stands (without host checks: this is not a cluster node) and has no
// warnings either.
func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d examples, want nfs, postgres, dns and web", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, diags := Load(f, Options{})
			if len(diags) > 0 {
				var b strings.Builder
				_ = diags.WriteText(&b, false)
				t.Fatalf("diagnostics:\n%s", b.String())
			}
			if c == nil || c.Summary() == "" {
				t.Fatal("no model")
			}
		})
	}
}

// TestReadmeWalkthroughValidates joins the README's hcl blocks, which
// together are one cluster file, and checks that it validates cleanly, so
// the walkthrough cannot teach syntax the parser refuses.
func TestReadmeWalkthroughValidates(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var file strings.Builder
	blocks := 0
	rest := string(readme)
	for {
		_, after, ok := strings.Cut(rest, "```hcl\n")
		if !ok {
			break
		}
		block, after, ok := strings.Cut(after, "```")
		if !ok {
			t.Fatal("README.md has an unterminated hcl block")
		}
		file.WriteString(block)
		blocks++
		rest = after
	}
	if blocks < 4 {
		t.Fatalf("README.md has %d hcl blocks; the walkthrough has cluster/node, vrrp, volume and group", blocks)
	}
	c, diags := Parse([]byte(file.String()), "README.md", Options{})
	if len(diags) > 0 {
		var b strings.Builder
		_ = diags.WriteText(&b, false)
		t.Fatalf("the README walkthrough does not validate cleanly:\n%s", b.String())
	}
	if len(c.Groups) != 1 || len(c.Nodes) != 3 {
		t.Errorf("README walkthrough model: %d groups, %d nodes; want 1 and 3", len(c.Groups), len(c.Nodes))
	}
}

func TestPostgresExampleModel(t *testing.T) {
	const file = "../../examples/postgres.hcl"
	c, diags := Load(file, Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	want := &Cluster{
		Name:        "pg",
		File:        file,
		SecretFile:  "/etc/hactl/secret",
		Quorum:      QuorumAuto,
		StartupWait: 2 * time.Minute,
		Nodes: []Node{
			{Name: "pg-a", Address: addr("192.0.2.31"), ReplicationAddress: addr("198.51.100.31")},
			{Name: "pg-b", Address: addr("192.0.2.32"), ReplicationAddress: addr("198.51.100.32")},
			{Name: "pg-witness", Address: addr("192.0.2.33"), Witness: true},
		},
		VRRP: []VRRPInstance{{
			Name:            "db",
			Interface:       "eth2",
			VRID:            31,
			Version:         3,
			AdvertInterval:  200 * time.Millisecond,
			Priority:        map[string]uint8{"pg-a": 110, "pg-b": 100},
			Preempt:         true,
			PreemptDelay:    5 * time.Minute,
			VirtualIPs:      []netip.Prefix{netip.MustParsePrefix("203.0.113.10/24")},
			UnicastPeers:    []netip.Addr{addr("203.0.113.31"), addr("203.0.113.32")},
			UnicastSource:   map[string]netip.Addr{"pg-a": addr("203.0.113.31"), "pg-b": addr("203.0.113.32")},
			V3PseudoHeader:  true,
			GARPCount:       5,
			GARPRepeatDelay: 5 * time.Second,
			GARPRefresh:     time.Minute,
			Checks: []Check{{
				Name:     "gateway",
				Kind:     CheckExec,
				Exec:     []string{"/usr/bin/ping", "-c", "1", "-W", "1", "203.0.113.1"},
				Interval: 2 * time.Second,
				Timeout:  2 * time.Second,
				Rise:     2,
				Fall:     3,
				Weight:   -30,
			}},
		}},
		Volumes: []Volume{{
			Name:     "pgdata",
			Protocol: ProtocolC,
			Port:     7789,
			Disk:     map[string]string{"pg-a": "/dev/nvme1n1", "pg-b": "/dev/nvme1n1"},
			Meta:     map[string]string{"pg-a": "/var/lib/hactl/pgdata.meta", "pg-b": "/var/lib/hactl/pgdata.meta"},
			Attach:   AttachNBD,
			Resync:   Resync{MinRate: 20 * MiB, MaxRate: GiB},
			SplitBrain: SplitBrain{
				After0Pri: "disconnect",
				After1Pri: "disconnect",
				After2Pri: "disconnect",
			},
		}},
		Groups: []Group{{
			Name:   "db",
			VRRP:   "db",
			Volume: "pgdata",
			Filesystem: &Filesystem{
				Mountpoint:   "/var/lib/postgresql",
				FSType:       "xfs",
				Options:      []string{"noatime", "nodiratime"},
				Fsck:         true,
				MonitorWrite: true,
				Timeout:      5 * time.Minute,
			},
			Resources: []Resource{
				{
					Kind:            KindService,
					Name:            "postgresql",
					Unit:            "postgresql@16-main.service",
					Timeout:         3 * time.Minute,
					MonitorInterval: 15 * time.Second,
					MonitorTimeout:  30 * time.Second,
				},
				{
					Kind:            KindExec,
					Name:            "warm-cache",
					Start:           []string{"/usr/local/bin/pg-prewarm", "--database", "shop"},
					Environment:     map[string]string{"PGHOST": "/var/run/postgresql", "PGUSER": "postgres"},
					Timeout:         60 * time.Second,
					MonitorInterval: 10 * time.Second,
					MonitorTimeout:  20 * time.Second,
				},
			},
			OnStopFailure:      StopFailureSelfFence,
			MigrationThreshold: 3,
			FailureTimeout:     10 * time.Minute,
		}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("model differs\ngot:  %+v\nwant: %+v", c, want)
		for i := range want.VRRP {
			if !reflect.DeepEqual(c.VRRP[i], want.VRRP[i]) {
				t.Errorf("vrrp %d:\ngot:  %+v\nwant: %+v", i, c.VRRP[i], want.VRRP[i])
			}
		}
		if !reflect.DeepEqual(c.Volumes, want.Volumes) {
			t.Errorf("volumes:\ngot:  %+v\nwant: %+v", c.Volumes, want.Volumes)
		}
		if !reflect.DeepEqual(c.Groups, want.Groups) {
			t.Errorf("groups:\ngot:  %+v\nwant: %+v", c.Groups, want.Groups)
		}
	}
	if got, want := c.Summary(), `cluster "pg": 3 nodes (1 witness), 1 vrrp instance, 1 volume, 1 group`; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	if c.Voters() != 3 || c.EffectiveQuorum() != QuorumMajority {
		t.Errorf("Voters() = %d, EffectiveQuorum() = %q", c.Voters(), c.EffectiveQuorum())
	}
	if v, _ := c.VRRPInstance("db"); v.Source("pg-b") != addr("203.0.113.32") || v.Source("pg-witness").IsValid() {
		t.Errorf("Source: %v %v", v.Source("pg-b"), v.Source("pg-witness"))
	}
}

// TestExampleDefaults checks the defaults that the other examples rely on.
func TestExampleDefaults(t *testing.T) {
	c, diags := Load("../../examples/dns.hcl", Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if want, _ := filepath.Abs("../../examples/secret"); c.SecretFile != want {
		t.Errorf("relative secret_file resolved to %q, want %q", c.SecretFile, want)
	}
	if c.EffectiveQuorum() != QuorumTwoNode {
		t.Errorf("two voters: EffectiveQuorum() = %q", c.EffectiveQuorum())
	}
	b, _ := c.VRRPInstance("ns-b")
	if b.Version != 2 || b.AdvertInterval != time.Second || !b.Preempt || b.AuthPass != "dns-b" {
		t.Errorf("ns-b = %+v", b)
	}
	if ch := b.Checks[0]; ch.Kind != CheckDNS || ch.Address != "127.0.0.1:53" || ch.Query != "example.com." || ch.Weight != 0 {
		t.Errorf("ns-b check = %+v", ch)
	}
	a, _ := c.VRRPInstance("ns-a")
	if a.Checks[0].Address != "127.0.0.1:53" {
		t.Errorf("dns server without port: %q, want 127.0.0.1:53", a.Checks[0].Address)
	}

	c, diags = Load("../../examples/web.hcl", Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	vol, _ := c.Volume("uploads")
	if vol.Protocol != ProtocolC || !vol.MetaInternal || vol.Meta != nil || vol.Resync.Rate != 100*MiB || vol.Resync.MinRate != 50*MiB {
		t.Errorf("uploads = %+v", vol)
	}
	if !vol.HasDisk("web1") || vol.HasDisk("arbiter") {
		t.Errorf("HasDisk wrong: %v", vol.Disk)
	}
	if vol.SplitBrain.After2Pri != "disconnect" || vol.SplitBrain.After1Pri != "consensus" {
		t.Errorf("split brain = %+v", vol.SplitBrain)
	}
	g, _ := c.Group("app")
	if g.OnStopFailure != StopFailureBlock || g.Resources[0].Kind != KindOCF || g.Resources[0].Params["config"] != "/etc/varnish/default.vcl" {
		t.Errorf("group app = %+v", g)
	}
	if svc := g.Resources[1]; svc.Unit != "webapp.service" || svc.MonitorInterval != 5*time.Second || svc.MonitorTimeout != 20*time.Second {
		t.Errorf("service = %+v", svc)
	}
	www, _ := c.VRRPInstance("www")
	if ch := www.Checks[0]; ch.Kind != CheckHTTP || ch.Status != 204 || ch.Timeout != 800*time.Millisecond {
		t.Errorf("http check = %+v", ch)
	}

	c, diags = Load("../../examples/nfs.hcl", Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	nfs, _ := c.Group("nfs")
	if svc := nfs.Resources[1]; svc.Unit != "nfs-server.service" {
		t.Errorf("service unit default = %q, want nfs-server.service", svc.Unit)
	}
	if _, ok := c.Group("nope"); ok {
		t.Error("Group(nope) found something")
	}
	if _, ok := c.Node("nfs1"); !ok {
		t.Error("Node(nfs1) not found")
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }
