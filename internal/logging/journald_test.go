package logging

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"
)

func newJournalLogger(t *testing.T, path string, out *bytes.Buffer) *zap.Logger {
	t.Helper()
	opts := Options{Format: FormatJournald, Level: zapcore.DebugLevel, JournalSocket: path}
	if out != nil {
		opts.Output = out
	}
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type failingObject struct{}

func (failingObject) MarshalLogObject(zapcore.ObjectEncoder) error {
	return errors.New("cannot marshal")
}

func TestJournalFields(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		name   string
		log    func(l *zap.Logger)
		want   map[string]string // every field but CODE_*
		binary []string          // fields that must use the length-prefixed form
	}{
		{
			name: "with and call-site fields of every kind",
			log: func(l *zap.Logger) {
				l.Named("vrrp").With(zap.Int(KeyVRID, 7), zap.String(KeyNode, "alpha")).Info("became master",
					zap.String(KeyEvent, "transition"),
					zap.String(KeyFrom, "backup"),
					zap.String(KeyTo, "master"),
					zap.Bool("preempt", true),
					zap.Int64("adverts", -3),
					zap.Uint8("prio", 200),
					zap.Float64("ratio", 0.25),
					zap.Complex128("z", 1+2i),
					zap.Duration("down_after", 3600*time.Millisecond),
					zap.Time("at", at),
					zap.Error(errors.New("peer silent")),
					zap.NamedError("cause", fmt.Errorf("read: %w", os.ErrDeadlineExceeded)),
					zap.String("detail", "line one\nline two"),
					zap.String("peer-addr", "10.0.0.2"),
					zap.Stringer("vip", netip.MustParseAddr("192.0.2.10")),
					zap.ByteString("iface", []byte("eth0")),
					zap.Binary("raw", []byte{0, 1, 2}),
					zap.Strings("addrs", []string{"a", "b"}),
					zap.Dict("link", zap.String("state", "up"), zap.Duration("rtt", 2*time.Millisecond)),
					zap.Reflect("cfg", map[string]int{"a": 1}),
					zap.Object("bad", failingObject{}),
					zap.String("_private", "p"),
					zap.String("2fa", "on"),
					zap.String("message", "shadow"),
					zap.Int("priority", 100),
					zap.String("", "anonymous"),
					zap.Namespace("peer"),
					zap.String("state", "up"),
					zap.Int("missed", 3),
				)
			},
			want: map[string]string{
				"MESSAGE":           "became master",
				"PRIORITY":          "6",
				"SYSLOG_IDENTIFIER": "hactl",
				"LOGGER":            "vrrp",
				"VRID":              "7",
				"NODE":              "alpha",
				"EVENT":             "transition",
				"FROM":              "backup",
				"TO":                "master",
				"PREEMPT":           "true",
				"ADVERTS":           "-3",
				"PRIO":              "200",
				"RATIO":             "0.25",
				"Z":                 "(1+2i)",
				"DOWN_AFTER":        "3.6s",
				"AT":                "2025-01-02T03:04:05.000000006Z",
				"ERROR":             "peer silent",
				"CAUSE":             "read: i/o timeout",
				"DETAIL":            "line one\nline two",
				"PEER_ADDR":         "10.0.0.2",
				"VIP":               "192.0.2.10",
				"IFACE":             "eth0",
				"RAW":               "AAEC",
				"ADDRS":             `["a","b"]`,
				"LINK":              `{"state":"up","rtt":"2ms"}`,
				"CFG":               `{"a":1}`,
				"BADERROR":          "cannot marshal",
				"PRIVATE":           "p",
				"FIELD_2FA":         "on",
				"FIELD_MESSAGE":     "shadow",
				"FIELD_PRIORITY":    "100",
				"FIELD":             "anonymous",
				"PEER_STATE":        "up",
				"PEER_MISSED":       "3",
			},
			binary: []string{"DETAIL"},
		},
		{
			name: "namespace opened with With applies to later fields",
			log: func(l *zap.Logger) {
				l.Named("drbd").With(zap.Namespace("res"), zap.String(KeyVolume, "r0")).Warn("out of sync", zap.Int("minor", 1))
			},
			want: map[string]string{
				"MESSAGE":           "out of sync",
				"PRIORITY":          "4",
				"SYSLOG_IDENTIFIER": "hactl",
				"LOGGER":            "drbd",
				"RES_VOLUME":        "r0",
				"RES_MINOR":         "1",
			},
		},
		{
			name: "siblings derived with With do not share fields",
			log: func(l *zap.Logger) {
				base := l.With(zap.String(KeyGroup, "web"))
				_ = base.With(zap.String(KeyReason, "sibling"))
				base.With(zap.String(KeyNode, "beta")).Error("fence failed")
			},
			want: map[string]string{
				"MESSAGE":           "fence failed",
				"PRIORITY":          "3",
				"SYSLOG_IDENTIFIER": "hactl",
				"GROUP":             "web",
				"NODE":              "beta",
			},
		},
		{
			name: "multi-line message, nested logger name",
			log: func(l *zap.Logger) {
				l.Named("agent").Named("api").Debug("first\nsecond")
			},
			want: map[string]string{
				"MESSAGE":           "first\nsecond",
				"PRIORITY":          "7",
				"SYSLOG_IDENTIFIER": "hactl",
				"LOGGER":            "agent.api",
			},
			binary: []string{"MESSAGE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := listenJournal(t, socketPath(t))
			tt.log(newJournalLogger(t, j.path, nil))
			e := j.next(t)

			for name, want := range tt.want {
				if got := e.get(t, name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if got := e.get(t, "CODE_FILE"); !strings.HasSuffix(got, "/journald_test.go") {
				t.Errorf("CODE_FILE = %q, want this file", got)
			}
			if line, err := strconv.Atoi(e.get(t, "CODE_LINE")); err != nil || line <= 0 {
				t.Errorf("CODE_LINE = %q, want a line number", e.get(t, "CODE_LINE"))
			}
			if got := e.get(t, "CODE_FUNC"); !strings.Contains(got, "TestJournalFields") {
				t.Errorf("CODE_FUNC = %q, want this test", got)
			}
			wantNames := slices.Sorted(maps.Keys(tt.want))
			wantNames = append(wantNames, "CODE_FILE", "CODE_LINE", "CODE_FUNC")
			slices.Sort(wantNames)
			if got := slices.Sorted(maps.Keys(e.fields)); !slices.Equal(got, wantNames) {
				t.Errorf("fields = %q\nwant %q", got, wantNames)
			}
			if got := slices.Sorted(maps.Keys(e.binary)); !slices.Equal(got, tt.binary) {
				t.Errorf("length-prefixed fields = %q, want %q", got, tt.binary)
			}
		})
	}
}

func TestJournalPriority(t *testing.T) {
	tests := []struct {
		level zapcore.Level
		want  string
	}{
		{zapcore.DebugLevel, "7"},
		{zapcore.InfoLevel, "6"},
		{zapcore.WarnLevel, "4"},
		{zapcore.ErrorLevel, "3"},
		{zapcore.DPanicLevel, "2"},
		{zapcore.PanicLevel, "2"},
		{zapcore.FatalLevel, "2"},
	}
	j := listenJournal(t, socketPath(t))
	// The core itself, since a panic or fatal logger would end the test.
	core, err := newJournalCore(zapcore.DebugLevel, j.path, "hactl")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			if err := core.Write(zapcore.Entry{Level: tt.level, Message: "m"}, nil); err != nil {
				t.Fatal(err)
			}
			e := j.next(t)
			if got := e.get(t, "PRIORITY"); got != tt.want {
				t.Errorf("PRIORITY = %s, want %s", got, tt.want)
			}
			if _, ok := e.fields["CODE_FILE"]; ok {
				t.Error("CODE_FILE sent for an entry without caller")
			}
		})
	}
}

