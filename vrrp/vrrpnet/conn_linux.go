package vrrpnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/vrrp"
)

// ConnOptions configures Listen.
type ConnOptions struct {
	// Unicast leaves the VRRP multicast group alone; otherwise the socket
	// joins 224.0.0.18 on the interface.
	Unicast bool
	// Source is the source address of sent adverts. Zero means the
	// interface's primary IPv4 address at the time of Listen.
	Source netip.Addr
}

// Conn is a raw IPv4 socket for VRRP (protocol 112) on one interface. Send
// and Receive may be called concurrently with each other and with Close.
type Conn struct {
	ifname string
	src    netip.Addr
	ipc    *net.IPConn
	raw    *ipv4.RawConn
	ttl    int           // vrrp.TTL; lowered only by tests
	id     atomic.Uint32 // IP identification of the last packet sent

	rmu  sync.Mutex // serialises Receive, which reuses rbuf
	rbuf []byte
}

// maxPacket bounds one received IP packet. A VRRP message is at most
// 8 + 255×16 bytes, but a jumbo-frame interface may carry anything; a
// truncated read is dropped like any other malformed packet.
const maxPacket = 1 << 16

// Listen opens a raw IPv4 socket for protocol 112 bound to ifname
// (SO_BINDTODEVICE), so it neither sees nor sends adverts of other
// interfaces. Unless opts.Unicast it joins the VRRP group on the
// interface. It receives multicast only for a group it joined itself
// (IP_MULTICAST_ALL off; Linux's default would pass it the groups of every
// socket on the host), and multicast loopback is off: the instance must
// not hear itself. The socket writes its own IP header (IP_HDRINCL), so
// every field is keepalived's whatever the socket options and sysctls say:
// TOS 0xc0, TTL 255 for unicast too, DF clear, our own incrementing id.
func Listen(ifname string, opts ConnOptions) (*Conn, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: %s: netlink: %w", ifname, err)
	}
	defer h.Close()
	link, err := h.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: %s: %w", ifname, err)
	}
	src := opts.Source
	switch {
	case !src.IsValid():
		if src, err = primaryAddr(h, link.Attrs().Index, nil); err != nil {
			return nil, fmt.Errorf("vrrpnet: %s: source address: %w", ifname, err)
		}
	case !src.Is4():
		return nil, fmt.Errorf("vrrpnet: %s: source %s is not IPv4", ifname, src)
	}

	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if err := unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname); err != nil {
				serr = fmt.Errorf("SO_BINDTODEVICE: %w", err)
				return
			}
			if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
				serr = fmt.Errorf("IP_MULTICAST_ALL: %w", err)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), fmt.Sprintf("ip4:%d", vrrp.IPProtocol), "0.0.0.0")
	if err != nil {
		return nil, fmt.Errorf("vrrpnet: %s: open raw socket: %w", ifname, err)
	}
	c := &Conn{ifname: ifname, src: src, ipc: pc.(*net.IPConn), ttl: vrrp.TTL, rbuf: make([]byte, maxPacket)}
	if err := c.setup(link.Attrs().Index, opts.Unicast); err != nil {
		pc.Close()
		return nil, fmt.Errorf("vrrpnet: %s: %w", ifname, err)
	}
	return c, nil
}

func (c *Conn) setup(index int, unicast bool) error {
	var err error
	// NewRawConn turns IP_HDRINCL on.
	if c.raw, err = ipv4.NewRawConn(c.ipc); err != nil {
		return fmt.Errorf("raw conn: %w", err)
	}
	ifi := &net.Interface{Index: index, Name: c.ifname}
	if err := c.raw.SetMulticastLoopback(false); err != nil {
		return fmt.Errorf("IP_MULTICAST_LOOP: %w", err)
	}
	if err := c.raw.SetMulticastInterface(ifi); err != nil {
		return fmt.Errorf("IP_MULTICAST_IF: %w", err)
	}
	if !unicast {
		if err := c.raw.JoinGroup(ifi, &net.IPAddr{IP: vrrp.MulticastGroup.AsSlice()}); err != nil {
			return fmt.Errorf("join %s: %w", vrrp.MulticastGroup, err)
		}
	}
	return nil
}

// Source is the source address of sent packets.
func (c *Conn) Source() netip.Addr { return c.src }

// Send sends payload as one IPv4 packet to dst (the group or a unicast
// peer) with TOS 0xc0, TTL 255, DF clear, the next IP identification and
// c.Source() as source. The kernel fills in the header checksum.
func (c *Conn) Send(dst netip.Addr, payload []byte) error {
	if !dst.Is4() {
		return fmt.Errorf("vrrpnet: %s: send to %s: not IPv4", c.ifname, dst)
	}
	h := &ipv4.Header{
		Version:  ipv4.Version,
		Len:      ipv4.HeaderLen,
		TOS:      vrrp.TOS,
		TotalLen: ipv4.HeaderLen + len(payload),
		ID:       c.nextID(),
		TTL:      c.ttl,
		Protocol: vrrp.IPProtocol,
		Src:      c.src.AsSlice(),
		Dst:      dst.AsSlice(),
	}
	if err := c.raw.WriteTo(h, payload, nil); err != nil {
		return fmt.Errorf("vrrpnet: %s: send to %s: %w", c.ifname, dst, err)
	}
	return nil
}

// nextID skips 0, which would make the kernel choose the id itself.
func (c *Conn) nextID() int {
	for {
		if id := uint16(c.id.Add(1)); id != 0 {
			return int(id)
		}
	}
}

// Receive blocks for the next VRRP packet on the interface and returns its
// source, destination, TTL and exactly the IP payload (total length minus
// header length, so Ethernet padding never shows). Packets whose IP header
// does not parse are skipped. After Close it returns an error satisfying
// errors.Is(err, net.ErrClosed).
func (c *Conn) Receive() (vrrp.Packet, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		n, _, flags, _, err := c.ipc.ReadMsgIP(c.rbuf, nil)
		if err != nil {
			return vrrp.Packet{}, fmt.Errorf("vrrpnet: %s: receive: %w", c.ifname, err)
		}
		if flags&unix.MSG_TRUNC != 0 {
			continue
		}
		if p, ok := parseIPv4(c.rbuf[:n]); ok {
			return p, nil
		}
	}
}

// parseIPv4 takes a packet as a raw IPv4 socket delivers it on Linux:
// header and payload, all fields in network byte order. The payload is
// copied so that the caller may keep it.
func parseIPv4(b []byte) (vrrp.Packet, bool) {
	if len(b) < ipv4.HeaderLen || b[0]>>4 != ipv4.Version {
		return vrrp.Packet{}, false
	}
	hl := int(b[0]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(b[2:4]))
	if hl < ipv4.HeaderLen || tot < hl || tot > len(b) || b[9] != vrrp.IPProtocol {
		return vrrp.Packet{}, false
	}
	return vrrp.Packet{
		Src:     netip.AddrFrom4([4]byte(b[12:16])),
		Dst:     netip.AddrFrom4([4]byte(b[16:20])),
		TTL:     b[8],
		Payload: append([]byte(nil), b[hl:tot]...),
	}, true
}

// Close closes the socket, leaving the group, and unblocks Receive.
func (c *Conn) Close() error {
	if err := c.ipc.Close(); err != nil {
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("vrrpnet: %s: close: %w", c.ifname, err)
	}
	return nil
}
