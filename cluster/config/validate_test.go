package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// baseFile is a valid file that the cases below break one rule at a time.
const baseFile = `
cluster "shop" {
  secret_file = "/etc/hactl/secret"
  quorum      = "auto"
}

node "alpha" {
  address             = "192.0.2.11"
  replication_address = "198.51.100.11"
}

node "bravo" {
  address             = "192.0.2.12"
  replication_address = "198.51.100.12"
}

node "witness" {
  address = "192.0.2.13"
  witness = true
}

vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = 51
  version           = 3
  advert_interval   = "100ms"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.100/24"]

  check "ping" {
    exec     = ["/usr/bin/ping", "-c", "1", "192.0.2.1"]
    interval = "2s"
    weight   = -50
  }
}

volume "data" {
  protocol = "C"
  port     = 7788
  disk     = { alpha = "/dev/vg0/data", bravo = "/dev/vg0/data" }
  meta     = "internal"

  resync {
    rate = "0"
  }

  split_brain {
    after_0pri = "discard-zero-changes"
  }
}

group "db" {
  vrrp   = "VI_1"
  volume = "data"

  filesystem {
    mountpoint = "/var/lib/postgresql"
    fstype     = "ext4"
  }

  service "postgresql" {}

  exec "warm" {
    start = ["/usr/local/bin/warm"]
  }

  on_stop_failure = "block"
}
`

// edit replaces old (which must occur in src) with new.
type edit struct{ old, new string }

func applyEdits(t *testing.T, src string, edits []edit) string {
	t.Helper()
	for _, e := range edits {
		if !strings.Contains(src, e.old) {
			t.Fatalf("edit: %q not in the file", e.old)
		}
		src = strings.Replace(src, e.old, e.new, 1)
	}
	return src
}

func summaries(diags Diagnostics) []string {
	var out []string
	for _, d := range diags {
		s := d.Summary
		if d.Severity == SeverityWarning {
			s = "warning: " + s
		}
		out = append(out, s)
	}
	return out
}

func TestBaseFileIsValid(t *testing.T) {
	c, diags := Parse([]byte(baseFile), "base.hcl", Options{})
	if len(diags) > 0 || c == nil {
		var b strings.Builder
		_ = diags.WriteText(&b, false)
		t.Fatalf("base file:\n%s", b.String())
	}
}

