package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// These tests build real labs: they need root, ip(8) and nsenter(1).

func requireLabHost(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping: lab tests build network namespaces; not run with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: lab tests need root (they create network namespaces)")
	}
	for _, tool := range []string{"ip", "nsenter", "ping", "losetup", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: lab tests need %s in PATH", tool)
		}
	}
}

func uniqueName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b)
}

// upLab creates a lab with a unique name under a temporary state root and
// removes it when the test ends.
func upLab(t *testing.T, opts Options) *Lab {
	t.Helper()
	if opts.Name == "" {
		opts.Name = uniqueName(t)
	}
	if opts.StateRoot == "" {
		opts.StateRoot = t.TempDir()
	}
	if opts.DiskSize == 0 {
		opts.DiskSize = 16 << 20
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := Up(ctx, opts)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Cleanup(func() {
		if err := Down(context.Background(), l.Name, l.StateRoot); err != nil {
			t.Errorf("Down: %v", err)
		}
	})
	return l
}

// ownStatus is Status limited to the named labs: other packages' tests
// build labs of their own at the same time, and Status sees them too.
func ownStatus(root string, names ...string) ([]Info, error) {
	infos, err := Status(root)
	var own []Info
	for _, in := range infos {
		if slices.Contains(names, in.Name) {
			own = append(own, in)
		}
	}
	return own, err
}

// run executes argv in node and returns its output; it fails the test on error.
func run(t *testing.T, l *Lab, node string, argv ...string) string {
	t.Helper()
	out, err := tryRun(l, node, argv...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", node, err, out)
	}
	return out
}

func tryRun(l *Lab, node string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := l.Exec(ctx, node, argv, nil, &out, &out)
	return out.String(), err
}

func ping(t *testing.T, l *Lab, from, to string) {
	t.Helper()
	// The first packet may wait for ARP; three tries keep it bounded.
	var err error
	var out string
	for range 3 {
		if out, err = tryRun(l, from, "ping", "-c1", "-W1", to); err == nil {
			return
		}
	}
	t.Errorf("%s cannot ping %s: %v\n%s", from, to, err, out)
}

func TestLab(t *testing.T) {
	requireLabHost(t)
	// Watch the host namespace while the lab is built: no interface of the
	// lab may appear there, not even briefly.
	before, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	existing := map[int]bool{}
	for _, link := range before {
		existing[link.Attrs().Index] = true
	}
	updates, done := make(chan netlink.LinkUpdate, 256), make(chan struct{})
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		t.Fatal(err)
	}
	l := upLab(t, Options{Nodes: 2, Witness: true})
	close(done)
	// Only names this lab uses count: tests of other packages may run
	// at the same time.
	labNames := map[string]bool{}
	for _, nw := range l.Networks {
		labNames[nw.Bridge] = true
	}
	for _, n := range l.Nodes {
		for _, ln := range n.Links {
			labNames[ln.SwitchEnd], labNames[ln.NodeEnd] = true, true
		}
	}
	for drained := false; !drained; {
		select {
		case u, ok := <-updates:
			if !ok { // the subscription ended after done was closed
				drained = true
			} else if !existing[int(u.Index)] && labNames[u.Attrs().Name] {
				t.Errorf("link %s (index %d) appeared in the host namespace during Up", u.Attrs().Name, u.Index)
			}
		default:
			drained = true
		}
	}

	t.Run("client reaches every node", func(t *testing.T) {
		for _, a := range []string{"192.0.2.11", "192.0.2.12", "192.0.2.13"} {
			ping(t, l, ClientName, a)
		}
	})
	t.Run("nodes reach each other on both networks", func(t *testing.T) {
		ping(t, l, "alpha", "192.0.2.12")
		ping(t, l, "alpha", "198.51.100.12")
		ping(t, l, "bravo", "198.51.100.11")
		ping(t, l, WitnessName, "192.0.2.11")
	})
	t.Run("witness has no replication interface", func(t *testing.T) {
		links := run(t, l, WitnessName, "ip", "-o", "link", "show")
		if !strings.Contains(links, " eth0@") || strings.Contains(links, "eth1") {
			t.Errorf("witness links:\n%s", links)
		}
		// /sys/class/net shows the node's interfaces, not the host's.
		sys := strings.Fields(run(t, l, WitnessName, "ls", "/sys/class/net"))
		if strings.Join(sys, " ") != "eth0 lo" {
			t.Errorf("witness /sys/class/net = %v, want [eth0 lo]", sys)
		}
		if out, err := tryRun(l, WitnessName, "ping", "-c1", "-W1", "198.51.100.11"); err == nil {
			t.Errorf("witness reaches the replication network:\n%s", out)
		}
	})
	t.Run("nothing in the host namespace", func(t *testing.T) {
		links, err := netlink.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, nw := range l.Networks {
			names[nw.Bridge] = true
		}
		for _, n := range l.Nodes {
			for _, ln := range n.Links {
				names[ln.SwitchEnd] = true
			}
		}
		for _, link := range links {
			if names[link.Attrs().Name] {
				t.Errorf("host namespace has lab interface %s", link.Attrs().Name)
			}
		}
	})
	t.Run("mounts persist per node", func(t *testing.T) {
		run(t, l, "alpha", "sh", "-c", "echo hello >/run/hactl/marker && mkdir /run/hactl/m && mount -t tmpfs labtest /run/hactl/m && touch /run/hactl/m/f")
		if got := run(t, l, "alpha", "cat", "/run/hactl/marker"); got != "hello\n" {
			t.Errorf("alpha reads %q", got)
		}
		if !strings.Contains(run(t, l, "alpha", "cat", "/proc/self/mounts"), "labtest /run/hactl/m tmpfs") {
			t.Errorf("the tmpfs mounted by one Exec is gone in the next")
		}
		run(t, l, "alpha", "test", "-e", "/run/hactl/m/f")
		if out, err := tryRun(l, "bravo", "cat", "/run/hactl/marker"); err == nil {
			t.Errorf("bravo sees alpha's /run/hactl: %q", out)
		}
		if strings.Contains(run(t, l, "bravo", "cat", "/proc/self/mounts"), "labtest") {
			t.Errorf("bravo sees alpha's mount")
		}
		if _, err := os.Stat("/run/hactl/marker"); err == nil {
			t.Errorf("the host sees alpha's /run/hactl")
		}
		if b, _ := os.ReadFile("/proc/self/mounts"); bytes.Contains(b, []byte("labtest")) {
			t.Errorf("the host sees alpha's mount")
		}
	})
	t.Run("etc and lib", func(t *testing.T) {
		hcl := run(t, l, "bravo", "cat", NodeClusterFile)
		if !strings.Contains(hcl, `cluster "`+l.Name+`"`) {
			t.Errorf("bravo's cluster file:\n%s", hcl)
		}
		if got := run(t, l, "bravo", "stat", "-c", "%a %s", NodeSecretFile); got != "600 65\n" {
			t.Errorf("secret mode and size = %q, want 600 65", got)
		}
		run(t, l, "bravo", "touch", "/var/lib/hactl/state")
		if _, err := os.Stat(filepath.Join(l.Dir, "bravo", "lib", "state")); err != nil {
			t.Errorf("/var/lib/hactl is not the node's lib dir: %v", err)
		}
		if st, err := os.Stat(l.Nodes[0].Disk); err != nil || st.Size() != 16<<20 {
			t.Errorf("disk: %v", err)
		}
	})
	t.Run("exit status", func(t *testing.T) {
		_, err := tryRun(l, "alpha", "sh", "-c", "exit 3")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("err = %v, want exit status 3", err)
		}
		if _, err := tryRun(l, "charlie", "true"); err == nil {
			t.Errorf("Exec in a node the lab lacks succeeded")
		}
	})
	t.Run("open and status", func(t *testing.T) {
		o, err := Open(l.Name, l.StateRoot)
		if err != nil {
			t.Fatal(err)
		}
		if len(o.Nodes) != 4 || o.Switch != l.Switch {
			t.Errorf("Open = %+v", o)
		}
		infos, err := ownStatus(l.StateRoot, l.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 1 || infos[0].Name != l.Name || !infos[0].Complete || len(infos[0].Nodes) != 4 {
			t.Errorf("Status = %+v", infos)
		}
	})
	t.Run("up again is refused", func(t *testing.T) {
		_, err := Up(context.Background(), Options{Name: l.Name, StateRoot: l.StateRoot})
		if !errors.Is(err, ErrExists) {
			t.Errorf("second Up: %v, want ErrExists", err)
		}
	})
}

