// Package sdnotify tells systemd about the agent's state (Type=notify):
// READY=1 once it serves, STOPPING=1 when it shuts down, and WATCHDOG=1
// kicks while the main loop is alive.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Notifier sends state lines to the socket systemd names in NOTIFY_SOCKET.
// The zero Notifier (not under systemd) does nothing.
type Notifier struct {
	socket string
}

// FromEnv returns the notifier for this process, from NOTIFY_SOCKET.
func FromEnv(getenv func(string) string) Notifier {
	return Notifier{socket: getenv("NOTIFY_SOCKET")}
}

// Enabled reports whether systemd listens for notifications.
func (n Notifier) Enabled() bool { return n.socket != "" }

// Notify sends one or more "KEY=value" lines in one datagram.
func (n Notifier) Notify(state string) error {
	if n.socket == "" {
		return nil
	}
	name := n.socket
	if name[0] == '@' { // abstract namespace socket
		name = "\x00" + name[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notifying systemd: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notifying systemd: %w", err)
	}
	return nil
}

// Ready says the service is up.
func (n Notifier) Ready() error { return n.Notify("READY=1") }

// Stopping says the service is shutting down.
func (n Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Watchdog kicks the watchdog.
func (n Notifier) Watchdog() error { return n.Notify("WATCHDOG=1") }

// WatchdogInterval returns how often to kick the watchdog (half of
// WATCHDOG_USEC, as sd_watchdog_enabled advises), or 0 when no watchdog is
// set for this process.
func WatchdogInterval(getenv func(string) string, pid int) time.Duration {
	usec, err := strconv.ParseUint(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec == 0 {
		return 0
	}
	if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
		return 0 // meant for another process
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// Default is the notifier for this process.
func Default() Notifier { return FromEnv(os.Getenv) }
