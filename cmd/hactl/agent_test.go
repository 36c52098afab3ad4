package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hactl/hactl/cluster/api"
)

// The test binary doubles as hactl when this variable is set, so the agent
// runs as a real process that receives real signals.
const beHactl = "HACTL_TEST_BE_HACTL"

func TestMain(m *testing.M) {
	if os.Getenv(beHactl) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const agentTestConfig = `
cluster "shop" {
  secret_file = "secret"
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
  disk = { alpha = "DISK", bravo = "DISK" }
}
group "db" {
  vrrp   = "VI_1"
  volume = "data"
  filesystem {
    mountpoint = "/srv/data"
    fstype     = "ext4"
  }
  service "postgresql" {
    unit = "postgresql.service"
  }
}
`

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// agentProc is an agent started by a test; exited is closed once it has
// exited, and then err holds what Wait returned.
type agentProc struct {
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{}
	err    error
}

// waitExit waits at most d for the agent to exit.
func (p *agentProc) waitExit(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		t.Fatalf("agent did not exit within %v\n%s", d, p.logs.String())
		return nil
	}
}

func startAgent(t *testing.T, args ...string) *agentProc {
	return startAgentEnv(t, nil, args...)
}

// startAgentEnv runs an agent outside any lab. It must not touch this
// machine's network, yet its cluster file has a vrrp block: as root it gets
// a network namespace of its own with nothing in it (unshare, without
// --fork, so the test's signals reach the agent itself), where its VRRP
// instance cannot start; without root it cannot open raw sockets at all.
func startAgentEnv(t *testing.T, env []string, args ...string) *agentProc {
	t.Helper()
	// Volume state (NBD sockets, attachment locks) goes to a directory of
	// the test's, never to the machine's /run/hactl.
	argv := append([]string{os.Args[0], "agent", "--runtime-dir", t.TempDir()}, args...)
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skip("skipping: needs unshare to keep the agent off this machine's network")
		}
		argv = append([]string{"unshare", "--net", "--"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), beHactl+"=1"), env...)
	return startProc(t, cmd)
}