func TestTwoLabs(t *testing.T) {
	requireLabHost(t)
	root := t.TempDir()
	a := upLab(t, Options{StateRoot: root})
	b := upLab(t, Options{StateRoot: root})
	for _, l := range []*Lab{a, b} {
		ping(t, l, "alpha", "192.0.2.12")
		ping(t, l, "bravo", "198.51.100.11")
	}
	run(t, a, "alpha", "sh", "-c", "echo a >/run/hactl/which")
	if out, err := tryRun(b, "alpha", "cat", "/run/hactl/which"); err == nil {
		t.Errorf("lab %s alpha sees lab %s alpha's file: %q", b.Name, a.Name, out)
	}
	// Tearing down the newer one (whose nodes' mount namespaces hold
	// copies of the older one's mounts) leaves the older one working.
	if err := Down(context.Background(), b.Name, root); err != nil {
		t.Fatal(err)
	}
	ping(t, a, "alpha", "192.0.2.12")
	if got := run(t, a, "alpha", "cat", NodeClusterFile); !strings.Contains(got, a.Name) {
		t.Errorf("lab %s lost its cluster file", a.Name)
	}
	infos, err := ownStatus(root, a.Name, b.Name)
	if err != nil || len(infos) != 1 || infos[0].Name != a.Name {
		t.Errorf("Status after one Down = %+v, %v", infos, err)
	}
}

