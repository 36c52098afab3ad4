package wire

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Every connection starts with a mutual challenge-response over the
// cluster secret, client (the dialer) first:
//
//	C→S Challenge{Nc}
//	S→C Challenge{Ns}
//	C→S Response{HMAC(secret, "…client" ‖ Nc ‖ Ns)}   S checks; wrong → Disconnect{auth}
//	S→C Response{HMAC(secret, "…server" ‖ Nc ‖ Ns)}   C checks; wrong → Disconnect{auth}
//
// The client answers first so that a server gives nothing computed from a
// caller's nonce to a caller that has not proven itself. The role label
// makes one side's answer useless as the other's, so a response reflected
// back, or fetched from a second connection, does not verify; both nonces
// bind it to this connection. Comparison is constant-time.
//
// This keeps out nodes without the secret (another cluster, a stale
// config, a port scanner); it does not make the stream private or protect
// it from an attacker on the path, which would need TLS.
const (
	labelClient  = "hactl replicate v1 client"
	labelServer  = "hactl replicate v1 server"
	labelSession = "hactl replicate v1 session"
)

func proof(secret []byte, label string, nc, ns *[nonceLen]byte) [nonceLen]byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(label))
	h.Write(nc[:])
	h.Write(ns[:])
	var out [nonceLen]byte
	h.Sum(out[:0])
	return out
}

// sessionID names the link a data connection's handshake opened; its meta
// connection presents it in a Join. Both sides derive it, so it is never
// sent before the meta connection is itself authenticated.
func sessionID(secret []byte, nc, ns *[nonceLen]byte) SessionID {
	p := proof(secret, labelSession, nc, ns)
	var s SessionID
	copy(s[:], p[:])
	return s
}

// nonces are a connection's two challenges.
type nonces struct{ client, server [nonceLen]byte }

func clientAuth(s *step, secret []byte) (nonces, error) {
	var n nonces
	rand.Read(n.client[:])
	if err := s.send(&challenge{nonce: n.client}); err != nil {
		return n, err
	}
	ch, err := recvAs[*challenge](s)
	if err != nil {
		return n, err
	}
	n.server = ch.nonce
	if n.server == n.client {
		// Our own challenge, sent back for us to answer.
		return n, s.refuse(&refusal{ReasonAuth, "the peer reflected our challenge"})
	}
	if err := s.send(&response{mac: proof(secret, labelClient, &n.client, &n.server)}); err != nil {
		return n, err
	}
	r, err := recvAs[*response](s)
	if err != nil {
		return n, err
	}
	want := proof(secret, labelServer, &n.client, &n.server)
	if !hmac.Equal(r.mac[:], want[:]) {
		return n, s.refuse(&refusal{ReasonAuth, "the peer's answer to our challenge is wrong: it holds another secret"})
	}
	return n, nil
}

func serverAuth(s *step, secret []byte) (nonces, error) {
	var n nonces
	ch, err := recvAs[*challenge](s)
	if err != nil {
		return n, err
	}
	n.client = ch.nonce
	rand.Read(n.server[:])
	if err := s.send(&challenge{nonce: n.server}); err != nil {
		return n, err
	}
	r, err := recvAs[*response](s)
	if err != nil {
		return n, err
	}
	want := proof(secret, labelClient, &n.client, &n.server)
	if !hmac.Equal(r.mac[:], want[:]) {
		return n, s.refuse(&refusal{ReasonAuth, "the peer's answer to our challenge is wrong: it holds another secret"})
	}
	return n, s.send(&response{mac: proof(secret, labelServer, &n.client, &n.server)})
}

