package membership

import (
	"log"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestParseLogLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		lvl  zapcore.Level
		msg  string
		peer string
	}{
		{"2026/01/02 15:04:05 [DEBUG] memberlist: Stream connection from=192.0.2.2:51234\n",
			zapcore.DebugLevel, "Stream connection", "192.0.2.2:51234"},
		{"[INFO] memberlist: Suspect b has failed, no acks received\n",
			zapcore.InfoLevel, "Suspect b has failed, no acks received", ""},
		{"[WARN] memberlist: Refuting a suspect message (from: c)",
			zapcore.WarnLevel, "Refuting a suspect message (from: c)", ""},
		{"[ERR] memberlist: Decrypt packet failed: No installed keys could decrypt the message from=192.0.2.9:7946\n",
			zapcore.ErrorLevel, "Decrypt packet failed: No installed keys could decrypt the message", "192.0.2.9:7946"},
		{"[ERROR] memberlist: Failed to compress payload: boom\n",
			zapcore.ErrorLevel, "Failed to compress payload: boom", ""},
		{"[ERR] Failed to shutdown transport: x\n",
			zapcore.ErrorLevel, "Failed to shutdown transport: x", ""},
		{"2026/01/02 15:04:05.123456 [DEBUG] memberlist: Initiating push/pull sync with: b 192.0.2.2:7946\n",
			zapcore.DebugLevel, "Initiating push/pull sync with: b 192.0.2.2:7946", ""},
		// Untagged and unknown tags stay visible.
		{"Err: Could not set the deadline: x\n", zapcore.WarnLevel, "Err: Could not set the deadline: x", ""},
		{"[NOTICE] memberlist: odd\n", zapcore.WarnLevel, "[NOTICE] memberlist: odd", ""},
		// Lowercase tags occur in other hashicorp code.
		{"[debug] memberlist: x\n", zapcore.DebugLevel, "x", ""},
		// "from=" in the middle is part of the message.
		{"[ERR] memberlist: Failed fallback TCP ping: from=x y", zapcore.ErrorLevel, "Failed fallback TCP ping: from=x y", ""},
		{"", zapcore.WarnLevel, "", ""},
		{"2026/01/02 not a time", zapcore.WarnLevel, "2026/01/02 not a time", ""},
	} {
		lvl, msg, peer := parseLogLine(tc.line)
		if lvl != tc.lvl || msg != tc.msg || peer != tc.peer {
			t.Errorf("parseLogLine(%q)\n got %v %q %q\nwant %v %q %q", tc.line, lvl, msg, peer, tc.lvl, tc.msg, tc.peer)
		}
	}
}

func TestLogWriter(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	l := log.New(logWriter{zap.New(core)}, "", log.LstdFlags)
	l.Printf("[DEBUG] memberlist: dropped below info")
	l.Printf("[WARN] memberlist: Got ping for unexpected node x from=192.0.2.3:7946")
	got := logs.AllUntimed()
	if len(got) != 1 {
		t.Fatalf("got %d entries, want 1: %+v", len(got), got)
	}
	e := got[0]
	if e.Level != zapcore.WarnLevel || e.Message != "Got ping for unexpected node x" ||
		e.ContextMap()["peer_addr"] != "192.0.2.3:7946" {
		t.Errorf("entry = %v %q %v", e.Level, e.Message, e.ContextMap())
	}
}
