package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hactl/hactl/cluster/api"
	"github.com/hactl/hactl/internal/lab"
	"github.com/hactl/hactl/replicate"
)

// TestGroupFailoverBenchmark measures how long the lab's group (volume →
// ext4 → exec "web" → VIP) is away from the client: after a silent loss
// of its master (cables pulled, agent killed), from the master's last
// advert to the service answering at the VIP, with each step's share
// taken from the new owner's status events; after hactl failover --wait
// (graceful switchover), from the command to the service answering on
// the other node; and the move back when the crashed node returns and
// preempts. It writes a Markdown section to $HACTL_BENCH_GROUP_OUT.
// `make bench` (BENCH=group) runs it; `make test` skips it.
func TestGroupFailoverBenchmark(t *testing.T) {
	out := os.Getenv("HACTL_BENCH_GROUP_OUT")
	if out == "" {
		t.Skip("skipping: the group failover benchmark runs with make bench (HACTL_BENCH_GROUP_OUT names the output)")
	}
	reps := 5
	if s := os.Getenv("HACTL_BENCH_GROUP_REPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("HACTL_BENCH_GROUP_REPS=%q: want a whole number of repetitions", s)
		}
		reps = n
	}
	requireLab(t, "tcpdump", "python3")

	g := newGroupLab(t)
	b := &groupBench{g: g, prober: filepath.Join(t.TempDir(), "probe.py")}
	if err := os.WriteFile(b.prober, []byte(groupBenchProber), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"alpha", "bravo"} {
		nd, ok := g.l.Node(n)
		if !ok {
			t.Fatalf("no node %s", n)
		}
		b.addr = append(b.addr, nd.Address().String())
	}
	b.adverts = g.capture("ip proto 112")

	var crashes []gbCrash
	var backs []gbMoveBack
	for i := range reps {
		c, back := b.crash(i)
		crashes = append(crashes, c)
		backs = append(backs, back)
	}
	var switches []gbSwitch
	from, to := "alpha", "bravo"
	for i := range reps {
		switches = append(switches, b.switchover(i, from, to))
		from, to = to, from
	}
	if from != "alpha" {
		// Leave the group where the lab started it (not measured).
		g.hactl(from, "failover", lab.GroupName, "--wait")
		g.waitGroup(to, "started")
	}
	section := groupBenchSection(crashes, backs, switches)
	if err := os.WriteFile(out, []byte(section), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", section)
}

type groupBench struct {
	g       *groupLab
	prober  string
	addr    []string // service addresses of alpha and bravo
	adverts *capture // VRRP as the client sees it
}

// gbCrash is one silent loss of the master (alpha) and bravo's takeover.
type gbCrash struct {
	masterDown time.Duration // bravo's Master_Down_Interval before the cut
	total      time.Duration // alpha's last advert → first answer at the VIP
	fromCut    time.Duration // cables pulled → first answer
	gate       string        // bravo's activation, with the gate's reason
	// From alpha's last advert, as bravo logged them: its replication link
	// declared down (ping timeout), its membership suspecting alpha.
	replDown, suspect time.Duration
	steps             map[string]time.Duration
}

// gbMoveBack is alpha's return after a crash: restart, resync, preempt.
type gbMoveBack struct {
	outage time.Duration // longest gap between answers at the client
	steps  map[string]time.Duration
}

// gbSwitch is one hactl failover --wait.
type gbSwitch struct {
	from, to string
	total    time.Duration // command → first answer from the new owner
	cmd      time.Duration // how long hactl failover --wait took
	service  time.Duration // the service's own stop (old owner) and start incl. its first monitor (new owner)
	steps    map[string]time.Duration
}

