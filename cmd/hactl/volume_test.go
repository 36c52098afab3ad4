package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const volumeTestConfig = `
cluster "shop" {
  secret_file = "SECRET"
}
node "alpha" {
  address             = "192.0.2.11"
  replication_address = "198.51.100.11"
}
node "bravo" {
  address             = "192.0.2.12"
  replication_address = "198.51.100.12"
}
vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = 51
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.100/24"]
}
volume "data" {
  port = 7788
  disk = { alpha = "DIR/alpha.img", bravo = "DIR/bravo.img" }
}
volume "logs" {
  port = 7789
  disk = { alpha = "DIR/alpha-logs.img", bravo = "DIR/bravo-logs.img" }
  meta = { alpha = "DIR/alpha-logs.md", bravo = "DIR/bravo-logs.md" }
}
`

// TestVolumeMetadataCommands: create-md writes metadata once and refuses
// to overwrite it without --force, saying what it found; dump-md shows it.
func TestVolumeMetadataCommands(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "cluster.hcl")
	text := strings.ReplaceAll(strings.ReplaceAll(volumeTestConfig, "DIR", dir), "SECRET", filepath.Join(dir, "secret"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alpha.img", "alpha-logs.img"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(filepath.Join(dir, name), 64<<20); err != nil {
			t.Fatal(err)
		}
	}
	hactl := func(args ...string) (int, string, string) {
		return runCapture(append([]string{"--config", conf, "volume"}, args...)...)
	}
	uuid := regexp.MustCompile(`volume UUID (\S+)`)

	// A disk without metadata.
	if code, _, stderr := hactl("dump-md", "data", "--node", "alpha"); code != exitFailure || !strings.Contains(stderr, "alpha.img") {
		t.Errorf("dump-md before create-md: exit %d %q", code, stderr)
	}

	code, stdout, stderr := hactl("create-md", "data", "--node", "alpha")
	if code != exitOK || !strings.Contains(stdout, "metadata created") || !strings.Contains(stdout, "internal") {
		t.Fatalf("create-md: exit %d %q %q", code, stdout, stderr)
	}
	first := uuid.FindStringSubmatch(stdout)

	code, _, stderr = hactl("create-md", "data", "--node", "alpha")
	if code != exitFailure || !strings.Contains(stderr, "--force") || (first != nil && !strings.Contains(stderr, first[1])) {
		t.Errorf("second create-md: exit %d %q; want a refusal naming the existing volume UUID and --force", code, stderr)
	}

	code, stdout, _ = hactl("create-md", "data", "--node", "alpha", "--force")
	second := uuid.FindStringSubmatch(stdout)
	if code != exitOK || first == nil || second == nil || first[1] == second[1] {
		t.Errorf("create-md --force: exit %d, UUIDs %v then %v; want a new one", code, first, second)
	}

	code, stdout, stderr = hactl("dump-md", "data", "--node", "alpha")
	if code != exitOK || !strings.Contains(stdout, second[1]) || !strings.Contains(stdout, "alpha") {
		t.Errorf("dump-md: exit %d %q %q", code, stdout, stderr)
	}

	// External metadata: the file is created beside the disk.
	if code, stdout, stderr := hactl("create-md", "logs", "--node", "alpha"); code != exitOK || !strings.Contains(stdout, "external") {
		t.Errorf("create-md with external metadata: exit %d %q %q", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "alpha-logs.md")); err != nil {
		t.Errorf("external metadata file: %v", err)
	}
	if code, _, stderr := hactl("dump-md", "logs", "--node", "alpha"); code != exitOK {
		t.Errorf("dump-md with external metadata: exit %d %q", code, stderr)
	}

	// A disk with a filesystem on it is not overwritten by internal metadata.
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", filepath.Join(dir, "alpha.img")).CombinedOutput(); err != nil {
		t.Logf("skipping the filesystem check: mkfs.ext4: %v %s", err, out)
	} else {
		code, _, stderr := hactl("create-md", "data", "--node", "alpha")
		if code != exitFailure || !strings.Contains(stderr, "ext2/3/4 filesystem") {
			t.Errorf("create-md over ext4: exit %d %q; want a refusal naming the filesystem", code, stderr)
		}
	}

	// Mistakes name what is wrong.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"create-md", "nosuch", "--node", "alpha"}, exitUsage, `no volume "nosuch"`},
		{[]string{"create-md", "data", "--node", "charlie"}, exitFailure, "charlie"},
		{[]string{"create-md", "data", "--node", "bravo"}, exitFailure, "bravo.img"}, // its disk does not exist here
		{[]string{"create-md"}, exitUsage, "needs a VOLUME"},
		{[]string{"frobnicate"}, exitUsage, `unknown volume command "frobnicate"`},
	} {
		code, _, stderr := hactl(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("volume %v: exit %d %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}