// startProc starts cmd with its output collected, and kills it when the
// test ends if it is still running.
func startProc(t *testing.T, cmd *exec.Cmd) *agentProc {
	t.Helper()
	p := &agentProc{cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// waitFor polls cond every 20ms for at most 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestAgentLifecycle(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "cluster.hcl")
	socket := filepath.Join(dir, "run", "hactl.sock")
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	config := strings.ReplaceAll(agentTestConfig, "DISK", disk)
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// systemd's notify socket, played by the test.
	notifyPath := filepath.Join(dir, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	agent := startAgentEnv(t, []string{"NOTIFY_SOCKET=" + notifyPath},
		"--config", conf, "--socket", socket, "--node", "alpha", "--log-format", "json")
	cmd, logs := agent.cmd, agent.logs
	buf := make([]byte, 128)
	_ = notify.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := notify.Read(buf); err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("systemd notification = %q, %v; want READY=1\n%s", buf[:n], err, logs.String())
	}
	// READY comes after the socket is listening.
	if code, _, stderr := runCapture("status", "--socket", socket); code != exitOK {
		t.Fatalf("status right after READY=1: exit %d: %s", code, stderr)
	}

	fi, err := os.Stat(socket)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v mode %v, want 0600", err, fi.Mode())
	}

	code, stdout, stderr := runCapture("status", "--socket", socket, "--json")
	if code != exitOK {
		t.Fatalf("status --json: exit %d: %s", code, stderr)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, stdout)
	}
	if st["schema"] != float64(1) || st["cluster"] != "shop" || st["node"] != "alpha" {
		t.Errorf("status header = schema %v cluster %v node %v", st["schema"], st["cluster"], st["node"])
	}
	for _, key := range []string{"nodes", "vrrp", "volumes", "groups"} {
		if list, ok := st[key].([]any); !ok || len(list) == 0 {
			t.Errorf("status --json has no %s: %v", key, st[key])
		}
	}

	code, stdout, _ = runCapture("status", "--socket", socket)
	// The agent's empty namespace has no eth0, so VI_1 cannot start there:
	// status says so rather than pretending.
	for _, want := range []string{"Cluster shop, node alpha", "alpha (this node)", "VI_1", "192.0.2.100/24", "alpha=100,bravo=90",
		"failed", "eth0", "volume:data stopped → filesystem:/srv/data stopped → service:postgresql stopped → vip:VI_1 stopped",
		"db: promotion gate closed: the local disk is Diskless"} {
		if code != exitOK || !strings.Contains(stdout, want) {
			t.Errorf("status table lacks %q:\n%s", want, stdout)
		}
	}

	// Requests are checked against the file before anything else.
	code, _, stderr = runCapture("failover", "--socket", socket, "nosuch")
	if code != exitFailure || !strings.Contains(stderr, `no group "nosuch"`) {
		t.Errorf("failover nosuch: exit %d, %q", code, stderr)
	}
	code, _, stderr = runCapture("failover", "--socket", socket, "db", "--to", "bravo")
	if code != exitFailure || !strings.Contains(stderr, "no node is heard running group db") {
		t.Errorf("failover db: exit %d, %q", code, stderr)
	}

	// A broken file on SIGHUP is refused; the agent keeps serving.
	if err := os.WriteFile(conf, []byte(config+"\nbogus {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refused reload in the log", func() bool { return strings.Contains(logs.String(), "reload refused") })
	if code, _, stderr := runCapture("status", "--socket", socket); code != exitOK {
		t.Fatalf("status after refused reload: exit %d %s", code, stderr)
	}

	// A second agent on the same socket is refused and leaves it alone.
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	other := startAgent(t, "--config", conf, "--socket", socket, "--node", "bravo")
	if err := other.waitExit(t, 10*time.Second); err == nil || !strings.Contains(other.logs.String(), "already listening") {
		t.Errorf("second agent: %v\n%s", err, other.logs.String())
	}
	if code, _, _ := runCapture("status", "--socket", socket); code != exitOK {
		t.Fatal("first agent stopped answering after the second was refused")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := agent.waitExit(t, 10*time.Second); err != nil {
		t.Fatalf("agent exit after SIGTERM: %v\n%s", err, logs.String())
	}
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Errorf("socket left after exit: %v", err)
	}
	var notes []string
	for {
		_ = notify.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := notify.Read(buf)
		if err != nil {
			break
		}
		notes = append(notes, string(buf[:n]))
	}
	if got := strings.Join(notes, " "); got != "RELOADING=1 READY=1 STOPPING=1" {
		t.Errorf("systemd notifications after start = %q, want reload then stop", got)
	}
	if !strings.Contains(logs.String(), `"msg":"agent stopped"`) {
		t.Errorf("no 'agent stopped' line in the JSON log:\n%s", logs.String())
	}

	code, _, stderr = runCapture("status", "--socket", socket)
	if code != exitNoAgent || !strings.Contains(stderr, "hactl agent is not running on this node (socket "+socket+")") {
		t.Errorf("status without agent: exit %d, %q", code, stderr)
	}
}

func TestAgentRefusesInvalidFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "cluster.hcl")
	if err := os.WriteFile(conf, []byte(`cluster "x" { quorum = "sometimes" }`), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startAgent(t, "--config", conf, "--socket", filepath.Join(dir, "s.sock"), "--node", "alpha")
	err := p.waitExit(t, 10*time.Second)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailure {
		t.Fatalf("agent exit = %v, want exit %d\n%s", err, exitFailure, p.logs.String())
	}
	if !strings.Contains(p.logs.String(), "hactl validate") || !strings.Contains(p.logs.String(), "quorum") {
		t.Errorf("error does not point at the problem:\n%s", p.logs.String())
	}
}

func TestStatusTable(t *testing.T) {
	st := api.Status{
		Schema: 1, Cluster: "shop", Node: "bravo", Version: "v1", ConfigFile: "/etc/hactl/cluster.hcl",
		StartedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Nodes: []api.NodeStatus{
			{Name: "alpha", Address: "192.0.2.11", ReplicationAddress: "198.51.100.11"},
			{Name: "bravo", Address: "192.0.2.12", ReplicationAddress: "198.51.100.12", Self: true},
			{Name: "witness", Address: "192.0.2.13", Witness: true},
		},
	}
	var b bytes.Buffer
	if err := writeStatus(&b, st, st.StartedAt.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Cluster shop, node bravo, hactl v1, agent up 1m30s",
		"bravo (this node)",
		"witness",
		"(none configured)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Columns line up: every node row has its address at the same offset.
	var offsets []int
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "192.0.2.1"); i >= 0 {
			offsets = append(offsets, i)
		}
	}
	if len(offsets) != 3 || offsets[0] != offsets[1] || offsets[1] != offsets[2] {
		t.Errorf("address column offsets %v, want three equal:\n%s", offsets, out)
	}
	for i, line := range strings.Split(out, "\n") {
		if strings.TrimRight(line, " \t") != line {
			t.Errorf("line %d has trailing blanks: %q", i+1, line)
		}
	}
}
