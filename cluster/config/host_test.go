package config

import (
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fakeHost is a machine with the given interfaces, files and identity.
type fakeHost struct {
	secrets  map[string]string // path -> content (mode 0600)
	mode     fs.FileMode
	files    map[string]bool
	ifaces   map[string][]string // name -> prefixes
	addrs    []netip.Addr
	hostname string
}

func (h fakeHost) ReadSecret(path string) ([]byte, fs.FileMode, error) {
	s, ok := h.secrets[path]
	if !ok {
		return nil, 0, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	}
	mode := h.mode
	if mode == 0 {
		mode = 0o600
	}
	return []byte(s), mode, nil
}

func (h fakeHost) Exists(path string) (bool, error) { return h.files[path], nil }

func (h fakeHost) InterfaceAddrs(name string) ([]netip.Prefix, bool, error) {
	ps, ok := h.ifaces[name]
	var out []netip.Prefix
	for _, p := range ps {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out, ok, nil
}

func (h fakeHost) LocalAddrs() ([]netip.Addr, error) { return h.addrs, nil }
func (h fakeHost) Hostname() (string, error)         { return h.hostname, nil }

// alphaHost is node alpha of baseFile, set up correctly.
func alphaHost() fakeHost {
	return fakeHost{
		secrets:  map[string]string{"/etc/hactl/secret": "c2VjcmV0IGZvciB0ZXN0cw==\n"},
		files:    map[string]bool{"/dev/vg0/data": true, "/var/lib/hactl": true},
		ifaces:   map[string][]string{"eth0": {"192.0.2.11/24", "fe80::1/64"}, "lo": {"127.0.0.1/8"}},
		addrs:    []netip.Addr{addr("127.0.0.1"), addr("192.0.2.11"), addr("198.51.100.11")},
		hostname: "alpha",
	}
}

func TestHostChecks(t *testing.T) {
	tests := []struct {
		name  string
		edits []edit
		host  func(h *fakeHost)
		node  string
		want  []string
	}{
		{name: "all good", want: nil},
		{name: "all good as alpha", node: "alpha", want: nil},
		{name: "secret missing", host: func(h *fakeHost) { h.secrets = nil }, want: []string{"Cannot read the secret file"}},
		{name: "secret empty", host: func(h *fakeHost) { h.secrets["/etc/hactl/secret"] = " \n" }, want: []string{"Empty secret file"}},
		{name: "secret world-readable", host: func(h *fakeHost) { h.mode = 0o644 }, want: []string{"warning: Secret file readable by other users"}},
		{name: "no interface", host: func(h *fakeHost) { delete(h.ifaces, "eth0") }, want: []string{`warning: No interface "eth0" on this machine`}},
		{name: "interface without IPv4", host: func(h *fakeHost) { h.ifaces["eth0"] = []string{"fe80::1/64"} }, want: nil},
		{name: "vip outside actual subnet", host: func(h *fakeHost) { h.ifaces["eth0"] = []string{"203.0.113.11/24"} }, want: []string{"warning: Virtual IP outside the interface's subnet"}},
		{name: "vip with other length", host: func(h *fakeHost) { h.ifaces["eth0"] = []string{"192.0.2.11/25"} }, want: []string{"warning: Inconsistent prefix length"}},
		{name: "vip in a second subnet", host: func(h *fakeHost) { h.ifaces["eth0"] = []string{"203.0.113.11/24", "192.0.2.11/24"} }, want: nil},
		{name: "tracked interface missing", edits: []edit{{`virtual_ips       = ["192.0.2.100/24"]`, `virtual_ips       = ["192.0.2.100/24"]
  track_interface   = ["eth0", "bond0"]`}}, want: []string{`warning: No interface "bond0" on this machine`}},
		{name: "disk missing", host: func(h *fakeHost) { delete(h.files, "/dev/vg0/data") }, want: []string{"warning: Disk not found"}},
		{name: "meta directory missing", edits: []edit{{`meta     = "internal"`, `meta     = { alpha = "/srv/meta/data.meta", bravo = "/srv/meta/data.meta" }`}}, want: []string{"warning: Metadata directory not found"}},
		{name: "checked as bravo", node: "bravo", host: func(h *fakeHost) { delete(h.files, "/dev/vg0/data") }, want: []string{"warning: Disk not found"}},
		{name: "witness runs no instance", node: "witness", host: func(h *fakeHost) { h.ifaces = nil; h.files = nil }, want: nil},
		{name: "not a node: secret only", host: func(h *fakeHost) { h.addrs = nil; h.hostname = "laptop"; h.ifaces = nil; h.files = nil }, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := alphaHost()
			if tt.host != nil {
				tt.host(&h)
			}
			src := applyEdits(t, baseFile, tt.edits)
			_, diags := Parse([]byte(src), "/etc/hactl/cluster.hcl", Options{Node: tt.node, HostChecks: true, host: h})
			if got := summaries(diags); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q\n%v", got, tt.want, diags)
			}
		})
	}
}

func TestHostChecksOffIgnoresMachine(t *testing.T) {
	h := fakeHost{hostname: "alpha"} // nothing exists
	if _, diags := Parse([]byte(baseFile), "/etc/hactl/cluster.hcl", Options{Node: "alpha", host: h}); len(diags) != 0 {
		t.Fatalf("host checks off: %v", diags)
	}
}

// TestOSHost exercises the real adapter on this machine's files.
func TestOSHost(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	data, mode, err := osHost{}.ReadSecret(secret)
	if err != nil || string(data) != "s3cret\n" || mode != 0o640 {
		t.Errorf("ReadSecret = %q, %o, %v", data, mode, err)
	}
	if _, _, err := (osHost{}).ReadSecret(dir); err == nil {
		t.Error("ReadSecret of a directory succeeded")
	}
	if ok, err := (osHost{}).Exists(secret); !ok || err != nil {
		t.Errorf("Exists(secret) = %v, %v", ok, err)
	}
	if ok, err := (osHost{}).Exists(filepath.Join(dir, "nope")); ok || err != nil {
		t.Errorf("Exists(nope) = %v, %v", ok, err)
	}
	if _, ok, _ := (osHost{}).InterfaceAddrs("no-such-if0"); ok {
		t.Error("InterfaceAddrs found no-such-if0")
	}
	if _, ok, err := (osHost{}).InterfaceAddrs("lo"); !ok || err != nil {
		t.Logf("no lo interface here (%v)", err)
	}

	// A relative secret_file resolves next to the cluster file.
	src := applyEdits(t, baseFile, []edit{{`"/etc/hactl/secret"`, `"secret"`}})
	c, diags := Parse([]byte(src), filepath.Join(dir, "cluster.hcl"), Options{HostChecks: true})
	if got := summaries(diags); !slices.Equal(got, []string{"warning: Secret file readable by other users"}) {
		t.Fatalf("diagnostics %q", got)
	}
	if c.SecretFile != secret {
		t.Errorf("SecretFile = %q, want %q", c.SecretFile, secret)
	}
}
