package ocf

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/resources"
)

// root copies testdata's agent into a fresh OCF_ROOT, executable whatever
// the checkout did to its mode bits.
func root(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/resource.d/hactltest/Dummy")
	if err != nil {
		t.Fatal(err)
	}
	r := t.TempDir()
	dir := filepath.Join(r, "resource.d", "hactltest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dummy"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return r
}

func agent(t *testing.T, spec string, params map[string]string) (*Agent, string) {
	t.Helper()
	r := root(t)
	state := filepath.Join(t.TempDir(), "state")
	p := map[string]string{"state": state}
	for k, v := range params {
		p[k] = v
	}
	a := New(config.Resource{Kind: config.KindOCF, Name: "dummy1", Agent: spec, Params: p,
		Timeout: 10 * time.Second, MonitorTimeout: 5 * time.Second, MonitorInterval: 7 * time.Second}, nil)
	a.Root = r
	return a, state
}

func check(t *testing.T, what string, r resources.Result, code resources.Code, reason string) {
	t.Helper()
	if r.Code != code || !strings.Contains(r.Reason, reason) {
		t.Errorf("%s = %v, want %v with %q", what, r, code, reason)
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	for _, spec := range []string{"hactltest:Dummy", "ocf:hactltest:Dummy", "PATH"} {
		t.Run(spec, func(t *testing.T) {
			a, state := agent(t, spec, nil)
			if spec == "PATH" {
				a.r.Agent = filepath.Join(a.Root, "resource.d/hactltest/Dummy")
			}
			check(t, "probe", a.Monitor(ctx), resources.NotRunning, "OCF_NOT_RUNNING")
			check(t, "start", a.Start(ctx), resources.OK, "")
			check(t, "monitor", a.Monitor(ctx), resources.OK, "")
			check(t, "stop", a.Stop(ctx), resources.OK, "")
			check(t, "monitor after stop", a.Monitor(ctx), resources.NotRunning, "")
			check(t, "stop again", a.Stop(ctx), resources.OK, "")
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Errorf("state file after stop: %v", err)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	a, state := agent(t, "hactltest:Dummy", map[string]string{"ip": "10.0.0.5", "cidr_netmask": "24"})
	if r := a.Monitor(context.Background()); r.Code != resources.NotRunning {
		t.Fatalf("monitor = %v", r)
	}
	b, err := os.ReadFile(state + ".env")
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"OCF_ROOT=" + a.Root + "\n",
		"OCF_RESOURCE_INSTANCE=dummy1\n",
		"OCF_RESOURCE_TYPE=Dummy\n",
		"OCF_RESOURCE_PROVIDER=hactltest\n",
		"OCF_RA_VERSION_MAJOR=1\n",
		"OCF_RESKEY_ip=10.0.0.5\n",
		"OCF_RESKEY_cidr_netmask=24\n",
		"OCF_RESKEY_CRM_meta_timeout=5000\n",
		"OCF_RESKEY_CRM_meta_interval=7000\n",
		"PATH=/usr/local/sbin:",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("environment lacks %q:\n%s", want, got)
		}
	}
}

func TestExitCodes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		op     resources.Op
		exit   string
		code   resources.Code
		reason string
	}{
		{resources.OpStart, "1", resources.Soft, "OCF_ERR_GENERIC (1): the reason given"},
		{resources.OpStart, "5", resources.Hard, "OCF_ERR_INSTALLED"},
		{resources.OpStart, "6", resources.Fatal, "OCF_ERR_CONFIGURED (6): the reason given"},
		{resources.OpStop, "7", resources.OK, ""},
		{resources.OpStop, "1", resources.Soft, "the reason given"},
		{resources.OpMonitor, "7", resources.NotRunning, "OCF_NOT_RUNNING"},
		{resources.OpMonitor, "190", resources.OK, "OCF_DEGRADED"},
		{resources.OpMonitor, "42", resources.Soft, "unknown"},
	}
	for _, tc := range tests {
		a, _ := agent(t, "hactltest:Dummy", map[string]string{"fail": tc.exit, "fail_op": string(tc.op), "fail_reason": "the reason given"})
		var r resources.Result
		switch tc.op {
		case resources.OpStart:
			r = a.Start(ctx)
		case resources.OpStop:
			r = a.Stop(ctx)
		case resources.OpMonitor:
			r = a.Monitor(ctx)
		}
		check(t, string(tc.op)+" exit "+tc.exit, r, tc.code, tc.reason)
	}
}

func TestLastStderrLineWithoutExitReason(t *testing.T) {
	if got := exitReason("noise\nmore\nthe last words\n\n"); got != "the last words" {
		t.Errorf("exitReason = %q", got)
	}
	if got := exitReason("ocf-exit-reason:first\nocf-exit-reason:second\nnoise\n"); got != "second" {
		t.Errorf("exitReason = %q", got)
	}
}

func TestBadConfig(t *testing.T) {
	ctx := context.Background()
	a, _ := agent(t, "hactltest:Missing", nil)
	check(t, "missing agent", a.Start(ctx), resources.Hard, "OCF_ERR_INSTALLED")
	for _, spec := range []string{"Dummy", "a:b:c", "../x:Dummy", "hactltest:../../bin/sh", "relative/path"} {
		a, _ := agent(t, spec, nil)
		check(t, "agent "+spec, a.Start(ctx), resources.Fatal, "OCF_ERR_CONFIGURED")
	}
	a, _ = agent(t, "hactltest:Dummy", map[string]string{"bad-name": "x"})
	check(t, "bad param", a.Monitor(ctx), resources.Fatal, "bad-name")
}

func TestTimeout(t *testing.T) {
	a, _ := agent(t, "hactltest:Dummy", map[string]string{"hang": "1"})
	a.r.Timeout = 300 * time.Millisecond
	a.Grace = 200 * time.Millisecond
	began := time.Now()
	check(t, "hanging start", a.Start(context.Background()), resources.Soft, "timed out")
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("start took %s", took)
	}
}
