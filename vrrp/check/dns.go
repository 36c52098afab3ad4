package check

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// DNS message constants (RFC 1035 §4.1).
const (
	dnsHeaderLen = 12
	dnsMaxName   = 255 // bytes of a name in wire format
	dnsMaxLabel  = 63
	dnsMaxUDP    = 512 // a reply without EDNS fits; we only read its start anyway

	flagQR    = 0x80 // in byte 2: the message is a response
	flagTC    = 0x02 // in byte 2: truncated
	flagRD    = 0x01 // in byte 2: recursion desired
	rcodeMask = 0x0f // in byte 3

	typeA   = 1
	classIN = 1
)

// errNotReply marks a datagram that does not answer our query: a late
// reply to an earlier probe, or someone guessing. It is ignored rather
// than counted, so it can neither pass nor fail the check.
var errNotReply = errors.New("not a reply to the query")

// dnsProbe passes when server (host:port) answers an A query for name
// with NOERROR and at least one answer. The query is hand-built: one
// question is all we need, and it keeps the module free of a DNS library.
func dnsProbe(server, name string) probe {
	return func(ctx context.Context) (string, error) {
		// A random ID, so that only the server that got the query can
		// answer it (RFC 5452).
		var id [2]byte
		_, _ = rand.Read(id[:]) // never fails since Go 1.24
		query, err := newQuery(binary.BigEndian.Uint16(id[:]), name)
		if err != nil {
			return "", err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "udp", server)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		// A connected socket: the kernel drops datagrams from any other
		// address. Reads end when ctx does, not at a deadline of their own,
		// so the runner sees a timeout as a timeout.
		stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
		defer stop()
		if _, err := conn.Write(query); err != nil {
			return "", err
		}
		buf := make([]byte, dnsMaxUDP)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return "", err
			}
			answers, err := replyAnswers(query, buf[:n])
			switch {
			case errors.Is(err, errNotReply):
				continue
			case err != nil:
				return "", fmt.Errorf("%w for %s", err, name)
			case answers == 1:
				return "1 answer for " + name, nil
			default:
				return fmt.Sprintf("%d answers for %s", answers, name), nil
			}
		}
	}
}

// newQuery builds a standard query with recursion desired for the A
// records of name ("shop.example." or "shop.example").
func newQuery(id uint16, name string) ([]byte, error) {
	msg := make([]byte, dnsHeaderLen, dnsHeaderLen+len(name)+2+4)
	binary.BigEndian.PutUint16(msg[0:], id)
	msg[2] = flagRD
	binary.BigEndian.PutUint16(msg[4:], 1) // QDCOUNT
	msg, err := appendName(msg, name)
	if err != nil {
		return nil, err
	}
	msg = binary.BigEndian.AppendUint16(msg, typeA)
	msg = binary.BigEndian.AppendUint16(msg, classIN)
	return msg, nil
}

// appendName appends name as a sequence of length-prefixed labels ending
// with the root's empty label. Escapes such as "\." are not supported;
// host names do not need them.
func appendName(b []byte, name string) ([]byte, error) {
	start := len(b)
	if trimmed := strings.TrimSuffix(name, "."); trimmed != "" {
		for label := range strings.SplitSeq(trimmed, ".") {
			if label == "" || len(label) > dnsMaxLabel {
				return nil, fmt.Errorf("invalid DNS name %q: labels must be 1 to %d bytes", name, dnsMaxLabel)
			}
			b = append(b, byte(len(label)))
			b = append(b, label...)
		}
	}
	b = append(b, 0)
	if len(b)-start > dnsMaxName {
		return nil, fmt.Errorf("invalid DNS name %q: longer than %d bytes", name, dnsMaxName)
	}
	return b, nil
}

// replyAnswers checks that msg is the reply to query and returns its
// number of answers. It returns errNotReply for a message to ignore, and
// another error when the server answered but not with a usable answer.
func replyAnswers(query, msg []byte) (int, error) {
	if len(msg) < dnsHeaderLen || msg[0] != query[0] || msg[1] != query[1] || msg[2]&flagQR == 0 {
		return 0, errNotReply
	}
	// The question comes right after the header and cannot be compressed,
	// so it compares byte for byte, except that servers may change the
	// case of the name.
	question := query[dnsHeaderLen:]
	switch binary.BigEndian.Uint16(msg[4:]) {
	case 1:
		if len(msg) < dnsHeaderLen+len(question) || !equalFoldASCII(msg[dnsHeaderLen:dnsHeaderLen+len(question)], question) {
			return 0, errNotReply
		}
	case 0:
		// Some servers leave the question out of error replies.
	default:
		return 0, errNotReply
	}
	if rcode := msg[3] & rcodeMask; rcode != 0 {
		return 0, errors.New(rcodeName(rcode))
	}
	answers := int(binary.BigEndian.Uint16(msg[6:]))
	if answers == 0 {
		if msg[2]&flagTC != 0 {
			return 0, errors.New("NOERROR but truncated with no answer")
		}
		return 0, errors.New("NOERROR but no answer")
	}
	return answers, nil
}

func rcodeName(rcode byte) string {
	switch rcode {
	case 1:
		return "FORMERR"
	case 2:
		return "SERVFAIL"
	case 3:
		return "NXDOMAIN"
	case 4:
		return "NOTIMP"
	case 5:
		return "REFUSED"
	}
	return fmt.Sprintf("RCODE %d", rcode)
}

func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
