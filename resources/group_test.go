package resources

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hactl/hactl/cluster/config"
)

func TestNewGroupOrdersVolumeFilesystemDeclaredResourcesThenVIP(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Group
		want []string
	}{
		{
			name: "full group",
			cfg: config.Group{
				Name: "db", VRRP: "VI_1", Volume: "data",
				Filesystem: &config.Filesystem{Mountpoint: "/var/lib/pg", FSType: "ext4"},
				Resources: []config.Resource{
					{Kind: config.KindOCF, Name: "cache"},
					{Kind: config.KindService, Name: "pg"},
					{Kind: config.KindExec, Name: "warm", Start: []string{"/bin/true"}},
				},
			},
			want: []string{"volume:data", "filesystem:/var/lib/pg", "ocf:cache", "service:pg", "exec:warm", "vip:VI_1"},
		},
		{
			name: "no volume, no filesystem",
			cfg: config.Group{Name: "dns", VRRP: "VI_2", Resources: []config.Resource{
				{Kind: config.KindService, Name: "unbound"},
			}},
			want: []string{"service:unbound", "vip:VI_2"},
		},
		{
			name: "VIP only",
			cfg:  config.Group{Name: "ip", VRRP: "VI_3"},
			want: []string{"vip:VI_3"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := NewGroup(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range g.Resources {
				got = append(got, r.ID())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("order %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewGroupTakesDurationsFromConfigWithDefaults(t *testing.T) {
	g, err := NewGroup(config.Group{
		Name: "db", VRRP: "VI_1", Volume: "data",
		Filesystem: &config.Filesystem{Mountpoint: "/srv", Timeout: 5 * time.Minute},
		Resources: []config.Resource{
			{Kind: config.KindService, Name: "pg", Timeout: 3 * time.Minute, MonitorInterval: 15 * time.Second, MonitorTimeout: 30 * time.Second},
			{Kind: config.KindService, Name: "defaults"},
			{Kind: config.KindExec, Name: "unmonitored", Start: []string{"/bin/true"}, MonitorInterval: time.Second},
			{Kind: config.KindExec, Name: "monitored", Start: []string{"/bin/true"}, Monitor: []string{"/bin/true"}},
		},
		MigrationThreshold: 3,
		FailureTimeout:     10 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	def := Resource{Timeout: DefaultTimeout, MonitorInterval: DefaultMonitorInterval, MonitorTimeout: DefaultMonitorTimeout}
	want := []Resource{
		{KindVolume, "data", def.Timeout, def.MonitorInterval, def.MonitorTimeout},
		{KindFilesystem, "/srv", 5 * time.Minute, def.MonitorInterval, def.MonitorTimeout},
		{KindService, "pg", 3 * time.Minute, 15 * time.Second, 30 * time.Second},
		{KindService, "defaults", def.Timeout, def.MonitorInterval, def.MonitorTimeout},
		{KindExec, "unmonitored", def.Timeout, 0, 0},
		{KindExec, "monitored", def.Timeout, def.MonitorInterval, def.MonitorTimeout},
		{KindVIP, "VI_1", def.Timeout, def.MonitorInterval, def.MonitorTimeout},
	}
	if !reflect.DeepEqual(g.Resources, want) {
		t.Errorf("resources\n%+v\nwant\n%+v", g.Resources, want)
	}
	if g.OnStopFailure != config.StopFailureBlock || g.MigrationThreshold != 3 || g.FailureTimeout != 10*time.Minute {
		t.Errorf("policies %q %d %s", g.OnStopFailure, g.MigrationThreshold, g.FailureTimeout)
	}
}

// The package defaults must stay those of the cluster file, so a group
// does not behave differently depending on where its config.Group came
// from.
func TestDefaultsAreTheClusterFileDefaults(t *testing.T) {
	want := map[string]time.Duration{
		"timeout":          DefaultTimeout,
		"monitor_interval": DefaultMonitorInterval,
		"monitor_timeout":  DefaultMonitorTimeout,
	}
	found := 0
	for _, d := range config.Defaults {
		w, ok := want[d.Attr]
		if d.Block != "resource" || !ok {
			continue
		}
		found++
		got, err := time.ParseDuration(strings.Trim(d.Value, `"`))
		if err != nil {
			t.Fatalf("default resource.%s = %s: %v", d.Attr, d.Value, err)
		}
		if got != w {
			t.Errorf("cluster file default resource.%s = %s, package default %s", d.Attr, got, w)
		}
	}
	if found != len(want) {
		t.Errorf("found %d of the %d resource defaults in config.Defaults", found, len(want))
	}
}

func TestNewGroupRejectsWhatValidationRejects(t *testing.T) {
	ok := config.Group{Name: "g", VRRP: "VI_1"}
	tests := []struct {
		name   string
		change func(*config.Group)
		want   string
	}{
		{"no name", func(g *config.Group) { g.Name = "" }, "without a name"},
		{"no vrrp", func(g *config.Group) { g.VRRP = "" }, "no vrrp"},
		{"unknown on_stop_failure", func(g *config.Group) { g.OnStopFailure = "retry" }, "on_stop_failure"},
		{"negative threshold", func(g *config.Group) { g.MigrationThreshold = -1 }, "migration_threshold"},
		{"negative failure timeout", func(g *config.Group) { g.FailureTimeout = -time.Second }, "failure_timeout"},
		{"filesystem without volume", func(g *config.Group) { g.Filesystem = &config.Filesystem{Mountpoint: "/srv"} }, "needs a volume"},
		{"unknown kind", func(g *config.Group) { g.Resources = []config.Resource{{Kind: "lsb", Name: "x"}} }, "kind"},
		{"unnamed resource", func(g *config.Group) { g.Resources = []config.Resource{{Kind: config.KindService}} }, "no name"},
		{"duplicate resource", func(g *config.Group) {
			g.Resources = []config.Resource{{Kind: config.KindService, Name: "x"}, {Kind: config.KindService, Name: "x"}}
		}, "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.change(&c)
			_, err := NewGroup(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