// Step names, in the order the tables list them.
const (
	gbDetect  = "detection: last advert → VRRP Master on bravo"
	gbGate    = "gate: VRRP Master → activate"
	gbPromote = "volume promote (start volume:data)"
	gbFS      = "fsck/mount (start filesystem)"
	gbService = "service start incl. its first monitor (exec:web)"
	gbWebCmd  = "↳ of which the start command"
	gbWebMon  = "↳ of which the first monitor"
	gbVIP     = "VIP + GARP → first answer at the client"
	gbOther   = "rest (between steps)"

	gbAsk      = "command → old owner starts draining"
	gbStopVIP  = "stop vip (old owner)"
	gbStopWeb  = "stop exec:web (old owner)"
	gbStopFS   = "stop filesystem: umount (old owner)"
	gbStopVol  = "stop volume: demote (old owner)"
	gbResign   = "stopped → VRRP Master on the new owner"
	gbGateSw   = "gate: VRRP Master → activate (new owner)"
	gbBackStop = "bravo stops the group (vip, web, umount, demote)"
	gbBackRest = "bravo stopped → alpha starts the group → first answer"
)

var gbCrashSteps = []string{gbDetect, gbGate, gbPromote, gbFS, gbService, gbVIP, gbOther}
var gbSwitchSteps = []string{gbAsk, gbStopVIP, gbStopWeb, gbStopFS, gbStopVol, gbResign, gbGateSw, gbPromote, gbFS, gbService, gbVIP, gbOther}

// gbSub are rows listed under gbService, not counted in the sum.
var gbSub = map[string][]string{gbService: {gbWebCmd, gbWebMon}}

// settle waits until owner runs the group alone and the other node's
// replica is connected, UpToDate and in sync.
func (b *groupBench) settle(owner string) {
	g := b.g
	g.t.Helper()
	other := map[string]string{"alpha": "bravo", "bravo": "alpha"}[owner]
	g.gWait(other, other+" UpToDate, connected and in sync", 3*time.Minute, func(st api.Status) bool {
		v := st.Volumes[0]
		return connected(v) && v.DiskState == "UpToDate" && v.OutOfSync == 0 && len(st.Groups) > 0 && st.Groups[0].State == "stopped"
	})
	g.gWait(owner, owner+" runs the group", 3*time.Minute, func(st api.Status) bool {
		return st.Groups[0].State == "started" && st.Volumes[0].Role == "Primary"
	})
	g.waitHolder(vip, owner)
}

