package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Bounds of the waits in Down.
const (
	killTimeout = 5 * time.Second
	// termGrace is how long Down lets processes stop on SIGTERM.
	termGrace     = 3 * time.Second
	detachTimeout = 5 * time.Second
	execWaitDelay = 2 * time.Second
)

// Up creates a lab. On failure it removes whatever it had created.
func Up(ctx context.Context, opts Options) (*Lab, error) {
	l, err := plan(opts)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if err := checkFree(l); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(l.StateRoot, 0o755); err != nil {
		return nil, fmt.Errorf("lab %s: create state root: %w", l.Name, err)
	}
	// Mkdir, not MkdirAll: it is the lock against a concurrent Up.
	if err := os.Mkdir(l.Dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, existsError(l)
		}
		return nil, fmt.Errorf("lab %s: create state dir: %w", l.Name, err)
	}
	if err := build(ctx, l); err != nil {
		if derr := Down(context.WithoutCancel(ctx), l.Name, l.StateRoot); derr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup after failed up: %w", derr))
		}
		return nil, fmt.Errorf("lab %s: up: %w", l.Name, err)
	}
	return l, nil
}

func existsError(l *Lab) error {
	return fmt.Errorf("lab %q %w (state %s); run 'hactl lab down --name %s' first", l.Name, ErrExists, l.Dir, l.Name)
}

// checkFree refuses to build over leftovers of an earlier lab of the same name.
func checkFree(l *Lab) error {
	if _, err := os.Lstat(l.Dir); err == nil {
		return existsError(l)
	}
	left, err := labNetns(l.Name)
	if err != nil {
		return fmt.Errorf("lab %s: list %s: %w", l.Name, netnsDir, err)
	}
	if len(left) > 0 {
		return fmt.Errorf("lab %q %w: namespaces %s are left; run 'hactl lab down --name %s' first",
			l.Name, ErrExists, strings.Join(left, ", "), l.Name)
	}
	return nil
}

// build creates everything in l, recording it in lab.json first so that a
// crash half-way leaves a description Down can work from.
func build(ctx context.Context, l *Lab) error {
	if err := saveState(l); err != nil {
		return err
	}
	if err := writeFiles(l); err != nil {
		return err
	}
	if err := prepareNetnsDir(); err != nil {
		return err
	}
	for _, ns := range append([]string{l.Switch}, netnsNames(l)...) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := createNetns(ns); err != nil {
			return err
		}
	}
	// After the namespaces exist, so a concurrent Down of another lab sees
	// this one and keeps the mount points.
	if err := ensureHostDirs(nodeMountPoints); err != nil {
		return err
	}
	if err := buildNetworks(l); err != nil {
		return err
	}
	if err := prepareNSDir(l.NSDir); err != nil {
		return err
	}
	for _, n := range l.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := createMountNS(mountSpecFor(n)); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

func netnsNames(l *Lab) []string {
	var out []string
	for _, n := range l.Nodes {
		out = append(out, n.Netns)
	}
	return out
}

// writeFiles creates the per-node directories, the secret, the cluster
// file and the sparse disks.
func writeFiles(l *Lab) error {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	secret := []byte(hex.EncodeToString(raw) + "\n")
	hcl, err := ClusterFile(l)
	if err != nil {
		return err
	}
	if err := os.WriteFile(l.SecretFile, secret, 0o600); err != nil {
		return fmt.Errorf("write secret: %w", err)
	}
	if err := os.WriteFile(l.ClusterFile, []byte(hcl), 0o644); err != nil {
		return fmt.Errorf("write cluster file: %w", err)
	}
	for _, n := range l.Nodes {
		for _, d := range []string{n.EtcDir, n.LibDir} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		if err := os.WriteFile(filepath.Join(n.EtcDir, "cluster.hcl"), []byte(hcl), 0o644); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		// The client is no cluster member and gets no secret.
		if n.Role != RoleClient {
			if err := os.WriteFile(filepath.Join(n.EtcDir, "secret"), secret, 0o600); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		if n.Disk != "" {
			if err := makeSparse(n.Disk, l.DiskSize); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
	}
	return nil
}

func makeSparse(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create disk: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("size disk %s: %w", path, err)
	}
	return f.Close()
}

// hostDirMarker is left in every mount point the lab had to create in the
// host's file system, so that a later Down, from any process and any
// state root, knows it may remove the directory. Inside the nodes the
// marker is hidden under the mount.
const hostDirMarker = ".hactl-lab-created"

// ensureHostDirs creates the node mount points missing in the host's file
// system.
func ensureHostDirs(dirs []string) error {
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create mount point %s: %w", d, err)
		}
		if err := os.WriteFile(filepath.Join(d, hostDirMarker), nil, 0o644); err != nil {
			return fmt.Errorf("mark mount point %s: %w", d, err)
		}
	}
	return nil
}