func TestDownAfterCrash(t *testing.T) {
	requireLabHost(t)
	l := upLab(t, Options{})

	// A process left running in a node.
	proc := l.Command("alpha", "sleep", "300")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.Wait() }()

	// A loop device on the disk file, attached inside the node, and a
	// mount inside the node.
	dev := strings.TrimSpace(run(t, l, "alpha", "losetup", "-f", "--show", l.Nodes[0].Disk))
	if !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("losetup printed %q", dev)
	}
	run(t, l, "alpha", "sh", "-c", "mkdir -p /run/hactl/m && mount -t tmpfs crash /run/hactl/m")
	// A loop device on a file that exists only inside the node (as a FUSE
	// file presenting a volume would): found by its file system, not its path.
	nodeDev := strings.TrimSpace(run(t, l, "alpha", "sh", "-c",
		"truncate -s 4M /run/hactl/m/vol.img && losetup -f --show /run/hactl/m/vol.img"))
	if !strings.HasPrefix(nodeDev, "/dev/loop") {
		t.Fatalf("losetup printed %q", nodeDev)
	}
	// A host mount under the state dir, standing in for a FUSE volume.
	hostMnt := filepath.Join(l.Dir, "alpha", "fuse")
	if err := os.Mkdir(hostMnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "crashhost", hostMnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	// The crash: the description is gone.
	if err := os.Remove(filepath.Join(l.Dir, stateFileName)); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := Down(context.Background(), l.Name, l.StateRoot); err != nil {
		t.Fatalf("Down: %v", err)
	}
	t.Logf("Down took %v", time.Since(start))

	select {
	case err := <-exited:
		if err == nil {
			t.Errorf("sleep exited normally, want killed")
		}
	case <-time.After(5 * time.Second):
		t.Errorf("process in alpha still running after Down")
	}
	if left, _ := labNetns(l.Name); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), NetnsPrefix+l.Name+"-") {
		t.Errorf("ip netns list still shows the lab:\n%s", out)
	}
	for _, lp := range attachedLoops() {
		if under(lp.backing, l.Dir) || "/dev/"+lp.name == nodeDev {
			t.Errorf("/dev/%s still backed by %s", lp.name, lp.backing)
		}
	}
	mounts, _ := os.ReadFile("/proc/mounts")
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 1 && under(f[1], l.Dir) {
			t.Errorf("still mounted: %s", line)
		}
	}
	if _, err := os.Lstat(l.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir still there: %v", err)
	}
	// Idempotent.
	if err := Down(context.Background(), l.Name, l.StateRoot); err != nil {
		t.Errorf("second Down: %v", err)
	}
}

