package main

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFailoverBenchmark measures VIP failover as the client sees it, for
// hactl and keepalived with the same settings in the same run, and writes
// a Markdown table to $HACTL_BENCH_OUT. `make bench` runs it; `make test`
// skips it (it takes minutes and asserts nothing about speed).
func TestFailoverBenchmark(t *testing.T) {
	out := os.Getenv("HACTL_BENCH_OUT")
	if out == "" {
		t.Skip("skipping: the failover benchmark runs with make bench (HACTL_BENCH_OUT names the output)")
	}
	reps := 7
	if s := os.Getenv("HACTL_BENCH_REPS"); s != "" {
		reps, _ = strconv.Atoi(s)
	}
	type setting struct {
		name  string
		hactl vrrpConf
		ka    keepalivedConf
		reps  int
	}
	settings := []setting{
		{"v3, 100 ms adverts", vrrpConf{Version: 3, Interval: "100ms"}, keepalivedConf{Version: 3, Interval: "0.1"}, reps},
		{"v2, 1 s adverts", vrrpConf{Version: 2, Interval: "1s"}, keepalivedConf{Version: 2, Interval: "1"}, max(3, reps/2)},
	}
	var rows []string
	for _, s := range settings {
		for _, ev := range []string{"silent", "graceful"} {
			res := map[string]*samples{}
			for _, impl := range []string{"hactl", "keepalived"} {
				res[impl] = &samples{}
				for i := range s.reps {
					var r failoverResult
					t.Run(fmt.Sprintf("%s/%s/%s/%d", strings.Fields(s.name)[0], ev, impl, i), func(t *testing.T) {
						r = measureFailover(t, impl, ev, s.hactl, s.ka)
					})
					if r.outage > 0 {
						res[impl].outage = append(res[impl].outage, r.outage)
					}
					if r.arp > 0 {
						res[impl].arp = append(res[impl].arp, r.arp)
					}
				}
			}
			what := map[string]string{"silent": "master silently cut off", "graceful": "master stops gracefully"}[ev]
			rows = append(rows, row(fmt.Sprintf("ping outage, %s", what), s.name, res["hactl"].outage, res["keepalived"].outage))
			rows = append(rows, row(fmt.Sprintf("takeover → client ARP entry on the new master (%s)", ev), s.name, res["hactl"].arp, res["keepalived"].arp))
		}
	}
	table := "| measurement | settings | hactl median (min–max) | keepalived median (min–max) | hactl / keepalived |\n|---|---|---|---|---|\n" +
		strings.Join(rows, "\n") + "\n"
	if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
}

type samples struct{ outage, arp []time.Duration }

type failoverResult struct {
	outage time.Duration // largest gap between ping replies at the client
	arp    time.Duration // new master's first advert → client's neighbour entry on its MAC
}

