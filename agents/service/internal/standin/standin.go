// Package standin stands in for systemd's D-Bus API, for tests on machines
// without systemd. It owns org.freedesktop.systemd1 on a bus (see StartBus)
// and runs each unit as a real process, so that starting, stopping and
// killing have real effects.
//
// It implements what go-systemd's dbus package calls for the service
// agent, with systemd's names, errors and state machine:
//
//	org.freedesktop.systemd1.Manager at /org/freedesktop/systemd1:
//	  StartUnit, StopUnit, ResetFailedUnit, GetUnit, LoadUnit, Subscribe,
//	  Unsubscribe, and the JobRemoved signal
//	org.freedesktop.DBus.Properties Get and GetAll on unit objects
//	  (/org/freedesktop/systemd1/unit/<escaped name>) for the interfaces
//	  org.freedesktop.systemd1.Unit (Id, LoadState, LoadError, ActiveState,
//	  SubState) and org.freedesktop.systemd1.Service (Result, MainPID,
//	  ExecMainCode, ExecMainStatus)
//
// A unit's main process runs in its own process group; stop sends the group
// SIGTERM and, after the unit's StopTimeout, SIGKILL. When the main process
// ends, what is left of its group is killed, as systemd kills a service's
// cgroup. Like systemd, a main process that exits 0 or dies of SIGTERM,
// SIGINT, SIGHUP or SIGPIPE leaves the unit inactive; any other end leaves
// it failed.
package standin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

const (
	busName     = "org.freedesktop.systemd1"
	managerPath = dbus.ObjectPath("/org/freedesktop/systemd1")
	managerIf   = "org.freedesktop.systemd1.Manager"
	unitPrefix  = "/org/freedesktop/systemd1/unit"
	unitIf      = "org.freedesktop.systemd1.Unit"
	serviceIf   = "org.freedesktop.systemd1.Service"
	propsIf     = "org.freedesktop.DBus.Properties"

	// ReadyEnv names the file a Notify unit's process creates once it is
	// ready, as a Type=notify service sends READY=1.
	ReadyEnv = "STANDIN_READY"

	defaultStopTimeout = 10 * time.Second
	readyPoll          = 10 * time.Millisecond
)

// Unit is how a unit runs.
type Unit struct {
	Argv []string // the main process
	// Notify makes the unit active only once its process has created the
	// file named by $STANDIN_READY (Type=notify); a process that ends
	// before that fails the start job. Without Notify the unit is active as
	// soon as its process runs (Type=simple).
	Notify bool
	Masked bool
	// StopTimeout is TimeoutStopSec: the time between SIGTERM and SIGKILL
	// on stop. 0 means 10s.
	StopTimeout time.Duration
}

// Systemd is the stand-in. Its methods may be called concurrently.
type Systemd struct {
	dir string // ready files

	mu     sync.Mutex
	units  map[string]*unit
	lastID uint32
	conn   *dbus.Conn
	closed bool
	wg     sync.WaitGroup // reapers and jobs
}

type unit struct {
	name string
	spec Unit

	active, sub, result  string
	mainCode, mainStatus int32

	cmd      *exec.Cmd     // the running main process, nil when none
	exited   chan struct{} // closed when cmd was reaped
	stopping bool
	killed   bool // stop escalated to SIGKILL
	kill     *time.Timer
	job      *job
}

type job struct {
	id       uint32
	path     dbus.ObjectPath
	canceled chan struct{} // closed when a later job replaced it
	ended    bool
}

// New returns a stand-in for units, not yet on a bus; dir holds the ready
// files of Notify units.
func New(dir string, units map[string]Unit) *Systemd {
	s := &Systemd{dir: dir, units: make(map[string]*unit)}
	for name, spec := range units {
		if spec.StopTimeout == 0 {
			spec.StopTimeout = defaultStopTimeout
		}
		s.units[name] = &unit{name: name, spec: spec, active: "inactive", sub: "dead", result: "success"}
	}
	return s
}

