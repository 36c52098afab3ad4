package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/internal/lab"
)

// This file tests the orchestrator end to end: the lab's group (volume →
// ext4 filesystem → a small HTTP service → VIP) runs on the VRRP Master,
// moves on a crash and on hactl failover, and the client reads back every
// acknowledged write through the VIP.

// groupLab is a volume lab whose agents run the lab's group with the
// "web" service added.
type groupLab struct {
	*volumeLab
	script string // scripts/lab-http.py
	pids   string // where the service keeps its pidfiles
}

const groupWebPort = "8080"

// newGroupLab prepares the volume (forced first promotion on alpha, full
// sync, mkfs.ext4, demotion) with a cluster file without the group, then
// gives the agents the file with the group (SIGHUP) and waits for alpha to
// run it.
func newGroupLab(t *testing.T) *groupLab {
	t.Helper()
	return newGroupLabWith(t, false)
}

// newGroupLabWith is newGroupLab, with a witness node running its own
// agent when witness is set, and edits applied to the cluster file (with
// the web service) before the agents get it.
func newGroupLabWith(t *testing.T, witness bool, edits ...func(string) string) *groupLab {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping the group lab in -short mode")
	}
	script, err := filepath.Abs("../../scripts/lab-http.py")
	if err != nil {
		t.Fatal(err)
	}
	g := &groupLab{script: script, pids: t.TempDir()}
	g.volumeLab = &volumeLab{&vrrpLab{t: t, l: newLabGroup(t, lab.Options{Nodes: 2, Witness: witness, DiskSize: 64 << 20}, true,
		"losetup", "mkfs.ext4", "mount", "python3")}}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("skipping: needs /dev/fuse for attach = \"loop\"")
	}
	if out, err := g.l.Command("client", "python3", "-c", "import http.server, http.client").CombinedOutput(); err != nil {
		t.Skipf("skipping: python3 with http.server is needed for the lab's service: %v %s", err, out)
	}
	full, err := lab.ClusterFile(g.l)
	if err != nil {
		t.Fatal(err)
	}
	full = g.withWeb(full)
	for _, e := range edits {
		full = e(full)
	}
	setup := full[:strings.Index(full, "group ")]
	if err := g.l.SetClusterFile(setup); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"alpha", "bravo"} {
		g.hactl(n, "volume", "create-md", lab.VolumeName)
	}
	for _, n := range []string{"alpha", "bravo"} {
		g.agent(n)
	}
	if witness {
		g.agent(lab.WitnessName)
	}
	for _, n := range []string{"alpha", "bravo"} {
		g.waitVolume(n, "volume connected", connected)
	}
	g.hactl("alpha", "volume", "primary", lab.VolumeName, "--force")
	dev := g.waitVolume("alpha", "attached", func(vs api.VolumeStatus) bool { return vs.Device != "" }).Device
	g.run("alpha", "mkfs.ext4", "-q", "-F", dev)
	g.gWait("bravo", "initial sync done", time.Minute, func(st api.Status) bool {
		vs := st.Volumes[0]
		return connected(vs) && vs.DiskState == "UpToDate" && vs.OutOfSync == 0
	})
	g.hactl("alpha", "volume", "secondary", lab.VolumeName)

	if err := g.l.SetClusterFile(full); err != nil {
		t.Fatal(err)
	}
	for _, p := range g.procs {
		_ = p.cmd.Process.Signal(syscall.SIGHUP)
	}
	// Whoever is VRRP Master takes the group: alpha, unless an edit turned
	// preemption off and bravo happened to win the first election.
	owner := ""
	g.gWait("alpha", "group app started on a node", 90*time.Second, func(a api.Status) bool {
		b, ok := g.status("bravo")
		switch {
		case a.Groups[0].State == "started":
			owner = "alpha"
		case ok && b.Groups[0].State == "started":
			owner = "bravo"
		}
		return owner != ""
	})
	if owner == "bravo" {
		g.hactl("bravo", "failover", lab.GroupName, "--wait")
	}
	g.waitGroup("alpha", "started")
	g.waitHolder(vip, "alpha")
	return g
}

// withWeb adds the web service to the lab's group.
func (g *groupLab) withWeb(text string) string {
	web := fmt.Sprintf(`
  exec "web" {
    start            = ["python3", %[1]q, "start", %[2]q, "0.0.0.0", %[3]q, %[4]q]
    stop             = ["python3", %[1]q, "stop", %[4]q]
    monitor          = ["python3", %[1]q, "monitor", %[4]q, "127.0.0.1", %[3]q]
    monitor_interval = "1s"
    timeout          = "20s"
  }
`, g.script, lab.Mountpoint, groupWebPort, filepath.Join(g.pids, "web.pid"))
	i := strings.Index(text, "group ")
	end := strings.LastIndex(text, "}")
	if i < 0 || end < i {
		g.t.Fatalf("no group in the lab's cluster file:\n%s", text)
	}
	return text[:end] + web + text[end:]
}

