package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// Host checks look at the machine validate runs on. They are opt-in
// (Options.HostChecks) because operators also validate on a workstation.
//
// Only an unusable secret is an error: without it the node cannot talk to
// the cluster at all. What this machine lacks for its node (an interface,
// a disk, a subnet that fits the virtual IPs) is a warning, because the
// agent runs with the same checks and must still start, report the
// problem in its status and keep the rest of the cluster working.

// host is what the host checks ask of the machine.
type host interface {
	// ReadSecret returns the file's content and permission bits.
	ReadSecret(path string) ([]byte, fs.FileMode, error)
	// Exists reports whether path exists (any file type).
	Exists(path string) (bool, error)
	// InterfaceAddrs returns the addresses of the named interface; ok is
	// false when there is no such interface.
	InterfaceAddrs(name string) (addrs []netip.Prefix, ok bool, err error)
	// LocalAddrs and Hostname identify the machine (see LocalNode).
	LocalAddrs() ([]netip.Addr, error)
	Hostname() (string, error)
}

// maxSecret bounds what is read from the secret file: it is a key, not data.
const maxSecret = 64 << 10

type osHost struct{}

func (osHost) ReadSecret(path string) ([]byte, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if st.IsDir() {
		return nil, 0, fmt.Errorf("%s is a directory", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecret))
	return b, st.Mode().Perm(), err
}

func (osHost) Exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (osHost) InterfaceAddrs(name string) ([]netip.Prefix, bool, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		// The net package has no sentinel for a missing interface; any
		// lookup failure means validate cannot use it.
		return nil, false, nil
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, true, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		bits, _ := ipn.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), bits))
	}
	return out, true, nil
}

func (osHost) LocalAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

func (osHost) Hostname() (string, error) { return os.Hostname() }

// hostChecks runs the checks on this machine. node may be empty: then only
// the secret is checked, unless the file is otherwise valid and this
// machine turns out to be one of its nodes (LocalNode).
func hostChecks(d *decoder, h host, f *rawFile, node string) {
	if node == "" && !d.diags.HasErrors() {
		node = localNodeOf(h, build(f))
	}
	if len(f.Clusters) > 0 {
		checkSecret(d, h, f.Filename, f.Clusters[0].SecretFile)
	}
	if node == "" {
		return
	}
	for _, r := range f.VRRP {
		if _, runs := r.Priority.lookup(node); runs {
			checkInterfaces(d, h, r, node)
		}
	}
	for _, vol := range f.Volumes {
		checkDisk(d, h, vol, node)
	}
}

func checkSecret(d *decoder, h host, filename string, sf value[string]) {
	if !sf.Set || sf.Bad {
		return
	}
	p := secretPath(filename, sf.V)
	data, mode, err := h.ReadSecret(p)
	switch {
	case err != nil:
		d.errorf(sf.Range, "Cannot read the secret file",
			"%v. Every node needs the same secret; create it once and copy it to each node, e.g.\n  head -c 32 /dev/urandom | base64 > %s && chmod 600 %s", err, p, p)
	case len(bytes.TrimSpace(data)) == 0:
		d.errorf(sf.Range, "Empty secret file",
			"%s is empty. Write a random secret into it, e.g.\n  head -c 32 /dev/urandom | base64 > %s", p, p)
	case mode&0o077 != 0:
		d.warnf(sf.Range, "Secret file readable by other users",
			"%s has mode %04o; anyone who can read it can join the cluster. Run: chmod 600 %s", p, mode, p)
	}
}

// checkInterfaces looks up the instance's interfaces on this machine and
// checks its virtual IPs against the interface's actual subnets.
func checkInterfaces(d *decoder, h host, r *rawVRRP, node string) {
	if r.Interface.Set && r.Interface.usable() {
		addrs, ok, err := h.InterfaceAddrs(r.Interface.V)
		switch {
		case err != nil:
			d.warnf(r.Interface.Range, "Cannot read interface addresses", "%s: %v; the virtual IPs were not checked against its subnet.", r.Interface.V, err)
		case !ok:
			d.warnf(r.Interface.Range, fmt.Sprintf("No interface %q on this machine", r.Interface.V),
				"node %q runs vrrp %q on %q, but this machine has no such interface. The interface must have this name on every node that runs the instance.", node, r.Name, r.Interface.V)
		default:
			checkVIPsOnInterface(d, r, addrs)
		}
	}
	for _, it := range r.TrackInterfaces.Items {
		if _, ok, err := h.InterfaceAddrs(it.V.Name); err == nil && !ok {
			d.warnf(it.Range, fmt.Sprintf("No interface %q on this machine", it.V.Name),
				"vrrp %q tracks %q, but node %q has no such interface; it would count as down. Fix the name or remove it from track_interface.", r.Name, it.V.Name, node)
		}
	}
}

func checkVIPsOnInterface(d *decoder, r *rawVRRP, addrs []netip.Prefix) {
	var v4 []netip.Prefix
	var shown []string
	for _, a := range addrs {
		if a.Addr().Is4() && a.Bits() < 32 {
			v4 = append(v4, a)
			shown = append(shown, a.String())
		}
	}
	if len(v4) == 0 {
		return // no subnet to compare with
	}
	for _, it := range r.VirtualIPs.Items {
		if it.V.Bits() == 32 {
			continue
		}
		match, inside := false, false
		for _, a := range v4 {
			if a.Masked() == it.V.Masked() {
				match = true
			}
			if a.Masked().Contains(it.V.Addr()) {
				inside = true
			}
		}
		switch {
		case match:
		case inside:
			d.warnf(it.Range, "Inconsistent prefix length",
				"%s is inside a subnet of %q on this machine (%s) but with another prefix length. Use the interface's prefix length.",
				it.V, r.Interface.V, strings.Join(shown, ", "))
		default:
			d.warnf(it.Range, "Virtual IP outside the interface's subnet",
				"%s is in none of the subnets of %q on this machine (%s). Fix the address, the prefix length or the interface, or write it as /32 if it is routed to the node.",
				it.V, r.Interface.V, strings.Join(shown, ", "))
		}
	}
}

// checkDisk checks that the node's backing disk and metadata directory exist.
func checkDisk(d *decoder, h host, vol *rawVolume, node string) {
	if e, ok := vol.Disk.lookup(node); ok {
		if found, err := h.Exists(e.V); err == nil && !found {
			d.warnf(e.Range, "Disk not found",
				"%s, the disk of node %q in volume %q, does not exist on this machine. Create the device or file (e.g. lvcreate, or truncate -s SIZE for a file) or fix the path.", e.V, node, vol.Name)
		}
	}
	if e, ok := vol.MetaMap.lookup(node); ok && !vol.MetaInternal {
		dir := filepath.Dir(e.V)
		if found, err := h.Exists(dir); err == nil && !found {
			d.warnf(e.Range, "Metadata directory not found",
				"%s, the directory of node %q's metadata file for volume %q, does not exist on this machine. Create it: mkdir -p %s", dir, node, vol.Name, dir)
		}
	}
}

// localNodeOf returns the node this machine is, or "" when it is none
// (or several).
func localNodeOf(h host, c *Cluster) string {
	addrs, err := h.LocalAddrs()
	if err != nil {
		return ""
	}
	hostname, _ := h.Hostname()
	name, err := LocalNode(c, addrs, hostname)
	if err != nil {
		return ""
	}
	return name
}