// Serve connects to the bus at addr and takes systemd's name there. Called
// again, as after a restart of the bus, it drops the old connection and
// keeps the units as they are, as systemd does when it reconnects.
func (s *Systemd) Serve(addr string) error {
	c, err := dbus.Connect(addr, dbus.WithAuth(dbus.AuthExternal(strconv.Itoa(os.Getuid()))))
	if err != nil {
		return fmt.Errorf("standin: connect to %s: %w", addr, err)
	}
	if err := c.Export(manager{s}, managerPath, managerIf); err != nil {
		c.Close()
		return err
	}
	if err := c.ExportSubtree(properties{s}, unitPrefix, propsIf); err != nil {
		c.Close()
		return err
	}
	reply, err := c.RequestName(busName, dbus.NameFlagDoNotQueue)
	if err == nil && reply != dbus.RequestNameReplyPrimaryOwner {
		err = fmt.Errorf("name taken (%v)", reply)
	}
	if err != nil {
		c.Close()
		return fmt.Errorf("standin: own %s: %w", busName, err)
	}
	s.mu.Lock()
	old := s.conn
	s.conn = c
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// Close kills every unit's processes, waits for them and leaves the bus.
func (s *Systemd) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, u := range s.units {
		if u.job != nil {
			close(u.job.canceled)
			u.job = nil
		}
		if u.cmd != nil {
			syscall.Kill(-u.cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	c := s.conn
	s.conn = nil
	s.mu.Unlock()
	s.wg.Wait()
	if c != nil {
		return c.Close()
	}
	return nil
}

// MainPID returns the pid of the unit's main process, 0 when it has none.
func (s *Systemd) MainPID(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.units[name]; u != nil && u.cmd != nil {
		return u.cmd.Process.Pid
	}
	return 0
}

// State returns the unit's ActiveState and SubState.
func (s *Systemd) State(name string) (active, sub string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.units[name]; u != nil {
		return u.active, u.sub
	}
	return "inactive", "dead"
}

func unitPath(name string) dbus.ObjectPath {
	return dbus.ObjectPath(unitPrefix + "/" + sd.PathBusEscape(name))
}

func noSuchUnit(format, name string) *dbus.Error {
	return dbus.NewError("org.freedesktop.systemd1.NoSuchUnit", []any{fmt.Sprintf(format, name)})
}

// manager is org.freedesktop.systemd1.Manager.
type manager struct{ s *Systemd }

func (m manager) StartUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return m.s.queue(name, mode, true)
}

func (m manager) StopUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	return m.s.queue(name, mode, false)
}

func (m manager) ResetFailedUnit(name string) *dbus.Error {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.units[name]
	if u == nil {
		return noSuchUnit("Unit %s not loaded.", name)
	}
	if u.active == "failed" {
		u.active, u.sub, u.result = "inactive", "dead", "success"
	}
	return nil
}

func (m manager) GetUnit(name string) (dbus.ObjectPath, *dbus.Error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if m.s.units[name] == nil {
		return "", noSuchUnit("Unit %s not loaded.", name)
	}
	return unitPath(name), nil
}

func (m manager) LoadUnit(name string) (dbus.ObjectPath, *dbus.Error) {
	return unitPath(name), nil
}

func (m manager) Subscribe() *dbus.Error   { return nil }
func (m manager) Unsubscribe() *dbus.Error { return nil }

// queue creates a start or stop job, replacing the unit's pending one as
// mode "replace" does (the only mode the stand-in knows).
func (s *Systemd) queue(name, mode string, start bool) (dbus.ObjectPath, *dbus.Error) {
	if mode != "replace" {
		return "", dbus.NewError("org.freedesktop.DBus.Error.InvalidArgs", []any{"standin: only mode replace"})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.units[name]
	switch {
	case s.closed:
		return "", dbus.NewError("org.freedesktop.DBus.Error.Failed", []any{"standin: shutting down"})
	case u == nil && start:
		return "", noSuchUnit("Unit %s not found.", name)
	case u == nil:
		return "", noSuchUnit("Unit %s not loaded.", name)
	case u.spec.Masked && start:
		return "", dbus.NewError("org.freedesktop.systemd1.UnitMasked", []any{fmt.Sprintf("Unit %s is masked.", name)})
	}
	if u.job != nil {
		s.finish(u, u.job, "canceled")
	}
	s.lastID++
	j := &job{id: s.lastID, path: dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", s.lastID)), canceled: make(chan struct{})}
	u.job = j
	s.wg.Add(1)
	if start {
		go s.runStart(u, j)
	} else {
		go s.runStop(u, j)
	}
	return j.path, nil
}

// finish ends j with result and sends JobRemoved. s.mu is held.
func (s *Systemd) finish(u *unit, j *job, result string) {
	if j.ended {
		return
	}
	j.ended = true
	if u.job == j {
		u.job = nil
	}
	if result == "canceled" {
		close(j.canceled)
	}
	if s.conn != nil {
		s.conn.Emit(managerPath, managerIf+".JobRemoved", j.id, j.path, u.name, result)
	}
}

func (s *Systemd) runStart(u *unit, j *job) {
	defer s.wg.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.ended || s.closed {
		return
	}
	// A start queued behind a running stop waits for it.
	for u.cmd != nil && u.stopping {
		exited := u.exited
		s.mu.Unlock()
		select {
		case <-exited:
		case <-j.canceled:
		}
		s.mu.Lock()
		if j.ended || s.closed {
			return
		}
	}
	if u.cmd == nil {
		if err := s.spawn(u); err != nil {
			u.active, u.sub, u.result = "failed", "failed", "exit-code"
			u.mainCode, u.mainStatus = 1, 203 // systemd's EXIT_EXEC
			s.finish(u, j, "failed")
			return
		}
	}
	if !u.spec.Notify {
		u.active, u.sub = "active", "running"
		s.finish(u, j, "done")
		return
	}
	ready, cmd, exited := s.readyFile(u), u.cmd, u.exited
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		s.mu.Unlock()
		select {
		case <-t.C:
		case <-exited:
		case <-j.canceled:
		}
		s.mu.Lock()
		switch {
		case j.ended || s.closed:
			return
		case u.cmd != cmd: // the process ended before it was ready
			s.finish(u, j, "failed")
			return
		}
		if _, err := os.Stat(ready); err == nil {
			u.active, u.sub = "active", "running"
			s.finish(u, j, "done")
			return
		}
	}
}

func (s *Systemd) readyFile(u *unit) string {
	return filepath.Join(s.dir, sd.PathBusEscape(u.name)+".ready")
}

// spawn starts u's main process. s.mu is held.
func (s *Systemd) spawn(u *unit) error {
	if len(u.spec.Argv) == 0 {
		return errors.New("no command")
	}
	ready := s.readyFile(u)
	os.Remove(ready)
	cmd := exec.Command(u.spec.Argv[0], u.spec.Argv[1:]...)
	cmd.Env = append(os.Environ(), ReadyEnv+"="+ready)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	u.cmd, u.exited = cmd, make(chan struct{})
	u.stopping, u.killed = false, false
	u.result, u.mainCode, u.mainStatus = "success", 0, 0
	if u.spec.Notify {
		u.active, u.sub = "activating", "start"
	} else {
		u.active, u.sub = "active", "running"
	}
	s.wg.Add(1)
	go s.reap(u, cmd, u.exited)
	return nil
}

// reap waits for u's main process and moves the unit to the state systemd
// would.
func (s *Systemd) reap(u *unit, cmd *exec.Cmd, exited chan struct{}) {
	defer s.wg.Done()
	cmd.Wait()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the rest of its "cgroup"
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	s.mu.Lock()
	defer s.mu.Unlock()
	defer close(exited)
	if u.kill != nil {
		u.kill.Stop()
		u.kill = nil
	}
	u.cmd = nil
	clean := false
	switch {
	case ws.Exited():
		u.mainCode, u.mainStatus = 1, int32(ws.ExitStatus())
		clean = ws.ExitStatus() == 0
		u.result = "exit-code"
	case ws.Signaled():
		u.mainCode, u.mainStatus = 2, int32(ws.Signal())
		u.result = "signal"
		if ws.CoreDump() {
			u.mainCode, u.result = 3, "core-dump"
		}
		switch ws.Signal() {
		case syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE:
			clean = true
		}
	}
	if u.stopping && u.killed {
		clean, u.result = false, "timeout"
	}
	u.stopping, u.killed = false, false
	if clean {
		u.active, u.sub, u.result = "inactive", "dead", "success"
	} else {
		u.active, u.sub = "failed", "failed"
	}
}

func (s *Systemd) runStop(u *unit, j *job) {
	defer s.wg.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.cmd == nil {
		s.finish(u, j, "done")
		return
	}
	cmd, exited := u.cmd, u.exited
	if !u.stopping {
		u.stopping = true
		u.active, u.sub = "deactivating", "stop-sigterm"
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		u.kill = time.AfterFunc(u.spec.StopTimeout, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if u.cmd == cmd && u.stopping {
				u.killed = true
				u.sub = "stop-sigkill"
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		})
	}
	s.mu.Unlock()
	select {
	case <-exited:
	case <-j.canceled:
	}
	s.mu.Lock()
	if !j.ended && !s.closed {
		s.finish(u, j, "done")
	}
}

// properties is org.freedesktop.DBus.Properties on every unit object.
type properties struct{ s *Systemd }

// loadError is LoadError's (ss).
type loadError struct{ Name, Message string }

func (p properties) props(msg dbus.Message, iface string) (map[string]dbus.Variant, *dbus.Error) {
	objPath, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	name := unescape(path.Base(string(objPath)))
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.units[name]
	if u == nil {
		// systemd loads any unit asked about: an unknown one is not-found.
		u = &unit{name: name, active: "inactive", sub: "dead", result: "success"}
	}
	switch iface {
	case unitIf:
		load, le := "loaded", loadError{}
		switch {
		case s.units[name] == nil:
			load, le = "not-found", loadError{"org.freedesktop.systemd1.NoSuchUnit", fmt.Sprintf("Unit %s not found.", name)}
		case u.spec.Masked:
			load, le = "masked", loadError{"org.freedesktop.systemd1.UnitMasked", fmt.Sprintf("Unit %s is masked.", name)}
		}
		return map[string]dbus.Variant{
			"Id":          dbus.MakeVariant(name),
			"LoadState":   dbus.MakeVariant(load),
			"LoadError":   dbus.MakeVariant(le),
			"ActiveState": dbus.MakeVariant(u.active),
			"SubState":    dbus.MakeVariant(u.sub),
		}, nil
	case serviceIf:
		var pid uint32
		if u.cmd != nil {
			pid = uint32(u.cmd.Process.Pid)
		}
		return map[string]dbus.Variant{
			"Result":         dbus.MakeVariant(u.result),
			"MainPID":        dbus.MakeVariant(pid),
			"ExecMainCode":   dbus.MakeVariant(u.mainCode),
			"ExecMainStatus": dbus.MakeVariant(u.mainStatus),
		}, nil
	}
	return nil, dbus.NewError("org.freedesktop.DBus.Error.UnknownInterface", []any{"standin: unknown interface " + iface})
}

func (p properties) GetAll(msg dbus.Message, iface string) (map[string]dbus.Variant, *dbus.Error) {
	return p.props(msg, iface)
}

func (p properties) Get(msg dbus.Message, iface, prop string) (dbus.Variant, *dbus.Error) {
	all, err := p.props(msg, iface)
	if err != nil {
		return dbus.Variant{}, err
	}
	v, ok := all[prop]
	if !ok {
		return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{"standin: unknown property " + prop})
	}
	return v, nil
}

// unescape undoes sd.PathBusEscape.
func unescape(s string) string {
	if s == "_" {
		return ""
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '_' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b = append(b, byte(n))
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}
