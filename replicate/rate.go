package replicate

import "time"

// Resync pacing. The source sends whenever less than the resync window
// (Config.ResyncWindow) is unacknowledged: that keeps a fill target in
// flight, as DRBD's dynamic controller does (c-fill-target), and is
// self-clocked by the target's acks, so the resync runs at the speed of
// the slower of the link and the disks. On top of the window, a budget
// refilled every tick limits it when a rate applies:
//
//   - a fixed rate (rate = "200M"): rate × tick per tick, always;
//   - while the application writes, min_rate (DRBD's c-min-rate throttle):
//     the resync yields to the application but keeps moving;
//   - max_rate caps the dynamic resync (0: no cap).
//
// It is pure: no clock, no I/O; the caller ticks it.
type resyncRate struct {
	fixed, minRate, maxRate int64 // bytes/s
	tick                    time.Duration
}

// rateTick is how often the budget is refilled (DRBD's controller runs
// every 100 ms too).
const rateTick = 100 * time.Millisecond

func newResyncRate(fixed, minRate, maxRate int64, tick time.Duration) resyncRate {
	return resyncRate{fixed: fixed, minRate: minRate, maxRate: maxRate, tick: tick}
}

// perTick converts a rate in bytes/s into bytes per tick (at least 1).
func (r resyncRate) perTick(rate int64) int64 {
	return max(1, rate*int64(r.tick)/int64(time.Second))
}

// next returns the bytes the source may send during the coming tick, or
// limited = false when only the window limits it.
func (r resyncRate) next(appActive bool) (allow int64, limited bool) {
	switch {
	case r.fixed > 0:
		return r.perTick(r.fixed), true
	case appActive && r.minRate > 0 && (r.maxRate == 0 || r.minRate < r.maxRate):
		return r.perTick(r.minRate), true
	case r.maxRate > 0:
		return r.perTick(r.maxRate), true
	}
	return 0, false
}
