package main

import (
	"strings"
	"testing"
)

// The interop tests put hactl and Debian's keepalived 2.2 on one bridge as
// peers of the same virtual router.

type interopCase struct {
	name  string
	hactl vrrpConf       // priorities filled in per direction
	ka    keepalivedConf // priority filled in per direction
}

func interopCases() []interopCase {
	return []interopCase{
		{
			name:  "v2",
			hactl: vrrpConf{Version: 2, Interval: "1s"},
			ka:    keepalivedConf{Version: 2, Interval: "1"},
		},
		{
			name:  "v2-pass",
			hactl: vrrpConf{Version: 2, Interval: "1s", Extra: `  auth_pass = "secret1"`},
			ka:    keepalivedConf{Version: 2, Interval: "1", AuthPass: "secret1"},
		},
		{
			name:  "v3",
			hactl: vrrpConf{Version: 3, Interval: "100ms"},
			ka:    keepalivedConf{Version: 3, Interval: "0.1"},
		},
		{
			// The v3 pseudo-header carries the unicast destination.
			name:  "v3-unicast",
			hactl: vrrpConf{Version: 3, Interval: "100ms", Extra: `  unicast_peers = ["192.0.2.11", "192.0.2.12"]`},
			ka:    keepalivedConf{Version: 3, Interval: "0.1", Unicast: []string{"192.0.2.11"}, Source: "192.0.2.12"},
		},
	}
}

// TestVRRPInteropKeepalived: for each protocol variant, hactl wins against
// a lower keepalived and loses to a higher one, each hands over to the
// other when stopped, and keepalived never complains about hactl's
// packets.
func TestVRRPInteropKeepalived(t *testing.T) {
	for _, tc := range interopCases() {
		t.Run(tc.name+"/hactl-master", func(t *testing.T) {
			v := newVRRPLab(t, "keepalived")
			c := tc.hactl
			c.Priorities = map[string]int{"alpha": 150}
			v.configure(c)
			k := tc.ka
			k.Priority = 100
			ka := v.keepalived("bravo", k)
			v.eventually("keepalived to become master alone", func() bool {
				return strings.Contains(ka.logs.String(), "Entering MASTER STATE")
			})
			hactl := v.agent("alpha")
			// hactl preempts the lower-priority keepalived.
			v.waitState("alpha", "master")
			v.eventually("keepalived to go back to backup", func() bool {
				return strings.Count(ka.logs.String(), "Entering BACKUP STATE") >= 2
			})
			v.waitHolder(vip, "alpha")
			a, _ := v.instance("alpha")
			if a.Counters == nil || a.Counters.AdvertsReceived == 0 || len(a.Counters.Invalid) != 0 {
				t.Errorf("hactl's counters with keepalived as peer: %+v", a.Counters)
			}
			// Graceful stop of hactl: keepalived takes over.
			if err := hactl.term(t); err != nil {
				t.Errorf("hactl exit: %v", err)
			}
			v.eventually("keepalived to take over", func() bool {
				return strings.Count(ka.logs.String(), "Entering MASTER STATE") >= 2
			})
			v.waitHolder(vip, "bravo")
			if errs := keepalivedErrors(ka.logs.String()); len(errs) > 0 {
				t.Errorf("keepalived complained:\n%s", strings.Join(errs, "\n"))
			}
		})
		t.Run(tc.name+"/keepalived-master", func(t *testing.T) {
			v := newVRRPLab(t, "keepalived")
			c := tc.hactl
			c.Priorities = map[string]int{"alpha": 100}
			v.configure(c)
			hactl := v.agent("alpha")
			v.waitState("alpha", "master")
			k := tc.ka
			k.Priority = 150
			ka := v.keepalived("bravo", k)
			// keepalived preempts; hactl hears the higher priority and resigns.
			v.eventually("keepalived to become master", func() bool {
				return strings.Contains(ka.logs.String(), "Entering MASTER STATE")
			})
			a := v.waitState("alpha", "backup")
			if a.Master != "192.0.2.12" || a.MasterPriority != 150 {
				t.Errorf("hactl sees master %q prio %d, want keepalived at 192.0.2.12 with 150", a.Master, a.MasterPriority)
			}
			v.waitHolder(vip, "bravo")
			// keepalived stops gracefully (priority 0): hactl takes over.
			if err := ka.term(t); err != nil {
				t.Errorf("keepalived exit: %v", err)
			}
			a = v.waitState("alpha", "master")
			if a.LastTransition == nil || !strings.Contains(a.LastTransition.Reason, "priority 0") {
				t.Errorf("hactl's takeover reason %+v, want keepalived's priority 0 advert", a.LastTransition)
			}
			v.waitHolder(vip, "alpha")
			if errs := keepalivedErrors(ka.logs.String()); len(errs) > 0 {
				t.Errorf("keepalived complained:\n%s", strings.Join(errs, "\n"))
			}
			if n := logEvents(hactl.logs.String(), "advert-invalid"); len(n) > 0 {
				t.Errorf("hactl dropped keepalived's adverts: %v", n)
			}
		})
	}
}

