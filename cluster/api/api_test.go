package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/cluster/config"
)

// fakeBackend answers with fixed values and records requests.
type fakeBackend struct {
	status   Status
	failErr  error
	plan     Plan
	lastFail FailoverRequest
}

func (f *fakeBackend) Status() Status { return f.status }
func (f *fakeBackend) Failover(_ context.Context, r FailoverRequest) (Plan, error) {
	f.lastFail = r
	return f.plan, f.failErr
}
func (f *fakeBackend) Volume(_ context.Context, r VolumeRequest) (Plan, error) {
	return Plan{Steps: []string{r.Action + " " + r.Volume}}, nil
}
func (f *fakeBackend) Standby(context.Context, StandbyRequest) (Plan, error) {
	return Plan{}, fmt.Errorf("%w: no orchestrator", ErrNotImplemented)
}
func (f *fakeBackend) Cleanup(_ context.Context, r CleanupRequest) (Plan, error) {
	return Plan{Steps: []string{"cleanup " + r.Group}}, nil
}

func serve(t *testing.T, b Backend) (socket string) {
	t.Helper()
	socket = filepath.Join(t.TempDir(), "run", "hactl.sock")
	l, err := Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(zap.NewNop(), b)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		l.Close()
	})
	return socket
}

func TestListenSocketMode(t *testing.T) {
	socket := serve(t, &fakeBackend{})
	fi, err := os.Stat(socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, want socket with 0600", fi.Mode())
	}
	matches, _ := filepath.Glob(socket + ".*")
	if len(matches) != 0 {
		t.Fatalf("temporary socket files left: %v", matches)
	}
}

func TestListenRefusesLiveAgent(t *testing.T) {
	socket := serve(t, &fakeBackend{})
	_, err := Listen(socket)
	if err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Fatalf("second Listen = %v, want 'already listening'", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "hactl.sock")
	// A crashed agent leaves its socket file behind with nobody listening.
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	if _, err := os.Stat(socket); err != nil {
		t.Fatalf("stale socket missing: %v", err)
	}
	l, err := Listen(socket)
	if err != nil {
		t.Fatalf("Listen over stale socket: %v", err)
	}
	l.Close()
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close left the socket file: %v", err)
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hactl.sock")
	if err := os.WriteFile(path, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file = %v, want 'not a socket'", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Fatal("Listen touched a file that is not a socket")
	}
}

func TestStatusRoundTrip(t *testing.T) {
	want := Status{Schema: Schema, Cluster: "shop", Node: "alpha", Nodes: []NodeStatus{{Name: "alpha", Address: "192.0.2.11", Self: true}}}
	c := NewClient(serve(t, &fakeBackend{status: want}))
	got, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Cluster != "shop" || got.Node != "alpha" || len(got.Nodes) != 1 || !got.Nodes[0].Self {
		t.Fatalf("status = %+v", got)
	}
}

func TestStatusSchemaMismatch(t *testing.T) {
	c := NewClient(serve(t, &fakeBackend{status: Status{Schema: 99}}))
	if _, err := c.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "schema 99") {
		t.Fatalf("err = %v, want schema mismatch", err)
	}
}

func TestChangeErrors(t *testing.T) {
	b := &fakeBackend{failErr: errors.New(`no group "dbx" in the cluster file`)}
	c := NewClient(serve(t, b))

	_, err := c.Failover(context.Background(), FailoverRequest{Group: "dbx", To: "bravo", DryRun: true})
	if err == nil || err.Error() != `no group "dbx" in the cluster file` {
		t.Fatalf("failover err = %v", err)
	}
	if b.lastFail != (FailoverRequest{Group: "dbx", To: "bravo", DryRun: true}) {
		t.Fatalf("backend saw %+v", b.lastFail)
	}
	_, err = c.Standby(context.Background(), StandbyRequest{Node: "bravo"})
	if !errors.Is(err, ErrNotImplemented) || strings.Count(err.Error(), "not implemented") != 1 {
		t.Fatalf("standby err = %v, want ErrNotImplemented with the agent's message once", err)
	}
}

func TestBadRequestBody(t *testing.T) {
	socket := serve(t, &fakeBackend{})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	for _, body := range []string{`{"group": 5}`, `{"bogus": true}`, `not json`} {
		resp, err := hc.Post("http://hactl/v1/failover", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("body %q: status %d, want 400", body, resp.StatusCode)
		}
	}
	resp, err := hc.Get("http://hactl/v1/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: status %d, want 404", resp.StatusCode)
	}
}

func TestClientNoAgent(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	stale := filepath.Join(dir, "stale.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	for _, socket := range []string{missing, stale} {
		_, err := NewClient(socket).Status(context.Background())
		if !errors.Is(err, ErrAgentNotRunning) || !strings.Contains(err.Error(), socket) {
			t.Errorf("%s: err = %v, want ErrAgentNotRunning naming the socket", socket, err)
		}
	}
}

func TestConfiguredStatus(t *testing.T) {
	c := &config.Cluster{
		Name: "shop",
		File: "/etc/hactl/cluster.hcl",
		Nodes: []config.Node{
			{Name: "alpha", Address: netip.MustParseAddr("192.0.2.11"), ReplicationAddress: netip.MustParseAddr("198.51.100.11")},
			{Name: "witness", Address: netip.MustParseAddr("192.0.2.13"), Witness: true},
		},
		VRRP: []config.VRRPInstance{{
			Name: "VI_1", Interface: "eth0", VRID: 51, Version: 3, AdvertInterval: 100 * time.Millisecond,
			Priority:   map[string]uint8{"alpha": 100},
			VirtualIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")},
		}},
		Volumes: []config.Volume{{Name: "data", Protocol: config.ProtocolC, Port: 7788, Disk: map[string]string{"alpha": "/dev/vdb"}, Attach: config.AttachLoop}},
		Groups: []config.Group{{
			Name: "db", VRRP: "VI_1", Volume: "data",
			Filesystem: &config.Filesystem{Mountpoint: "/srv/data"},
			Resources:  []config.Resource{{Kind: config.KindService, Name: "postgresql"}},
		}},
	}
	alpha := ConfiguredStatus(c, "alpha")
	if alpha.Schema != 1 || alpha.Node != "alpha" || !alpha.Nodes[0].Self || alpha.Nodes[1].Self {
		t.Fatalf("header/nodes wrong: %+v", alpha)
	}
	if alpha.Nodes[1].ReplicationAddress != "" || alpha.Nodes[0].ReplicationAddress != "198.51.100.11" {
		t.Errorf("replication addresses: %+v", alpha.Nodes)
	}
	if v := alpha.VRRP[0]; v.Priority != 100 || v.State != StateNotRunning || v.AdvertInterval != "100ms" || v.VirtualIPs[0] != "192.0.2.100/24" {
		t.Errorf("vrrp: %+v", v)
	}
	if v := alpha.Volumes[0]; v.Disk != "/dev/vdb" || v.Protocol != "C" || v.Attach != "loop" {
		t.Errorf("volume: %+v", v)
	}
	wantRes := "volume:data filesystem:/srv/data service:postgresql vip:VI_1"
	if got := strings.Join(alpha.Groups[0].Resources, " "); got != wantRes {
		t.Errorf("group resources = %q, want %q", got, wantRes)
	}

	w := ConfiguredStatus(c, "witness")
	if w.VRRP[0].Priority != 0 || w.VRRP[0].State != StateNotMember || w.Volumes[0].Disk != "" {
		t.Errorf("witness view: %+v %+v", w.VRRP[0], w.Volumes[0])
	}
}
