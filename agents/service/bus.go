package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"go.uber.org/zap"

	"github.com/hactl/hactl/resources"
)

const systemdName = "org.freedesktop.systemd1"

// ErrNoSystemd is wrapped by the errors of an agent that cannot reach
// systemd: no system bus, or no systemd on it.
var ErrNoSystemd = errors.New("systemd is not available on this node")

// errLost is a connection that broke during an operation.
var errLost = errors.New("lost the connection to the system bus")

// noSystemdError says why systemd is out of reach; it matches ErrNoSystemd.
type noSystemdError struct {
	msg string
	err error
}

func (e *noSystemdError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *noSystemdError) Unwrap() error        { return e.err }
func (e *noSystemdError) Is(target error) bool { return target == ErrNoSystemd }

// conn is go-systemd's connection with the two bus connections under it:
// call for method calls, sig for the JobRemoved signals.
type conn struct {
	sd        *sd.Conn
	call, sig *dbus.Conn
}

func (c *conn) close() { c.sd.Close() }

// state returns a connection and the unit's state. A connection that broke
// since the last operation (a restarted dbus-daemon) is replaced; one found
// broken by the first read is replaced once.
func (a *Agent) state(ctx context.Context) (*conn, unitState, error) {
	for retried := false; ; retried = true {
		c, err := a.connect(ctx)
		if err != nil {
			return nil, unitState{}, err
		}
		st, err := a.read(ctx, c)
		if !retried && broken(c, err) && ctx.Err() == nil {
			a.log.Info("the system bus connection broke; reconnecting", zap.Error(err))
			a.drop(c)
			continue
		}
		return c, st, a.lost(c, err)
	}
}

// broken reports whether err, from a call on c, means c is unusable. Any
// error but a D-Bus error reply or the caller's deadline is the transport's.
func broken(c *conn, err error) bool {
	if err == nil {
		return false
	}
	if !c.sd.Connected() {
		return true
	}
	var de dbus.Error
	return !errors.As(err, &de) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// drop closes c, so that the next operation opens a new connection.
func (a *Agent) drop(c *conn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c.close()
	if a.c == c {
		a.c = nil
	}
}

// connect returns the agent's connection, opening one when there is none
// or the last one broke.
func (a *Agent) connect(ctx context.Context) (*conn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.c != nil && a.c.sd.Connected() {
		return a.c, nil
	}
	if a.c != nil {
		a.c.close()
		a.c = nil
		a.log.Info("reconnecting to the system bus")
	}
	c, err := dial(ctx, a.bus)
	if err != nil {
		return nil, err
	}
	a.c = c
	return c, nil
}

// dial opens go-systemd's pair of connections to the bus at addr and
// checks that systemd is on it, within ctx.
func dial(ctx context.Context, addr string) (*conn, error) {
	where := addr
	if where == "" {
		where = "the system bus"
	}
	// godbus ties a connection's life to the context it is dialled with,
	// so the connections get none and ctx closes them only while dialling.
	var (
		mu     sync.Mutex
		opened []*dbus.Conn
		ended  bool
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		ended = true
		for _, c := range opened {
			c.Close()
		}
	})
	sdc, err := sd.NewConnection(func() (*dbus.Conn, error) {
		var c *dbus.Conn
		var err error
		if addr == "" {
			c, err = dbus.SystemBusPrivate()
		} else {
			c, err = dbus.Dial(addr)
		}
		if err != nil {
			return nil, err
		}
		mu.Lock()
		if ended {
			mu.Unlock()
			c.Close()
			return nil, ctx.Err()
		}
		opened = append(opened, c)
		mu.Unlock()
		// EXTERNAL with the uid, as go-systemd does: no user name lookup.
		if err := c.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			c.Close()
			return nil, fmt.Errorf("authenticate: %w", err)
		}
		if err := c.Hello(); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
	if !stop() {
		if err == nil {
			sdc.Close()
		}
		return nil, fmt.Errorf("connect to %s: %w", where, ctx.Err())
	}
	if err != nil {
		return nil, &noSystemdError{msg: fmt.Sprintf("cannot connect to %s (service resources need systemd and its D-Bus system bus)", where), err: err}
	}
	c := &conn{sd: sdc, call: opened[0], sig: opened[1]}
	// NameHasOwner, unlike a call to systemd, does not try to activate it.
	var has bool
	if err := c.call.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, systemdName).Store(&has); err != nil {
		c.close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to %s: %w", where, ctx.Err())
		}
		return nil, &noSystemdError{msg: fmt.Sprintf("ask %s whether systemd is on it", where), err: err}
	}
	if !has {
		c.close()
		return nil, &noSystemdError{msg: fmt.Sprintf("systemd is not running on this node (no %s on %s): service resources need systemd", systemdName, where)}
	}
	return c, nil
}

