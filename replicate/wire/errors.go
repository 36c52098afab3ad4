package wire

import (
	"errors"
	"fmt"
)

// Errors callers branch on. Like every error of this package's
// internals they carry no "wire:" prefix; the exported operations add it
// once. A handshake failure is reported on both sides
// with the same sentinel: the side that detects it returns the sentinel and
// tells the peer with a Disconnect whose reason maps back to it (see
// RemoteError).
var (
	// ErrAuth: the peer does not hold the cluster secret (or we do not).
	ErrAuth = errors.New("authentication failed")
	// ErrVersion: no protocol version both sides speak, or a frame of an
	// unknown layout version.
	ErrVersion = errors.New("no common protocol version")
	// ErrSizeMismatch: the two disks of the volume differ in size.
	ErrSizeMismatch = errors.New("volume sizes differ")
	// ErrWrongVolume: the peer serves another volume on this port.
	ErrWrongVolume = errors.New("peer serves a different volume")
	// ErrWrongPeer: the peer is not the node we expect (or is ourselves).
	ErrWrongPeer = errors.New("unexpected peer node")
	// ErrNoSession: a meta connection names no data connection waiting
	// for it (the listener restarted, or it came too late).
	ErrNoSession = errors.New("no such session")
	// ErrPingTimeout: the peer did not answer a ping in time.
	ErrPingTimeout = errors.New("ping timeout")
	// ErrProtocol matches every protocol violation below: the stream can
	// no longer be trusted and the link must be dropped.
	ErrProtocol = errors.New("protocol violation")
)

// Protocol violations. Each matches ErrProtocol with errors.Is as well as
// itself.
var (
	ErrBadMagic    error = protocolError("bad frame magic")
	ErrTooLarge    error = protocolError("frame larger than its type allows")
	ErrUnknownType error = protocolError("unknown message type")
	ErrSequence    error = protocolError("sequence number out of order")
	ErrMalformed   error = protocolError("malformed message")
	ErrUnexpected  error = protocolError("unexpected message")
)

type protocolError string

func (e protocolError) Error() string        { return string(e) }
func (e protocolError) Is(target error) bool { return target == ErrProtocol }

// malformed wraps ErrMalformed with what was wrong.
func malformed(t Type, format string, args ...any) error {
	return fmt.Errorf("%w: %v: %s", ErrMalformed, t, fmt.Sprintf(format, args...))
}

// Reason says why a side closes the link; it travels in Disconnect.
type Reason uint16

// Reasons. The handshake ones map to the sentinel errors above; the others
// are for the engine, with details in Disconnect.Text.
const (
	ReasonShutdown    Reason = 1  // orderly close: going down, or asked to
	ReasonAuth        Reason = 2  // authentication failed; never with text
	ReasonVersion     Reason = 3  // no common protocol version
	ReasonSize        Reason = 4  // volume sizes differ
	ReasonWrongVolume Reason = 5  // different volume name or UUID
	ReasonWrongPeer   Reason = 6  // not the expected node
	ReasonNoSession   Reason = 7  // meta connection for an unknown session
	ReasonProtocol    Reason = 8  // the sender saw a protocol violation
	ReasonSplitBrain  Reason = 9  // the data diverged; an operator decides
	ReasonUnrelated   Reason = 10 // generation identifiers share no history
	ReasonPolicy      Reason = 11 // refused by configuration (Text says which)
	ReasonIOError     Reason = 12 // the sender's disk failed
	maxReason                = ReasonIOError
)

var reasonNames = [...]string{
	ReasonShutdown:    "shutdown",
	ReasonAuth:        "authentication failed",
	ReasonVersion:     "no common protocol version",
	ReasonSize:        "volume sizes differ",
	ReasonWrongVolume: "wrong volume",
	ReasonWrongPeer:   "wrong peer",
	ReasonNoSession:   "no such session",
	ReasonProtocol:    "protocol violation",
	ReasonSplitBrain:  "split brain",
	ReasonUnrelated:   "unrelated data",
	ReasonPolicy:      "refused by policy",
	ReasonIOError:     "disk failure",
}

func (r Reason) String() string {
	if r >= 1 && r <= maxReason {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint16(r))
}

// Err returns the sentinel error a reason stands for, or nil.
func (r Reason) Err() error {
	switch r {
	case ReasonAuth:
		return ErrAuth
	case ReasonVersion:
		return ErrVersion
	case ReasonSize:
		return ErrSizeMismatch
	case ReasonWrongVolume:
		return ErrWrongVolume
	case ReasonWrongPeer:
		return ErrWrongPeer
	case ReasonNoSession:
		return ErrNoSession
	case ReasonProtocol:
		return ErrProtocol
	}
	return nil
}

// reasonFor is the Disconnect reason that reports err to the peer.
func reasonFor(err error) Reason {
	for _, r := range []Reason{ReasonAuth, ReasonVersion, ReasonSize, ReasonWrongVolume, ReasonWrongPeer, ReasonNoSession} {
		if errors.Is(err, r.Err()) {
			return r
		}
	}
	return ReasonProtocol
}

// RemoteError is a Disconnect the peer sent while the link was being set
// up. It unwraps to the sentinel of its reason, so
// errors.Is(err, ErrAuth) holds on the side that was refused too.
type RemoteError struct {
	Reason Reason
	Text   string
}

func (e *RemoteError) Error() string {
	if e.Text == "" {
		return "peer refused: " + e.Reason.String()
	}
	return "peer refused: " + e.Reason.String() + ": " + e.Text
}

func (e *RemoteError) Unwrap() error { return e.Reason.Err() }