// crash pulls alpha's cables just after one of its adverts and kills its
// agent, measures bravo's takeover, then brings alpha back and measures
// the move back (the lab's VRRP preempts).
func (b *groupBench) crash(i int) (gbCrash, gbMoveBack) {
	g := b.g
	t := g.t
	t.Helper()
	b.settle("alpha")
	var r gbCrash
	bst, ok := g.status("bravo")
	if !ok {
		t.Fatal("no status from bravo")
	}
	r.masterDown, _ = time.ParseDuration(bst.VRRP[0].MasterDown)

	p := b.probe()
	p.waitOK(10, time.Time{})

	// Cut alpha off just after one of its adverts (as the failover
	// benchmark does), so every run loses the master at the same phase of
	// its advert cycle; then kill its agent. Cables first: nothing of
	// alpha's (no FIN on the replication connection, no last words on the
	// membership) reaches bravo, as after a power loss.
	fromAlpha := b.addr[0] + " > 224.0.0.18"
	seen := strings.Count(b.adverts.Output(), fromAlpha)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(b.adverts.Output(), fromAlpha) == seen && time.Now().Before(deadline) {
		time.Sleep(200 * time.Microsecond)
	}
	cut := time.Now()
	for _, netw := range []string{"service", "replication"} {
		if err := g.l.SetCable("alpha", netw, false); err != nil {
			t.Fatal(err)
		}
	}
	alpha := g.agentOfBench("alpha")
	alpha.kill9()

	st := g.gWait("bravo", "bravo runs the group", 3*time.Minute, func(st api.Status) bool {
		return st.Groups[0].State == "started"
	})
	first := p.waitOK(5, cut)
	p.stop()
	last := lastAdvert(b.adverts.Output(), b.addr[0], cut.Add(time.Second))
	if last.IsZero() || last.After(cut) {
		t.Fatalf("run %d: no advert from alpha before the cut at %s", i, cut.Format("15:04:05.000000"))
	}
	r.total, r.fromCut = first.Sub(last), first.Sub(cut)
	r.steps = startSteps(t, st, last, first)
	if tr := st.VRRP[0].LastTransition; tr != nil && tr.To == "master" && tr.At.After(last) {
		r.steps[gbDetect] = tr.At.Sub(last)
		if act, ok := r.steps["activate@"]; ok {
			r.steps[gbGate] = act - r.steps[gbDetect]
		}
	}
	delete(r.steps, "activate@")
	r.steps[gbOther] = r.total - sumSteps(r.steps, gbCrashSteps[:len(gbCrashSteps)-1])
	vol := findEvent(st, "start volume:", last)
	for _, e := range st.Groups[0].Events {
		if strings.HasPrefix(e.What, "activate") && e.At.After(last) && !e.At.After(vol.At) {
			r.gate = e.What
		}
	}
	blogs := g.agentOfBench("bravo").logs.String()
	if at := logFirst(blogs, cut, func(m map[string]any) bool { return m["event"] == "disconnected" }); !at.IsZero() {
		r.replDown = at.Sub(last)
	}
	if at := logFirst(blogs, cut, func(m map[string]any) bool {
		msg, _ := m["msg"].(string)
		return strings.HasPrefix(msg, "Suspect alpha")
	}); !at.IsZero() {
		r.suspect = at.Sub(last)
	}
	t.Logf("crash %d: bravo's %q; bravo's log from the cut to its activation:\n%s", i, r.gate,
		logWindow(g.agentOfBench("bravo").logs.String(), cut, vol.At))
	t.Logf("crash %d: last advert → answer %v (cut → answer %v; Master_Down %v); %s", i, r.total, r.fromCut, r.masterDown, stepsLine(r.steps, gbCrashSteps))

	// alpha comes back: cables in, agent started; it cleans up its stale
	// mount and service, resyncs, and takes the group back (preemption).
	back := gbMoveBack{steps: map[string]time.Duration{}}
	p = b.probe()
	p.waitOK(10, time.Time{})
	for _, netw := range []string{"service", "replication"} {
		if err := g.l.SetCable("alpha", netw, true); err != nil {
			t.Fatal(err)
		}
	}
	g.agent("alpha")
	ast := g.gWait("alpha", "alpha runs the group again", 3*time.Minute, func(st api.Status) bool {
		return st.Groups[0].State == "started"
	})
	b.settle("alpha")
	bst, _ = g.status("bravo")
	stopEnd := lastStopEnd(bst, cut)
	if stopEnd.IsZero() {
		t.Fatalf("move back %d: bravo has no stop events:\n%s", i, groupShow(bst))
	}
	answered := p.waitOK(5, stopEnd)
	p.stop()
	back.outage = p.longestGap(cut)
	if tr := ast.VRRP[0].LastTransition; tr != nil && tr.To == "master" {
		if bs := firstEvent(bst, "deactivate", cut); !bs.At.IsZero() {
			back.steps[gbBackStop] = stopEnd.Sub(bs.At)
		}
		back.steps[gbBackRest] = answered.Sub(stopEnd)
	}
	t.Logf("move back %d: client outage %v; %s", i, back.outage, stepsLine(back.steps, []string{gbBackStop, gbBackRest}))
	return r, back
}

