package logging

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// journalWriteTimeout bounds how long a log call may wait for a congested
// journal. Past it the entry is dropped and the error reported: a VRRP
// master that stalls on logging misses adverts and causes a failover.
const journalWriteTimeout = 250 * time.Millisecond

// journalSocket sends entries to journald. It keeps one datagram socket
// connected to the journal, so that a sender blocked on a full journal queue
// is woken when journald catches up (for unconnected senders the kernel does
// not), and redials when the journal's socket was replaced.
type journalSocket struct {
	addr    *net.UnixAddr
	timeout time.Duration

	mu   sync.Mutex
	conn *net.UnixConn // nil until dialed, and after the journal went away
}

// dialJournal connects right away so that a wrong socket path fails New.
func dialJournal(path string, timeout time.Duration) (*journalSocket, error) {
	j := &journalSocket{addr: &net.UnixAddr{Name: path, Net: "unixgram"}, timeout: timeout}
	if _, err := j.get(); err != nil {
		return nil, err
	}
	return j, nil
}

func (j *journalSocket) get() (*net.UnixConn, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.conn == nil {
		c, err := net.DialUnix("unixgram", nil, j.addr)
		if err != nil {
			return nil, fmt.Errorf("logging: journal: %w", err)
		}
		j.conn = c
	}
	return j.conn, nil
}

// forget closes c after it failed, unless another writer replaced it first.
func (j *journalSocket) forget(c *net.UnixConn) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.conn == c {
		j.conn = nil
		c.Close()
	}
}

// send delivers one entry, redialing once if the journal went away since
// the last one (journald restarted with a new socket).
func (j *journalSocket) send(entry []byte) error {
	for retried := false; ; retried = true {
		c, err := j.get()
		if err != nil {
			return err
		}
		err = j.sendOn(c, entry)
		if err == nil {
			return nil
		}
		if retried || !peerGone(err) {
			return fmt.Errorf("logging: journal: %w", err)
		}
		j.forget(c)
	}
}

func (j *journalSocket) sendOn(c *net.UnixConn, entry []byte) error {
	if err := c.SetWriteDeadline(time.Now().Add(j.timeout)); err != nil {
		return err
	}
	_, err := c.Write(entry)
	if errors.Is(err, unix.EMSGSIZE) || errors.Is(err, unix.ENOBUFS) {
		return sendMemfd(c, entry)
	}
	return err
}

// peerGone reports errors after which a new connection may succeed: the
// socket we are connected to was closed, or another writer closed ours.
func peerGone(err error) bool {
	return errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOTCONN) ||
		errors.Is(err, unix.ECONNRESET) || errors.Is(err, unix.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

// sendMemfd sends an entry too big for one datagram the protocol's way: it is
// written to a memfd that is passed with SCM_RIGHTS in an empty datagram.
// journald only accepts the memfd sealed, so that the entry cannot change
// while it reads.
func sendMemfd(c *net.UnixConn, entry []byte) error {
	fd, err := unix.MemfdCreate("hactl-journal-entry", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("memfd for large entry: %w", err)
	}
	// The datagram in flight holds its own reference.
	defer unix.Close(fd)
	for b := entry; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("memfd for large entry: %w", err)
		}
		b = b[n:]
	}
	const seals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("seal memfd: %w", err)
	}

	// net.UnixConn refuses WriteMsgUnix on a connected datagram socket, so
	// sendmsg goes through the raw connection, which keeps the deadline.
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	rights := unix.UnixRights(fd)
	var sendErr error
	err = raw.Write(func(s uintptr) bool {
		sendErr = unix.Sendmsg(int(s), nil, rights, nil, 0)
		return sendErr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return sendErr
}
