package vrrpnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link manages addresses and gratuitous ARP on one interface. It follows
// the interface that had the name when it was opened (by index): if the
// interface is deleted, calls fail, and a recreated interface needs a new
// Link. Its methods may be called concurrently.
type Link struct {
	name  string
	index int
	mac   net.HardwareAddr

	mu     sync.RWMutex
	closed bool
	h      *netlink.Handle
	arpFD  int                 // AF_PACKET socket for GARP, send-only
	added  map[netip.Addr]bool // addresses this Link created: never primary
}

// OpenLink opens ifname in the calling thread's network namespace.
func OpenLink(ifname string) (*Link, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: %s: netlink: %w", ifname, err)
	}
	nl, err := h.LinkByName(ifname)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("vrrpnet: %s: %w", ifname, err)
	}
	// Protocol 0: the socket only sends, so the kernel queues nothing on
	// it. It is opened now because an AF_PACKET socket, like the ifindex
	// it sends on, belongs to the namespace it is created in.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("vrrpnet: %s: packet socket: %w", ifname, err)
	}
	return &Link{
		name:  ifname,
		index: nl.Attrs().Index,
		mac:   nl.Attrs().HardwareAddr,
		h:     h,
		arpFD: fd,
		added: map[netip.Addr]bool{},
	}, nil
}

// Name is the interface name given to OpenLink.
func (l *Link) Name() string { return l.name }

// MAC is the interface's hardware address when the Link was opened.
func (l *Link) MAC() net.HardwareAddr { return l.mac }

// attrs is what the netlink calls need to find the interface.
func (l *Link) attrs() netlink.Link {
	return &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: l.index, Name: l.name}}
}

// PrimaryAddr is the first IPv4 address of the interface without the
// secondary flag, skipping addresses this Link added: a VIP in the subnet
// of the real address is secondary anyway, but a /32 VIP is not.
func (l *Link) PrimaryAddr() (netip.Addr, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return netip.Addr{}, fmt.Errorf("vrrpnet: %s: %w", l.name, net.ErrClosed)
	}
	a, err := primaryAddr(l.h, l.index, l.added)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("vrrpnet: %s: %w", l.name, err)
	}
	return a, nil
}

func primaryAddr(h *netlink.Handle, index int, skip map[netip.Addr]bool) (netip.Addr, error) {
	addrs, err := addrList(h, index, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok || a.Flags&unix.IFA_F_SECONDARY != 0 || skip[ip] {
			continue
		}
		return ip, nil
	}
	return netip.Addr{}, errors.New("no primary IPv4 address")
}

// addrList retries a dump the kernel interrupted because the list
// changed under it; the last attempt's partial answer is better than none.
func addrList(h *netlink.Handle, index, family int) ([]netlink.Addr, error) {
	link := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
	var (
		addrs []netlink.Addr
		err   error
	)
	for range 3 {
		addrs, err = h.AddrList(link, family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	return addrs, nil
}

func toAddr(p netip.Prefix) (*netlink.Addr, error) {
	if !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return nil, fmt.Errorf("invalid address %s", p)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
	if p.Addr().Is6() {
		// A VIP must work at once; it is the master's by election, so
		// duplicate detection would only delay it.
		a.Flags = unix.IFA_F_NODAD
	}
	return a, nil
}

// AddAddr adds p (address and prefix length) to the interface. An
// address already there with the same prefix length is fine.
func (l *Link) AddAddr(p netip.Prefix) error {
	a, err := toAddr(p)
	if err != nil {
		return fmt.Errorf("vrrpnet: %s: add: %w", l.name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("vrrpnet: %s: add %s: %w", l.name, p, net.ErrClosed)
	}
	switch err := l.h.AddrAdd(l.attrs(), a); {
	case err == nil:
		l.added[p.Addr()] = true
	case errors.Is(err, unix.EEXIST):
		// Not marked as added: it may be the interface's own address (an
		// address owner advertises it as its VIP).
	default:
		return fmt.Errorf("vrrpnet: %s: add %s: %w", l.name, p, err)
	}
	return nil
}

// DelAddr removes p; the kernel matches the address and the prefix
// length. An address not there is fine.
func (l *Link) DelAddr(p netip.Prefix) error {
	a, err := toAddr(p)
	if err != nil {
		return fmt.Errorf("vrrpnet: %s: delete: %w", l.name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("vrrpnet: %s: delete %s: %w", l.name, p, net.ErrClosed)
	}
	if err := l.h.AddrDel(l.attrs(), a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("vrrpnet: %s: delete %s: %w", l.name, p, err)
	}
	delete(l.added, p.Addr())
	return nil
}

// HasAddr reports whether a is on the interface, with any prefix length.
func (l *Link) HasAddr(a netip.Addr) (bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return false, fmt.Errorf("vrrpnet: %s: %w", l.name, net.ErrClosed)
	}
	family := netlink.FAMILY_V4
	if a.Is6() {
		family = netlink.FAMILY_V6
	}
	addrs, err := addrList(l.h, l.index, family)
	if err != nil {
		return false, fmt.Errorf("vrrpnet: %s: %w", l.name, err)
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == a {
			return true, nil
		}
	}
	return false, nil
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// GARP sends one gratuitous ARP for a, in the form keepalived uses: an
// ARP Request to the Ethernet broadcast address with sender and target
// protocol address a, sender hardware address MAC() and target hardware
// address ff:ff:ff:ff:ff:ff. This is exactly keepalived's frame, so peers
// and switches that cope with keepalived cope with hactl.
func (l *Link) GARP(a netip.Addr) error {
	if !a.Is4() {
		return fmt.Errorf("vrrpnet: %s: gratuitous ARP for %s: not IPv4", l.name, a)
	}
	if len(l.mac) != 6 {
		return fmt.Errorf("vrrpnet: %s: gratuitous ARP: not an Ethernet interface (hardware address %q)", l.name, l.mac)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return fmt.Errorf("vrrpnet: %s: gratuitous ARP for %s: %w", l.name, a, net.ErrClosed)
	}
	to := &unix.SockaddrLinklayer{Ifindex: l.index, Protocol: htons(unix.ETH_P_ARP)}
	if err := unix.Sendto(l.arpFD, garpFrame(l.mac, a), 0, to); err != nil {
		return fmt.Errorf("vrrpnet: %s: gratuitous ARP for %s: %w", l.name, a, err)
	}
	return nil
}

// garpFrame builds the 42-byte Ethernet frame; the driver pads it.
func garpFrame(mac net.HardwareAddr, a netip.Addr) []byte {
	ip := a.As4()
	b := make([]byte, 0, 42)
	b = append(b, broadcast...)
	b = append(b, mac...)
	b = binary.BigEndian.AppendUint16(b, unix.ETH_P_ARP)
	b = binary.BigEndian.AppendUint16(b, 1) // hardware type Ethernet
	b = binary.BigEndian.AppendUint16(b, unix.ETH_P_IP)
	b = append(b, 6, 4)                     // hardware and protocol address lengths
	b = binary.BigEndian.AppendUint16(b, 1) // operation Request
	b = append(b, mac...)
	b = append(b, ip[:]...)
	b = append(b, broadcast...)
	b = append(b, ip[:]...)
	return b
}

// htons puts v in network byte order for sockaddr_ll, whatever the host's.
func htons(v uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v))
}

// Close releases the netlink handle and the packet socket. Later calls
// fail: the handle would otherwise fall back to the calling thread's
// namespace.
func (l *Link) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.h.Close()
	if err := unix.Close(l.arpFD); err != nil {
		return fmt.Errorf("vrrpnet: %s: close: %w", l.name, err)
	}
	return nil
}