// switchover runs hactl failover --wait on from and measures until the
// service answers from to.
func (b *groupBench) switchover(i int, from, to string) gbSwitch {
	g := b.g
	t := g.t
	t.Helper()
	b.settle(from)
	r := gbSwitch{from: from, to: to}
	p := b.probe()
	p.waitOK(10, time.Time{})
	start := time.Now()
	g.hactl(from, "failover", lab.GroupName, "--wait")
	r.cmd = time.Since(start)
	nst := g.gWait(to, to+" runs the group", 3*time.Minute, func(st api.Status) bool {
		return st.Groups[0].State == "started"
	})
	ost, _ := g.status(from)
	// Once the old owner dropped the VIP, every answer comes from the new one.
	vipGone := eventEnd(findEvent(ost, "stop vip:", start))
	if vipGone.IsZero() {
		t.Fatalf("switchover %d: %s has no stop vip event:\n%s", i, from, groupShow(ost))
	}
	first := p.waitOK(5, vipGone)
	p.stop()
	r.total = first.Sub(start)
	r.steps = startSteps(t, nst, start, first)
	if d := firstEvent(ost, "deactivate", start); !d.At.IsZero() {
		r.steps[gbAsk] = d.At.Sub(start)
	}
	for what, step := range map[string]string{"stop vip:": gbStopVIP, "stop exec:web": gbStopWeb, "stop filesystem:": gbStopFS, "stop volume:": gbStopVol} {
		if e := findEvent(ost, what, start); !e.At.IsZero() {
			r.steps[step] = time.Duration(e.Millis) * time.Millisecond
		}
	}
	stopped := lastStopEnd(ost, start)
	if tr := nst.VRRP[0].LastTransition; tr != nil && tr.To == "master" && tr.At.After(start) {
		r.steps[gbResign] = tr.At.Sub(stopped)
		if act, ok := r.steps["activate@"]; ok {
			r.steps[gbGateSw] = act - tr.At.Sub(start)
		}
	}
	delete(r.steps, "activate@")
	r.steps[gbOther] = r.total - sumSteps(r.steps, gbSwitchSteps[:len(gbSwitchSteps)-1])
	r.service = r.steps[gbStopWeb] + r.steps[gbService]
	t.Logf("switchover %d %s → %s: command → answer %v (hactl returned after %v; service stop+start %v); %s",
		i, from, to, r.total, r.cmd, r.service, stepsLine(r.steps, gbSwitchSteps))
	return r
}

// startSteps takes the start side's steps from the new owner's events
// after since; first is the client's first answer. "activate@" is when the
// runner planned the activation, as an offset from since.
func startSteps(t *testing.T, st api.Status, since, first time.Time) map[string]time.Duration {
	t.Helper()
	steps := map[string]time.Duration{}
	vol := findEvent(st, "start volume:", since)
	fs := findEvent(st, "start filesystem:", since)
	web := findEvent(st, "start exec:web", since)
	vipStart := findEvent(st, "start vip:", since)
	if vol.At.IsZero() || fs.At.IsZero() || web.At.IsZero() || vipStart.At.IsZero() {
		t.Fatalf("the new owner's events lack a start step:\n%s", groupShow(st))
	}
	var act api.GroupEvent
	for _, e := range st.Groups[0].Events {
		if strings.HasPrefix(e.What, "activate") && e.At.After(since) && !e.At.After(vol.At) {
			act = e
		}
	}
	if !act.At.IsZero() {
		steps["activate@"] = act.At.Sub(since)
	}
	steps[gbPromote] = time.Duration(vol.Millis) * time.Millisecond
	steps[gbFS] = time.Duration(fs.Millis) * time.Millisecond
	steps[gbService] = vipStart.At.Sub(web.At)
	steps[gbWebCmd] = time.Duration(web.Millis) * time.Millisecond
	steps[gbWebMon] = vipStart.At.Sub(eventEnd(web))
	steps[gbVIP] = first.Sub(vipStart.At)
	return steps
}

func sumSteps(steps map[string]time.Duration, names []string) time.Duration {
	var s time.Duration
	for _, n := range names {
		s += steps[n]
	}
	return s
}

func stepsLine(steps map[string]time.Duration, names []string) string {
	var parts []string
	for _, n := range names {
		if d, ok := steps[n]; ok {
			parts = append(parts, fmt.Sprintf("%s %v", strings.SplitN(n, " (", 2)[0], d.Round(time.Millisecond)))
		}
	}
	return strings.Join(parts, "; ")
}

