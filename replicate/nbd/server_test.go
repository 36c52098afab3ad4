package nbd

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// listen serves s on a unix socket in a temporary directory and returns its
// path and Serve's result.
func listen(t *testing.T, s *Server) (string, <-chan error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nbd.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	return path, done
}

func dialUnix(t *testing.T, path string) *client {
	t.Helper()
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(time.Minute))
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func TestServeAndClose(t *testing.T) {
	s := newTestServer(t, Export{Name: "vol", Backend: newMemBackend(t, testSize)})
	path, served := listen(t, s)
	c := dialUnix(t, path)
	if size, _ := c.open("vol"); size != testSize {
		t.Fatalf("size %d, want %d", size, testSize)
	}
	if errno, _ := c.do(0, cmdWrite, 0, 5, []byte("hello")); errno != 0 {
		t.Fatalf("write: errno %d", errno)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	if !c.closed() {
		t.Fatal("connection still open after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "again.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := s.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close returned %v, want ErrServerClosed", err)
	}
	if st := s.Stats(); st.ConnsOpen != 0 || st.ConnsTotal != 1 || st.Writes != 1 || st.BytesWritten != 5 {
		t.Fatalf("Stats %+v", st)
	}
}

// TestShutdownWaitsForInflight: Shutdown lets a request in flight finish and
// reply, then closes the connection.
func TestShutdownWaitsForInflight(t *testing.T) {
	be := newMemBackend(t, testSize)
	s := newTestServer(t, Export{Name: "vol", Backend: be})
	path, _ := listen(t, s)
	c := dialUnix(t, path)
	c.open("vol")
	entered, release := make(chan struct{}), make(chan struct{})
	be.setHook(func(call) error {
		close(entered)
		<-release
		return nil
	})
	c.request(cmdFlagFUA, cmdWrite, 1, 0, 4096, pattern(4096, 1))
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if h, errno, _ := c.reply(nil); h != 1 || errno != 0 {
		t.Fatalf("reply handle %d errno %d, want the write's success", h, errno)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !c.closed() {
		t.Fatal("connection still open after Shutdown")
	}
}

// TestShutdownBounded: a backend that never returns does not hold Shutdown
// past its context.
func TestShutdownBounded(t *testing.T) {
	be := newMemBackend(t, testSize)
	s := newTestServer(t, Export{Name: "vol", Backend: be})
	path, _ := listen(t, s)
	c := dialUnix(t, path)
	c.open("vol")
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	be.setHook(func(call) error {
		close(entered)
		<-release
		return nil
	})
	c.request(0, cmdFlush, 1, 0, 0, nil)
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want a deadline error", err)
	}
	if !c.closed() {
		t.Fatal("connection still open after a hard shutdown")
	}
}

// TestShutdownDuringNegotiation: a client idling in negotiation does not
// delay Close.
func TestShutdownDuringNegotiation(t *testing.T) {
	s := newTestServer(t, Export{Name: "vol", Backend: newMemBackend(t, testSize)})
	path, _ := listen(t, s)
	c := dialUnix(t, path)
	c.greet(clientFixedNewstyle)
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if !c.closed() {
		t.Fatal("connection still open after Close")
	}
}

// TestNegotiationTimeout: a client that stalls the handshake is dropped.
func TestNegotiationTimeout(t *testing.T) {
	s := newTestServer(t, Export{Name: "vol", Backend: newMemBackend(t, testSize)})
	s.handshakeTimeout = 50 * time.Millisecond
	c := dial(t, s)
	c.greet(clientFixedNewstyle)
	if !c.closed() {
		t.Fatal("a stalled negotiation kept the connection")
	}
	// After GO, there is no timeout: an idle attached device is normal.
	c = dial(t, s)
	c.open("vol")
	time.Sleep(100 * time.Millisecond)
	if errno, _ := c.do(0, cmdFlush, 0, 0, nil); errno != 0 {
		t.Fatalf("flush after idling: errno %d", errno)
	}
}

func TestNewServerRejectsBadExports(t *testing.T) {
	for name, exports := range map[string][]Export{
		"no backend": {{Name: "a"}},
		"same name":  {{Name: "a", Backend: newMemBackend(t, 1)}, {Name: "a", Backend: newMemBackend(t, 1)}},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("NewServer did not panic")
				}
			}()
			NewServer(nil, exports...)
		})
	}
}
