package logging

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeJournal is a datagram socket standing in for journald's.
type fakeJournal struct {
	path string
	conn *net.UnixConn
}

// socketPath returns a fresh path short enough for sun_path (108 bytes),
// which t.TempDir with a long subtest name may not be.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hactl-log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "journal")
}

func listenJournal(t *testing.T, path string) *fakeJournal {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fakeJournal{path: path, conn: conn}
}

// stop closes the socket and removes it, as a stopped journald leaves it.
func (f *fakeJournal) stop(t *testing.T) {
	t.Helper()
	f.conn.Close()
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
}

// receivedEntry is one parsed journal entry.
type receivedEntry struct {
	fields map[string][]string
	binary map[string]bool // fields sent in the length-prefixed form
	viaFD  bool            // the entry came in a passed memfd
	seals  int             // the memfd's seals
}

// get returns the single value of name, failing on none or several.
func (e receivedEntry) get(t *testing.T, name string) string {
	t.Helper()
	v := e.fields[name]
	if len(v) != 1 {
		t.Fatalf("field %s: got values %q, want exactly one", name, v)
	}
	return v[0]
}

// next reads one entry; entries arrive before the log call returns, so the
// deadline only keeps a broken test from hanging.
func (f *fakeJournal) next(t *testing.T) receivedEntry {
	t.Helper()
	if err := f.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := f.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatalf("receive entry: %v", err)
	}
	if oobn == 0 {
		return parseEntry(t, buf[:n])
	}

	// journald's rule: an empty datagram carrying an fd holds the entry.
	if n != 0 {
		t.Fatalf("datagram with an fd has %d bytes, want 0", n)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages: %v, %v", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights: %v, %v", fds, err)
	}
	seals, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GET_SEALS, 0)
	if err != nil {
		t.Fatalf("get seals: %v", err)
	}
	file := os.NewFile(uintptr(fds[0]), "entry")
	defer file.Close()
	// The sender's writes left the shared offset at the end.
	data, err := io.ReadAll(io.NewSectionReader(file, 0, 1<<40))
	if err != nil {
		t.Fatal(err)
	}
	e := parseEntry(t, data)
	e.viaFD, e.seals = true, seals
	return e
}

var validFieldName = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)

// parseEntry decodes the native protocol, both field forms.
func parseEntry(t *testing.T, b []byte) receivedEntry {
	t.Helper()
	e := receivedEntry{fields: map[string][]string{}, binary: map[string]bool{}}
	for len(b) > 0 {
		i := bytes.IndexAny(b, "=\n")
		if i < 0 {
			t.Fatalf("unterminated field name in %q", b)
		}
		name := string(b[:i])
		if !validFieldName.MatchString(name) {
			t.Errorf("invalid journal field name %q", name)
		}
		var value []byte
		if b[i] == '=' {
			rest := b[i+1:]
			j := bytes.IndexByte(rest, '\n')
			if j < 0 {
				t.Fatalf("field %s: unterminated value", name)
			}
			value, b = rest[:j], rest[j+1:]
		} else {
			rest := b[i+1:]
			if len(rest) < 8 {
				t.Fatalf("field %s: short length", name)
			}
			n := binary.LittleEndian.Uint64(rest)
			rest = rest[8:]
			if uint64(len(rest)) < n+1 || rest[n] != '\n' {
				t.Fatalf("field %s: length %d does not match the data", name, n)
			}
			value, b = rest[:n], rest[n+1:]
			e.binary[name] = true
		}
		e.fields[name] = append(e.fields[name], string(value))
	}
	return e
}