// findEvent is the first event after since whose What starts with prefix.
func findEvent(st api.Status, prefix string, since time.Time) api.GroupEvent {
	if len(st.Groups) == 0 {
		return api.GroupEvent{}
	}
	for _, e := range st.Groups[0].Events {
		if strings.HasPrefix(e.What, prefix) && e.At.After(since) {
			return e
		}
	}
	return api.GroupEvent{}
}

func firstEvent(st api.Status, prefix string, since time.Time) api.GroupEvent {
	return findEvent(st, prefix, since)
}

func eventEnd(e api.GroupEvent) time.Time {
	if e.At.IsZero() {
		return time.Time{}
	}
	// Millis is rounded down: the end is within the next millisecond.
	return e.At.Add(time.Duration(e.Millis+1) * time.Millisecond)
}

// lastStopEnd is when the last stop step after since ended (the volume's
// demotion, normally).
func lastStopEnd(st api.Status, since time.Time) time.Time {
	var end time.Time
	if len(st.Groups) == 0 {
		return end
	}
	for _, e := range st.Groups[0].Events {
		if strings.HasPrefix(e.What, "stop ") && e.At.After(since) {
			if x := eventEnd(e); x.After(end) {
				end = x
			}
		}
	}
	return end
}

// logFirst is the time of an agent's first log line after since that
// match accepts.
func logFirst(logs string, since time.Time, match func(map[string]any) bool) time.Time {
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		ts, ok := m["ts"].(float64)
		if at := time.Unix(0, int64(ts*1e9)); ok && at.After(since) && match(m) {
			return at
		}
	}
	return time.Time{}
}

