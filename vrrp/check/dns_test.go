package check

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestNewQuery(t *testing.T) {
	want := []byte{
		0xbe, 0xef, // ID
		0x01, 0x00, // RD
		0, 1, 0, 0, 0, 0, 0, 0, // one question
		7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
		0, 1, 0, 1, // A, IN
	}
	for _, name := range []string{"example.com.", "example.com"} {
		got, err := newQuery(0xbeef, name)
		if err != nil {
			t.Fatalf("newQuery(%q): %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("newQuery(%q) =\n% x\nwant\n% x", name, got, want)
		}
	}

	root, err := newQuery(1, ".")
	if err != nil || !bytes.Equal(root[dnsHeaderLen:], []byte{0, 0, 1, 0, 1}) {
		t.Errorf("newQuery(\".\") = % x, %v; want the root name", root, err)
	}

	label63 := strings.Repeat("a", 63)
	if _, err := newQuery(1, label63+".example."); err != nil {
		t.Errorf("63-byte label: %v", err)
	}
	// 4 labels of 63 bytes take 4*64+1 = 257 bytes on the wire.
	tooLong := strings.Repeat(label63+".", 4)
	for _, name := range []string{"a..example.", ".example.", label63 + "a.example.", tooLong} {
		if _, err := newQuery(1, name); err == nil {
			t.Errorf("newQuery(%q) succeeded, want an error", name)
		}
	}
}

// dnsReply builds the server's reply to query: rcode and n A records.
func dnsReply(query []byte, rcode byte, n int) []byte {
	end := questionEnd(query)
	msg := append([]byte(nil), query[:end]...)
	msg[2] = flagQR | query[2]&flagRD
	msg[3] = 0x80 | rcode // RA
	binary.BigEndian.PutUint16(msg[6:], uint16(n))
	for i := range n {
		msg = append(msg,
			0xc0, dnsHeaderLen, // pointer to the question's name
			0, typeA, 0, classIN,
			0, 0, 0, 60, // TTL
			0, 4, 192, 0, 2, byte(10+i))
	}
	return msg
}

// questionEnd returns the offset just past the first question of msg, or
// 0 if it is malformed.
func questionEnd(msg []byte) int {
	i := dnsHeaderLen
	for i < len(msg) && msg[i] != 0 {
		i += 1 + int(msg[i])
	}
	if i+5 > len(msg) {
		return 0
	}
	return i + 5
}

// questionName returns the name asked for in msg, "example.com.".
func questionName(msg []byte) string {
	var b strings.Builder
	for i := dnsHeaderLen; i < len(msg) && msg[i] != 0; i += 1 + int(msg[i]) {
		if i+1+int(msg[i]) > len(msg) {
			return ""
		}
		b.Write(msg[i+1 : i+1+int(msg[i])])
		b.WriteByte('.')
	}
	return b.String()
}

func TestReplyAnswers(t *testing.T) {
	query, err := newQuery(0x1234, "shop.example.")
	if err != nil {
		t.Fatal(err)
	}
	edit := func(msg []byte, f func([]byte)) []byte {
		msg = append([]byte(nil), msg...)
		f(msg)
		return msg
	}
	ok := dnsReply(query, 0, 1)
	tests := []struct {
		name    string
		msg     []byte
		want    int
		wantErr string // "" = none; errNotReply's text for errNotReply
	}{
		{"one answer", ok, 1, ""},
		{"two answers", dnsReply(query, 0, 2), 2, ""},
		{"name in other case", edit(ok, func(m []byte) { m[13] = 'S' }), 1, ""},
		{"NXDOMAIN", dnsReply(query, 3, 0), 0, "NXDOMAIN"},
		{"SERVFAIL", dnsReply(query, 2, 0), 0, "SERVFAIL"},
		{"unknown rcode", dnsReply(query, 9, 0), 0, "RCODE 9"},
		{"no answer", dnsReply(query, 0, 0), 0, "NOERROR but no answer"},
		{"truncated", edit(dnsReply(query, 0, 0), func(m []byte) { m[2] |= flagTC }), 0, "NOERROR but truncated with no answer"},
		{"refused without question", edit(dnsReply(query, 5, 0)[:dnsHeaderLen], func(m []byte) { m[5] = 0 }), 0, "REFUSED"},
		{"other ID", edit(ok, func(m []byte) { m[1]++ }), 0, errNotReply.Error()},
		{"a query, not a reply", query, 0, errNotReply.Error()},
		{"other name", edit(ok, func(m []byte) { m[14] = 'x' }), 0, errNotReply.Error()},
		{"other type", edit(ok, func(m []byte) { m[questionEnd(m)-3] = 28 }), 0, errNotReply.Error()},
		{"two questions", edit(ok, func(m []byte) { m[5] = 2 }), 0, errNotReply.Error()},
		{"short header", ok[:11], 0, errNotReply.Error()},
		{"cut in the question", ok[:20], 0, errNotReply.Error()},
		{"empty", nil, 0, errNotReply.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := replyAnswers(query, tt.msg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v, want %d answers", err, tt.want)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			case tt.wantErr == errNotReply.Error() && !errors.Is(err, errNotReply):
				t.Fatalf("error %v is not errNotReply", err)
			case got != tt.want:
				t.Fatalf("%d answers, want %d", got, tt.want)
			}
		})
	}
}

func FuzzReplyAnswers(f *testing.F) {
	query, err := newQuery(0x1234, "shop.example.")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(dnsReply(query, 0, 1))
	f.Add(dnsReply(query, 3, 0))
	f.Add(query)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, msg []byte) {
		n, err := replyAnswers(query, msg)
		if err == nil && n < 1 {
			t.Fatalf("passed with %d answers", n)
		}
		if err != nil && n != 0 {
			t.Fatalf("error %v with %d answers", err, n)
		}
	})
}