func saveState(l *Lab) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", stateFileName, err)
	}
	p := filepath.Join(l.Dir, stateFileName)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// Open reads the description of an existing lab from its lab.json.
func Open(name, stateRoot string) (*Lab, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if stateRoot == "" {
		stateRoot = DefaultStateRoot
	}
	p := filepath.Join(stateRoot, name, stateFileName)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("lab %q %w (no %s)", name, ErrNotFound, p)
	}
	if err != nil {
		return nil, fmt.Errorf("lab %s: %w", name, err)
	}
	var l Lab
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("lab %s: decode %s: %w", name, p, err)
	}
	if l.Name != name {
		return nil, fmt.Errorf("lab %s: %s describes lab %q", name, p, l.Name)
	}
	return &l, nil
}

// Command returns a command that runs argv inside the node's network and
// persistent mount namespaces, for processes that outlive one call (for
// example `hactl agent`). It goes through nsenter(1): a multi-threaded Go
// process cannot move itself into another mount namespace, and `ip netns
// exec` would give every call a fresh mount namespace.
func (l *Lab) Command(node string, argv ...string) *exec.Cmd {
	return l.command(context.Background(), node, argv)
}

func (l *Lab) command(ctx context.Context, node string, argv []string) *exec.Cmd {
	n, ok := l.Node(node)
	var err error
	switch {
	case !ok:
		err = fmt.Errorf("lab %s has no node %q", l.Name, node)
	case len(argv) == 0:
		err = errors.New("no command given")
	}
	args := append([]string{"--net=" + netnsPath(n.Netns), "--mount=" + n.MountNS, "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	if err != nil {
		cmd.Err = fmt.Errorf("lab %s: %w", l.Name, err)
	}
	// Bounded wait for output pipes after the context kills the process.
	cmd.WaitDelay = execWaitDelay
	return cmd
}

// Exec runs argv in the node and waits for it. A non-zero exit comes back
// as an error wrapping *exec.ExitError.
func (l *Lab) Exec(ctx context.Context, node string, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := l.command(ctx, node, argv)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("lab %s: %s: %s: %w", l.Name, node, strings.Join(argv, " "), err)
	}
	return nil
}

