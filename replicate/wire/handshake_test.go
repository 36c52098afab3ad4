package wire

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// testListener is a Listener on an in-memory listener; dial opens a
// connection to it.
func testListener(t *testing.T, cfg Config) (l *Listener, dial func() net.Conn) {
	t.Helper()
	cfg, err := cfg.prepare()
	if err != nil {
		t.Fatal(err)
	}
	ml := &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
	l = newListener(ml, cfg)
	t.Cleanup(func() { l.Close() })
	return l, func() net.Conn {
		nc, err := ml.dial(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		return nc
	}
}

// acceptAsync runs Accept in the background.
func acceptAsync(l *Listener, ctx context.Context) <-chan result {
	ch := make(chan result, 1)
	go func() {
		link, err := l.Accept(ctx)
		ch <- result{link, err}
	}()
	return ch
}

type result struct {
	link *Link
	err  error
}

// dialAccept sets up a link from client to server and returns both sides'
// outcomes.
func dialAccept(t *testing.T, client, server Config) (c, s result) {
	t.Helper()
	l, dial := testListener(t, server)
	client.dial = func(context.Context, string) (net.Conn, error) { return dial(), nil }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := acceptAsync(l, ctx)
	c.link, c.err = Dial(ctx, "test", client)
	s = <-accepted
	for _, r := range []result{c, s} {
		if r.link != nil {
			t.Cleanup(func() { r.link.Close() })
		}
	}
	return c, s
}

// peerConn is the test's end of a connection, read and written frame by
// frame as a peer would.
func peerConn(nc net.Conn) *Conn { return newConn(nc, onData, 0) }

func mustRecv[T Msg](t *testing.T, c *Conn) T {
	t.Helper()
	m, err := c.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	v, ok := m.(T)
	if !ok {
		t.Fatalf("received %v (%+v), want %T", m.Type(), m, v)
	}
	return v
}

func mustSend(t *testing.T, c *Conn, m Msg) {
	t.Helper()
	if err := c.Send(m); err != nil {
		t.Fatalf("Send %v: %v", m.Type(), err)
	}
}

// expectRefusal reads the one Disconnect a refusing side sends and then
// the end of the stream: it sends nothing else.
func expectRefusal(t *testing.T, c *Conn, want Reason) *Disconnect {
	t.Helper()
	d := mustRecv[*Disconnect](t, c)
	if d.Reason != want {
		t.Errorf("refused with %v (%q), want %v", d.Reason, d.Text, want)
	}
	if want == ReasonAuth && d.Text != "" {
		t.Errorf("authentication refusal says %q; it must say nothing more", d.Text)
	}
	if m, err := c.Recv(); err != io.EOF {
		t.Errorf("after the Disconnect: %v, %v; want the end of the stream", m, err)
	}
	return d
}

func TestHandshake(t *testing.T) {
	c, s := dialAccept(t, testConfig("a"), testConfig("b"))
	if c.err != nil || s.err != nil {
		t.Fatalf("Dial: %v; Accept: %v", c.err, s.err)
	}
	if got := c.link.Peer(); got.Node != "b" || got.Gen != testHello("b").Gen || got.MaxVersion != ProtocolVersion {
		t.Errorf("client sees peer %+v", got)
	}
	if got := s.link.Peer(); got.Node != "a" || got.Dirty != 17 {
		t.Errorf("server sees peer %+v", got)
	}
	if c.link.Session() != s.link.Session() || c.link.Session() == (SessionID{}) {
		t.Errorf("sessions %v and %v", c.link.Session(), s.link.Session())
	}
	if c.link.Version() != ProtocolVersion || s.link.Version() != ProtocolVersion {
		t.Errorf("versions %d and %d", c.link.Version(), s.link.Version())
	}
	// Both connections work, both ways, with their own sequence numbers.
	go func() {
		c.link.Data.Send(&Barrier{Epoch: 1})
		c.link.Meta.Send(&Ping{Nonce: 1})
	}()
	if m := mustRecv[*Barrier](t, s.link.Data); m.Epoch != 1 {
		t.Errorf("barrier %d", m.Epoch)
	}
	mustRecv[*Ping](t, s.link.Meta)
	go s.link.Meta.Send(&BarrierAck{Epoch: 1, Writes: 0})
	mustRecv[*BarrierAck](t, c.link.Meta)
}

// TestWrongSecret: both sides fail with ErrAuth, whichever holds the wrong
// secret.
func TestWrongSecret(t *testing.T) {
	client, server := testConfig("a"), testConfig("b")
	client.Secret = []byte("another cluster's secret")
	c, s := dialAccept(t, client, server)
	for side, err := range map[string]error{"client": c.err, "server": s.err} {
		if !errors.Is(err, ErrAuth) {
			t.Errorf("%s: %v, want ErrAuth", side, err)
		}
	}
	var remote *RemoteError
	if !errors.As(c.err, &remote) || remote.Text != "" {
		t.Errorf("client error %v, want the server's bare refusal", c.err)
	}
}

// TestServerRefusesWrongSecret watches the server from a client with a
// wrong secret: it sends its challenge, then one Disconnect saying only
// that authentication failed, and closes.
func TestServerRefusesWrongSecret(t *testing.T) {
	l, dial := testListener(t, testConfig("b"))
	accepted := acceptAsync(l, context.Background())
	c := peerConn(dial())
	mustSend(t, c, &challenge{nonce: [32]byte{1}})
	ch := mustRecv[*challenge](t, c)
	wrong := []byte("wrong")
	mustSend(t, c, &response{mac: proof(wrong, labelClient, &[32]byte{1}, &ch.nonce)})
	expectRefusal(t, c, ReasonAuth)
	if r := <-accepted; !errors.Is(r.err, ErrAuth) {
		t.Fatalf("Accept = %v, want ErrAuth", r.err)
	}
}

// TestClientRefusesWrongSecret: a server that answers with the wrong
// secret gets one bare Disconnect from the client, and nothing else.
func TestClientRefusesWrongSecret(t *testing.T) {
	srv := serverPeer(t, func(t *testing.T, c *Conn) {
		ch := mustRecv[*challenge](t, c)
		ns := [32]byte{2}
		mustSend(t, c, &challenge{nonce: ns})
		mustRecv[*response](t, c) // not checked: this server does not know the secret
		mustSend(t, c, &response{mac: proof([]byte("wrong"), labelServer, &ch.nonce, &ns)})
		expectRefusal(t, c, ReasonAuth)
	})
	if _, err := Dial(context.Background(), "test", srv); !errors.Is(err, ErrAuth) {
		t.Fatalf("Dial = %v, want ErrAuth", err)
	}
}

// serverPeer returns a client Config whose connections go to script,
// which plays the server frame by frame.
func serverPeer(t *testing.T, script func(t *testing.T, c *Conn)) Config {
	t.Helper()
	cfg := testConfig("a")
	cfg.HandshakeTimeout = 5 * time.Second
	done := make(chan struct{})
	cfg.dial = func(context.Context, string) (net.Conn, error) {
		ours, theirs := net.Pipe()
		go func() {
			defer close(done)
			defer theirs.Close()
			script(t, peerConn(theirs))
		}()
		return ours, nil
	}
	t.Cleanup(func() { <-done })
	return cfg
}

// TestReflection: nothing a peer without the secret can make either side
// compute is accepted as a proof.
func TestReflection(t *testing.T) {
	t.Run("client's own challenge sent back", func(t *testing.T) {
		// The client must not answer its own challenge: that answer is
		// what the attacker would need.
		srv := serverPeer(t, func(t *testing.T, c *Conn) {
			ch := mustRecv[*challenge](t, c)
			mustSend(t, c, &challenge{nonce: ch.nonce})
			expectRefusal(t, c, ReasonAuth)
		})
		if _, err := Dial(context.Background(), "test", srv); !errors.Is(err, ErrAuth) {
			t.Fatalf("Dial = %v, want ErrAuth", err)
		}
	})

	t.Run("server answers nobody unproven", func(t *testing.T) {
		// An attacker opens a connection, gets the server's challenge Ns,
		// and hopes to make the server answer Ns: on a second connection
		// it offers Ns as its own challenge. The server answers no
		// challenge before the caller has answered its own, so there is
		// nothing to reflect.
		l, dial := testListener(t, testConfig("b"))
		accepted := acceptAsync(l, context.Background())
		c1 := peerConn(dial())
		mustSend(t, c1, &challenge{nonce: [32]byte{1}})
		ns := mustRecv[*challenge](t, c1).nonce
		mustSend(t, c1, &response{}) // it has no proof to give
		expectRefusal(t, c1, ReasonAuth)
		if r := <-accepted; !errors.Is(r.err, ErrAuth) {
			t.Fatalf("Accept = %v, want ErrAuth", r.err)
		}

		accepted = acceptAsync(l, context.Background())
		c2 := peerConn(dial())
		mustSend(t, c2, &challenge{nonce: ns})
		if ns2 := mustRecv[*challenge](t, c2).nonce; ns2 == ns {
			t.Fatal("the server reused its challenge")
		}
		mustSend(t, c2, &response{})
		expectRefusal(t, c2, ReasonAuth) // a Disconnect, never a Response
		if r := <-accepted; !errors.Is(r.err, ErrAuth) {
			t.Fatalf("Accept = %v, want ErrAuth", r.err)
		}
	})

	t.Run("server's proof offered as the client's", func(t *testing.T) {
		// Even the right secret with the other role's label fails: a
		// reflected server answer is useless.
		l, dial := testListener(t, testConfig("b"))
		accepted := acceptAsync(l, context.Background())
		c := peerConn(dial())
		nc := [32]byte{3}
		mustSend(t, c, &challenge{nonce: nc})
		ns := mustRecv[*challenge](t, c).nonce
		mustSend(t, c, &response{mac: proof(testSecret, labelServer, &nc, &ns)})
		expectRefusal(t, c, ReasonAuth)
		if r := <-accepted; !errors.Is(r.err, ErrAuth) {
			t.Fatalf("Accept = %v, want ErrAuth", r.err)
		}
	})
}

// TestSilentPeer: each side gives up on a peer that stops talking, after
// the handshake timeout, at any step.
func TestSilentPeer(t *testing.T) {
	const timeout = 50 * time.Millisecond

	t.Run("server never reads", func(t *testing.T) {
		cfg := testConfig("a")
		cfg.HandshakeTimeout = timeout
		var theirs net.Conn
		cfg.dial = func(context.Context, string) (net.Conn, error) {
			var ours net.Conn
			ours, theirs = net.Pipe()
			return ours, nil
		}
		_, err := Dial(context.Background(), "test", cfg)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Dial = %v, want a deadline error", err)
		}
		theirs.Close()
	})

	t.Run("server stops after its challenge", func(t *testing.T) {
		cfg := serverPeer(t, func(t *testing.T, c *Conn) {
			mustRecv[*challenge](t, c)
			mustSend(t, c, &challenge{nonce: [32]byte{9}})
			mustRecv[*response](t, c)
			c.Recv() // and nothing more, until the client gives up
		})
		cfg.HandshakeTimeout = timeout
		if _, err := Dial(context.Background(), "test", cfg); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Dial = %v, want a deadline error", err)
		}
	})

	t.Run("client never writes", func(t *testing.T) {
		cfg := testConfig("b")
		cfg.HandshakeTimeout = timeout
		l, dial := testListener(t, cfg)
		nc := dial()
		defer nc.Close()
		if _, err := l.Accept(context.Background()); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Accept = %v, want a deadline error", err)
		}
	})

	t.Run("client never opens the meta connection", func(t *testing.T) {
		cfg := testConfig("b")
		cfg.HandshakeTimeout = timeout
		l, dial := testListener(t, cfg)
		accepted := acceptAsync(l, context.Background())
		client, _ := testConfig("a").prepare()
		local, _ := client.hello()
		nc := dial()
		defer nc.Close()
		if _, _, _, err := clientData(context.Background(), &client, peerConn(nc), local); err != nil {
			t.Fatal(err)
		}
		r := <-accepted
		if !errors.Is(r.err, os.ErrDeadlineExceeded) || !strings.Contains(r.err.Error(), "no meta connection") {
			t.Fatalf("Accept = %v, want a deadline error waiting for the meta connection", r.err)
		}
	})
}

