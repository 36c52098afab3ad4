package vrrpnet

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// vmacName is keepalived's name for the VMAC interface of a VRID.
func vmacName(vrid uint8) string { return fmt.Sprintf("vrrp.%d", vrid) }

// vmacAddr is the RFC 5798 §7.3 IPv4 virtual router MAC.
func vmacAddr(vrid uint8) net.HardwareAddr {
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, vrid}
}

// AddVMAC creates the virtual MAC interface of vrid on parent, in the
// calling thread's namespace: a macvlan named "vrrp.<vrid>" with MAC
// 00:00:5e:00:01:<vrid> in private mode (so macvlans of the same parent do
// not see each other's traffic, as keepalived does), and brings it up. It
// returns the interface name. An existing interface of that name is
// accepted if it is exactly that, so a restart after a crash reuses it.
func AddVMAC(parent string, vrid uint8) (string, error) {
	name := vmacName(vrid)
	if vrid == 0 {
		return "", fmt.Errorf("vrrpnet: %s: VMAC: VRID 0 is invalid", parent)
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return "", fmt.Errorf("vrrpnet: %s: VMAC %s: netlink: %w", parent, name, err)
	}
	defer h.Close()
	p, err := h.LinkByName(parent)
	if err != nil {
		return "", fmt.Errorf("vrrpnet: %s: VMAC %s: %w", parent, name, err)
	}
	mac := vmacAddr(vrid)
	link, err := h.LinkByName(name)
	switch {
	case err == nil:
		if err := isVMAC(link, p.Attrs().Index, mac); err != nil {
			return "", fmt.Errorf("vrrpnet: %s: VMAC %s exists: %w", parent, name, err)
		}
	case isNotFound(err):
		link = &netlink.Macvlan{
			LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: p.Attrs().Index, HardwareAddr: mac},
			Mode:      netlink.MACVLAN_MODE_PRIVATE,
		}
		if err := h.LinkAdd(link); err != nil {
			return "", fmt.Errorf("vrrpnet: %s: create VMAC %s: %w", parent, name, err)
		}
	default:
		return "", fmt.Errorf("vrrpnet: %s: VMAC %s: %w", parent, name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return "", fmt.Errorf("vrrpnet: %s: VMAC %s up: %w", parent, name, err)
	}
	return name, nil
}

func isVMAC(l netlink.Link, parent int, mac net.HardwareAddr) error {
	mv, ok := l.(*netlink.Macvlan)
	switch {
	case !ok:
		return fmt.Errorf("it is a %s, not a macvlan", l.Type())
	case mv.ParentIndex != parent:
		return fmt.Errorf("on another parent (ifindex %d)", mv.ParentIndex)
	case !bytes.Equal(mv.HardwareAddr, mac):
		return fmt.Errorf("MAC %s, not %s", mv.HardwareAddr, mac)
	case mv.Mode != netlink.MACVLAN_MODE_PRIVATE:
		return fmt.Errorf("macvlan mode %d, not private", mv.Mode)
	}
	return nil
}

// RemoveVMAC deletes the VMAC interface of vrid on parent. A missing one
// is fine (deleting the parent deletes it too); an interface of that name
// that is no VMAC of parent is left alone and reported.
func RemoveVMAC(parent string, vrid uint8) error {
	name := vmacName(vrid)
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("vrrpnet: %s: VMAC %s: netlink: %w", parent, name, err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vrrpnet: %s: VMAC %s: %w", parent, name, err)
	}
	p, err := h.LinkByName(parent)
	if err != nil {
		return fmt.Errorf("vrrpnet: %s: VMAC %s: parent: %w", parent, name, err)
	}
	if err := isVMAC(link, p.Attrs().Index, vmacAddr(vrid)); err != nil {
		return fmt.Errorf("vrrpnet: %s: not removing %s: %w", parent, name, err)
	}
	if err := h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("vrrpnet: %s: delete VMAC %s: %w", parent, name, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}
