package agent

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hactl/hactl/cluster/config"
)

func TestSpecForVolume(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("  s3cret-with-padding\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &config.Cluster{
		SecretFile: secret,
		Nodes: []config.Node{
			{Name: "alpha", Address: netip.MustParseAddr("192.0.2.11"), ReplicationAddress: netip.MustParseAddr("198.51.100.11")},
			{Name: "bravo", Address: netip.MustParseAddr("192.0.2.12")}, // no replication address: uses address
			{Name: "charlie", Address: netip.MustParseAddr("192.0.2.13")},
		},
	}
	two := config.Volume{Name: "data", Port: 7788, Disk: map[string]string{"alpha": "/a", "bravo": "/b"}, MetaInternal: true}
	three := config.Volume{Name: "wide", Port: 7789, Disk: map[string]string{"alpha": "/a", "bravo": "/b", "charlie": "/c"}}

	tests := []struct {
		name       string
		vol        config.Volume
		self       string
		wantDialer bool
		wantLocal  string
		wantRemote string
		wantErr    string
	}{
		{name: "lower name dials", vol: two, self: "alpha", wantDialer: true, wantLocal: "198.51.100.11:7788", wantRemote: "192.0.2.12:7788"},
		{name: "higher name listens", vol: two, self: "bravo", wantDialer: false, wantLocal: "192.0.2.12:7788", wantRemote: "198.51.100.11:7788"},
		{name: "more than two disks", vol: three, self: "alpha", wantErr: "exactly two disks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := specFor(c, tt.vol, tt.self)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if spec.Dialer != tt.wantDialer || spec.Local.String() != tt.wantLocal || spec.Remote.String() != tt.wantRemote {
				t.Fatalf("spec = dialer %v local %v remote %v, want %v %v %v", spec.Dialer, spec.Local, spec.Remote, tt.wantDialer, tt.wantLocal, tt.wantRemote)
			}
			if spec.Secret != "s3cret-with-padding" {
				t.Fatalf("secret %q: surrounding whitespace must not count", spec.Secret)
			}
		})
	}

	c.SecretFile = filepath.Join(dir, "missing")
	if _, err := specFor(c, two, "alpha"); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("missing secret: %v", err)
	}
}