// lost marks err as a broken connection when it is one, and drops c: the
// next operation reconnects.
func (a *Agent) lost(c *conn, err error) error {
	if !broken(c, err) || errors.Is(err, errLost) {
		return err
	}
	a.drop(c)
	return fmt.Errorf("%w: %w", errLost, err)
}

// read returns the unit's state; the type-specific Result only for a
// failed unit, where it says why.
func (a *Agent) read(ctx context.Context, c *conn) (unitState, error) {
	p, err := c.sd.GetUnitPropertiesContext(ctx, a.unit)
	if err != nil {
		return unitState{}, err
	}
	st := unitState{
		LoadState:   str(p["LoadState"]),
		ActiveState: str(p["ActiveState"]),
		SubState:    str(p["SubState"]),
	}
	// LoadError is (ss): the error's name and message.
	if le, ok := p["LoadError"].([]any); ok && len(le) == 2 {
		st.LoadError = str(le[1])
	}
	if st.ActiveState != "failed" {
		return st, nil
	}
	_, typ, _ := cutLast(a.unit, ".")
	if !hasResult[typ] {
		return st, nil
	}
	tp, err := c.sd.GetUnitTypePropertiesContext(ctx, a.unit, strings.ToUpper(typ[:1])+typ[1:])
	if err != nil {
		// The details only add to the reason; the state is known.
		a.log.Debug("reading the unit's result failed", zap.Error(err))
		return st, nil
	}
	st.Result = str(tp["Result"])
	if typ == "service" {
		st.MainCode, _ = tp["ExecMainCode"].(int32)
		st.MainStatus, _ = tp["ExecMainStatus"].(int32)
	}
	return st, nil
}

// hasResult are the unit types whose interface has a Result property.
var hasResult = map[string]bool{
	"service": true, "socket": true, "mount": true, "automount": true,
	"swap": true, "timer": true, "path": true,
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// errResult classifies an error of the operation "what" (a verb taking the
// unit as object).
func errResult(unit, what string, err error) resources.Result {
	var de dbus.Error
	switch {
	case errors.Is(err, ErrNoSystemd):
		return result(resources.Hard, "%v", err)
	case errors.Is(err, errLost):
		// The bus went away under us: the next operation reconnects or
		// finds it gone. Until then nothing can be done here.
		return result(resources.Hard, "%s unit %s: %v", what, unit, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return result(resources.Soft, "%s unit %s: did not finish in time (%v)", what, unit, err)
	case errors.As(err, &de):
		switch de.Name {
		case "org.freedesktop.systemd1.NoSuchUnit":
			return result(resources.Hard, "unit %s is not installed on this node (%s: %v)", unit, what, err)
		case "org.freedesktop.systemd1.UnitMasked":
			return result(resources.Hard, "unit %s is masked on this node (%s: %v)", unit, what, err)
		case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
			return result(resources.Hard, "systemd is not running on this node (no %s on the system bus): service resources need systemd (%s unit %s: %v)", systemdName, what, unit, err)
		}
		return result(dbusErrorCode(de.Name), "%s unit %s: %v (%s)", what, unit, err, de.Name)
	}
	return result(resources.Soft, "%s unit %s: %v", what, unit, err)
}

// dbusErrorCode maps systemd's and the bus's errors to a recovery class.
func dbusErrorCode(name string) resources.Code {
	switch name {
	case "org.freedesktop.systemd1.NoSuchUnit", // not installed here
		"org.freedesktop.systemd1.UnitMasked",
		"org.freedesktop.systemd1.LoadFailed",
		"org.freedesktop.systemd1.BadUnitSetting",
		"org.freedesktop.systemd1.OnlyByDependency", // RefuseManualStart=yes
		"org.freedesktop.systemd1.JobTypeNotApplicable",
		"org.freedesktop.DBus.Error.AccessDenied", // as OCF_ERR_PERM
		"org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
		"org.freedesktop.DBus.Error.ServiceUnknown", // systemd left the bus
		"org.freedesktop.DBus.Error.NameHasNoOwner":
		return resources.Hard
	}
	if strings.HasPrefix(name, "org.freedesktop.DBus.Error.Spawn.") {
		return resources.Hard // the bus tried to activate systemd, which is not running
	}
	return resources.Soft
}
