package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/internal/lab"
	"github.com/hactl/hactl/replicate/meta"
)

// This file is the harness and the end-to-end story of replicated
// volumes: agents in two lab nodes replicate the lab's volume "data"
// (protocol C, internal metadata, attach = "loop") over the replication
// network; the test puts ext4 on it on one node and reads it on the other.

// volumeLab is a two-node lab with the generated cluster file's volume.
type volumeLab struct {
	*vrrpLab
}

// newVolumeLab brings up the lab, creates the volume's metadata on both
// nodes and starts their agents, without a Primary yet. edit, if given,
// changes the generated cluster file first.
func newVolumeLab(t *testing.T, diskSize int64, edit ...func(string) string) *volumeLab {
	t.Helper()
	v := &volumeLab{&vrrpLab{t: t, l: newLab(t, lab.Options{Nodes: 2, DiskSize: diskSize}, "losetup", "mkfs.ext4", "mount", "sha256sum")}}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("skipping: needs /dev/fuse for attach = \"loop\"")
	}
	if len(edit) > 0 {
		text, err := lab.ClusterFile(v.l)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range edit {
			text = e(text)
		}
		if err := v.l.SetClusterFile(text); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"alpha", "bravo"} {
		v.hactl(n, "volume", "create-md", lab.VolumeName)
	}
	for _, n := range []string{"alpha", "bravo"} {
		v.agent(n)
	}
	return v
}

// hactl runs the hactl CLI in a node; failure fails the test.
func (v *volumeLab) hactl(node string, args ...string) string {
	v.t.Helper()
	out, err := v.hactlErr(node, args...)
	if err != nil {
		v.t.Fatalf("hactl %s in %s: %v\n%s", strings.Join(args, " "), node, err, out)
	}
	return out
}

func (v *volumeLab) hactlErr(node string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := v.l.Command(node, append([]string{os.Args[0]}, args...)...)
	cmd.Env = append(os.Environ(), beHactl+"=1")
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Start()
	if err == nil {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			err = <-done
		}
	}
	return out.String(), err
}

// volume is the volume as the agent in a node reports it.
func (v *volumeLab) volume(node string) (api.VolumeStatus, bool) {
	out, err := v.hactlErr(node, "status", "--json")
	if err != nil {
		return api.VolumeStatus{}, false
	}
	var st api.Status
	if json.Unmarshal([]byte(out), &st) != nil {
		return api.VolumeStatus{}, false
	}
	for _, vs := range st.Volumes {
		if vs.Name == lab.VolumeName {
			return vs, true
		}
	}
	return api.VolumeStatus{}, false
}

// waitVolume waits until cond holds for the node's volume.
func (v *volumeLab) waitVolume(node, what string, cond func(api.VolumeStatus) bool) api.VolumeStatus {
	v.t.Helper()
	var last api.VolumeStatus
	v.eventually(node+": "+what, func() bool {
		var ok bool
		last, ok = v.volume(node)
		return ok && cond(last)
	})
	return last
}

func connected(vs api.VolumeStatus) bool { return vs.Connection == "Connected" }

