package attach

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// genlConn is a generic netlink socket that sends one request at a time
// and waits for its ACK.
type genlConn struct {
	fd  int
	seq uint32
}

// genlTimeout bounds the wait for a reply, so a wedged kernel path turns
// into an error instead of a hung agent.
const genlTimeout = 30 * time.Second

func dialGenl() (*genlConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("generic netlink socket: %w", err)
	}
	tv := unix.NsecToTimeval(genlTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("generic netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("generic netlink bind: %w", err)
	}
	return &genlConn{fd: fd, seq: uint32(time.Now().UnixNano())}, nil
}

func (c *genlConn) Close() error { return unix.Close(c.fd) }

// request sends the message build returns for a fresh sequence number and
// returns the replies that came before the ACK. A negative ACK is returned
// as its errno.
func (c *genlConn) request(build func(seq uint32) []byte) ([]nlMessage, error) {
	c.seq++
	seq := c.seq
	if err := unix.Sendto(c.fd, build(seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	buf := make([]byte, 64<<10)
	var replies []nlMessage
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		msgs, err := parseMessages(buf[:n])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Seq != seq {
				continue // a stale reply to an earlier request
			}
			if m.Type == nlmsgError {
				if m.Errno != 0 {
					return nil, m.Errno
				}
				return replies, nil
			}
			replies = append(replies, m)
		}
	}
}

// resolveFamily returns the id of a generic netlink family. Asking makes
// the kernel try to load the module that provides it (request_module of
// "net-pf-16-proto-16-family-<name>"), as nbd-client relies on.
func (c *genlConn) resolveFamily(name string) (uint16, error) {
	replies, err := c.request(func(seq uint32) []byte { return getFamilyMsg(seq, name) })
	if err != nil {
		return 0, err
	}
	for _, m := range replies {
		if id, ok := attr(m.Attrs, ctrlAttrFamID); ok && len(id) >= 2 {
			return binary.NativeEndian.Uint16(id), nil
		}
	}
	return 0, fmt.Errorf("family %q: reply without CTRL_ATTR_FAMILY_ID", name)
}

// nbdFamily resolves the "nbd" family, turning its absence into
// ErrNBDUnavailable with a message an operator can act on.
func (c *genlConn) nbdFamily() (uint16, error) {
	id, err := c.resolveFamily(nbdGenlName)
	if errors.Is(err, unix.ENOENT) {
		why := "module nbd not loaded and could not be loaded"
		if _, serr := os.Stat("/sys/module/nbd"); serr == nil {
			why = "module nbd is loaded but has no netlink interface (kernel older than 4.12?)"
		}
		return 0, fmt.Errorf("%w (%s)", ErrNBDUnavailable, why)
	}
	if err != nil {
		return 0, fmt.Errorf("resolve generic netlink family %q: %w", nbdGenlName, err)
	}
	return id, nil
}

// nbdAvailable reports whether the kernel NBD client can be used, and if
// not, why.
func nbdAvailable() error {
	c, err := dialGenl()
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.nbdFamily()
	return err
}