// TestCancel: cancelling ctx ends a handshake at once, whatever its
// timeout.
func TestCancel(t *testing.T) {
	cfg := testConfig("a")
	cfg.HandshakeTimeout = time.Hour
	peers := make(chan net.Conn, 1)
	cfg.dial = func(context.Context, string) (net.Conn, error) {
		ours, theirs := net.Pipe()
		peers <- theirs
		return ours, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		c := peerConn(<-peers)
		defer c.Close()
		c.Recv() // the challenge; then silence
		cancel()
	}()
	if _, err := Dial(ctx, "test", cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial = %v, want context.Canceled", err)
	}
}

// TestHelloMismatch: a Hello the other side cannot accept is refused, and
// both sides return the same error.
func TestHelloMismatch(t *testing.T) {
	for _, tc := range []struct {
		name           string
		client, server func(h *Hello, cfg *Config)
		want           error
		version        uint16 // when want is nil
	}{
		{name: "versions overlap", version: 2,
			client: func(h *Hello, _ *Config) { h.MinVersion, h.MaxVersion = 1, 3 },
			server: func(h *Hello, _ *Config) { h.MinVersion, h.MaxVersion = 2, 2 }},
		{name: "no common version", want: ErrVersion,
			client: func(h *Hello, _ *Config) { h.MinVersion, h.MaxVersion = 2, 3 },
			server: func(h *Hello, _ *Config) { h.MinVersion, h.MaxVersion = 1, 1 }},
		{name: "other volume", want: ErrWrongVolume,
			server: func(h *Hello, _ *Config) { h.Volume = "logs" }},
		{name: "other volume UUID", want: ErrWrongVolume,
			server: func(h *Hello, _ *Config) { h.VolumeUUID[0]++ }},
		{name: "one UUID unknown", version: 1,
			server: func(h *Hello, _ *Config) { h.VolumeUUID = [16]byte{} }},
		{name: "sizes differ", want: ErrSizeMismatch,
			server: func(h *Hello, _ *Config) { h.Size -= 4096 }},
		{name: "connected to itself", want: ErrWrongPeer,
			server: func(h *Hello, _ *Config) { h.Node = "a" }},
		{name: "server expects another node", want: ErrWrongPeer,
			server: func(_ *Hello, cfg *Config) { cfg.PeerNode = "c" }},
		{name: "client expects another node", want: ErrWrongPeer,
			client: func(_ *Hello, cfg *Config) { cfg.PeerNode = "c" }},
		{name: "both expect each other", version: 1,
			client: func(_ *Hello, cfg *Config) { cfg.PeerNode = "b" },
			server: func(_ *Hello, cfg *Config) { cfg.PeerNode = "a" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := configWith("a", tc.client), configWith("b", tc.server)
			c, s := dialAccept(t, client, server)
			if tc.want == nil {
				if c.err != nil || s.err != nil {
					t.Fatalf("Dial: %v; Accept: %v", c.err, s.err)
				}
				if c.link.Version() != tc.version || s.link.Version() != tc.version {
					t.Fatalf("versions %d and %d, want %d", c.link.Version(), s.link.Version(), tc.version)
				}
				return
			}
			if !errors.Is(c.err, tc.want) || !errors.Is(s.err, tc.want) {
				t.Fatalf("Dial: %v; Accept: %v; want both %v", c.err, s.err, tc.want)
			}
			// The refused side learns why.
			var remote *RemoteError
			if !errors.As(c.err, &remote) && !errors.As(s.err, &remote) {
				t.Fatalf("neither %v nor %v is the peer's refusal", c.err, s.err)
			}
			if remote.Text == "" {
				t.Errorf("refusal %v has no detail", remote)
			}
		})
	}
}