// Down removes lab name: it stops the processes in its namespaces (SIGTERM,
// then SIGKILL for those still there after a grace period),
// unmounts what was mounted inside its nodes, drops the pinned mount
// namespaces, detaches loop devices backed by its files, unmounts what is
// left under its state directory, deletes its network namespaces (and with
// them its veths and bridges) and removes the state directory.
//
// Down works from lab.json when there is one and otherwise finds the
// resources by name, so it also cleans up after a crash. It is idempotent:
// a lab that does not exist is not an error. The error lists everything
// it could not remove.
func Down(ctx context.Context, name, stateRoot string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if stateRoot == "" {
		stateRoot = DefaultStateRoot
	}
	if err := checkStateRoot(stateRoot); err != nil {
		return err
	}
	stateRoot = filepath.Clean(stateRoot)
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	r, err := discover(name, stateRoot)
	if err != nil {
		return fmt.Errorf("lab %s: down: %w", name, err)
	}
	var errs []error
	fail := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	// 1. Processes hold namespaces, mounts and loop devices: stop them first.
	ids := map[nsID]bool{}
	for _, p := range append(append([]string(nil), r.netns...), r.pins...) {
		if id, ok := nsIDOf(p); ok && isNSFile(p) {
			ids[id] = true
		}
	}
	fail(stopProcs(ctx, ids, termGrace, killTimeout))

	// 2. Mounts made inside the nodes, then the pins that keep them alive.
	host, err := readMountInfo("/proc/self/mountinfo")
	fail(err)
	hostDevs := map[devNum]bool{}
	for _, m := range host {
		hostDevs[devNum{m.Major, m.Minor}] = true
	}
	nodeDevs := map[devNum]bool{}
	for _, pin := range r.pins {
		if isNSFile(pin) && host != nil {
			local, err := detachNodeMounts(pin, host)
			if err != nil {
				fail(fmt.Errorf("mounts in %s: %w", pin, err))
			}
			for _, m := range local {
				// A device the host also mounts is a bind from the host
				// (e.g. the state dir's file system), and a copy of a mount
				// under the state root belongs to some lab's host side:
				// neither is a file system of this lab's nodes.
				d := devNum{m.Major, m.Minor}
				if !hostDevs[d] && !under(m.Point, stateRoot) {
					nodeDevs[d] = true
				}
			}
		}
		fail(unpin(pin))
	}

	// 3. Loop devices backed by lab files.
	if loops := labLoops(attachedLoops(), r.dir, nodeDevs); len(loops) > 0 {
		fail(detachLoops(loops, detachTimeout))
	}

	// 4. Whatever is still mounted under the state dir in the host (FUSE
	// mounts, the private ns directory), deepest first.
	if ms, err := readMountInfo("/proc/self/mountinfo"); err == nil {
		fail(unmountAll(mountsUnder(ms, r.dir)))
	} else {
		fail(err)
	}

	// 5. Network namespaces: the switch last, nodes' peers go with them.
	for _, ns := range r.netns {
		fail(deleteNetns(filepath.Base(ns)))
	}

	// 6. State, but never through a mount that is still there: RemoveAll
	// would delete the files of a file system that is not ours.
	fail(removeStateDir(r.dir))
	if len(errs) == 0 {
		removeHostDirs(stateRoot)
	}

	if len(errs) > 0 {
		return fmt.Errorf("lab %s: down left things behind: %w", name, errors.Join(errs...))
	}
	return nil
}

// remains are the resources of a lab, found from lab.json and by name.
type remains struct {
	dir   string
	netns []string // paths, nodes first, switch last
	pins  []string
}

func discover(name, stateRoot string) (*remains, error) {
	r := &remains{dir: filepath.Join(stateRoot, name)}
	seen := map[string]bool{}
	addNS := func(ns string) {
		p := netnsPath(ns)
		if !seen[p] {
			seen[p] = true
			r.netns = append(r.netns, p)
		}
	}
	addPin := func(p string) {
		if !seen[p] {
			seen[p] = true
			r.pins = append(r.pins, p)
		}
	}
	var switchNS []string
	if l, err := Open(name, stateRoot); err == nil {
		for _, n := range l.Nodes {
			addNS(n.Netns)
			addPin(n.MountNS)
		}
		switchNS = append(switchNS, l.Switch)
	}
	left, err := labNetns(name)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", netnsDir, err)
	}
	for _, ns := range left {
		if _, member, _ := parseNetnsName(ns); member == switchRole {
			switchNS = append(switchNS, ns)
		} else {
			addNS(ns)
		}
	}
	for _, ns := range switchNS {
		addNS(ns)
	}
	pins, _ := filepath.Glob(filepath.Join(r.dir, "ns", "*.mnt"))
	for _, p := range pins {
		addPin(p)
	}
	return r, nil
}