func TestDownUnknownLab(t *testing.T) {
	requireLabHost(t)
	if err := Down(context.Background(), uniqueName(t), t.TempDir()); err != nil {
		t.Errorf("Down of a lab that never existed: %v", err)
	}
	if _, err := Open(uniqueName(t), t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a missing lab: %v", err)
	}
	// A state root pointed at a directory that is not a lab's: Down must
	// not delete what it did not create.
	root, name := t.TempDir(), uniqueName(t)
	precious := filepath.Join(root, name, "precious")
	if err := os.MkdirAll(filepath.Dir(precious), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(precious, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Down(context.Background(), name, root); err == nil {
		t.Errorf("Down removed a directory that is no lab's without complaint")
	}
	if _, err := os.Stat(precious); err != nil {
		t.Errorf("Down deleted a file it did not create: %v", err)
	}
}

// TestDownLeftoverNamespaces covers a crash before the state directory
// existed: only namespaces named after the lab are left, one with a
// process in it.
func TestDownLeftoverNamespaces(t *testing.T) {
	requireLabHost(t)
	name, root := uniqueName(t), t.TempDir()
	for _, m := range []string{"alpha", switchRole} {
		ns := netnsName(name, m)
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add: %v %s", err, out)
		}
		t.Cleanup(func() { _ = deleteNetns(ns) })
	}
	proc := exec.Command("ip", "netns", "exec", netnsName(name, "alpha"), "sleep", "300")
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.Wait() }()
	// Wait, bounded, until the process has entered the namespace.
	id, _ := nsIDOf(netnsPath(netnsName(name, "alpha")))
	for i := 0; i < 100 && len(procsIn(map[nsID]bool{id: true})) == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}

	if _, err := Up(context.Background(), Options{Name: name, StateRoot: root}); !errors.Is(err, ErrExists) {
		t.Errorf("Up over leftovers: %v, want ErrExists", err)
	}
	infos, err := ownStatus(root, name)
	if err != nil || len(infos) != 1 || infos[0].Described || len(infos[0].Nodes) != 1 || !infos[0].SwitchExists {
		t.Errorf("Status of leftovers = %+v, %v", infos, err)
	}
	if err := Down(context.Background(), name, root); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if left, _ := labNetns(name); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Errorf("process in the leftover namespace still running")
	}
}