// TestSemanticChecks breaks one rule per case and expects exactly the
// listed diagnostics.
func TestSemanticChecks(t *testing.T) {
	tests := []struct {
		name  string
		edits []edit
		want  []string
	}{
		{"unknown node in priority", []edit{{"bravo = 90 }", "bravoo = 90 }"}}, []string{`Unknown node "bravoo"`}},
		{"unknown node in disk", []edit{{`bravo = "/dev/vg0/data"`, `charlie = "/dev/vg0/data"`}}, []string{`Unknown node "charlie"`, `No disk on node "bravo"`}},
		{"unknown vrrp", []edit{{`vrrp   = "VI_1"`, `vrrp   = "VI_2"`}}, []string{`Unknown vrrp instance "VI_2"`}},
		{"unknown volume", []edit{{`volume = "data"`, `volume = "date"`}}, []string{`Unknown volume "date"`}},
		{"discard unknown node", []edit{{`"discard-zero-changes"`, `"discard-node-zulu"`}}, []string{`Unknown node "zulu"`}},
		{"discard known node", []edit{{`"discard-zero-changes"`, `"discard-node-bravo"`}}, nil},
		{"discard witness", []edit{{`"discard-zero-changes"`, `"discard-node-witness"`}}, []string{`Node "witness" has no disk in this volume`}},
		{"duplicate node", []edit{{`node "bravo"`, `node "alpha"`}}, []string{`Duplicate node "alpha"`, `Unknown node "bravo"`, `Unknown node "bravo"`}},
		{"duplicate vrid", []edit{{`volume "data" {`, `vrrp "VI_2" {
  interface         = "eth0"
  virtual_router_id = 51
  priority          = { alpha = 90, bravo = 100 }
  virtual_ips       = ["192.0.2.101/24"]
}

volume "data" {`}}, []string{"Duplicate virtual router ID"}},
		{"vip outside subnet", []edit{{`["192.0.2.100/24"]`, `["192.0.2.100/24", "198.51.100.100/24"]`}}, []string{"Virtual IP outside the interface's subnet"}},
		{"vip prefix length", []edit{{`["192.0.2.100/24"]`, `["192.0.2.100/24", "192.0.2.101/16"]`}}, []string{"Inconsistent prefix length"}},
		{"vip host route", []edit{{`["192.0.2.100/24"]`, `["192.0.2.100/24", "203.0.113.7/32"]`}}, nil},
		{"track list", []edit{{`virtual_ips       = ["192.0.2.100/24"]`, `virtual_ips       = ["192.0.2.100/24"]
  track_interface   = ["eth0", "eth1"]`}}, nil},
		{"track weights", []edit{{`virtual_ips       = ["192.0.2.100/24"]`, `virtual_ips       = ["192.0.2.100/24"]
  track_interface   = { eth0 = 0, eth1 = -30 }`}}, nil},
		{"track bad name in map", []edit{{`virtual_ips       = ["192.0.2.100/24"]`, `virtual_ips       = ["192.0.2.100/24"]
  track_interface   = { "eth/1" = -30 }`}}, []string{"Invalid interface name"}},
		{"track weight out of range", []edit{{`virtual_ips       = ["192.0.2.100/24"]`, `virtual_ips       = ["192.0.2.100/24"]
  track_interface   = { eth1 = -300 }`}}, []string{"Value out of range"}},
		{"track not a string", []edit{{`virtual_ips       = ["192.0.2.100/24"]`, `virtual_ips       = ["192.0.2.100/24"]
  track_interface   = "eth1"`}}, []string{"Incorrect attribute value type"}},
		{"priority 0", []edit{{"alpha = 100", "alpha = 0"}}, []string{"Value out of range"}},
		{"priority 256", []edit{{"alpha = 100", "alpha = 256"}}, []string{"Value out of range"}},
		{"priority 255", []edit{{"alpha = 100", "alpha = 255"}}, nil},
		{"v2 sub-second", []edit{{"version           = 3", "version           = 2"}}, []string{"Advert interval not in whole seconds"}},
		{"v2 whole seconds", []edit{{"version           = 3", "version           = 2"}, {`"100ms"`, `"2s"`}}, nil},
		{"v2 default interval", []edit{{"version           = 3", "version           = 2"}, {`advert_interval   = "100ms"`, ``}}, nil},
		{"v3 not centiseconds", []edit{{`"100ms"`, `"15ms"`}}, []string{"Advert interval not in centiseconds"}},
		{"v3 too long", []edit{{`"100ms"`, `"1m"`}}, []string{"Advert interval too long"}},
		{"auth_pass with v3", []edit{{`version           = 3`, `auth_pass = "pw"`}}, []string{"auth_pass needs VRRPv2"}},
		{"auth_pass too long", []edit{{`version           = 3`, "version = 2\n  auth_pass = \"123456789\""}, {`"100ms"`, `"1s"`}}, []string{"Password too long"}},
		{"auth_pass with v2", []edit{{`version           = 3`, "version = 2\n  auth_pass = \"12345678\""}, {`"100ms"`, `"1s"`}}, nil},
		{"no disk for a winner", []edit{{`disk     = { alpha = "/dev/vg0/data", bravo = "/dev/vg0/data" }`, `disk     = { alpha = "/dev/vg0/data", bravo = "/dev/vg0/data" }
}

volume "other" {
  port = 7799
  disk = { alpha = "/dev/vg0/x", bravo = "/dev/vg0/x" }`}, {`priority          = { alpha = 100, bravo = 90 }`, `priority          = { alpha = 100, bravo = 90, charlie = 80 }`}, {`node "witness"`, `node "charlie" {
  address = "192.0.2.14"
}

node "witness"`}}, []string{`No disk on node "charlie"`}},
		{"majority with two voters", []edit{{`quorum      = "auto"`, `quorum      = "majority"`}, {"witness = true", "witness = false"}, {`node "witness" {`, `node "witness2" {`}, {`node "witness2" {
  address = "192.0.2.13"
  witness = false
}`, ``}}, []string{"Majority quorum needs three voters"}},
		{"majority with a witness", []edit{{`quorum      = "auto"`, `quorum      = "majority"`}}, nil},
		{"two_node with three voters", []edit{{`quorum      = "auto"`, `quorum      = "two_node"`}}, []string{"two_node quorum needs exactly two nodes"}},
		{"protocol D", []edit{{`protocol = "C"`, `protocol = "D"`}}, []string{"Invalid value"}},
		{"protocol A", []edit{{`protocol = "C"`, `protocol = "A"`}}, nil},
		{"witness with priority", []edit{{"bravo = 90 }", "bravo = 90, witness = 10 }"}}, []string{"Witness with a priority"}},
		{"witness with disk", []edit{{`bravo = "/dev/vg0/data" }`, `bravo = "/dev/vg0/data", witness = "/dev/vg0/data" }`}}, []string{"Witness with a disk"}},
		{"port 0", []edit{{"port     = 7788", "port     = 0"}}, []string{"Value out of range"}},
		{"port 65536", []edit{{"port     = 7788", "port     = 65536"}}, []string{"Value out of range"}},
		{"invalid address", []edit{{`"192.0.2.11"`, `"192.0.2.311"`}}, []string{"Invalid IP address"}},
		{"invalid cidr", []edit{{`"192.0.2.100/24"`, `"192.0.2.100/40"`}}, []string{"Invalid virtual IP"}},
		{"invalid duration", []edit{{`interval = "2s"`, `interval = "2"`}}, []string{"Invalid duration"}},
		{"invalid size", []edit{{`rate = "0"`, `rate = "fast"`}}, []string{"Invalid size"}},
		{"invalid attach", []edit{{`meta     = "internal"`, `attach = "iscsi"`}}, []string{"Invalid value"}},
		{"attach none", []edit{{`meta     = "internal"`, `attach = "none"`}}, nil},
		{"invalid after_1pri", []edit{{`after_0pri = "discard-zero-changes"`, `after_1pri = "discard-zero-changes"`}}, []string{"Invalid value"}},
		{"invalid on_stop_failure", []edit{{`"block"`, `"reboot"`}}, []string{"Invalid value"}},
		{"self-fence", []edit{{`"block"`, `"self-fence"`}}, nil},
		{"check without probe", []edit{{`exec     = ["/usr/bin/ping", "-c", "1", "192.0.2.1"]`, ``}}, []string{"Check has no probe"}},
		{"check with two probes", []edit{{`interval = "2s"`, "interval = \"2s\"\n    tcp = \"127.0.0.1:22\""}}, []string{"Check has several probes"}},
		{"check timeout above interval", []edit{{`interval = "2s"`, "interval = \"2s\"\n    timeout = \"3s\""}}, []string{"Check timeout longer than its interval"}},
		{"check timeout equal interval", []edit{{`interval = "2s"`, "interval = \"2s\"\n    timeout = \"2s\""}}, nil},
		{"empty exec argv", []edit{{`start = ["/usr/local/bin/warm"]`, `start = []`}}, []string{"Empty command"}},
		{"relative mountpoint", []edit{{`"/var/lib/postgresql"`, `"var/lib/postgresql"`}}, []string{"Path is not absolute"}},
		{"filesystem without volume", []edit{{`  volume = "data"`, ``}}, []string{"Filesystem without a volume"}},
		{"two groups on one volume", []edit{{`group "db" {`, "group \"other\" {\n  vrrp = \"VI_1\"\n  volume = \"data\"\n}\n\ngroup \"db\" {"}}, []string{"Volume used by two groups"}},
		{"duplicate node address", []edit{{`"192.0.2.12"`, `"192.0.2.11"`}}, []string{"Duplicate node address"}},
		{"missing replication address", []edit{{`  replication_address = "198.51.100.12"`, ``}}, []string{"Missing replication address"}},
		{"unknown attribute", []edit{{`fstype     = "ext4"`, "fstype     = \"ext4\"\n    fs_options = []"}}, []string{"Unsupported argument"}},
		{"unknown block", []edit{{`service "postgresql" {}`, `servce "postgresql" {}`}}, []string{"Unsupported block type"}},
		{"missing required", []edit{{`  port     = 7788`, ``}}, []string{"Missing required argument"}},
		{"duplicate check", []edit{{`check "ping" {`, "check \"ping\" {\n    tcp = \"127.0.0.1:22\"\n  }\n  check \"ping\" {"}}, []string{`Duplicate check "ping"`}},
		{"duplicate resource across kinds", []edit{{`exec "warm"`, `exec "postgresql"`}}, []string{`Duplicate resource "postgresql"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := applyEdits(t, baseFile, tt.edits)
			c, diags := Parse([]byte(src), "case.hcl", Options{})
			got := summaries(diags)
			if !slices.Equal(got, tt.want) {
				var b strings.Builder
				_ = diags.WriteText(&b, false)
				t.Fatalf("got %q, want %q\n%s", got, tt.want, b.String())
			}
			if (c == nil) != diags.HasErrors() {
				t.Errorf("model returned = %v with errors = %v", c != nil, diags.HasErrors())
			}
		})
	}
}

// TestEveryProblemReported checks that one run reports problems from every
// phase, not just the first.
func TestEveryProblemReported(t *testing.T) {
	src := applyEdits(t, baseFile, []edit{
		{`quorum      = "auto"`, `quorum      = "majorty"`},
		{`"192.0.2.12"`, `"192.0.2.11"`},
		{"bravo = 90 }", "bravo = 900 }"},
		{`vrrp   = "VI_1"`, `vrrp   = "VI_9"`},
		{`port     = 7788`, `port     = 7788
  colour   = "blue"`},
	})
	_, diags := Parse([]byte(src), "many.hcl", Options{})
	want := []string{"Invalid value", "Duplicate node address", "Value out of range", "Unsupported argument", `Unknown vrrp instance "VI_9"`}
	if got := summaries(diags); !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestDiagnosticRanges(t *testing.T) {
	src := applyEdits(t, baseFile, []edit{{"bravo = 90 }", "charlie = 90 }"}})
	_, diags := Parse([]byte(src), "range.hcl", Options{})
	if len(diags) == 0 {
		t.Fatal("no diagnostics")
	}
	d := diags[0]
	line := strings.Split(src, "\n")[d.Line-1]
	key := line[d.Column-1 : d.EndColumn-1]
	if d.Summary != `Unknown node "charlie"` || key != "charlie" || d.EndLine != d.Line {
		t.Fatalf("diagnostic %q points at %q (%d:%d-%d:%d), want the map key", d.Summary, key, d.Line, d.Column, d.EndLine, d.EndColumn)
	}
	if d.Snippet != line {
		t.Errorf("snippet = %q, want %q", d.Snippet, line)
	}
	if !strings.Contains(d.Detail, `Did you mean`) && !strings.Contains(d.Detail, "Declared nodes: alpha, bravo, witness") {
		t.Errorf("detail does not list the nodes: %q", d.Detail)
	}
}

func TestResourceOrder(t *testing.T) {
	src := applyEdits(t, baseFile, []edit{{`service "postgresql" {}`, `ocf "first" {
    agent = "heartbeat:Dummy"
  }
  service "postgresql" {}`}, {`on_stop_failure = "block"`, `on_stop_failure = "block"
  service "last" {}`}})
	c, diags := Parse([]byte(src), "order.hcl", Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	g, _ := c.Group("db")
	var got []string
	for _, r := range g.Resources {
		got = append(got, fmt.Sprintf("%s:%s", r.Kind, r.Name))
	}
	want := []string{"ocf:first", "service:postgresql", "exec:warm", "service:last"}
	if !slices.Equal(got, want) {
		t.Fatalf("resources in order %q, want %q", got, want)
	}
}

func TestAsNode(t *testing.T) {
	_, diags := Parse([]byte(baseFile), "node.hcl", Options{Node: "alpah"})
	if got := summaries(diags); !slices.Equal(got, []string{`Unknown node "alpah"`}) {
		t.Fatalf("got %q", got)
	}
	if d := diags[0]; d.Line != 0 || d.File != "node.hcl" || !strings.Contains(d.Detail, `Did you mean "alpha"?`) {
		t.Errorf("diagnostic = %+v", d)
	}
	if c, diags := Parse([]byte(baseFile), "node.hcl", Options{Node: "bravo"}); c == nil || len(diags) != 0 {
		t.Errorf("as bravo: %v", diags)
	}
}

// TestTrackInterfaceForms: the list form tracks with weight 0 (FAULT), the
// map form carries each interface's weight into the model.
func TestTrackInterfaceForms(t *testing.T) {
	for _, tc := range []struct {
		attr string
		want []TrackInterface
	}{
		{`track_interface = ["eth0", "eth1"]`, []TrackInterface{{Name: "eth0"}, {Name: "eth1"}}},
		{`track_interface = { eth0 = 0, eth1 = -30 }`, []TrackInterface{{Name: "eth0"}, {Name: "eth1", Weight: -30}}},
		{``, nil},
	} {
		src := applyEdits(t, baseFile, []edit{{`virtual_ips       = ["192.0.2.100/24"]`, `virtual_ips       = ["192.0.2.100/24"]
  ` + tc.attr}})
		c, diags := Parse([]byte(src), "t.hcl", Options{})
		if diags.HasErrors() {
			t.Fatalf("%s: %s", tc.attr, diags.Error())
		}
		v, _ := c.VRRPInstance("VI_1")
		if !slices.Equal(v.TrackInterfaces, tc.want) {
			t.Errorf("%s: TrackInterfaces = %+v, want %+v", tc.attr, v.TrackInterfaces, tc.want)
		}
	}
}
