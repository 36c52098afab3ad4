package replicate

import (
	"testing"
	"time"
)

func TestResyncRate(t *testing.T) {
	const MiB = 1 << 20
	tick := 100 * time.Millisecond
	tests := []struct {
		name                    string
		fixed, minRate, maxRate int64
		app                     bool
		wantAllow               int64
		wantLimited             bool
	}{
		{name: "dynamic, idle application: only the window limits", minRate: MiB},
		{name: "dynamic, application writing: min_rate", minRate: MiB, app: true, wantAllow: MiB / 10, wantLimited: true},
		{name: "dynamic, application writing, no min_rate: window", app: true},
		{name: "dynamic capped by max_rate", minRate: MiB, maxRate: 50 * MiB, wantAllow: 5 * MiB, wantLimited: true},
		{name: "max_rate below min_rate wins while the application writes", minRate: 10 * MiB, maxRate: 2 * MiB, app: true, wantAllow: 2 * MiB / 10, wantLimited: true},
		{name: "fixed rate whatever the application does", fixed: 20 * MiB, minRate: MiB, app: true, wantAllow: 2 * MiB, wantLimited: true},
		{name: "fixed rate ignores max_rate", fixed: 20 * MiB, maxRate: 200 * MiB, wantAllow: 2 * MiB, wantLimited: true},
		{name: "a tiny rate still moves", fixed: 1, wantAllow: 1, wantLimited: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allow, limited := newResyncRate(tt.fixed, tt.minRate, tt.maxRate, tick).next(tt.app)
			if allow != tt.wantAllow || limited != tt.wantLimited {
				t.Fatalf("next(%v) = %d, %v; want %d, %v", tt.app, allow, limited, tt.wantAllow, tt.wantLimited)
			}
		})
	}
}
