package standin

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DaemonPath is the dbus-daemon that StartBus runs.
const DaemonPath = "/usr/bin/dbus-daemon"

// startWait bounds the wait for dbus-daemon to print its address.
const startWait = 30 * time.Second

// busConfig is a private bus that anyone may use: the stand-in takes
// systemd's name on it and the agent calls it, both as the test's user.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// Bus is a private dbus-daemon listening on a unix socket.
type Bus struct {
	Addr   string // D-Bus address: unix:path=Socket, the same after Restart
	Socket string
	config string
	cmd    *exec.Cmd
}

// StartBus starts a dbus-daemon listening on dir/bus. dir's path must be
// short: a unix socket path has at most 107 bytes.
func StartBus(dir string) (*Bus, error) {
	b := &Bus{Socket: filepath.Join(dir, "bus"), config: filepath.Join(dir, "bus.conf")}
	b.Addr = "unix:path=" + b.Socket
	if len(b.Socket) > 100 {
		return nil, fmt.Errorf("standin: socket path %s too long", b.Socket)
	}
	if err := os.WriteFile(b.config, fmt.Appendf(nil, busConfig, b.Socket), 0o644); err != nil {
		return nil, err
	}
	return b, b.start()
}

func (b *Bus) start() error {
	// A socket left by a killed daemon would make it fail to listen.
	if err := os.Remove(b.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	cmd := exec.Command(DaemonPath, "--config-file="+b.config, "--nofork", "--nopidfile", "--print-address")
	// Its complaints (it cannot raise its fd limit in a container) go to a
	// log next to the socket rather than into test output.
	log, err := os.OpenFile(b.Socket+".log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("standin: start dbus-daemon: %w", err)
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	t := time.NewTimer(startWait)
	defer t.Stop()
	select {
	case addr := <-line:
		if addr == "" {
			cmd.Process.Kill()
			cmd.Wait()
			return fmt.Errorf("standin: dbus-daemon exited without printing its address (see %s.log)", b.Socket)
		}
		b.cmd = cmd // listening: it prints its address once it does
		return nil
	case <-t.C:
		cmd.Process.Kill()
		cmd.Wait()
		<-line
		return fmt.Errorf("standin: dbus-daemon printed no address in %v", startWait)
	}
}

// Kill kills the daemon, as a crash would: its clients see their
// connections break.
func (b *Bus) Kill() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Kill()
	b.cmd.Wait()
	b.cmd = nil
}

// Restart starts a new daemon on the same socket after Kill.
func (b *Bus) Restart() error {
	b.Kill()
	return b.start()
}
