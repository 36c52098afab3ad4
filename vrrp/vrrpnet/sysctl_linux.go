package vrrpnet

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VMACSysctls are the parent interface settings a VMAC needs. The VIPs
// live on the macvlan, but the parent receives the same ARP traffic:
//   - arp_ignore=1: with the default 0 the parent answers ARP requests for
//     the VIPs with its own MAC, and clients learn the node's MAC;
//   - arp_announce=2: with the default 0 the parent asks for a client's MAC
//     (to answer its ping) with the VIP as sender address, and the client
//     files its own MAC under the VIP.
var VMACSysctls = map[string]int{"arp_ignore": 1, "arp_announce": 2}

// SetSysctl sets net.ipv4.conf.<ifname>.<key> in the calling thread's
// network namespace and returns the value it replaced.
func SetSysctl(ifname, key string, v int) (int, error) {
	for _, part := range []string{ifname, key} {
		if part == "" || part == "." || part == ".." || strings.Contains(part, "/") {
			return 0, fmt.Errorf("vrrpnet: invalid sysctl net.ipv4.conf.%s.%s", ifname, key)
		}
	}
	path := filepath.Join("/proc/sys/net/ipv4/conf", ifname, key)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("vrrpnet: %s: %s: %w", ifname, key, err)
	}
	old, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("vrrpnet: %s: %s %q: %w", ifname, key, b, err)
	}
	if old == v {
		return old, nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(v)), 0o644); err != nil {
		return 0, fmt.Errorf("vrrpnet: %s: %s: %w", ifname, key, err)
	}
	return old, nil
}

// VMACsOn reports whether any VMAC interface ("vrrp.<vrid>" macvlan) is
// left on parent, so that the last instance to go restores its sysctls.
func VMACsOn(parent string) (bool, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return false, fmt.Errorf("vrrpnet: %s: netlink: %w", parent, err)
	}
	defer h.Close()
	p, err := h.LinkByName(parent)
	if err != nil {
		return false, fmt.Errorf("vrrpnet: %s: %w", parent, err)
	}
	links, err := h.LinkList()
	if err != nil {
		return false, fmt.Errorf("vrrpnet: %s: listing links: %w", parent, err)
	}
	for _, l := range links {
		a := l.Attrs()
		if _, ok := l.(*netlink.Macvlan); ok && a.ParentIndex == p.Attrs().Index && strings.HasPrefix(a.Name, "vrrp.") {
			return true, nil
		}
	}
	return false, nil
}