// agree checks the peer's Hello against ours and returns the protocol
// version of the link. Every check is symmetric except peerNode's, so the
// side that reads the other's Hello first finds any mismatch.
func agree(local, peer *Hello, peerNode string) (uint16, error) {
	v := min(local.MaxVersion, peer.MaxVersion)
	if v < max(local.MinVersion, peer.MinVersion) {
		return 0, &refusal{ReasonVersion, fmt.Sprintf("%s speaks protocol versions %d..%d, %s %d..%d",
			local.Node, local.MinVersion, local.MaxVersion, peer.Node, peer.MinVersion, peer.MaxVersion)}
	}
	if peer.Volume != local.Volume {
		return 0, &refusal{ReasonWrongVolume, fmt.Sprintf("%s serves volume %q on this port, %s %q",
			local.Node, local.Volume, peer.Node, peer.Volume)}
	}
	if local.VolumeUUID != ([16]byte{}) && peer.VolumeUUID != ([16]byte{}) && local.VolumeUUID != peer.VolumeUUID {
		return 0, &refusal{ReasonWrongVolume, fmt.Sprintf("volume %q has UUID %x on %s, %x on %s",
			local.Volume, local.VolumeUUID, local.Node, peer.VolumeUUID, peer.Node)}
	}
	if peer.Node == local.Node {
		return 0, &refusal{ReasonWrongPeer, fmt.Sprintf("both ends are node %q: connected to itself?", local.Node)}
	}
	if peerNode != "" && peer.Node != peerNode {
		return 0, &refusal{ReasonWrongPeer, fmt.Sprintf("%s expects node %q, got %q", local.Node, peerNode, peer.Node)}
	}
	if peer.Size != local.Size {
		return 0, &refusal{ReasonSize, fmt.Sprintf("volume %q is %d bytes on %s, %d on %s",
			local.Volume, local.Size, local.Node, peer.Size, peer.Node)}
	}
	return v, nil
}

// refusal is a handshake failure this side found: it is returned locally
// and sent to the peer as a Disconnect.
type refusal struct {
	reason Reason
	detail string
}

func (r *refusal) Error() string {
	if err := r.reason.Err(); err != nil {
		return err.Error() + ": " + r.detail
	}
	return r.reason.String() + ": " + r.detail
}
func (r *refusal) Unwrap() error { return r.reason.Err() }

// step runs a handshake on one connection: each frame written or read
// gets HandshakeTimeout, and ctx cancels whatever is under way.
type step struct {
	ctx     context.Context
	c       *Conn
	timeout time.Duration

	mu        sync.Mutex
	cancelled bool
	stopCtx   func() bool
}

// longAgo, as a deadline, fails blocked and future I/O at once.
var longAgo = time.Unix(1, 0)

func newStep(ctx context.Context, c *Conn, timeout time.Duration) *step {
	s := &step{ctx: ctx, c: c, timeout: timeout}
	s.stopCtx = context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.cancelled = true
		s.c.nc.SetDeadline(longAgo)
	})
	return s
}

// arm gives the next step its deadline, unless ctx already ended the
// handshake: the mutex keeps a new deadline from undoing a cancellation.
func (s *step) arm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cancelled {
		s.c.nc.SetDeadline(time.Now().Add(s.timeout))
	}
}

// finish ends the handshake: no more deadlines, none left behind.
func (s *step) finish() error {
	if !s.stopCtx() {
		return s.ctx.Err()
	}
	return s.c.nc.SetDeadline(time.Time{})
}

func (s *step) send(m Msg) error {
	s.arm()
	return s.fail(s.c.send(m))
}

// recv reads the next handshake frame; a Disconnect becomes a
// *RemoteError.
func (s *step) recv() (Msg, error) {
	s.arm()
	m, err := s.c.recv()
	if err != nil {
		return nil, s.fail(err)
	}
	if d, ok := m.(*Disconnect); ok {
		return nil, &RemoteError{Reason: d.Reason, Text: d.Text}
	}
	return m, nil
}

func recvAs[T Msg](s *step) (T, error) {
	var zero T
	m, err := s.recv()
	if err != nil {
		return zero, err
	}
	t, ok := m.(T)
	if !ok {
		return zero, s.refuse(fmt.Errorf("%w: %v, want %v", ErrUnexpected, m.Type(), zero.Type()))
	}
	return t, nil
}

// fail reports an I/O error as the cancellation that caused it, if any.
func (s *step) fail(err error) error {
	if err != nil && s.ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", s.ctx.Err(), err)
	}
	return err
}

// refuse tells the peer why we give up, in one Disconnect and nothing
// else, and returns err. An authentication failure is told as just that.
func (s *step) refuse(err error) error {
	d := &Disconnect{Reason: reasonFor(err)}
	var r *refusal
	switch {
	case d.Reason == ReasonAuth:
	case errors.As(err, &r):
		d.Text = clip(r.detail)
	default:
		d.Text = clip(err.Error())
	}
	s.send(d) // best effort: we are closing anyway
	return err
}

// clip makes s fit a Disconnect's text: printable, at most MaxText bytes.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if !printable(string(r)) {
			return '?'
		}
		return r
	}, s)
	for len(s) > MaxText {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}