// TestThrowawayThread checks that namespace work never lands on the main
// thread, whose view /proc/self shows and which the runtime never discards.
func TestThrowawayThread(t *testing.T) {
	requireLabHost(t)
	before, _ := nsIDOf("/proc/self/ns/net")
	for range 200 {
		err := onThrowawayThread(func() error {
			if unix.Gettid() == unix.Getpid() {
				return errors.New("ran on the main thread")
			}
			return unix.Unshare(unix.CLONE_NEWNET)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := nsIDOf("/proc/self/ns/net"); after != before {
		t.Errorf("the main thread changed network namespace")
	}
	if cur, _ := nsIDOf("/proc/thread-self/ns/net"); cur != before {
		t.Errorf("a reused thread is in another network namespace")
	}
}

// TestDownStopsGracefully checks that Down gives processes SIGTERM first,
// so an agent can clean up, and still kills one that ignores it.
func TestDownStopsGracefully(t *testing.T) {
	requireLabHost(t)
	l := upLab(t, Options{})
	// Outside the lab's state dir, which Down removes.
	marker := filepath.Join(t.TempDir(), "terminated")

	polite := l.Command("bravo", "sh", "-c",
		`trap 'echo term > `+marker+`; exit 0' TERM; echo ready; while :; do sleep 0.05; done`)
	stubborn := l.Command("alpha", "sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	results := map[string]chan error{}
	for name, cmd := range map[string]*exec.Cmd{"polite": polite, "stubborn": stubborn} {
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The shell has its trap in place once it says ready.
		line := make([]byte, 6)
		if _, err := io.ReadFull(out, line); err != nil || string(line) != "ready\n" {
			t.Fatalf("%s: read %q, %v", name, line, err)
		}
		ch := make(chan error, 1)
		go func() { ch <- cmd.Wait() }()
		results[name] = ch
	}

	if err := Down(context.Background(), l.Name, l.StateRoot); err != nil {
		t.Fatalf("Down: %v", err)
	}
	wait := func(name string) error {
		select {
		case err := <-results[name]:
			return err
		case <-time.After(5 * time.Second):
			t.Fatalf("%s process still running after Down", name)
			return nil
		}
	}
	if err := wait("polite"); err != nil {
		t.Errorf("the process that handles SIGTERM did not exit cleanly: %v", err)
	}
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "term" {
		t.Errorf("SIGTERM handler did not run: %q, %v", b, err)
	}
	var ee *exec.ExitError
	if err := wait("stubborn"); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("the process that ignores SIGTERM ended with %v; want killed by SIGKILL", err)
	}
}

// TestFaults checks the failures the VRRP tests inject: a silent isolation
// keeps the carrier, a pulled cable drops it, and both heal.
func TestFaults(t *testing.T) {
	requireLabHost(t)
	l := upLab(t, Options{})
	carrier := func(node string) string {
		return strings.TrimSpace(run(t, l, node, "cat", "/sys/class/net/eth0/carrier"))
	}
	unreachable := func(from, to string) {
		t.Helper()
		if out, err := tryRun(l, from, "ping", "-c1", "-W1", to); err == nil {
			t.Errorf("%s still reaches %s:\n%s", from, to, out)
		}
	}

	if err := l.Isolate("alpha", "service"); err != nil {
		t.Fatal(err)
	}
	unreachable("bravo", "192.0.2.11")
	if c := carrier("alpha"); c != "1" {
		t.Errorf("isolated alpha lost its carrier (%q); isolation must be silent", c)
	}
	ping(t, l, "alpha", "198.51.100.12") // the other network is untouched
	if err := l.Rejoin("alpha", "service"); err != nil {
		t.Fatal(err)
	}
	ping(t, l, "bravo", "192.0.2.11")

	if err := l.SetCable("bravo", "service", false); err != nil {
		t.Fatal(err)
	}
	if c := carrier("bravo"); c != "0" {
		t.Errorf("bravo's carrier is %q with its cable pulled, want 0", c)
	}
	if err := l.SetCable("bravo", "service", true); err != nil {
		t.Fatal(err)
	}
	ping(t, l, "alpha", "192.0.2.12")

	if err := l.SetClusterFile("# replaced\n"); err != nil {
		t.Fatal(err)
	}
	if got := run(t, l, "bravo", "cat", NodeClusterFile); got != "# replaced\n" {
		t.Errorf("bravo sees cluster file %q", got)
	}
	if err := l.Isolate("nobody", "service"); err == nil {
		t.Error("Isolate of an unknown node did not fail")
	}
}