func TestJournalLevelFilter(t *testing.T) {
	j := listenJournal(t, socketPath(t))
	l, err := New(Options{Format: FormatJournald, Level: zapcore.WarnLevel, JournalSocket: j.path})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("dropped")
	l.Warn("kept")
	if got := j.next(t).get(t, "MESSAGE"); got != "kept" {
		t.Errorf("first entry = %q, want the warning", got)
	}
}

func TestJournalIdentifier(t *testing.T) {
	j := listenJournal(t, socketPath(t))
	l, err := New(Options{Format: FormatJournald, JournalSocket: j.path, Identifier: "hactl-lab"})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("m")
	if got := j.next(t).get(t, "SYSLOG_IDENTIFIER"); got != "hactl-lab" {
		t.Errorf("SYSLOG_IDENTIFIER = %q", got)
	}
}

// An entry bigger than the socket's send buffer must travel in a sealed
// memfd.
func TestJournalLargeEntryViaMemfd(t *testing.T) {
	j := listenJournal(t, socketPath(t))
	l := newJournalLogger(t, j.path, nil)
	// Pin the buffer (wmem_default, 208 KiB unless tuned) so that the test
	// does not depend on the host's sysctls.
	if err := l.Core().(*journalCore).journal.conn.SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	msg := strings.Repeat("x", 1<<20)
	l.Info(msg, zap.String(KeyVolume, "r0"), zap.String("dump", "a\nb"))

	e := j.next(t)
	if !e.viaFD {
		t.Fatal("1 MiB entry arrived as a plain datagram")
	}
	const wantSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if e.seals&wantSeals != wantSeals {
		t.Errorf("seals = %#x, want %#x", e.seals, wantSeals)
	}
	if got := e.get(t, "MESSAGE"); got != msg {
		t.Errorf("MESSAGE has %d bytes, want %d", len(got), len(msg))
	}
	if got := e.get(t, "VOLUME"); got != "r0" {
		t.Errorf("VOLUME = %q", got)
	}
	if got := e.get(t, "DUMP"); got != "a\nb" {
		t.Errorf("DUMP = %q", got)
	}

	// The socket still carries small entries afterwards.
	l.Info("small")
	if e := j.next(t); e.viaFD || e.get(t, "MESSAGE") != "small" {
		t.Errorf("next entry: viaFD=%v MESSAGE=%q", e.viaFD, e.fields["MESSAGE"])
	}
}

