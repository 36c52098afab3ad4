package agent

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/agents/service"
	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/internal/logging"
	"github.com/hactl/hactl/resources"
)

// newServiceAgent makes the agent of a systemd service resource and says
// once, at once, when this node cannot run it (no systemd, no such unit):
// that is a hard failure of every operation anyway, but an operator should
// not learn it only at the first failover.
func newServiceAgent(r config.Resource, log *zap.Logger) (resources.Agent, error) {
	a, err := service.New(service.Config{Unit: r.Unit, Log: log})
	if err != nil {
		return misconfigured{err.Error()}, nil
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Check(ctx); err != nil {
			level := log.Warn
			if errors.Is(err, service.ErrNoSystemd) {
				level = log.Error
			}
			level("service resource cannot run on this node", zap.String(logging.KeyEvent, "service-check"),
				zap.String("resource", r.Name), zap.String("unit", r.Unit), zap.String(logging.KeyReason, err.Error()))
		}
	}()
	return a, nil
}

// misconfigured is the agent of a resource whose configuration is wrong
// everywhere: it never starts, and stopping it is a no-op.
type misconfigured struct{ why string }

func (m misconfigured) Start(context.Context) resources.Result {
	return resources.Result{Code: resources.Fatal, Reason: m.why}
}
func (m misconfigured) Stop(context.Context) resources.Result {
	return resources.Result{Code: resources.OK}
}
func (m misconfigured) Monitor(context.Context) resources.Result {
	return resources.Result{Code: resources.NotRunning, Reason: m.why}
}