func unmountAll(points []string) error {
	var errs []error
	for _, p := range points {
		if err := unmountDetach(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func removeStateDir(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	ms, err := readMountInfo("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	if left := mountsUnder(ms, dir); len(left) > 0 {
		return fmt.Errorf("not removing %s: still mounted: %s", dir, strings.Join(left, ", "))
	}
	if err := looksLikeLabDir(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// looksLikeLabDir guards RemoveAll against a state root pointed at a
// directory that holds something else: a lab dir has only what Up writes.
func looksLikeLabDir(dir string) error {
	allowed := map[string]bool{
		stateFileName: true, stateFileName + ".tmp": true, "ns": true, "cluster.hcl": true, "secret": true,
	}
	for _, m := range memberNames() {
		allowed[m] = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range ents {
		if !allowed[e.Name()] {
			return fmt.Errorf("not removing %s: %s is not something a lab creates", dir, e.Name())
		}
	}
	return nil
}

// removeHostDirs removes the mount points labs created in the host, but
// only when no lab is left on the host: in another lab's nodes they are
// mount points, and removing a directory detaches the mounts on it in
// every namespace. A directory holding anything but the marker stays.
func removeHostDirs(stateRoot string) {
	ents, _ := os.ReadDir(netnsDir)
	for _, e := range ents {
		if _, _, ok := parseNetnsName(e.Name()); ok {
			return
		}
	}
	for _, d := range nodeMountPoints {
		ents, err := os.ReadDir(d)
		if err != nil || len(ents) != 1 || ents[0].Name() != hostDirMarker {
			continue
		}
		if os.Remove(filepath.Join(d, hostDirMarker)) == nil {
			_ = os.Remove(d)
		}
	}
	_ = os.Remove(stateRoot) // only when empty
}

// NodeInfo is the state of one lab member as Status sees it.
type NodeInfo struct {
	Name               string `json:"name"`
	Role               Role   `json:"role"`
	Netns              string `json:"netns"`
	NetnsExists        bool   `json:"netns_exists"`
	MountNS            string `json:"mount_ns,omitempty"`
	MountNSExists      bool   `json:"mount_ns_exists"`
	Address            string `json:"address,omitempty"`
	ReplicationAddress string `json:"replication_address,omitempty"`
	Disk               string `json:"disk,omitempty"`
	DiskExists         bool   `json:"disk_exists,omitempty"`
}

// Info describes one lab found on the host.
type Info struct {
	Name         string     `json:"name"`
	Dir          string     `json:"dir"`
	Described    bool       `json:"described"` // lab.json was found
	ClusterFile  string     `json:"cluster_file,omitempty"`
	Switch       string     `json:"switch_netns"`
	SwitchExists bool       `json:"switch_exists"`
	Nodes        []NodeInfo `json:"nodes"`
	Complete     bool       `json:"complete"` // every namespace exists
}

// Status lists the labs under stateRoot and those that only left network
// namespaces behind, with the state of each member.
func Status(stateRoot string) ([]Info, error) {
	if stateRoot == "" {
		stateRoot = DefaultStateRoot
	}
	names := map[string]bool{}
	ents, err := os.ReadDir(stateRoot)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() && ValidateName(e.Name()) == nil {
			names[e.Name()] = true
		}
	}
	nsEnts, _ := os.ReadDir(netnsDir)
	for _, e := range nsEnts {
		if l, _, ok := parseNetnsName(e.Name()); ok {
			names[l] = true
		}
	}
	var out []Info
	for _, name := range sortedKeys(names) {
		out = append(out, labInfo(name, stateRoot))
	}
	return out, nil
}

func labInfo(name, stateRoot string) Info {
	info := Info{Name: name, Dir: filepath.Join(stateRoot, name), Switch: netnsName(name, switchRole)}
	l, err := Open(name, stateRoot)
	if err == nil {
		info.Described = true
		info.ClusterFile = l.ClusterFile
		for _, n := range l.Nodes {
			ni := NodeInfo{
				Name: n.Name, Role: n.Role, Netns: n.Netns,
				NetnsExists: isNSFile(netnsPath(n.Netns)),
				MountNS:     n.MountNS, MountNSExists: isNSFile(n.MountNS),
				Address: n.Address().String(), Disk: n.Disk,
			}
			if a := n.ReplicationAddress(); a.IsValid() {
				ni.ReplicationAddress = a.String()
			}
			if n.Disk != "" {
				_, err := os.Stat(n.Disk)
				ni.DiskExists = err == nil
			}
			info.Nodes = append(info.Nodes, ni)
		}
	} else {
		// No description: report the namespaces that are left.
		left, _ := labNetns(name)
		for _, ns := range left {
			_, member, _ := parseNetnsName(ns)
			if member == switchRole {
				continue
			}
			info.Nodes = append(info.Nodes, NodeInfo{Name: member, Netns: ns, NetnsExists: isNSFile(netnsPath(ns))})
		}
	}
	info.SwitchExists = isNSFile(netnsPath(info.Switch))
	info.Complete = info.Described && info.SwitchExists
	for _, n := range info.Nodes {
		info.Complete = info.Complete && n.NetnsExists && n.MountNSExists
	}
	return info
}