// logWindow is an agent's log lines (message, event, reason) with
// timestamps from from to to.
func logWindow(logs string, from, to time.Time) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		ts, ok := m["ts"].(float64) // zap's JSON encoder: seconds since the epoch
		at := time.Unix(0, int64(ts*1e9))
		if !ok || at.Before(from.Add(-time.Millisecond)) || at.After(to.Add(time.Millisecond)) {
			continue
		}
		fmt.Fprintf(&b, "  %s %v", at.Format("15:04:05.000"), m["msg"])
		for _, k := range []string{"event", "reason", "error", "from", "to", "instance", "resource"} {
			if v, ok := m[k]; ok {
				fmt.Fprintf(&b, " %s=%v", k, v)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func (g *groupLab) agentOfBench(name string) *node {
	g.t.Helper()
	var n *node
	for _, p := range g.procs {
		if p.name == name {
			n = p
		}
	}
	if n == nil {
		g.t.Fatalf("no agent started in %s", name)
	}
	return n
}

var advertLine = regexp.MustCompile(`^(\d+\.\d+) .* (\S+) > 224\.0\.0\.18: VRRP`)

// lastAdvert is the time of the last advert from src, no later than
// before, in tcpdump -tt -e output.
func lastAdvert(out, src string, before time.Time) time.Time {
	var last time.Time
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := advertLine.FindStringSubmatch(sc.Text())
		if m == nil || m[2] != src {
			continue
		}
		sec, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		if at.After(before) {
			break
		}
		last = at
	}
	return last
}

// groupBenchProber runs in the client: every EVERY seconds it starts a
// GET /healthz at ADDR:PORT on a new connection (each in its own thread,
// 1 s timeout, so a lost SYN does not delay the next probe) and prints
// "ok|err LAUNCH DONE WHY" with wall-clock times.
const groupBenchProber = `import http.client, sys, threading, time
addr, port, every = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
lock = threading.Lock()
def probe(t0):
    ok, why = False, ""
    try:
        c = http.client.HTTPConnection(addr, port, timeout=1.0)
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        c.close()
        ok, why = r.status == 200, str(r.status)
    except Exception as e:
        why = type(e).__name__
    t1 = time.time()
    with lock:
        sys.stdout.write("%s %.6f %.6f %s\n" % ("ok" if ok else "err", t0, t1, why))
        sys.stdout.flush()
next_at = time.time()
while True:
    threading.Thread(target=probe, args=(time.time(),), daemon=True).start()
    next_at += every
    time.sleep(max(0.0, next_at - time.time()))
`

// groupBenchEvery is the prober's interval.
const groupBenchEvery = 25 * time.Millisecond

type gbProber struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type gbProbe struct {
	ok           bool
	launch, done time.Time
}

func (b *groupBench) probe() *gbProber {
	t := b.g.t
	t.Helper()
	p := &gbProber{t: t, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = b.g.l.Command("client", "python3", "-u", b.prober, vip, groupWebPort, strconv.FormatFloat(groupBenchEvery.Seconds(), 'f', 3, 64))
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

func (p *gbProber) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *gbProber) probes() []gbProbe {
	var out []gbProbe
	for _, line := range strings.Split(p.out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || (f[0] != "ok" && f[0] != "err") {
			continue
		}
		l, err1 := strconv.ParseFloat(f[1], 64)
		d, err2 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, gbProbe{ok: f[0] == "ok", launch: time.Unix(0, int64(l*1e9)), done: time.Unix(0, int64(d*1e9))})
	}
	return out
}

// waitOK waits until n probes launched after since succeeded and returns
// the earliest answer among them.
func (p *gbProber) waitOK(n int, since time.Time) time.Time {
	p.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		var first time.Time
		count := 0
		for _, pr := range p.probes() {
			if pr.ok && !pr.launch.Before(since) {
				count++
				if first.IsZero() || pr.done.Before(first) {
					first = pr.done
				}
			}
		}
		if count >= n {
			return first
		}
		select {
		case <-p.done:
			p.t.Fatalf("the prober exited:\n%s", p.out.String())
		default:
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("no answers at the VIP after %s; prober:\n%s", since.Format("15:04:05.000"), tail(p.out.String(), 20))
	return time.Time{}
}

// longestGap is the longest time between two answers (in the order they
// arrived) after since.
func (p *gbProber) longestGap(since time.Time) time.Duration {
	var dones []time.Time
	for _, pr := range p.probes() {
		if pr.ok && pr.done.After(since) {
			dones = append(dones, pr.done)
		}
	}
	sort.Slice(dones, func(i, j int) bool { return dones[i].Before(dones[j]) })
	var gap time.Duration
	for i := 1; i < len(dones); i++ {
		gap = max(gap, dones[i].Sub(dones[i-1]))
	}
	return gap
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// gbStats is a median with its spread.
func gbStats(d []time.Duration) string {
	if len(d) == 0 {
		return "no data"
	}
	lo, hi := time.Duration(math.MaxInt64), time.Duration(math.MinInt64)
	for _, x := range d {
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf("%s (%s–%s)", gbMS(median(d)), gbMS(lo), gbMS(hi))
}

func gbMS(d time.Duration) string {
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

func gbCol[T any](xs []T, f func(T) time.Duration) []time.Duration {
	var out []time.Duration
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

func gbStepCol[T any](xs []T, steps func(T) map[string]time.Duration, name string) []time.Duration {
	var out []time.Duration
	for _, x := range xs {
		if d, ok := steps(x)[name]; ok {
			out = append(out, d)
		}
	}
	return out
}

// gbStepTable writes a step table: each step's median (min–max) and its
// share of the median total; the sub-rows of a step are listed under it
// and not counted. It returns the step with the largest median.
func gbStepTable(w func(string, ...any), names []string, total []time.Duration, col func(string) []time.Duration) (string, time.Duration) {
	w("| step | median (min–max) | share of the median total |")
	w("|---|---|---|")
	var biggest string
	var biggestD time.Duration
	row := func(name string) {
		c := col(name)
		share := "—"
		if median(total) > 0 && len(c) > 0 {
			share = fmt.Sprintf("%.0f %%", 100*float64(median(c))/float64(median(total)))
		}
		w("| %s | %s | %s |", name, gbStats(c), share)
	}
	for _, n := range names {
		row(n)
		for _, sub := range gbSub[n] {
			row(sub)
		}
		if c := col(n); n != gbOther && median(c) > biggestD {
			biggest, biggestD = n, median(c)
		}
	}
	w("| **total** | %s | 100 %% |", gbStats(total))
	return biggest, biggestD
}

// groupBenchSection writes the Markdown section, without its heading
// (scripts/bench.sh adds it and the date).
func groupBenchSection(crashes []gbCrash, backs []gbMoveBack, switches []gbSwitch) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	total := gbCol(crashes, func(c gbCrash) time.Duration { return c.total })
	fromCut := gbCol(crashes, func(c gbCrash) time.Duration { return c.fromCut })
	noSvc := gbCol(crashes, func(c gbCrash) time.Duration { return c.total - c.steps[gbService] })
	md := median(gbCol(crashes, func(c gbCrash) time.Duration { return c.masterDown }))
	swTotal := gbCol(switches, func(s gbSwitch) time.Duration { return s.total })
	swCmd := gbCol(switches, func(s gbSwitch) time.Duration { return s.cmd })
	swSvc := gbCol(switches, func(s gbSwitch) time.Duration { return s.service })
	swNet := gbCol(switches, func(s gbSwitch) time.Duration { return s.total - s.service })
	backOut := gbCol(backs, func(m gbMoveBack) time.Duration { return m.outage })
	crashCol := func(name string) []time.Duration {
		return gbStepCol(crashes, func(c gbCrash) map[string]time.Duration { return c.steps }, name)
	}
	swCol := func(name string) []time.Duration {
		return gbStepCol(switches, func(s gbSwitch) map[string]time.Duration { return s.steps }, name)
	}
	backCol := func(name string) []time.Duration {
		return gbStepCol(backs, func(m gbMoveBack) map[string]time.Duration { return m.steps }, name)
	}

	w("The lab's group (`internal/lab`, as in `TestGroupCrashFailover`): volume `data` (protocol C, 64 MiB,")
	w("`attach = \"loop\"`) → ext4 on `/srv/data` → exec `web` (`scripts/lab-http.py`, a Python HTTP server on")
	w("port %s; its start and its monitor each run a new `python3`; monitored every second) → VIP %s,", groupWebPort, vip)
	w("on alpha (priority 100) and bravo (90), VRRP v3 with 100 ms adverts and preemption. The client")
	w("probes `GET /healthz` at the VIP on a new connection every %d ms (each probe in its own thread,", groupBenchEvery.Milliseconds())
	w("1 s timeout); the service *answers* at the first successful probe.")
	w("*Crash*: just after the client captured one of alpha's adverts, alpha's cables to the service and")
	w("replication networks are pulled and its agent is killed (SIGKILL; its service and mount stay behind,")
	w("as after a hang); the time runs from that last advert (`tcpdump -tt` in the client) to bravo's first")
	w("answer. alpha then gets its cables back and a new agent, cleans up, resyncs and takes the group back")
	w("by preemption (*move back*). *Switchover*: `hactl failover %s --wait` on the owner, alternately", lab.GroupName)
	w("alpha → bravo and back, timed from the command to the new owner's first answer. The steps come from")
	w("the nodes' `hactl status --json` (each group event's start time and duration, the VRRP instance's")
	w("last transition), on the same clock as the probes and the capture. Each cell is the median with")
	w("min–max over the runs.")
	w("")
	w("| measurement | runs | median (min–max) | goal | met |")
	w("|---|---|---|---|---|")
	goal := md + time.Second
	met := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	w("| crash: alpha's last advert → service answers at the VIP (bravo) | %d | %s | ≤ Master_Down (%s) + 1 s = %s | %s |",
		len(total), gbStats(total), gbMS(md), gbMS(goal), met(median(total) <= goal))
	w("| crash, without the service's own start (start command and first monitor) | %d | %s | ≤ %s | %s |",
		len(noSvc), gbStats(noSvc), gbMS(goal), met(median(noSvc) <= goal))
	w("| crash: cables pulled → service answers | %d | %s | | |", len(fromCut), gbStats(fromCut))
	w("| switchover: `hactl failover --wait` → service answers on the other node | %d | %s | ≤ 1 s + the service's stop and start | %s |",
		len(swTotal), gbStats(swTotal), met(median(swNet) <= time.Second))
	w("| switchover: the service's own stop (old owner) and start incl. first monitor (new owner) | %d | %s | | |", len(swSvc), gbStats(swSvc))
	w("| switchover without the service's stop and start | %d | %s | ≤ 1000 ms | %s |", len(swNet), gbStats(swNet), met(median(swNet) <= time.Second))
	w("| switchover: until `hactl failover --wait` returned | %d | %s | | |", len(swCmd), gbStats(swCmd))
	w("| move back after a crash (preemption): longest gap between answers | %d | %s | | |", len(backOut), gbStats(backOut))
	w("")

	w("Crash failover, step by step (bravo's events):")
	w("")
	biggest, biggestD := gbStepTable(w, gbCrashSteps, total, crashCol)
	w("")
	if len(crashes) > 0 {
		act := gbCol(crashes, func(c gbCrash) time.Duration { return c.steps[gbDetect] + c.steps[gbGate] })
		w("What the gate waited for, from alpha's last advert (bravo's log): its replication link declared down")
		w("(ping timeout) %s; its membership suspecting alpha %s; the activation %s. bravo's last",
			gbStats(gbCol(crashes, func(c gbCrash) time.Duration { return c.replDown })),
			gbStats(gbCol(crashes, func(c gbCrash) time.Duration { return c.suspect })), gbStats(act))
		w("activation recorded: `%s`.", crashes[len(crashes)-1].gate)
		w("")
	}
	w("Switchover, step by step (the old owner's stops, then the new owner's starts):")
	w("")
	swBiggest, swBiggestD := gbStepTable(w, gbSwitchSteps, swTotal, swCol)
	w("")
	w("Move back: bravo stopping the group (from its deactivation to the end of the demotion) %s; from then",
		gbStats(backCol(gbBackStop)))
	w("to alpha's first answer %s.", gbStats(backCol(gbBackRest)))
	w("")
	if median(total) > 0 && median(swTotal) > 0 {
		w("What dominates: in a crash, *%s* (%s of %s, %.0f %%); in a switchover, *%s* (%s of %s, %.0f %%).",
			biggest, gbMS(biggestD), gbMS(median(total)), 100*float64(biggestD)/float64(median(total)),
			swBiggest, gbMS(swBiggestD), gbMS(median(swTotal)), 100*float64(swBiggestD)/float64(median(swTotal)))
		// hactl's own largest share of a crash failover, the service aside.
		var own string
		var ownD time.Duration
		for _, n := range gbCrashSteps {
			if n != gbService && n != gbOther && median(crashCol(n)) > ownD {
				own, ownD = n, median(crashCol(n))
			}
		}
		line := fmt.Sprintf("Of hactl's own steps in a crash, *%s* is the largest (%s)", own, gbMS(ownD))
		if own == gbGate {
			later := 0
			for _, c := range crashes {
				if c.replDown > c.masterDown {
					later++
				}
			}
			line += fmt.Sprintf(": bravo's gate opens once alpha is silent on every path, and the replication link is declared down"+
				" only by its ping timeout (a ping every %s, %s to answer: %s–%s after the peer fell silent), later than Master_Down in %d of %d runs.",
				replicate.DefaultPingInterval, replicate.DefaultPingTimeout, replicate.DefaultPingTimeout, replicate.DefaultPingInterval+replicate.DefaultPingTimeout,
				later, len(crashes))
		} else {
			line += "."
		}
		w("%s", line)
		w("")
	}
	w("The lab's nodes, the client, the probes and the agents share one %d-core machine that other work", runtime.NumCPU())
	w("used at the same time (load average %s when the section was written); single runs vary with that", loadAvg())
	w("load, the medians less so. Starting a Python interpreter is slow under that load, which the")
	w("service's start and monitor rows show.")
	return b.String()
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}
