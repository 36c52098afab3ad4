package check

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hactl/hactl/cluster/config"
)

// fallbackInterval replaces a non-positive interval, which the config
// never produces; it keeps a hand-built Check from panicking the ticker.
const fallbackInterval = time.Second

// Runner runs a set of checks, one goroutine each, so a probe that hangs
// delays only its own check.
type Runner struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	checks []*checker
}

// checker is one check's goroutine state.
type checker struct {
	cfg      config.Check
	interval time.Duration
	timeout  time.Duration
	probe    probe
	notify   func(Update)

	mu     sync.Mutex // guards cnt and status
	cnt    counter
	status Status
}

// Start runs checks until ctx is done or Stop is called. Each check probes
// at once and then every Interval, measured from the start of each probe;
// a probe never overlaps the previous one of the same check.
//
// notify is called when a check changes between passing and failing,
// never with a lock held: from the check's own goroutine, so calls for one
// check are in order but calls for different checks may be concurrent. A
// notify that blocks delays only its own check. It is not called after
// Stop returns.
func Start(ctx context.Context, checks []config.Check, notify func(Update)) *Runner {
	ctx, cancel := context.WithCancel(ctx)
	if notify == nil {
		notify = func(Update) {}
	}
	r := &Runner{cancel: cancel}
	for _, cfg := range checks {
		c := &checker{
			cfg:      cfg,
			interval: cfg.Interval,
			timeout:  cfg.Timeout,
			probe:    newProbe(cfg),
			notify:   notify,
			cnt:      newCounter(cfg.Rise, cfg.Fall),
			status:   Status{Name: cfg.Name, Kind: string(cfg.Kind)},
		}
		if c.interval <= 0 {
			c.interval = fallbackInterval
		}
		if c.timeout <= 0 {
			c.timeout = c.interval
		}
		r.checks = append(r.checks, c)
	}
	for _, c := range r.checks {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			c.run(ctx)
		}()
	}
	return r
}

// Status returns every check's current view, in config order. It is safe
// to call from any goroutine, including from notify.
func (r *Runner) Status() []Status {
	out := make([]Status, 0, len(r.checks))
	for _, c := range r.checks {
		c.mu.Lock()
		out = append(out, c.status)
		c.mu.Unlock()
	}
	return out
}

// Stop cancels every probe and waits until all goroutines have returned
// and every exec probe's process group has been killed and reaped. It may
// be called more than once.
func (r *Runner) Stop() {
	r.cancel()
	r.wg.Wait()
}

func (c *checker) run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		c.probeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probeOnce runs one probe bounded by the check's timeout and records the
// result.
func (c *checker) probeOnce(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, c.timeout)
	start := time.Now()
	detail, err := c.probe(pctx)
	took := time.Since(start)
	timedOut := pctx.Err() == context.DeadlineExceeded
	cancel()
	if ctx.Err() != nil {
		// Stopping: the probe was cut short and says nothing about the
		// service.
		return
	}
	ok := err == nil
	if !ok {
		detail = err.Error()
		if timedOut {
			// Whatever the probe saw last (a killed process, an i/o
			// timeout) is a consequence; the cause is the deadline.
			detail = fmt.Sprintf("timed out after %s", c.timeout)
		}
	}

	c.mu.Lock()
	changed := c.cnt.record(ok)
	c.status.Failing = c.cnt.failing
	c.status.ConsecutiveOK, c.status.ConsecutiveFail = c.cnt.ok, c.cnt.fail
	c.status.LastDetail = detail
	c.status.LastRun, c.status.LastDuration = start, took
	u := Update{Check: c.cfg.Name, Failing: c.cnt.failing, Weight: c.cfg.Weight, Detail: detail, At: start.Add(took)}
	c.mu.Unlock()

	if changed {
		c.notify(u)
	}
}