// TestVRRPMismatchReported: settings that make keepalived and hactl ignore
// each other are counted by reason, shown in status and logged by hactl,
// never silently accepted.
func TestVRRPMismatchReported(t *testing.T) {
	cases := []struct {
		name   string
		hactl  vrrpConf
		ka     keepalivedConf
		reason string
	}{
		{"v2-interval", vrrpConf{Version: 2, Interval: "2s"}, keepalivedConf{Version: 2, Interval: "1"}, "interval-mismatch"},
		{"version", vrrpConf{Version: 3, Interval: "1s"}, keepalivedConf{Version: 2, Interval: "1"}, "version-mismatch"},
		{"vip-list", vrrpConf{Version: 3, Interval: "100ms"}, keepalivedConf{Version: 3, Interval: "0.1", VIPs: []string{vipPrefix, vip2 + "/24"}}, "address-mismatch"},
		{"v3-checksum-mode", vrrpConf{Version: 3, Interval: "100ms", Extra: "  v3_checksum_pseudo_header = false"}, keepalivedConf{Version: 3, Interval: "0.1"}, "checksum-mode-mismatch"},
		{"v2-auth", vrrpConf{Version: 2, Interval: "1s", Extra: `  auth_pass = "secret1"`}, keepalivedConf{Version: 2, Interval: "1", AuthPass: "other"}, "auth-mismatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVRRPLab(t, "keepalived")
			c := tc.hactl
			c.Priorities = map[string]int{"alpha": 100}
			v.configure(c)
			k := tc.ka
			k.Priority = 150
			v.keepalived("bravo", k)
			hactl := v.agent("alpha")
			var a = v.waitState("alpha", "master")
			v.eventually("hactl to count the mismatch", func() bool {
				a, _ = v.instance("alpha")
				return a.Counters != nil && a.Counters.Invalid[tc.reason] > 0
			})
			if a.LastInvalid == nil || a.LastInvalid.Reason != tc.reason || a.LastInvalid.From != "192.0.2.12" {
				t.Errorf("last invalid advert = %+v, want %s from 192.0.2.12", a.LastInvalid, tc.reason)
			}
			if a.Counters.AdvertsReceived != 0 {
				t.Errorf("hactl accepted %d adverts from a mismatched peer", a.Counters.AdvertsReceived)
			}
			logged := false
			for _, e := range logEvents(hactl.logs.String(), "advert-invalid") {
				if e["reason"] == tc.reason {
					logged = true
				}
			}
			if !logged {
				t.Errorf("hactl did not log the %s", tc.reason)
			}
		})
	}
}

// TestVRRPUnicastWithoutMulticast: with multicast dropped on the bridge,
// unicast peers still elect one master.
func TestVRRPUnicastWithoutMulticast(t *testing.T) {
	v := newVRRPLab(t, "nft")
	nft := `table bridge hactltest {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr 224.0.0.18 drop
  }
}`
	cmd := v.l.SwitchCommand(t.Context(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(nft)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	v.configure(v3fast(map[string]int{"alpha": 100, "bravo": 90},
		`  unicast_peers = ["192.0.2.11", "192.0.2.12"]
  garp_repeat_delay = "0s"`))
	alpha := v.agent("alpha")
	v.agent("bravo")
	v.waitState("alpha", "master")
	b := v.waitState("bravo", "backup")
	if b.Master != "192.0.2.11" {
		t.Errorf("bravo sees master %q", b.Master)
	}
	v.waitHolder(vip, "alpha")
	if err := alpha.term(t); err != nil {
		t.Errorf("alpha exit: %v", err)
	}
	v.waitState("bravo", "master")
	v.waitHolder(vip, "bravo")
}
