package membership

import (
	"net/netip"
	"strings"
	"testing"
)

func TestStartRejects(t *testing.T) {
	ok := Config{Node: "a", Bind: netip.MustParseAddr("192.0.2.200"), Secret: []byte("s")}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no name", func(c *Config) { c.Node = "" }, "no node name"},
		{"long name", func(c *Config) { c.Node = strings.Repeat("n", 256) }, "longer than 255"},
		{"no bind", func(c *Config) { c.Bind = netip.Addr{} }, "no bind address"},
		{"no secret", func(c *Config) { c.Secret = nil }, "empty cluster secret"},
		{"bad port", func(c *Config) { c.Port = 70000 }, "out of range"},
		// 192.0.2.200 is on no interface here: the bind fails, and says where.
		{"address not local", func(c *Config) {}, "listen on 192.0.2.200:7946"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			m, err := Start(cfg)
			if err == nil {
				m.Stop()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start: %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
