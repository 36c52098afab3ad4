package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/internal/lab"
)

// This file is the harness of the VRRP tests and the failover benchmark:
// a lab with two nodes and a client, hactl agents and keepalived daemons
// running as real processes inside the nodes, and probes run from the
// client.

const (
	vip       = "192.0.2.100"
	vipPrefix = vip + "/24"
	vip2      = "192.0.2.101"
)

// requireLab skips tests that need root, network namespaces and tools.
func requireLab(t testing.TB, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping: builds a lab in network namespaces; not run with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (the lab creates network namespaces)")
	}
	for _, tool := range append([]string{"ip", "nsenter", "bridge"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: needs %s (make test installs it)", tool)
		}
	}
}

type vrrpLab struct {
	t     *testing.T
	l     *lab.Lab
	procs []*node // started in the nodes, to notice one dying early
}

// newLab brings up a lab with a unique name under a private state root,
// torn down when the test ends, whatever happens.
func newLab(t *testing.T, opts lab.Options, tools ...string) *lab.Lab {
	t.Helper()
	return newLabGroup(t, opts, false, tools...)
}

// newLabGroup is newLab with the lab's resource group in the cluster file
// when withGroup is set.
func newLabGroup(t *testing.T, opts lab.Options, withGroup bool, tools ...string) *lab.Lab {
	t.Helper()
	requireLab(t, tools...)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	opts.Name = "t" + hex.EncodeToString(b)
	opts.StateRoot = t.TempDir()
	// Tests of VRRP and volumes alone: no group, so no orchestrator acts.
	// The group tests set it back with newGroupLab.
	opts.NoGroup = !withGroup
	if opts.DiskSize == 0 {
		opts.DiskSize = 16 << 20
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := lab.Up(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		if err := lab.Down(dctx, opts.Name, opts.StateRoot); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
}

// newVRRPLab brings up a lab with alpha, bravo and the client.
func newVRRPLab(t *testing.T, tools ...string) *vrrpLab {
	t.Helper()
	return &vrrpLab{t: t, l: newLab(t, lab.Options{Nodes: 2}, tools...)}
}

// vrrpConf is the vrrp block the tests vary; the rest of the cluster file
// is the lab's two nodes.
type vrrpConf struct {
	Version    int
	Interval   string
	Priorities map[string]int
	VIPs       []string // default [vipPrefix]
	Extra      string   // more lines inside the vrrp block
}

var clusterTmpl = template.Must(template.New("c").Parse(`cluster "vrrptest" {
  secret_file = "/etc/hactl/secret"
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
  version           = {{.Version}}
  advert_interval   = "{{.Interval}}"
  priority          = { {{range $n, $p := .Priorities}}{{$n}} = {{$p}}, {{end}}}
  virtual_ips       = [{{range $i, $v := .VIPs}}{{if $i}}, {{end}}"{{$v}}"{{end}}]
{{.Extra}}
}
`))

// configure writes the cluster file every node sees.
func (v *vrrpLab) configure(c vrrpConf) {
	v.t.Helper()
	if len(c.VIPs) == 0 {
		c.VIPs = []string{vipPrefix}
	}
	var b strings.Builder
	if err := clusterTmpl.Execute(&b, c); err != nil {
		v.t.Fatal(err)
	}
	if err := v.l.SetClusterFile(b.String()); err != nil {
		v.t.Fatal(err)
	}
}

// node is a process the test started inside a lab node.
type node struct {
	*agentProc
	name     string
	stopping bool // the test stopped it; its exit is expected
}

// agent starts hactl agent in a node. It is stopped with SIGTERM when the
// test ends (and killed if that does not work).
func (v *vrrpLab) agent(name string) *node {
	v.t.Helper()
	cmd := v.l.Command(name, os.Args[0], "agent", "--log-format", "json", "--log-level", "debug")
	cmd.Env = append(os.Environ(), beHactl+"=1")
	p := startProc(v.t, cmd)
	n := &node{agentProc: p, name: name}
	v.procs = append(v.procs, n)
	v.t.Cleanup(func() { n.term(v.t) })
	v.t.Cleanup(func() {
		if v.t.Failed() {
			v.t.Logf("agent in %s:\n%s", name, p.logs.String())
		}
	})
	return n
}

// term stops the process with SIGTERM and waits for it.
func (n *node) term(t testing.TB) error {
	n.stopping = true
	select {
	case <-n.exited:
		return n.err
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		return n.err
	case <-time.After(15 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
		t.Errorf("%s did not stop within 15s of SIGTERM", n.name)
		return n.err
	}
}

// kill9 kills the process without a chance to clean up.
func (n *node) kill9() {
	n.stopping = true
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// keepalivedConf is a keepalived.conf for one instance matching the
// cluster file's VI_1.
type keepalivedConf struct {
	Version   int
	Interval  string // keepalived syntax: "1", "0.1"
	Priority  int
	VIPs      []string
	AuthPass  string
	NoPreempt bool
	Unicast   []string // peers; empty = multicast
	Source    string
	Extra     string
}

var keepalivedTmpl = template.Must(template.New("k").Parse(`global_defs {
  router_id hactl_test
  script_user root
  enable_script_security
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  version {{.Version}}
  priority {{.Priority}}
  advert_int {{.Interval}}
{{- if .NoPreempt}}
  nopreempt
{{- end}}
{{- if .AuthPass}}
  authentication {
    auth_type PASS
    auth_pass {{.AuthPass}}
  }
{{- end}}
{{- if .Unicast}}
  unicast_src_ip {{.Source}}
  unicast_peer {
{{- range .Unicast}}
    {{.}}
{{- end}}
  }
{{- end}}
  virtual_ipaddress {
{{- range .VIPs}}
    {{.}}
{{- end}}
  }
{{.Extra}}
}
`))

// keepalived runs keepalived 2.2 (Debian's) with conf in a node, only its
// VRRP subsystem, logging to its stderr.
func (v *vrrpLab) keepalived(name string, c keepalivedConf) *node {
	v.t.Helper()
	if len(c.VIPs) == 0 {
		c.VIPs = []string{vipPrefix}
	}
	dir := v.t.TempDir()
	var b strings.Builder
	if err := keepalivedTmpl.Execute(&b, c); err != nil {
		v.t.Fatal(err)
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		v.t.Fatal(err)
	}
	cmd := v.l.Command(name, "keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp",
		"--use-file", conf, "--pid", filepath.Join(dir, "keepalived.pid"), "--vrrp_pid", filepath.Join(dir, "vrrp.pid"))
	p := startProc(v.t, cmd)
	n := &node{agentProc: p, name: name + " (keepalived)"}
	v.procs = append(v.procs, n)
	v.t.Cleanup(func() { n.term(v.t) })
	v.t.Cleanup(func() {
		if v.t.Failed() {
			v.t.Logf("keepalived in %s:\n%s", name, p.logs.String())
		}
	})
	return n
}

// status asks the agent in a node for its status; ok is false while no
// agent answers there.
func (v *vrrpLab) status(name string) (api.Status, bool) {
	var out bytes.Buffer
	cmd := v.l.Command(name, os.Args[0], "status", "--json")
	cmd.Env = append(os.Environ(), beHactl+"=1")
	cmd.Stdout = &out
	if cmd.Run() != nil {
		return api.Status{}, false
	}
	var st api.Status
	if json.Unmarshal(out.Bytes(), &st) != nil || len(st.VRRP) == 0 {
		return api.Status{}, false
	}
	return st, true
}

// instance returns VI_1 as the agent in a node reports it.
func (v *vrrpLab) instance(name string) (api.VRRPStatus, bool) {
	st, ok := v.status(name)
	if !ok {
		return api.VRRPStatus{}, false
	}
	return st.VRRP[0], true
}

// eventually polls cond every 50ms for at most 20s. A process of the
// test's dying on its own ends the wait at once.
func (v *vrrpLab) eventually(what string, cond func() bool) {
	v.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		for _, n := range v.procs {
			select {
			case <-n.exited:
				if !n.stopping {
					v.t.Fatalf("waiting for %s: %s exited: %v", what, n.name, n.err)
				}
			default:
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	v.t.Fatalf("timed out waiting for %s", what)
}

// waitState waits until the agent in a node reports VI_1 in state.
func (v *vrrpLab) waitState(name, state string) api.VRRPStatus {
	v.t.Helper()
	var last api.VRRPStatus
	v.eventually(fmt.Sprintf("%s to be %s", name, state), func() bool {
		var ok bool
		last, ok = v.instance(name)
		return ok && last.State == state
	})
	return last
}

// holds reports whether a node has addr on eth0.
func (v *vrrpLab) holds(name, addr string) bool {
	v.t.Helper()
	out := v.run(name, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	return strings.Contains(out, " "+addr+"/")
}

// waitHolder waits until exactly the named node (or none, for "") holds
// addr among alpha and bravo.
func (v *vrrpLab) waitHolder(addr, want string) {
	v.t.Helper()
	v.eventually(fmt.Sprintf("%s to be held by %q alone", addr, want), func() bool {
		for _, n := range []string{"alpha", "bravo"} {
			if v.holds(n, addr) != (n == want) {
				return false
			}
		}
		return true
	})
}

// run runs argv in a node and returns its output; failure fails the test.
func (v *vrrpLab) run(name string, argv ...string) string {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := v.l.Exec(ctx, name, argv, nil, &out, &out); err != nil {
		v.t.Fatalf("%v\n%s", err, out.String())
	}
	return out.String()
}

// mac is a node's eth0 MAC address.
func (v *vrrpLab) mac(name string) string {
	return strings.TrimSpace(v.run(name, "cat", "/sys/class/net/eth0/address"))
}

// clientNeighbour reports the MAC the client's neighbour table has for addr
// after one ping (empty when it has none).
func (v *vrrpLab) clientNeighbour(addr string) string {
	v.t.Helper()
	out := v.run("client", "ip", "neigh", "show", addr, "dev", "eth0")
	if f := strings.Fields(out); len(f) >= 3 {
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "lladdr" {
				return f[i+1]
			}
		}
	}
	return ""
}

// pingOnce pings addr once from the client.
func (v *vrrpLab) pingOnce(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return v.l.Exec(ctx, "client", []string{"ping", "-c1", "-W1", addr}, nil, nil, nil) == nil
}

// logEvents parses an agent's JSON log lines with the given event.
func logEvents(logs, event string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if m["event"] == event {
			out = append(out, m)
		}
	}
	return out
}

// keepalivedErrors returns keepalived's log lines that complain about the
// packets it received. A backup discarding a lower-priority master's
// adverts (before it preempts) is the protocol working, not a complaint.
func keepalivedErrors(logs string) []string {
	bad := regexp.MustCompile(`(?i)invalid|mismatch|wrong|error|bad |discard|ignor`)
	normal := regexp.MustCompile(`received lower priority \(\d+\) advert from \S+ - discarding`)
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if bad.MatchString(line) && !normal.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

// arpingOwners runs duplicate address detection for addr from the client
// and returns the distinct MACs that answered.
func (v *vrrpLab) arpingOwners(addr string) []string {
	v.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out bytes.Buffer
	// Exit status 1 means somebody answered: that is what we look at.
	_ = v.l.Exec(ctx, "client", []string{"arping", "-D", "-c", "3", "-w", "4", "-I", "eth0", addr}, nil, &out, &out)
	re := regexp.MustCompile(`\[([0-9A-Fa-f:]{17})\]`)
	seen := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(out.String(), -1) {
		seen[strings.ToLower(m[1])] = true
	}
	var macs []string
	for m := range seen {
		macs = append(macs, m)
	}
	sort.Strings(macs)
	return macs
}

// capture is tcpdump running in the client.
type capture struct {
	out syncBuffer
}

// Output is what tcpdump printed so far (it prints each packet at once).
func (c *capture) Output() string { return c.out.String() }

// capture runs tcpdump in the client until the test ends.
func (v *vrrpLab) capture(filter string) *capture {
	v.t.Helper()
	c := &capture{}
	// Immediate mode: each packet is printed as it arrives, not when a
	// capture buffer block fills or times out.
	cmd := v.l.Command("client", "tcpdump", "--immediate-mode", "-l", "-n", "-e", "-tt", "-i", "eth0", filter)
	var errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &c.out, &errOut
	if err := cmd.Start(); err != nil {
		v.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	v.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	v.eventually("tcpdump to start", func() bool { return strings.Contains(errOut.String(), "listening on") })
	return c
}

// garp is one gratuitous ARP seen by the client.
type garp struct {
	at  float64 // seconds since the epoch
	src string  // Ethernet source MAC
	ip  string  // sender = target address
}

// parseGARPs picks the gratuitous ARP requests (who-has X tell X, to
// broadcast) out of tcpdump -e -tt output.
func parseGARPs(out string) []garp {
	re := regexp.MustCompile(`^(\d+\.\d+) ([0-9a-f:]{17}) > ff:ff:ff:ff:ff:ff, ethertype ARP.*Request who-has (\S+) \(ff:ff:ff:ff:ff:ff\) tell (\S+),`)
	var gs []garp
	for _, line := range strings.Split(out, "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil || m[3] != m[4] {
			continue
		}
		var at float64
		fmt.Sscanf(m[1], "%f", &at)
		gs = append(gs, garp{at: at, src: m[2], ip: m[3]})
	}
	return gs
}