// gWait polls a node's status until cond holds, for at most d.
func (g *groupLab) gWait(node, what string, d time.Duration, cond func(api.Status) bool) api.Status {
	g.t.Helper()
	deadline := time.Now().Add(d)
	var last api.Status
	for time.Now().Before(deadline) {
		var ok bool
		if last, ok = g.status(node); ok && len(last.Volumes) > 0 && cond(last) {
			return last
		}
		for _, n := range g.procs {
			select {
			case <-n.exited:
				if !n.stopping {
					g.t.Fatalf("waiting for %s: %s: the agent in %s exited: %v", node, what, n.name, n.err)
				}
			default:
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.t.Fatalf("%s: timed out after %s waiting for %s; last status:\n%s", node, d, what, groupShow(last))
	return last
}

func groupShow(st api.Status) string {
	var b strings.Builder
	for _, v := range st.VRRP {
		fmt.Fprintf(&b, "vrrp %s: %s prio %d fault %q\n", v.Name, v.State, v.EffectivePriority, v.Fault)
	}
	for _, v := range st.Volumes {
		fmt.Fprintf(&b, "volume %s: %s/%s %s/%s %s oos %d\n", v.Name, v.Role, v.PeerRole, v.DiskState, v.PeerDisk, v.Connection, v.OutOfSync)
	}
	for _, gr := range st.Groups {
		fmt.Fprintf(&b, "group %s: %s held %q blocked %q\n", gr.Name, gr.State, gr.Held, gr.Blocked)
		if gr.Gate != nil {
			fmt.Fprintf(&b, "  gate open=%v: %s\n", gr.Gate.Open, gr.Gate.Reason)
		}
		for _, r := range gr.ResourceStates {
			fmt.Fprintf(&b, "  %s %s (%s)\n", r.ID, r.State, r.Last)
		}
		for _, e := range gr.Events {
			fmt.Fprintf(&b, "  %s %s %dms %s\n", e.At.Format("15:04:05.000"), e.What, e.Millis, e.Result)
		}
	}
	return b.String()
}

func (g *groupLab) waitGroup(node, state string) api.Status {
	g.t.Helper()
	return g.gWait(node, "group "+lab.GroupName+" "+state, 90*time.Second, func(st api.Status) bool {
		return len(st.Groups) > 0 && st.Groups[0].State == state
	})
}

// noPreempt turns the lab's VRRP preemption off.
func noPreempt(text string) string {
	const at = `advert_interval   = "100ms"`
	return strings.Replace(text, at, at+"\n  preempt           = false", 1)
}

// put stores body as name through the VIP from the client; it reports
// whether the service acknowledged it.
func (g *groupLab) put(name string, body []byte) bool {
	cmd := g.l.Command("client", "python3", g.script, "put", vip, groupWebPort, name)
	cmd.Stdin = bytes.NewReader(body)
	return cmd.Run() == nil
}

// get reads name through the VIP from the client.
func (g *groupLab) get(name string) ([]byte, error) {
	cmd := g.l.Command("client", "python3", g.script, "get", vip, groupWebPort, name)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v: %s", err, errb.String())
	}
	return out.Bytes(), nil
}

// writeSome puts n files named prefix-i and returns the acknowledged ones.
func (g *groupLab) writeSome(prefix string, n int) map[string][]byte {
	acked := map[string][]byte{}
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		body := []byte(fmt.Sprintf("%s written at %s\n%s", name, time.Now().Format(time.RFC3339Nano), strings.Repeat("x", 4096*(i%4+1))))
		if g.put(name, body) {
			acked[name] = body
		}
	}
	return acked
}

// checkAll reads every acknowledged file back through the VIP, retrying
// while the service comes up.
func (g *groupLab) checkAll(acked map[string][]byte) {
	g.t.Helper()
	for name, want := range acked {
		var got []byte
		var err error
		for range 100 {
			if got, err = g.get(name); err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			g.t.Fatalf("reading %s through the VIP: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			g.t.Fatalf("%s read back %d bytes differing from the %d acknowledged", name, len(got), len(want))
		}
	}
}

// TestGroupCrashFailover kills the master's agent and takes its links
// down: the backup runs the whole sequence (gate → volume Primary → mount
// → service → VIP) and the client reads every acknowledged write through
// the VIP. The old master comes back as Secondary, cleans up its stale
// mount first and resyncs.
func TestGroupCrashFailover(t *testing.T) {
	// Without preemption the old master stays Secondary when it returns
	// (the lab's default would move the group back once it resynced).
	g := newGroupLabWith(t, false, noPreempt)
	acked := g.writeSome("before", 20)
	if len(acked) != 20 {
		t.Fatalf("only %d of 20 writes acknowledged with alpha healthy", len(acked))
	}
	g.checkAll(acked)

	// Crash: the agent dies (the service and the mount stay behind in
	// alpha, as after a kernel hang), and alpha's cables are pulled.
	var alpha *node
	for _, p := range g.procs {
		if p.name == "alpha" {
			alpha = p
		}
	}
	alpha.kill9()
	for _, netw := range []string{"service", "replication"} {
		if err := g.l.SetCable("alpha", netw, false); err != nil {
			t.Fatal(err)
		}
	}
	st := g.waitGroup("bravo", "started")
	if gr := st.Groups[0]; gr.Gate == nil || !gr.Gate.Open || !strings.Contains(gr.Gate.Reason, "silent on every path") {
		t.Errorf("bravo's gate: %+v", gr.Gate)
	}
	if v := st.Volumes[0]; v.Role != "Primary" || v.Device == "" {
		t.Errorf("bravo's volume after the failover: %+v", v)
	}
	// Status says alpha is silent on every path.
	g.gWait("bravo", "alpha silent on every path in bravo's status", 30*time.Second, func(st api.Status) bool {
		for _, n := range st.Nodes {
			if p := n.Paths; n.Name == "alpha" {
				return strings.HasPrefix(p["replication data"], "down") && strings.HasPrefix(p["vrrp VI_1"], "silent") &&
					!strings.HasPrefix(p["membership"], "alive")
			}
		}
		return false
	})
	g.checkAll(acked)
	more := g.writeSome("after", 10)
	if len(more) != 10 {
		t.Fatalf("only %d of 10 writes acknowledged on bravo", len(more))
	}
	g.checkAll(more)

	// alpha comes back: its stale mount and service are cleaned up first,
	// it resyncs from bravo and stays Secondary with nothing mounted.
	for _, netw := range []string{"service", "replication"} {
		if err := g.l.SetCable("alpha", netw, true); err != nil {
			t.Fatal(err)
		}
	}
	g.agent("alpha")
	g.gWait("alpha", "alpha resynced and Secondary", 2*time.Minute, func(st api.Status) bool {
		v := st.Volumes[0]
		return v.Role == "Secondary" && v.DiskState == "UpToDate" && connected(v) && v.OutOfSync == 0
	})
	if out := g.run("alpha", "cat", "/proc/self/mountinfo"); strings.Contains(out, " "+lab.Mountpoint+" ") {
		t.Errorf("alpha still has %s mounted after its restart:\n%s", lab.Mountpoint, out)
	}
	if st, _ := g.status("bravo"); st.Groups[0].State != "started" {
		t.Errorf("bravo lost the group when alpha came back:\n%s", groupShow(st))
	}
	g.checkAll(acked)
	g.checkAll(more)
}

// TestGroupGracefulFailover moves the group with hactl failover --wait and
// back: nothing acknowledged is lost, the old owner ends Secondary with
// nothing mounted, and --dry-run printed the steps the agent then ran.
func TestGroupGracefulFailover(t *testing.T) {
	g := newGroupLab(t)
	acked := g.writeSome("one", 10)

	dry := g.hactl("alpha", "failover", lab.GroupName, "--dry-run")
	for _, want := range []string{"stop vip:VI_1", "stop exec:web", "stop filesystem:/srv/data", "stop volume:data", "resign vrrp VI_1", "bravo: vrrp VI_1 Master"} {
		if !strings.Contains(dry, want) {
			t.Errorf("failover --dry-run lacks %q:\n%s", want, dry)
		}
	}
	if st, _ := g.status("alpha"); st.Groups[0].State != "started" {
		t.Fatalf("--dry-run changed something:\n%s", groupShow(st))
	}
	g.hactl("alpha", "failover", lab.GroupName, "--wait")
	st := g.waitGroup("bravo", "started")
	g.waitHolder(vip, "bravo")
	// The runner's events on alpha are the dry run's stops, in order.
	a, _ := g.status("alpha")
	var stops []string
	for _, e := range a.Groups[0].Events {
		if strings.HasPrefix(e.What, "stop ") {
			stops = append(stops, strings.TrimPrefix(e.What, "stop "))
		}
	}
	if got := strings.Join(stops, ","); got != "vip:VI_1,exec:web,filesystem:/srv/data,volume:data" {
		t.Errorf("alpha stopped %s", got)
	}
	if v := a.Volumes[0]; v.Role != "Secondary" || v.Device != "" {
		t.Errorf("alpha after the failover: %+v", v)
	}
	if out := g.run("alpha", "cat", "/proc/self/mountinfo"); strings.Contains(out, " "+lab.Mountpoint+" ") {
		t.Errorf("alpha still has %s mounted", lab.Mountpoint)
	}
	_ = st
	g.checkAll(acked)
	more := g.writeSome("two", 10)
	if len(more) != 10 {
		t.Fatalf("only %d of 10 writes acknowledged on bravo", len(more))
	}

	// And back, asked from alpha: the request travels to bravo, which
	// holds the group, over the cluster network.
	out := g.hactl("alpha", "failover", lab.GroupName, "--wait")
	if !strings.Contains(out, "ask bravo") {
		t.Errorf("failover from alpha did not go through bravo:\n%s", out)
	}
	g.waitGroup("alpha", "started")
	g.waitHolder(vip, "alpha")
	g.checkAll(acked)
	g.checkAll(more)
}
