package lab

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"lab", true},
		{"t1a2b3c", true},
		{"a-b", true},
		{"abcdefgh", true},
		{"abcdefghi", false}, // 9 characters
		{"", false},
		{"Lab", false},
		{"a_b", false},
		{"a.b", false},
		{"-ab", false},
		{"ab-", false},
		{"a/b", false},
		{"über", false},
	} {
		err := ValidateName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("ValidateName(%q): error is not one line: %q", tc.name, err)
		}
	}
}

func TestCheckNodeName(t *testing.T) {
	for _, n := range []string{"alpha", "bravo", "charlie", "witness", "client"} {
		if err := CheckNodeName(n); err != nil {
			t.Errorf("CheckNodeName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"", "delta", "Alpha", "sw"} {
		if err := CheckNodeName(n); err == nil {
			t.Errorf("CheckNodeName(%q) = nil, want an error", n)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"256M", 256 << 20, true},
		{"1G", 1 << 30, true},
		{"1g", 1 << 30, true},
		{"512K", 512 << 10, true},
		{"2T", 2 << 40, true},
		{"4096", 4096, true},
		{"64MiB", 64 << 20, true},
		{"64MB", 64 << 20, true},
		{"10B", 10, true},
		{"", 0, false},
		{"M", 0, false},
		{"iB", 0, false},
		{"5iB", 0, false},
		{"1.5G", 0, false},
		{"-1M", 0, false},
		{"12X", 0, false},
		{"99999999999T", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestPlanAddresses(t *testing.T) {
	type member struct{ name, svc, rep string }
	for _, tc := range []struct {
		nodes   int
		witness bool
		want    []member
	}{
		{2, false, []member{
			{"alpha", "192.0.2.11/24", "198.51.100.11/24"},
			{"bravo", "192.0.2.12/24", "198.51.100.12/24"},
			{"client", "192.0.2.50/24", ""},
		}},
		{2, true, []member{
			{"alpha", "192.0.2.11/24", "198.51.100.11/24"},
			{"bravo", "192.0.2.12/24", "198.51.100.12/24"},
			{"witness", "192.0.2.13/24", ""},
			{"client", "192.0.2.50/24", ""},
		}},
		{3, true, []member{
			{"alpha", "192.0.2.11/24", "198.51.100.11/24"},
			{"bravo", "192.0.2.12/24", "198.51.100.12/24"},
			{"charlie", "192.0.2.13/24", "198.51.100.13/24"},
			{"witness", "192.0.2.14/24", ""},
			{"client", "192.0.2.50/24", ""},
		}},
	} {
		l, err := plan(Options{Name: "x", Nodes: tc.nodes, Witness: tc.witness, StateRoot: "/run/test"})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Nodes) != len(tc.want) {
			t.Fatalf("%d nodes, witness %v: got %d members, want %d", tc.nodes, tc.witness, len(l.Nodes), len(tc.want))
		}
		for i, w := range tc.want {
			n := l.Nodes[i]
			var svc, rep string
			for _, ln := range n.Links {
				switch ln.NodeEnd {
				case "eth0":
					svc = ln.Address.String()
				case "eth1":
					rep = ln.Address.String()
				}
			}
			if n.Name != w.name || svc != w.svc || rep != w.rep {
				t.Errorf("member %d = %s %s %s, want %s %s %s", i, n.Name, svc, rep, w.name, w.svc, w.rep)
			}
			if n.Netns != "hactl-x-"+w.name {
				t.Errorf("%s: netns %q", n.Name, n.Netns)
			}
			if (n.Role == RoleData) != (n.Disk != "") {
				t.Errorf("%s: role %s, disk %q", n.Name, n.Role, n.Disk)
			}
		}
		if l.Switch != "hactl-x-sw" || l.Dir != "/run/test/x" {
			t.Errorf("switch %q dir %q", l.Switch, l.Dir)
		}
	}
}

func TestPlanInterfaceNames(t *testing.T) {
	l, err := plan(Options{Name: "abcdefgh", Nodes: 3, Witness: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, nw := range l.Networks {
		seen[nw.Bridge] = true
	}
	for _, n := range l.Nodes {
		for _, ln := range n.Links {
			for _, name := range []string{ln.SwitchEnd, ln.NodeEnd} {
				if len(name) > 15 || name == "" {
					t.Errorf("interface name %q does not fit IFNAMSIZ", name)
				}
			}
			if seen[ln.SwitchEnd] {
				t.Errorf("switch-side name %q used twice", ln.SwitchEnd)
			}
			seen[ln.SwitchEnd] = true
		}
	}
}

func TestPlanRejects(t *testing.T) {
	for _, o := range []Options{
		{Name: "BAD"},
		{Nodes: 1},
		{Nodes: 4},
		{DiskSize: 1000},
		{DiskSize: 4096},
		{StateRoot: "relative/dir"},
		{StateRoot: "/"},
	} {
		if _, err := plan(o); err == nil {
			t.Errorf("plan(%+v) succeeded, want an error", o)
		}
	}
	l, err := plan(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != DefaultName || l.StateRoot != DefaultStateRoot || l.DiskSize != DefaultDiskSize || len(l.DataNodes()) != 2 {
		t.Errorf("defaults not applied: %+v", l)
	}
}

func TestParseNetnsName(t *testing.T) {
	for _, tc := range []struct {
		ns, lab, member string
		ok              bool
	}{
		{"hactl-lab-alpha", "lab", "alpha", true},
		{"hactl-a-b-alpha", "a-b", "alpha", true},
		{"hactl-a-sw", "a", "sw", true},
		{"hactl-x-delta", "", "", false},
		{"other-lab-alpha", "", "", false},
		{"hactl--alpha", "", "", false},
	} {
		l, m, ok := parseNetnsName(tc.ns)
		if l != tc.lab || m != tc.member || ok != tc.ok {
			t.Errorf("parseNetnsName(%q) = %q %q %v", tc.ns, l, m, ok)
		}
	}
	// Lab "a" must not claim the namespaces of lab "a-b".
	if l, _, _ := parseNetnsName(netnsName("a-b", "bravo")); l != "a-b" {
		t.Errorf("got lab %q", l)
	}
}

// TestClusterFile checks that the generated file is valid HCL with the
// blocks and attributes DESIGN §8 asks for.
func TestClusterFile(t *testing.T) {
	l, err := plan(Options{Name: "demo", Witness: true, StateRoot: "/run/hactl-lab"})
	if err != nil {
		t.Fatal(err)
	}
	src, err := ClusterFile(l)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig([]byte(src), "cluster.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("generated file does not parse: %s\n%s", diags.Error(), src)
	}
	body := f.Body.(*hclsyntax.Body)
	blocks := map[string][]*hclsyntax.Block{}
	for _, b := range body.Blocks {
		blocks[b.Type] = append(blocks[b.Type], b)
	}
	str := func(b *hclsyntax.Block, attr string) string {
		t.Helper()
		a, ok := b.Body.Attributes[attr]
		if !ok {
			t.Fatalf("%s %v: no %s", b.Type, b.Labels, attr)
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatalf("%s %v: %s: %s", b.Type, b.Labels, attr, diags.Error())
		}
		if v.Type().FriendlyName() == "string" {
			return v.AsString()
		}
		return v.GoString()
	}

	if c := blocks["cluster"]; len(c) != 1 || c[0].Labels[0] != "demo" || str(c[0], "secret_file") != "/etc/hactl/secret" || str(c[0], "quorum") != "auto" {
		t.Errorf("cluster block wrong:\n%s", src)
	}
	nodes := blocks["node"]
	if len(nodes) != 3 {
		t.Fatalf("%d node blocks, want 3 (client excluded)", len(nodes))
	}
	wantAddr := map[string][2]string{
		"alpha":   {"192.0.2.11", "198.51.100.11"},
		"bravo":   {"192.0.2.12", "198.51.100.12"},
		"witness": {"192.0.2.13", ""},
	}
	for _, n := range nodes {
		name := n.Labels[0]
		w := wantAddr[name]
		if str(n, "address") != w[0] {
			t.Errorf("node %s address %s", name, str(n, "address"))
		}
		if name == "witness" {
			if _, ok := n.Body.Attributes["replication_address"]; ok {
				t.Errorf("witness has a replication address")
			}
			if v, _ := n.Body.Attributes["witness"].Expr.Value(nil); !v.True() {
				t.Errorf("witness = %v", v.GoString())
			}
		} else if str(n, "replication_address") != w[1] {
			t.Errorf("node %s replication_address %s", name, str(n, "replication_address"))
		}
	}
	v := blocks["vrrp"]
	if len(v) != 1 || v[0].Labels[0] != "VI_1" || str(v[0], "interface") != "eth0" || str(v[0], "advert_interval") != "100ms" {
		t.Fatalf("vrrp block wrong:\n%s", src)
	}
	for attr, want := range map[string]string{
		"virtual_router_id": "cty.NumberIntVal(51)",
		"version":           "cty.NumberIntVal(3)",
		"priority":          `cty.ObjectVal(map[string]cty.Value{"alpha":cty.NumberIntVal(100), "bravo":cty.NumberIntVal(90)})`,
		"virtual_ips":       `cty.TupleVal([]cty.Value{cty.StringVal("192.0.2.100/24")})`,
	} {
		if got := str(v[0], attr); got != want {
			t.Errorf("vrrp %s = %s, want %s", attr, got, want)
		}
	}
	vol := blocks["volume"]
	if len(vol) != 1 || vol[0].Labels[0] != "data" || str(vol[0], "protocol") != "C" || str(vol[0], "attach") != "loop" {
		t.Fatalf("volume block wrong:\n%s", src)
	}
	wantDisk := `cty.ObjectVal(map[string]cty.Value{"alpha":cty.StringVal("/run/hactl-lab/demo/alpha/disk.img"), "bravo":cty.StringVal("/run/hactl-lab/demo/bravo/disk.img")})`
	if got := str(vol[0], "disk"); got != wantDisk {
		t.Errorf("disk = %s", got)
	}
	if got := str(vol[0], "port"); got != "cty.NumberIntVal(7788)" {
		t.Errorf("port = %s", got)
	}
	g := blocks["group"]
	if len(g) != 1 || g[0].Labels[0] != "app" || str(g[0], "vrrp") != "VI_1" || str(g[0], "volume") != "data" {
		t.Fatalf("group block wrong:\n%s", src)
	}
	if fs := g[0].Body.Blocks; len(fs) != 1 || fs[0].Type != "filesystem" || str(fs[0], "mountpoint") != "/srv/data" || str(fs[0], "fstype") != "ext4" {
		t.Errorf("filesystem block wrong:\n%s", src)
	}

	// Three data nodes get three priorities.
	l3, _ := plan(Options{Name: "demo", Nodes: 3})
	src3, err := ClusterFile(l3)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(src3, "priority          = { alpha = 100, bravo = 90, charlie = 80 }") {
		t.Errorf("3-node priorities missing:\n%s", src3)
	}
}

func TestHCLString(t *testing.T) {
	for _, in := range []string{"plain", `a"b\c`, "tab\tnl\n", "${var}", "%{if}", "$x %y", "\x01"} {
		q := hclString(in)
		expr, diags := hclsyntax.ParseExpression([]byte(q), "q", hcl.InitialPos)
		if diags.HasErrors() {
			t.Errorf("hclString(%q) = %s: %s", in, q, diags.Error())
			continue
		}
		v, diags := expr.Value(nil)
		if diags.HasErrors() || v.AsString() != in {
			t.Errorf("hclString(%q) = %s reads back as %#v (%s)", in, q, v, diags.Error())
		}
	}
}

func TestMountInfo(t *testing.T) {
	const host = `26 1 254:0 / / rw,relatime - ext4 /dev/vda rw
21 26 0:20 / /proc rw,relatime - proc proc rw
50 26 0:4 net:[4026532] /run/netns/hactl-x-alpha rw shared:5 - nsfs nsfs rw
51 26 254:0 /run/hactl-lab/x/ns /run/hactl-lab/x/ns rw - ext4 /dev/vda rw
`
	const node = `26 1 254:0 / / rw,relatime - ext4 /dev/vda rw
21 26 0:20 / /proc rw,relatime - proc proc rw
60 26 0:40 / /run/hactl rw,nosuid - tmpfs tmpfs rw,mode=755
61 26 254:0 /run/hactl-lab/x/alpha/etc /etc/hactl rw - ext4 /dev/vda rw
62 60 0:41 / /run/hactl/vol\040x rw - fuse.hactl hactl rw
`
	h, err := parseMountInfo(strings.NewReader(host))
	if err != nil {
		t.Fatal(err)
	}
	n, err := parseMountInfo(strings.NewReader(node))
	if err != nil {
		t.Fatal(err)
	}
	if got := mountsUnder(h, "/run/hactl-lab/x"); len(got) != 1 || got[0] != "/run/hactl-lab/x/ns" {
		t.Errorf("mountsUnder = %v", got)
	}
	local := localMounts(n, h)
	var points []string
	for _, m := range local {
		points = append(points, m.Point)
	}
	if strings.Join(points, ",") != "/run/hactl/vol x,/run/hactl,/etc/hactl" {
		t.Errorf("localMounts = %v", points)
	}
	if local[0].FSType != "fuse.hactl" || local[0].Major != 0 || local[0].Minor != 41 {
		t.Errorf("fuse entry = %+v", local[0])
	}
	if _, err := parseMountInfo(strings.NewReader("garbage\n")); err == nil {
		t.Error("malformed mountinfo accepted")
	}
	if !under("/a/b", "/a") || under("/ab", "/a") || !under("/a", "/a") {
		t.Error("under is wrong")
	}
}