func configWith(node string, f func(*Hello, *Config)) Config {
	cfg := testConfig(node)
	h := testHello(node)
	if f != nil {
		f(&h, &cfg)
	}
	cfg.Local = func() Hello { return h }
	return cfg
}

// TestUnknownSession: a meta connection for a session nobody waits for is
// refused, on both sides.
func TestUnknownSession(t *testing.T) {
	l, dial := testListener(t, testConfig("b"))
	accepted := acceptAsync(l, context.Background())
	cfg, _ := testConfig("a").prepare()
	err := clientMeta(context.Background(), &cfg, peerConn(dial()), SessionID{1, 2, 3})
	if !errors.Is(err, ErrNoSession) {
		t.Errorf("client: %v, want ErrNoSession", err)
	}
	if r := <-accepted; !errors.Is(r.err, ErrNoSession) {
		t.Errorf("Accept: %v, want ErrNoSession", r.err)
	}
}

// TestListenerClose: Close ends a blocked Accept and the listener stays
// closed.
func TestListenerClose(t *testing.T) {
	l, _ := testListener(t, testConfig("b"))
	accepted := acceptAsync(l, context.Background())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-accepted; !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v, want net.ErrClosed", r.err)
	}
	if _, err := l.Accept(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener = %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	noSecret := testConfig("a")
	noSecret.Secret = nil
	noLocal := testConfig("a")
	noLocal.Local = nil
	badHello := configWith("a", func(h *Hello, _ *Config) { h.Size = 100 })
	for name, cfg := range map[string]Config{"no secret": noSecret, "no Local": noLocal, "bad hello": badHello} {
		cfg.dial = func(context.Context, string) (net.Conn, error) {
			t.Errorf("%s: dialed", name)
			return nil, errors.New("no")
		}
		if _, err := Dial(context.Background(), "test", cfg); err == nil {
			t.Errorf("%s: Dial succeeded", name)
		}
	}
}
