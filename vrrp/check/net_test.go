package check

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/internal/netnstest"
)

// listenTCP listens on a free port of testAddr.
func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(testAddr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serveTCP accepts and closes connections on addr until the listener is
// closed.
func serveTCP(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

// closedPort returns an address on testAddr where nothing listens.
func closedPort(t *testing.T, network string) string {
	t.Helper()
	var addr string
	if network == "udp" {
		c, err := net.ListenPacket("udp", net.JoinHostPort(testAddr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		addr = c.LocalAddr().String()
		c.Close()
	} else {
		ln := listenTCP(t)
		addr = ln.Addr().String()
		ln.Close()
	}
	return addr
}

// startHTTP serves h on testAddr.
func startHTTP(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = listenTCP(t)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// startDNS runs a UDP DNS responder on testAddr: answer returns the
// datagrams to send back for a query (none to stay silent).
func startDNS(t *testing.T, answer func(name string, query []byte) [][]byte) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", net.JoinHostPort(testAddr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			q := append([]byte(nil), buf[:n]...)
			if questionEnd(q) == 0 {
				continue
			}
			for _, msg := range answer(questionName(q), q) {
				_, _ = conn.WriteTo(msg, from)
			}
		}
	}()
	return conn.LocalAddr().String()
}

// runProbe runs p with a timeout and returns whether it passed and its
// detail or error text.
func runProbe(p probe, timeout time.Duration) (ok bool, detail string, ctxErr error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	detail, err := p(ctx)
	if err != nil {
		return false, err.Error(), ctx.Err()
	}
	return true, detail, ctx.Err()
}

func TestTCPProbe(t *testing.T) {
	netnstest.Require(t)
	ln := serveTCP(t, net.JoinHostPort(testAddr, "0"))
	if ok, detail, _ := runProbe(tcpProbe(ln.Addr().String()), 10*time.Second); !ok || detail != "connected to "+ln.Addr().String() {
		t.Errorf("listening port: ok=%v %q", ok, detail)
	}
	closed := closedPort(t, "tcp")
	if ok, detail, _ := runProbe(tcpProbe(closed), 10*time.Second); ok || !strings.Contains(detail, "connection refused") {
		t.Errorf("closed port: ok=%v %q, want connection refused", ok, detail)
	}
}

func TestHTTPProbe(t *testing.T) {
	netnstest.Require(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("/moved", http.RedirectHandler("/ok", http.StatusFound))
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		// Far more than the probe reads; the server just sees the
		// connection close.
		chunk := make([]byte, 64<<10)
		for range 1 << 10 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	s := startHTTP(t, mux)

	tests := []struct {
		path       string
		want       int
		wantOK     bool
		wantDetail string
	}{
		{"/ok", 0, true, "HTTP 200"},
		{"/ok", 200, true, "HTTP 200"},
		{"/down", 200, false, "HTTP 503, want 200"},
		{"/ok", 204, false, "HTTP 200, want 204"},
		{"/empty", 204, true, "HTTP 204"},
		{"/moved", 200, false, "HTTP 302, want 200"},
		{"/moved", 302, true, "HTTP 302"},
		{"/big", 200, true, "HTTP 200"},
		{"/missing", 200, false, "HTTP 404, want 200"},
	}
	for _, tt := range tests {
		ok, detail, _ := runProbe(httpProbe(s.URL+tt.path, tt.want), 10*time.Second)
		if ok != tt.wantOK || detail != tt.wantDetail {
			t.Errorf("GET %s want %d: ok=%v %q; want ok=%v %q", tt.path, tt.want, ok, detail, tt.wantOK, tt.wantDetail)
		}
	}

	if ok, detail, _ := runProbe(httpProbe("http://"+closedPort(t, "tcp")+"/", 200), 10*time.Second); ok || !strings.Contains(detail, "connection refused") {
		t.Errorf("closed port: ok=%v %q, want connection refused", ok, detail)
	}
}

func TestDNSProbe(t *testing.T) {
	netnstest.Require(t)
	server := startDNS(t, func(name string, q []byte) [][]byte {
		switch strings.ToLower(name) {
		case "ok.test.":
			return [][]byte{dnsReply(q, 0, 1)}
		case "two.test.":
			return [][]byte{dnsReply(q, 0, 2)}
		case "nx.test.":
			return [][]byte{dnsReply(q, 3, 0)}
		case "empty.test.":
			return [][]byte{dnsReply(q, 0, 0)}
		case "spoofed-first.test.":
			// A reply with another ID first: ignored, then the real one.
			bad := dnsReply(q, 3, 0)
			bad[1]++
			return [][]byte{bad, dnsReply(q, 0, 1)}
		case "spoofed-only.test.":
			bad := dnsReply(q, 0, 1)
			bad[1]++
			return [][]byte{bad}
		}
		return nil // silent
	})
	tests := []struct {
		query      string
		wantOK     bool
		wantDetail string
		timeout    bool
	}{
		{"ok.test.", true, "1 answer for ok.test.", false},
		{"OK.test", true, "1 answer for OK.test", false},
		{"two.test.", true, "2 answers for two.test.", false},
		{"nx.test.", false, "NXDOMAIN for nx.test.", false},
		{"empty.test.", false, "NOERROR but no answer for empty.test.", false},
		{"spoofed-first.test.", true, "1 answer for spoofed-first.test.", false},
		{"spoofed-only.test.", false, "", true},
		{"silent.test.", false, "", true},
	}
	for _, tt := range tests {
		// A short timeout only where the server is silent: there it is
		// the expected outcome, anywhere else a long one avoids flakes.
		timeout := 10 * time.Second
		if tt.timeout {
			timeout = 300 * time.Millisecond
		}
		ok, detail, ctxErr := runProbe(dnsProbe(server, tt.query), timeout)
		switch {
		case ok != tt.wantOK:
			t.Errorf("%s: ok=%v %q, want ok=%v", tt.query, ok, detail, tt.wantOK)
		case tt.timeout && !errors.Is(ctxErr, context.DeadlineExceeded):
			t.Errorf("%s: ended with %q before the timeout", tt.query, detail)
		case !tt.timeout && detail != tt.wantDetail:
			t.Errorf("%s: %q, want %q", tt.query, detail, tt.wantDetail)
		}
	}

	if ok, detail, _ := runProbe(dnsProbe(closedPort(t, "udp"), "ok.test."), 10*time.Second); ok || !strings.Contains(detail, "connection refused") {
		t.Errorf("closed port: ok=%v %q, want connection refused", ok, detail)
	}
	if ok, detail, _ := runProbe(dnsProbe(server, "bad..name"), 10*time.Second); ok || !strings.Contains(detail, "invalid DNS name") {
		t.Errorf("bad name: ok=%v %q", ok, detail)
	}
}

// TestRunnerNetworkKinds runs one check of each network kind through Start,
// breaks each service and repairs it, and expects exactly one Update per
// change and check.
func TestRunnerNetworkKinds(t *testing.T) {
	netnstest.Require(t)
	var httpStatus atomic.Int32
	httpStatus.Store(http.StatusOK)
	web := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(httpStatus.Load()))
	}))
	var dnsRcode atomic.Int32
	dns := startDNS(t, func(_ string, q []byte) [][]byte {
		rcode := byte(dnsRcode.Load())
		n := 1
		if rcode != 0 {
			n = 0
		}
		return [][]byte{dnsReply(q, rcode, n)}
	})
	ln := serveTCP(t, net.JoinHostPort(testAddr, "0"))
	tcpAddr := ln.Addr().String()

	const interval = 20 * time.Millisecond
	var rec recorder
	r := Start(context.Background(), []config.Check{
		{Name: "tcp", Kind: config.CheckTCP, Address: tcpAddr, Interval: interval, Timeout: 10 * time.Second, Rise: 2, Fall: 2, Weight: -1},
		{Name: "http", Kind: config.CheckHTTP, Address: web.URL + "/", Status: 200, Interval: interval, Timeout: 10 * time.Second, Rise: 2, Fall: 2, Weight: -2},
		{Name: "dns", Kind: config.CheckDNS, Address: dns, Query: "shop.test.", Interval: interval, Timeout: 10 * time.Second, Rise: 2, Fall: 2, Weight: 0},
	}, rec.notify)
	defer r.Stop()

	counts := func(ok bool, n int) func() bool {
		return func() bool {
			for _, s := range r.Status() {
				if (ok && s.ConsecutiveOK < n) || (!ok && s.ConsecutiveFail < n) {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "every check passing 3 times", counts(true, 3))
	if got := rec.get(); len(got) != 0 {
		t.Fatalf("updates while healthy: %+v", got)
	}

	// Break all three.
	ln.Close()
	httpStatus.Store(http.StatusServiceUnavailable)
	dnsRcode.Store(2) // SERVFAIL
	waitFor(t, "every check failing 4 times", counts(false, 4))
	want := map[string]struct {
		weight int
		detail string
	}{
		"tcp":  {-1, "connection refused"},
		"http": {-2, "HTTP 503, want 200"},
		"dns":  {0, "SERVFAIL for shop.test."},
	}
	got := rec.get()
	if len(got) != 3 {
		t.Fatalf("updates after breaking %+v, want 3", got)
	}
	for _, u := range got {
		w, ok := want[u.Check]
		if !ok || !u.Failing || u.Weight != w.weight || !strings.Contains(u.Detail, w.detail) {
			t.Errorf("update %+v, want failing, weight %d, detail with %q", u, w.weight, w.detail)
		}
		delete(want, u.Check)
	}
	if prio, fault := Priority(100, got); prio != 97 || !fault {
		t.Errorf("Priority = %d, %v; want 97, fault", prio, fault)
	}

	// Repair.
	serveTCP(t, tcpAddr)
	httpStatus.Store(http.StatusOK)
	dnsRcode.Store(0)
	waitFor(t, "every check passing 3 times again", counts(true, 3))
	got = rec.get()[3:]
	if len(got) != 3 {
		t.Fatalf("updates after repair %+v, want 3", got)
	}
	for _, u := range got {
		if u.Failing {
			t.Errorf("update %+v, want passing", u)
		}
	}
}

// TestStopWaitsForNetworkProbes: Stop interrupts an HTTP probe whose
// server never answers and a DNS probe whose server stays silent, both
// with a long timeout.
func TestStopWaitsForNetworkProbes(t *testing.T) {
	netnstest.Require(t)
	inHTTP := make(chan struct{}, 1)
	release := make(chan struct{})
	web := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case inHTTP <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	inDNS := make(chan struct{}, 1)
	dns := startDNS(t, func(string, []byte) [][]byte {
		select {
		case inDNS <- struct{}{}:
		default:
		}
		return nil
	})
	var rec recorder
	r := Start(context.Background(), []config.Check{
		{Name: "http", Kind: config.CheckHTTP, Address: web.URL, Status: 200, Interval: time.Hour, Timeout: time.Hour, Rise: 1, Fall: 1},
		{Name: "dns", Kind: config.CheckDNS, Address: dns, Query: "shop.test.", Interval: time.Hour, Timeout: time.Hour, Rise: 1, Fall: 1},
	}, rec.notify)
	for _, c := range []chan struct{}{inHTTP, inDNS} {
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatal("probe did not reach its server")
		}
	}
	stopped := make(chan struct{})
	go func() {
		r.Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return while probes hang")
	}
	if got := rec.get(); len(got) != 0 {
		t.Errorf("updates %+v from probes cut short by Stop", got)
	}
	for _, s := range r.Status() {
		if !s.LastRun.IsZero() {
			t.Errorf("%s recorded a probe cut short by Stop: %+v", s.Name, s)
		}
	}
}