func TestJournalReconnects(t *testing.T) {
	path := socketPath(t)
	j := listenJournal(t, path)
	var errOut bytes.Buffer
	l := newJournalLogger(t, path, &errOut)

	l.Info("one")
	if got := j.next(t).get(t, "MESSAGE"); got != "one" {
		t.Fatalf("MESSAGE = %q", got)
	}

	// journald restarted: same path, new socket.
	j.stop(t)
	j = listenJournal(t, path)
	l.Info("two")
	if got := j.next(t).get(t, "MESSAGE"); got != "two" {
		t.Fatalf("after restart: MESSAGE = %q", got)
	}

	// journald down: the entry is lost and reported, the caller goes on.
	j.stop(t)
	l.Info("lost")
	if !strings.Contains(errOut.String(), "logging: journal:") {
		t.Errorf("error output = %q, want the failed write reported", errOut.String())
	}

	j = listenJournal(t, path)
	l.Info("three")
	if got := j.next(t).get(t, "MESSAGE"); got != "three" {
		t.Fatalf("after coming back: MESSAGE = %q", got)
	}
}

// A journal that stops reading must not hold the caller past the timeout.
func TestJournalCongestedTimesOut(t *testing.T) {
	j := listenJournal(t, socketPath(t))
	core, err := newJournalCore(zapcore.DebugLevel, j.path, "hactl")
	if err != nil {
		t.Fatal(err)
	}
	core.journal.timeout = 10 * time.Millisecond
	// Nobody reads: the queue (net.unix.max_dgram_qlen) fills up.
	for i := range 100000 {
		err := core.Write(zapcore.Entry{Message: "m"}, nil)
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("entry %d: %v, want a deadline error", i, err)
		}
		return
	}
	t.Fatal("never blocked")
}

func TestJournalConcurrent(t *testing.T) {
	const writers, perWriter = 8, 50
	j := listenJournal(t, socketPath(t))
	l := newJournalLogger(t, j.path, nil)
	// The reader below keeps up, but the race detector may be slow.
	l.Core().(*journalCore).journal.timeout = time.Minute

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			wl := l.With(zap.Int("writer", w))
			for i := range perWriter {
				wl.Info("m", zap.Int("seq", i))
			}
		})
	}
	seen := map[string]int{}
	for range writers * perWriter {
		seen[j.next(t).get(t, "WRITER")]++
	}
	wg.Wait()
	for w := range writers {
		if n := seen[strconv.Itoa(w)]; n != perWriter {
			t.Errorf("writer %d: %d entries, want %d", w, n, perWriter)
		}
	}
}

func TestJournaldMissingSocket(t *testing.T) {
	_, err := New(Options{Format: FormatJournald, JournalSocket: socketPath(t)})
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("New with no journal: %v, want ENOENT", err)
	}
}