func row(what, settings string, h, k []time.Duration) string {
	ratio := "—"
	if len(h) > 0 && len(k) > 0 && median(k) > 0 {
		ratio = fmt.Sprintf("%.2f", float64(median(h))/float64(median(k)))
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s |", what, settings, spread(h), spread(k), ratio)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(d []time.Duration) string {
	if len(d) == 0 {
		return "no data"
	}
	lo, hi := time.Duration(math.MaxInt64), time.Duration(0)
	for _, x := range d {
		lo, hi = min(lo, x), max(hi, x)
	}
	ms := func(x time.Duration) string { return fmt.Sprintf("%.1f ms", float64(x)/float64(time.Millisecond)) }
	return fmt.Sprintf("%s (%s–%s, n=%d)", ms(median(d)), ms(lo), ms(hi), len(d))
}

// measureFailover runs one failover in a fresh lab: alpha (priority 150)
// is master and bravo (100) backup, the client pings the VIP every 10 ms,
// and alpha is cut off (silent) or stopped (graceful).
func measureFailover(t *testing.T, impl, event string, hc vrrpConf, kc keepalivedConf) failoverResult {
	v := newVRRPLab(t, "keepalived", "tcpdump")
	hc.Priorities = map[string]int{"alpha": 150, "bravo": 100}
	v.configure(hc)
	start := func(node string, prio int) *node {
		if impl == "hactl" {
			return v.agent(node)
		}
		k := kc
		k.Priority = prio
		return v.keepalived(node, k)
	}
	alpha := start("alpha", 150)
	v.waitHolder(vip, "alpha")
	bravo := start("bravo", 100)
	v.eventually("bravo to run as backup", func() bool {
		if impl == "hactl" {
			b, ok := v.instance("bravo")
			return ok && b.State == "backup"
		}
		return strings.Contains(bravo.logs.String(), "Entering BACKUP STATE")
	})
	if !v.pingOnce(vip) {
		t.Fatal("client cannot ping the VIP before the failover")
	}

	vrrpAndARP := v.capture("ip proto 112 or arp")
	neigh := v.l.Command("client", "ip", "-ts", "monitor", "neigh", "dev", "eth0")
	var neighOut syncBuffer
	neigh.Stdout = &neighOut
	if err := neigh.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = neigh.Process.Kill(); _ = neigh.Wait() }()
	ping := v.l.Command("client", "ping", "-D", "-n", "-i", "0.01", "-W", "1", vip)
	var pingOut syncBuffer
	ping.Stdout = &pingOut
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ping.Process.Kill(); _ = ping.Wait() }()
	v.eventually("pings to flow", func() bool { return strings.Count(pingOut.String(), "bytes from") > 20 })

	switch event {
	case "silent":
		// Cut alpha off just after one of its adverts, so that every run
		// (and both implementations) lose the master at the same phase of
		// its advert cycle; otherwise the outage varies by up to one advert
		// interval with where in the cycle the cut falls.
		const fromAlpha = "192.0.2.11 > 224.0.0.18"
		seen := strings.Count(vrrpAndARP.Output(), fromAlpha)
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(vrrpAndARP.Output(), fromAlpha) == seen && time.Now().Before(deadline) {
			time.Sleep(200 * time.Microsecond)
		}
		if err := v.l.Isolate("alpha", "service"); err != nil {
			t.Fatal(err)
		}
	case "graceful":
		alpha.stopping = true
		_ = alpha.cmd.Process.Signal(syscall.SIGTERM)
	}
	bravoMAC := v.mac("bravo")
	v.eventually("the client's neighbour entry on bravo", func() bool {
		return strings.Contains(neighOut.String(), vip+" lladdr "+bravoMAC)
	})
	before := strings.Count(pingOut.String(), "bytes from")
	v.eventually("pings to flow again", func() bool { return strings.Count(pingOut.String(), "bytes from") > before+50 })
	_ = ping.Process.Signal(syscall.SIGINT)
	_ = ping.Wait()

	r := failoverResult{outage: largestGap(pingOut.String())}
	if adv := firstAdvertFrom(vrrpAndARP.Output(), "192.0.2.12"); !adv.IsZero() {
		if at := neighbourChange(neighOut.String(), vip, bravoMAC); !at.IsZero() && at.After(adv) {
			r.arp = at.Sub(adv)
		}
	}
	t.Logf("%s %s: outage %v, takeover→ARP %v", impl, event, r.outage, r.arp)
	return r
}

var pingLine = regexp.MustCompile(`^\[(\d+\.\d+)\] \d+ bytes from`)

// largestGap is the longest time between two consecutive ping replies.
func largestGap(out string) time.Duration {
	var prev, gap float64
	for _, line := range strings.Split(out, "\n") {
		m := pingLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		at, _ := strconv.ParseFloat(m[1], 64)
		if prev != 0 && at-prev > gap {
			gap = at - prev
		}
		prev = at
	}
	return time.Duration(gap * float64(time.Second))
}

// firstAdvertFrom is when the client first saw a VRRP advert from src in
// tcpdump -tt output.
func firstAdvertFrom(out, src string) time.Time {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.Contains(line, " "+src+" > ") && strings.Contains(line, "VRRP") {
			if sec, err := strconv.ParseFloat(f[0], 64); err == nil {
				return time.Unix(0, int64(sec*1e9))
			}
		}
	}
	return time.Time{}
}

var neighLine = regexp.MustCompile(`^\[(\S+)\] (\S+) .*lladdr (\S+)`)

// neighbourChange is when `ip -ts monitor neigh` first showed addr on mac.
func neighbourChange(out, addr, mac string) time.Time {
	for _, line := range strings.Split(out, "\n") {
		m := neighLine.FindStringSubmatch(line)
		if m == nil || m[2] != addr || m[3] != mac {
			continue
		}
		if at, err := time.ParseInLocation("2006-01-02T15:04:05.000000", m[1], time.Local); err == nil {
			return at
		}
	}
	return time.Time{}
}
