package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where ip-netns(8) keeps named network namespaces; using it
// makes lab namespaces visible to `ip netns list` and `ip -n`.
const netnsDir = "/run/netns"

func netnsPath(name string) string { return filepath.Join(netnsDir, name) }

// prepareNetnsDir sets up /run/netns the way ip-netns does: a shared
// mount of itself, so namespace files created later also appear in mount
// namespaces that were cloned as its slaves.
func prepareNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", netnsDir, err)
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point yet
		if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mount %s: %w", netnsDir, err)
		}
		err = unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("make %s shared: %w", netnsDir, err)
	}
	return nil
}

// createNetns makes a named, empty network namespace pinned on
// /run/netns/<name>.
func createNetns(name string) error {
	p := netnsPath(name)
	f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("network namespace %s already exists", name)
		}
		return fmt.Errorf("create %s: %w", p, err)
	}
	f.Close()
	// The thread that unshares ends up in the new namespace, so it is
	// thrown away afterwards.
	err = onThrowawayThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		return unix.Mount("/proc/thread-self/ns/net", p, "none", unix.MS_BIND, "")
	})
	if err != nil {
		os.Remove(p)
		return fmt.Errorf("create network namespace %s: %w", name, err)
	}
	return nil
}

// deleteNetns unpins a network namespace. The kernel frees it, with the
// veths and bridges inside, once no process or mount holds it.
func deleteNetns(name string) error {
	p := netnsPath(name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", p, err)
	}
	// Unlinking also detaches copies of this mount in other mount
	// namespaces (for example lab nodes created after it).
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

// isNSFile reports whether path is a pinned namespace (an nsfs mount).
func isNSFile(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// labNetns lists the namespaces in /run/netns that belong to lab name.
func labNetns(name string) ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if l, _, ok := parseNetnsName(e.Name()); ok && l == name {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// handleAt opens a netlink handle inside a named namespace.
func handleAt(name string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(netnsPath(name))
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", name, err)
	}
	return h, nil
}

func setLoUp(h *netlink.Handle, ns string) error {
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("%s: lo up: %w", ns, err)
	}
	return nil
}

// buildNetworks creates the bridges in the switch namespace and one veth
// pair per member link. Each pair is created from the switch namespace
// with its peer born directly in the node's namespace, so no interface
// ever exists in the host namespace, not even briefly.
func buildNetworks(l *Lab) error {
	sw, err := handleAt(l.Switch)
	if err != nil {
		return err
	}
	defer sw.Close()
	if err := setLoUp(sw, l.Switch); err != nil {
		return err
	}
	bridges := map[string]netlink.Link{}
	for _, nw := range l.Networks {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: nw.Bridge}}
		if err := sw.LinkAdd(br); err != nil {
			return fmt.Errorf("%s: add bridge %s: %w", l.Switch, nw.Bridge, err)
		}
		link, err := sw.LinkByName(nw.Bridge)
		if err == nil {
			err = sw.LinkSetUp(link)
		}
		if err != nil {
			return fmt.Errorf("%s: bridge %s up: %w", l.Switch, nw.Bridge, err)
		}
		bridges[nw.Name] = link
	}
	for _, n := range l.Nodes {
		if err := connectNode(l, sw, bridges, n); err != nil {
			return err
		}
	}
	return nil
}

func connectNode(l *Lab, sw *netlink.Handle, bridges map[string]netlink.Link, n Node) error {
	nodeNS, err := netns.GetFromPath(netnsPath(n.Netns))
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", n.Netns, err)
	}
	defer nodeNS.Close()
	h, err := netlink.NewHandleAt(nodeNS)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", n.Netns, err)
	}
	defer h.Close()
	if err := setLoUp(h, n.Netns); err != nil {
		return err
	}
	for _, ln := range n.Links {
		br, ok := bridges[ln.Network]
		if !ok {
			return fmt.Errorf("%s: link %s: no network %q", n.Name, ln.NodeEnd, ln.Network)
		}
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: ln.SwitchEnd},
			PeerName:      ln.NodeEnd,
			PeerNamespace: netlink.NsFd(nodeNS),
		}
		if err := sw.LinkAdd(veth); err != nil {
			return fmt.Errorf("%s: add veth %s <-> %s/%s: %w", l.Switch, ln.SwitchEnd, n.Netns, ln.NodeEnd, err)
		}
		end, err := sw.LinkByName(ln.SwitchEnd)
		if err == nil {
			err = sw.LinkSetMaster(end, br)
		}
		if err == nil {
			err = sw.LinkSetUp(end)
		}
		if err != nil {
			return fmt.Errorf("%s: attach %s to %s: %w", l.Switch, ln.SwitchEnd, br.Attrs().Name, err)
		}
		peer, err := h.LinkByName(ln.NodeEnd)
		if err != nil {
			return fmt.Errorf("%s: find %s: %w", n.Netns, ln.NodeEnd, err)
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{
			IP:   ln.Address.Addr().AsSlice(),
			Mask: net.CIDRMask(ln.Address.Bits(), 32),
		}}
		if err := h.AddrAdd(peer, addr); err != nil {
			return fmt.Errorf("%s: add %s to %s: %w", n.Netns, ln.Address, ln.NodeEnd, err)
		}
		if err := h.LinkSetUp(peer); err != nil {
			return fmt.Errorf("%s: %s up: %w", n.Netns, ln.NodeEnd, err)
		}
	}
	return nil
}
