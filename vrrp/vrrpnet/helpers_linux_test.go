package vrrpnet

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/vrrp"
)

// The tests build their own network namespaces, joined only by veth pairs
// between them, with addresses from the documentation ranges. Nothing
// touches the host's interfaces.

func requireNetRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces and raw sockets")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: the ip command (iproute2) is not installed")
	}
}

// ipCmd runs ip with args and returns its output, failing the test on error.
func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNS creates a uniquely named network namespace with lo up and deletes
// it when the test ends; the interfaces in it go with it.
func newNS(t *testing.T, tag string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := fmt.Sprintf("hactl-vrrpnet-%s-%s", hex.EncodeToString(b), tag)
	ipCmd(t, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	ipCmd(t, "-n", name, "link", "set", "lo", "up")
	return name
}

// pair is two namespaces A and B joined by a veth pair a0–b0, with
// 192.0.2.1/24 on a0 and 192.0.2.2/24 on b0, both up.
type pair struct{ A, B string }

func newPair(t *testing.T) pair {
	t.Helper()
	p := pair{A: newNS(t, "a"), B: newNS(t, "b")}
	// Created from inside A with the peer placed straight into B, so the
	// host namespace never holds either end.
	ipCmd(t, "-n", p.A, "link", "add", "a0", "type", "veth", "peer", "name", "b0", "netns", p.B)
	ipCmd(t, "-n", p.A, "addr", "add", "192.0.2.1/24", "dev", "a0")
	ipCmd(t, "-n", p.B, "addr", "add", "192.0.2.2/24", "dev", "b0")
	ipCmd(t, "-n", p.A, "link", "set", "a0", "up")
	ipCmd(t, "-n", p.B, "link", "set", "b0", "up")
	return p
}

// inNS runs fn on a thread switched into the namespace ns.
func inNS(t *testing.T, ns string, fn func()) {
	t.Helper()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("open netns %s: %v", ns, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current netns: %v", err)
	}
	if err := netns.Set(target); err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("enter netns %s: %v", ns, err)
	}
	defer func() {
		defer orig.Close()
		if err := netns.Set(orig); err != nil {
			// Keep the thread locked: the runtime discards it with the
			// test's goroutine instead of reusing it in the wrong place.
			t.Errorf("leave netns %s: %v", ns, err)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

func listenIn(t *testing.T, ns, ifname string, opts ConnOptions) *Conn {
	t.Helper()
	var (
		c   *Conn
		err error
	)
	inNS(t, ns, func() { c, err = Listen(ifname, opts) })
	if err != nil {
		t.Fatalf("Listen(%s) in %s: %v", ifname, ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func openLinkIn(t *testing.T, ns, ifname string) *Link {
	t.Helper()
	var (
		l   *Link
		err error
	)
	inNS(t, ns, func() { l, err = OpenLink(ifname) })
	if err != nil {
		t.Fatalf("OpenLink(%s) in %s: %v", ifname, ns, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func macIn(t *testing.T, ns, ifname string) net.HardwareAddr {
	t.Helper()
	var (
		ifi *net.Interface
		err error
	)
	inNS(t, ns, func() { ifi, err = net.InterfaceByName(ifname) })
	if err != nil {
		t.Fatalf("interface %s in %s: %v", ifname, ns, err)
	}
	return ifi.HardwareAddr
}

type received struct {
	p   vrrp.Packet
	err error
}

// receiveAsync runs one Receive in the background.
func receiveAsync(c *Conn) <-chan received {
	ch := make(chan received, 1)
	go func() {
		p, err := c.Receive()
		ch <- received{p, err}
	}()
	return ch
}

// receive waits at most d for the next packet on c. On timeout the
// blocked Receive ends when the test's cleanup closes c.
func receive(t *testing.T, c *Conn, d time.Duration) vrrp.Packet {
	t.Helper()
	select {
	case r := <-receiveAsync(c):
		if r.err != nil {
			t.Fatalf("Receive: %v", r.err)
		}
		return r.p
	case <-time.After(d):
		t.Fatalf("no packet within %v", d)
	}
	panic("unreachable")
}

// packetSocket is an AF_PACKET socket on one interface of a namespace,
// for capturing (and injecting) frames the way tcpdump would see them.
type packetSocket struct {
	fd    int
	index int
}

func openPacketSocket(t *testing.T, ns, ifname string, proto uint16) *packetSocket {
	t.Helper()
	var (
		ps  *packetSocket
		err error
	)
	inNS(t, ns, func() {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName(ifname); err != nil {
			return
		}
		var fd int
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(proto))); err != nil {
			return
		}
		ps = &packetSocket{fd: fd, index: ifi.Index}
		if err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return
		}
		// Bounded reads: every capture loop has a deadline.
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		t.Fatalf("packet socket on %s in %s: %v", ifname, ns, err)
	}
	t.Cleanup(func() { unix.Close(ps.fd) })
	return ps
}

// next returns the next incoming frame that match accepts, or fails the
// test after d.
func (ps *packetSocket) next(t *testing.T, d time.Duration, match func([]byte) bool) []byte {
	t.Helper()
	buf := make([]byte, 65536)
	for end := time.Now().Add(d); time.Now().Before(end); {
		n, from, err := unix.Recvfrom(ps.fd, buf, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("capture: %v", err)
		}
		if sll, ok := from.(*unix.SockaddrLinklayer); ok && sll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if match(buf[:n]) {
			return append([]byte(nil), buf[:n]...)
		}
	}
	t.Fatalf("no matching frame within %v", d)
	return nil
}

func (ps *packetSocket) send(t *testing.T, frame []byte, proto uint16) {
	t.Helper()
	if err := unix.Sendto(ps.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ps.index, Protocol: htons(proto)}); err != nil {
		t.Fatalf("inject frame: %v", err)
	}
}

// ipChecksum is the Internet checksum of b.
func ipChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
