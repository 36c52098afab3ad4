// Package ocf runs an existing OCF resource-agent script as a resource:
// `<agent> start|stop|monitor` with the OCF environment, its exit code
// mapped by resources.FromOCF.
//
// The agent is r.Agent: an absolute path, or "provider:type" (optionally
// "ocf:provider:type") resolved to <root>/resource.d/<provider>/<type>,
// where root is OCF_ROOT (/usr/lib/ocf unless set with Root). It runs with
// the same process handling as exec resources (own process group, "/",
// SIGTERM then SIGKILL of the whole group at the timeout, no shell of
// ours) and this environment, nothing inherited from hactl:
//
//	OCF_ROOT, OCF_RA_VERSION_MAJOR=1, OCF_RA_VERSION_MINOR=1
//	OCF_RESOURCE_INSTANCE=<resource name>
//	OCF_RESOURCE_TYPE, OCF_RESOURCE_PROVIDER (when given as provider:type)
//	OCF_RESKEY_<param>=<value> for each of r.Params
//	OCF_RESKEY_CRM_meta_timeout=<the operation's timeout in ms>
//	OCF_RESKEY_CRM_meta_interval=<monitor interval in ms> (monitor), else 0
//	PATH=run.DefaultPath
//
// The reason of a result is the agent's last ocf_exit_reason (printed as
// "ocf-exit-reason:<text>" on stderr), else its last line of stderr.
// A missing agent is OCF_ERR_INSTALLED (Hard); a timeout or a signal is
// Soft, as Pacemaker treats them.
package ocf

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/agents/internal/run"
	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/resources"
)

// DefaultRoot is OCF_ROOT on Linux distributions.
const DefaultRoot = "/usr/lib/ocf"

// exitReasonPrefix is how ocf_exit_reason marks its message on stderr
// (resource-agents heartbeat/ocf-shellfuncs).
const exitReasonPrefix = "ocf-exit-reason:"

const (
	ocfErrInstalled  = 5
	ocfErrConfigured = 6
)

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)
	paramRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Agent is an ocf resource. It implements resources.Agent.
type Agent struct {
	r   config.Resource
	log *zap.Logger
	// Root is OCF_ROOT; "" means DefaultRoot. Tests point it at testdata.
	Root string
	// Grace is the time between SIGTERM and SIGKILL for a timed-out
	// agent; 0 means run.DefaultGrace.
	Grace time.Duration
}

var _ resources.Agent = (*Agent)(nil)

// New returns the agent of r. A nil log discards the logs.
func New(r config.Resource, log *zap.Logger) *Agent {
	if log == nil {
		log = zap.NewNop()
	}
	return &Agent{r: r, log: log.With(zap.String("resource", r.Name), zap.String("agent", "ocf:"+r.Agent))}
}

func (a *Agent) root() string {
	if a.Root != "" {
		return a.Root
	}
	return DefaultRoot
}

// resolve returns the agent's path and, for provider:type, the provider
// and type; an error means the configuration is wrong everywhere.
func (a *Agent) resolve() (path, provider, typ string, err error) {
	spec := a.r.Agent
	if strings.HasPrefix(spec, "/") {
		return filepath.Clean(spec), "", filepath.Base(spec), nil
	}
	parts := strings.Split(strings.TrimPrefix(spec, "ocf:"), ":")
	if len(parts) != 2 || !nameRE.MatchString(parts[0]) || !nameRE.MatchString(parts[1]) {
		return "", "", "", fmt.Errorf("agent %q is neither an absolute path nor provider:type (e.g. heartbeat:IPaddr2)", spec)
	}
	provider, typ = parts[0], parts[1]
	return filepath.Join(a.root(), "resource.d", provider, typ), provider, typ, nil
}

// Start runs `<agent> start`.
func (a *Agent) Start(ctx context.Context) resources.Result {
	return a.do(ctx, resources.OpStart, a.r.Timeout, 0)
}

// Stop runs `<agent> stop`; OCF_NOT_RUNNING counts as stopped.
func (a *Agent) Stop(ctx context.Context) resources.Result {
	return a.do(ctx, resources.OpStop, a.r.Timeout, 0)
}

// Monitor runs `<agent> monitor`.
func (a *Agent) Monitor(ctx context.Context) resources.Result {
	return a.do(ctx, resources.OpMonitor, a.r.MonitorTimeout, a.r.MonitorInterval)
}

// Env returns the environment an operation runs with; see the package
// comment.
func (a *Agent) env(provider, typ string, timeout, interval time.Duration) ([]string, error) {
	m := map[string]string{
		"OCF_ROOT":                     a.root(),
		"OCF_RA_VERSION_MAJOR":         "1",
		"OCF_RA_VERSION_MINOR":         "1",
		"OCF_RESOURCE_INSTANCE":        a.r.Name,
		"OCF_RESOURCE_TYPE":            typ,
		"OCF_RESKEY_CRM_meta_timeout":  strconv.FormatInt(timeout.Milliseconds(), 10),
		"OCF_RESKEY_CRM_meta_interval": strconv.FormatInt(interval.Milliseconds(), 10),
	}
	if provider != "" {
		m["OCF_RESOURCE_PROVIDER"] = provider
	}
	for k, v := range a.r.Params {
		if !paramRE.MatchString(k) {
			return nil, fmt.Errorf("parameter name %q cannot be an environment variable (letters, digits and _)", k)
		}
		m["OCF_RESKEY_"+k] = v
	}
	return run.Env(m), nil
}

func (a *Agent) do(ctx context.Context, op resources.Op, timeout, interval time.Duration) resources.Result {
	path, provider, typ, err := a.resolve()
	if err != nil {
		return resources.FromOCF(op, ocfErrConfigured, err.Error())
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	} else if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	env, err := a.env(provider, typ, timeout, interval)
	if err != nil {
		return resources.FromOCF(op, ocfErrConfigured, err.Error())
	}
	o := run.Run(ctx, run.Cmd{Argv: []string{path, string(op)}, Env: env, Grace: a.Grace})
	res := classify(op, o)
	fields := []zap.Field{zap.String("op", string(op)), zap.String("path", path),
		zap.Duration("took", o.Duration), zap.Stringer("result", res)}
	if res.Failed() {
		a.log.Warn("ocf agent failed", fields...)
	} else {
		a.log.Debug("ocf agent done", fields...)
	}
	return res
}

// classify maps how the agent ended to a Result.
func classify(op resources.Op, o run.Outcome) resources.Result {
	switch {
	case o.NotFound:
		return resources.FromOCF(op, ocfErrInstalled, o.Describe())
	case o.TimedOut || o.Exit < 0:
		r := resources.Result{Code: resources.Soft, Reason: fmt.Sprintf("%s: %s", op, o.Describe())}
		if why := exitReason(o.Stderr); why != "" {
			r.Reason += ": " + why
		}
		return r
	}
	why := ""
	if o.Exit != 0 {
		why = exitReason(o.Stderr)
	}
	return resources.FromOCF(op, o.Exit, why)
}

// exitReason returns the last ocf-exit-reason message in stderr, else its
// last non-empty line.
func exitReason(stderr string) string {
	lines := strings.Split(stderr, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if _, msg, ok := strings.Cut(lines[i], exitReasonPrefix); ok {
			return run.LastLines(msg, 1)
		}
	}
	return run.LastLines(stderr, 1)
}
