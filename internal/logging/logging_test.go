package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr string
	}{
		{"", FormatAuto, ""},
		{"auto", FormatAuto, ""},
		{"console", FormatConsole, ""},
		{"JSON", FormatJSON, ""},
		{" journald ", FormatJournald, ""},
		{"syslog", "", `logging: unknown format "syslog" (want auto, console, json or journald)`},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if got != tt.want || errString(err) != tt.wantErr {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    zapcore.Level
		wantErr string
	}{
		{"", zapcore.InfoLevel, ""},
		{"debug", zapcore.DebugLevel, ""},
		{"INFO", zapcore.InfoLevel, ""},
		{"warn", zapcore.WarnLevel, ""},
		{"warning", zapcore.WarnLevel, ""},
		{"error", zapcore.ErrorLevel, ""},
		{"dpanic", zapcore.DPanicLevel, ""},
		{"panic", zapcore.PanicLevel, ""},
		{"fatal", zapcore.FatalLevel, ""},
		{"trace", zapcore.InfoLevel, `logging: unknown level "trace" (want debug, info, warn, error, dpanic, panic or fatal)`},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if got != tt.want || errString(err) != tt.wantErr {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v, %q", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestNewUnknownFormat(t *testing.T) {
	_, err := New(Options{Format: "JSON"})
	if err == nil || !strings.Contains(err.Error(), `unknown format "JSON"`) {
		t.Errorf("New with format JSON: %v, want an unknown format error", err)
	}
}

func TestJSONFormat(t *testing.T) {
	var out bytes.Buffer
	l, err := New(Options{Format: FormatJSON, Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	l.Named("vrrp").With(zap.Int(KeyVRID, 7)).Info("became master",
		zap.String(KeyReason, "priority"), zap.Duration("took", time.Second))
	l.Debug("below level")

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1:\n%s", len(lines), out.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("%v in %s", err, lines[0])
	}
	want := map[string]any{
		"level":  "info",
		"logger": "vrrp",
		"msg":    "became master",
		"vrid":   7.0,
		"reason": "priority",
		"took":   1.0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["ts"].(float64); !ok {
		t.Errorf("ts = %v, want epoch seconds", got["ts"])
	}
	if c, _ := got["caller"].(string); !strings.HasPrefix(c, "logging/logging_test.go:") {
		t.Errorf("caller = %v, want this file", got["caller"])
	}
	if len(got) != len(want)+2 {
		t.Errorf("keys %v, want exactly ts, caller and %v", got, want)
	}
}

func TestConsoleFormat(t *testing.T) {
	var out bytes.Buffer
	l, err := New(Options{Format: FormatConsole, Level: zapcore.DebugLevel, Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	l.Named("drbd").Warn("out of sync", zap.String(KeyVolume, "r0"))

	// 2006-01-02T15:04:05.000Z0700 WARN drbd out of sync {"volume": "r0"}
	parts := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\t")
	if len(parts) != 5 {
		t.Fatalf("got %q, want time, level, logger, message and fields", out.String())
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z0700", parts[0]); err != nil {
		t.Errorf("time: %v", err)
	}
	want := []string{"WARN", "drbd", "out of sync", `{"volume": "r0"}`}
	for i, w := range want {
		if parts[i+1] != w {
			t.Errorf("column %d = %q, want %q", i+1, parts[i+1], w)
		}
	}
}

func TestAutoFormat(t *testing.T) {
	const socket = "/run/test/journal"
	env := func(stream string, dev, ino uint64, statErr error, socketUp bool) environment {
		return environment{
			lookupEnv: func(key string) (string, bool) {
				if key != "JOURNAL_STREAM" || stream == "" {
					return "", false
				}
				return stream, true
			},
			stderrID:     func() (uint64, uint64, error) { return dev, ino, statErr },
			socketExists: func(path string) bool { return socketUp && path == socket },
		}
	}
	tests := []struct {
		name string
		opts Options
		env  environment
		want Format
	}{
		{"under systemd", Options{}, env("8:1234", 8, 1234, nil, true), FormatJournald},
		{"auto spelled out", Options{Format: FormatAuto}, env("8:1234", 8, 1234, nil, true), FormatJournald},
		{"output is stderr", Options{Output: os.Stderr}, env("8:1234", 8, 1234, nil, true), FormatJournald},
		{"no JOURNAL_STREAM", Options{}, env("", 8, 1234, nil, true), FormatConsole},
		{"stderr redirected", Options{}, env("8:1234", 8, 999, nil, true), FormatConsole},
		{"other device", Options{}, env("8:1234", 9, 1234, nil, true), FormatConsole},
		{"stderr closed", Options{}, env("8:1234", 8, 1234, errors.New("EBADF"), true), FormatConsole},
		{"malformed", Options{}, env("8-1234", 8, 1234, nil, true), FormatConsole},
		{"not numbers", Options{}, env("x:1234", 8, 1234, nil, true), FormatConsole},
		{"bad inode", Options{}, env("8:", 8, 0, nil, true), FormatConsole},
		{"no journal socket", Options{}, env("8:1234", 8, 1234, nil, false), FormatConsole},
		{"output redirected", Options{Output: &bytes.Buffer{}}, env("8:1234", 8, 1234, nil, true), FormatConsole},
		{"explicit format wins", Options{Format: FormatJSON}, env("8:1234", 8, 1234, nil, true), FormatJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.JournalSocket = socket
			if got := resolveFormat(tt.opts, tt.env); got != tt.want {
				t.Errorf("resolveFormat = %q, want %q", got, tt.want)
			}
		})
	}
}

// Auto against a real socket: the journald core is built and used.
func TestAutoFormatUsesJournal(t *testing.T) {
	j := listenJournal(t, socketPath(t))
	env := processEnvironment()
	env.lookupEnv = func(string) (string, bool) { return "1:2", true }
	env.stderrID = func() (uint64, uint64, error) { return 1, 2, nil }
	l, err := newLogger(Options{JournalSocket: j.path}, env)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("auto")
	if got := j.next(t).get(t, "MESSAGE"); got != "auto" {
		t.Errorf("MESSAGE = %q", got)
	}
}

// The real environment of `go test` is not a journal stream; this only
// checks that the probes work.
func TestProcessEnvironment(t *testing.T) {
	env := processEnvironment()
	if _, _, err := env.stderrID(); err != nil {
		t.Errorf("stat stderr: %v", err)
	}
	if env.socketExists(t.TempDir()) {
		t.Error("a directory counted as a socket")
	}
	j := listenJournal(t, socketPath(t))
	if !env.socketExists(j.path) {
		t.Error("socket not found")
	}
}

func TestOptionsDefaults(t *testing.T) {
	var o Options
	if o.journalSocket() != DefaultJournalSocket || o.identifier() != DefaultIdentifier {
		t.Errorf("defaults: socket %q, identifier %q", o.journalSocket(), o.identifier())
	}
}
