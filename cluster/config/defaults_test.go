package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestDefaultsDocumented keeps the defaults table of docs/cluster-file.md
// identical to Defaults.
func TestDefaultsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cluster-file.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- defaults:begin -->\n")
	table, _, ok2 := strings.Cut(rest, "<!-- defaults:end -->")
	if !ok || !ok2 {
		t.Fatal("docs/cluster-file.md lacks the defaults:begin/end markers")
	}
	rows := strings.Split(strings.TrimSpace(table), "\n")[2:] // after the header
	var want []string
	for _, d := range Defaults {
		v := "—"
		if d.Value != "" {
			v = "`" + d.Value + "`"
		}
		want = append(want, fmt.Sprintf("| `%s` | `%s` | %s | %s |", d.Block, d.Attr, v, d.Note))
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("docs/cluster-file.md defaults table is stale; it should read:\n%s", strings.Join(want, "\n"))
	}
}

// TestDefaultsApply checks that a minimal file gets every default.
func TestDefaultsApply(t *testing.T) {
	const src = `
cluster "min" {
  secret_file = "/etc/hactl/secret"
}
node "a" {
  address             = "192.0.2.1"
  replication_address = "198.51.100.1"
}
node "b" {
  address             = "192.0.2.2"
  replication_address = "198.51.100.2"
}
vrrp "v" {
  interface         = "eth0"
  virtual_router_id = 1
  priority          = { a = 2, b = 1 }
  virtual_ips       = ["192.0.2.10/24"]
  check "c" {
    tcp = "127.0.0.1:80"
  }
}
volume "d" {
  port = 7788
  disk = { a = "/dev/sdb", b = "/dev/sdb" }
}
group "g" {
  vrrp   = "v"
  volume = "d"
  filesystem {
    mountpoint = "/srv"
    fstype     = "ext4"
  }
  service "s" {}
  exec "e" {
    start = ["/bin/true"]
  }
  ocf "o" {
    agent = "heartbeat:Dummy"
  }
}
`
	c, diags := Parse([]byte(src), "/etc/hactl/min.hcl", Options{})
	if diags.HasErrors() || len(diags) > 0 {
		t.Fatalf("%v", diags)
	}
	if c.Quorum != QuorumAuto || c.StartupWait != time.Minute || c.Nodes[0].Witness {
		t.Errorf("cluster defaults: %+v", c)
	}
	v := c.VRRP[0]
	wantV := VRRPInstance{
		Name: "v", Interface: "eth0", VRID: 1, Version: 3, AdvertInterval: time.Second,
		Priority: map[string]uint8{"a": 2, "b": 1}, Preempt: true, VirtualIPs: v.VirtualIPs,
		V3PseudoHeader: true, GARPCount: 5, GARPRepeatDelay: 5 * time.Second,
		Checks: []Check{{Name: "c", Kind: CheckTCP, Address: "127.0.0.1:80", Interval: 2 * time.Second, Timeout: 2 * time.Second, Rise: 2, Fall: 3}},
	}
	if !reflect.DeepEqual(v, wantV) {
		t.Errorf("vrrp defaults:\ngot  %+v\nwant %+v", v, wantV)
	}
	wantVol := Volume{
		Name: "d", Protocol: ProtocolC, Port: 7788, Disk: map[string]string{"a": "/dev/sdb", "b": "/dev/sdb"},
		MetaInternal: true, Attach: AttachAuto, Resync: Resync{MinRate: 50 * MiB},
		SplitBrain: SplitBrain{After0Pri: "disconnect", After1Pri: "disconnect", After2Pri: "disconnect"},
	}
	if !reflect.DeepEqual(c.Volumes[0], wantVol) {
		t.Errorf("volume defaults:\ngot  %+v\nwant %+v", c.Volumes[0], wantVol)
	}
	g := c.Groups[0]
	if g.OnStopFailure != StopFailureBlock || g.MigrationThreshold != 0 || g.FailureTimeout != 0 {
		t.Errorf("group defaults: %+v", g)
	}
	if fs := *g.Filesystem; !fs.Fsck || fs.MonitorWrite || fs.Timeout != time.Minute || fs.Options != nil {
		t.Errorf("filesystem defaults: %+v", fs)
	}
	for _, r := range g.Resources {
		if r.Timeout != time.Minute || r.MonitorInterval != 10*time.Second || r.MonitorTimeout != 20*time.Second {
			t.Errorf("resource %s timeouts: %+v", r.Name, r)
		}
	}
	if g.Resources[0].Unit != "s.service" || g.Resources[1].Stop != nil || g.Resources[1].Environment != nil || g.Resources[2].Params != nil {
		t.Errorf("resource defaults: %+v", g.Resources)
	}
}

// TestNullMeansDefault: null is "not set".
func TestNullMeansDefault(t *testing.T) {
	src := applyEdits(t, baseFile, []edit{{`version           = 3`, `version           = null`}})
	c, diags := Parse([]byte(src), "null.hcl", Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if c.VRRP[0].Version != 3 {
		t.Errorf("version = %d", c.VRRP[0].Version)
	}
}
