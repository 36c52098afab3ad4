package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestNotifyReachesSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n := FromEnv(env(map[string]string{"NOTIFY_SOCKET": path}))
	if !n.Enabled() {
		t.Fatal("notifier with NOTIFY_SOCKET not enabled")
	}
	for _, tc := range []struct {
		send func() error
		want string
	}{
		{n.Ready, "READY=1"},
		{n.Watchdog, "WATCHDOG=1"},
		{n.Stopping, "STOPPING=1"},
	} {
		if err := tc.send(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256)
		_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := l.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:k]); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	n := FromEnv(env(nil))
	if n.Enabled() || n.Ready() != nil {
		t.Fatal("a notifier without NOTIFY_SOCKET must do nothing and not fail")
	}
}

func TestNotifyDeadSocket(t *testing.T) {
	n := FromEnv(env(map[string]string{"NOTIFY_SOCKET": filepath.Join(t.TempDir(), "gone")}))
	if err := n.Ready(); err == nil {
		t.Fatal("notify to a missing socket did not fail")
	}
}

func TestWatchdogInterval(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want time.Duration
	}{
		{nil, 0},
		{map[string]string{"WATCHDOG_USEC": "10000000"}, 5 * time.Second},
		{map[string]string{"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "42"}, 5 * time.Second},
		{map[string]string{"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "43"}, 0},
		{map[string]string{"WATCHDOG_USEC": "junk"}, 0},
		{map[string]string{"WATCHDOG_USEC": "0"}, 0},
	}
	for _, tt := range tests {
		if got := WatchdogInterval(env(tt.env), 42); got != tt.want {
			t.Errorf("WatchdogInterval(%v) = %v, want %v", tt.env, got, tt.want)
		}
	}
}