// dataHash hashes the data area of a node's backing file (the internal
// metadata at its end differs between nodes by design).
func (v *volumeLab) dataHash(node string) string {
	v.t.Helper()
	n, ok := v.l.Node(node)
	if !ok {
		v.t.Fatalf("no node %s", node)
	}
	f, err := os.Open(n.Disk)
	if err != nil {
		v.t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		v.t.Fatal(err)
	}
	layout, err := meta.NewLayout(st.Size(), true, 0)
	if err != nil {
		v.t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, layout.DataSize)); err != nil {
		v.t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestVolumeExt4SurvivesSwitchOfPrimary(t *testing.T) {
	v := newVolumeLab(t, 128<<20)
	for _, n := range []string{"alpha", "bravo"} {
		vs := v.waitVolume(n, "volume connected", connected)
		if vs.DiskState != "Inconsistent" || vs.Role != "Secondary" {
			t.Fatalf("%s: fresh volume is %s/%s, want Secondary/Inconsistent", n, vs.Role, vs.DiskState)
		}
	}
	// Fresh data needs --force for the first promotion.
	if out, err := v.hactlErr("alpha", "volume", "primary", lab.VolumeName); err == nil || !strings.Contains(out, "--force") {
		t.Fatalf("first promotion without --force: %v\n%s", err, out)
	}
	v.hactl("alpha", "volume", "primary", lab.VolumeName, "--force")
	v.waitVolume("bravo", "initial sync done", func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.DiskState == "UpToDate" && vs.PeerRole == "Primary"
	})
	// Never two Primaries while connected.
	if out, err := v.hactlErr("bravo", "volume", "primary", lab.VolumeName); err == nil || !strings.Contains(out, "Primary") {
		t.Fatalf("bravo promoted while alpha is Primary: %v\n%s", err, out)
	}
	dev := v.waitVolume("alpha", "attached", func(vs api.VolumeStatus) bool { return vs.Device != "" }).Device

	v.run("alpha", "mkfs.ext4", "-q", "-F", dev)
	v.run("alpha", "mkdir", "-p", lab.Mountpoint)
	v.run("alpha", "mount", dev, lab.Mountpoint)
	var files []string
	for i := range 8 {
		name := fmt.Sprintf("%s/file%d", lab.Mountpoint, i)
		v.run("alpha", "dd", "if=/dev/urandom", "of="+name, "bs=64k", fmt.Sprintf("count=%d", 1+i*16), "status=none")
		files = append(files, name)
	}
	v.run("alpha", "sync")
	want := v.run("alpha", append([]string{"sha256sum"}, files...)...)
	t.Logf("alpha wrote through %s:\n%s", dev, want)

	// The Secondary's agent restarts while alpha has the volume mounted:
	// it must neither touch alpha's device (same volume name, same paths
	// in its own mount namespace) nor miss a write.
	for _, p := range v.procs {
		if p.name == "bravo" {
			if err := p.term(t); err != nil {
				t.Fatal(err)
			}
		}
	}
	v.run("alpha", "dd", "if=/dev/urandom", "of="+lab.Mountpoint+"/while-bravo-away", "bs=64k", "count=16", "status=none")
	v.run("alpha", "sync")
	files = append(files, lab.Mountpoint+"/while-bravo-away")
	want = v.run("alpha", append([]string{"sha256sum"}, files...)...)
	v.agent("bravo")
	v.waitVolume("bravo", "reconnected and resynced", func(vs api.VolumeStatus) bool {
		return connected(vs) && vs.DiskState == "UpToDate" && vs.OutOfSync == 0
	})
	if got := v.run("alpha", append([]string{"sha256sum"}, files...)...); got != want {
		t.Fatalf("alpha's files changed while bravo's agent restarted:\n%s", got)
	}

	// Demotion is refused while the filesystem is mounted, naming it.
	out, err := v.hactlErr("alpha", "volume", "secondary", lab.VolumeName)
	if err == nil || !strings.Contains(out, lab.Mountpoint) {
		t.Fatalf("demotion with a mounted filesystem: %v\n%s", err, out)
	}
	v.run("alpha", "umount", lab.Mountpoint)
	v.hactl("alpha", "volume", "secondary", lab.VolumeName)
	v.waitVolume("bravo", "alpha Secondary", func(vs api.VolumeStatus) bool { return vs.PeerRole == "Secondary" })

	v.hactl("bravo", "volume", "primary", lab.VolumeName)
	dev = v.waitVolume("bravo", "attached", func(vs api.VolumeStatus) bool { return vs.Device != "" }).Device
	v.run("bravo", "mkdir", "-p", lab.Mountpoint)
	v.run("bravo", "mount", dev, lab.Mountpoint)
	if got := v.run("bravo", append([]string{"sha256sum"}, files...)...); got != want {
		t.Fatalf("files on bravo differ:\n%s\nwant:\n%s", got, want)
	}
	v.run("bravo", "umount", lab.Mountpoint)
	v.hactl("bravo", "volume", "secondary", lab.VolumeName)
	v.waitVolume("alpha", "bravo Secondary", func(vs api.VolumeStatus) bool { return vs.PeerRole == "Secondary" })

	// Online verify through the CLI agrees.
	if out := v.hactl("alpha", "volume", "verify", lab.VolumeName, "--wait"); !strings.Contains(out, "no differences") {
		t.Fatalf("hactl volume verify --wait: %s", out)
	}

	// Quiesce: stop both agents, then the replicas are the same bytes.
	for _, p := range v.procs {
		if err := p.term(t); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}
	if ha, hb := v.dataHash("alpha"), v.dataHash("bravo"); ha != hb {
		t.Fatalf("backing files differ after quiescing: alpha %s, bravo %s", ha, hb)
	}
}

// On this kernel there is no nbd module: attach = "nbd" must fail at
// promotion with a clear reason and leave the volume Secondary.
func TestVolumeAttachNBDWithoutModuleStaysSecondary(t *testing.T) {
	if _, err := os.Stat("/sys/module/nbd"); err == nil {
		t.Skip("skipping: this kernel has the nbd module")
	}
	v := newVolumeLab(t, 32<<20, func(s string) string {
		return strings.Replace(s, `attach   = "loop"`, `attach   = "nbd"`, 1)
	})
	v.waitVolume("alpha", "connected", connected)
	out, err := v.hactlErr("alpha", "volume", "primary", lab.VolumeName, "--force")
	if err == nil || !strings.Contains(out, "nbd") || !strings.Contains(out, "demoted again") {
		t.Fatalf("attach = nbd without the module: %v\n%s", err, out)
	}
	vs, _ := v.volume("alpha")
	if vs.Role != "Secondary" || vs.Device != "" {
		t.Fatalf("after the failed attach alpha is %s with device %q, want Secondary and none", vs.Role, vs.Device)
	}
	t.Logf("refusal: %s", strings.TrimSpace(out))
}
