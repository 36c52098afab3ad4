package logging

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestAppendName(t *testing.T) {
	long := strings.Repeat("a", 70)
	tests := []struct {
		prefix, key, want string
	}{
		{"", "volume", "VOLUME"},
		{"", "Volume", "VOLUME"},
		{"", "peer-addr", "PEER_ADDR"},
		{"", "peer.addr", "PEER_ADDR"},
		{"", "_private", "PRIVATE"},
		{"", "__x_y", "X_Y"},
		{"", "MESSAGE_ID", "MESSAGE_ID"},
		{"", "9lives", "FIELD_9LIVES"},
		{"", "message", "FIELD_MESSAGE"},
		{"", "priority", "FIELD_PRIORITY"},
		{"", "logger", "FIELD_LOGGER"},
		{"", "code_line", "FIELD_CODE_LINE"},
		{"", "", "FIELD"},
		{"", "---", "FIELD"},
		{"", "é", "FIELD"},
		{"", "naïve", "NA__VE"},
		{"", long, strings.Repeat("A", 64)},
		{"", "1" + long, "FIELD_1" + strings.Repeat("A", 57)},
		{"peer_", "addr", "PEER_ADDR"},
		{"_ns_", "_x", "NS__X"},
		{"a_", "message", "A_MESSAGE"},
		{"", "message_x", "MESSAGE_X"},
	}
	for _, tt := range tests {
		buf := bufferPool.Get()
		appendName(buf, tt.prefix, tt.key)
		if got := buf.String(); got != tt.want {
			t.Errorf("appendName(%q, %q) = %q, want %q", tt.prefix, tt.key, got, tt.want)
		}
		if !validFieldName.MatchString(buf.String()) {
			t.Errorf("appendName(%q, %q) = %q is not a valid journal field name", tt.prefix, tt.key, buf.String())
		}
		buf.Free()
	}
}

// Scalar kinds the journald tests through a logger do not reach.
func TestFieldEncoderScalars(t *testing.T) {
	tests := []struct {
		field zap.Field
		want  string
	}{
		{zap.Int("v", -1), "-1"},
		{zap.Int32("v", -32), "-32"},
		{zap.Int16("v", -16), "-16"},
		{zap.Int8("v", -8), "-8"},
		{zap.Uint("v", 1), "1"},
		{zap.Uint64("v", 1<<63), "9223372036854775808"},
		{zap.Uint32("v", 32), "32"},
		{zap.Uint16("v", 16), "16"},
		{zap.Uintptr("v", 0x10), "16"},
		{zap.Float32("v", 0.1), "0.1"},
		{zap.Complex64("v", 1-1i), "(1-1i)"},
		{zap.Bool("v", false), "false"},
		{zap.String("v", ""), ""},
		{zap.String("v", "\n"), "\n"},
		{zap.Ints("v", nil), "[]"},
		{zap.Durations("v", []time.Duration{time.Second}), `["1s"]`},
	}
	for _, tt := range tests {
		buf := bufferPool.Get()
		tt.field.AddTo(&fieldEncoder{buf: buf})
		e := parseEntry(t, buf.Bytes())
		if got := e.get(t, "V"); got != tt.want {
			t.Errorf("%v: V = %q, want %q", tt.field.Type, got, tt.want)
		}
		buf.Free()
	}
}

func TestJournalCoreLevelAndSync(t *testing.T) {
	j := listenJournal(t, socketPath(t))
	core, err := newJournalCore(zapcore.WarnLevel, j.path, "hactl")
	if err != nil {
		t.Fatal(err)
	}
	if got := zapcore.LevelOf(core.With([]zapcore.Field{zap.Int("a", 1)})); got != zapcore.WarnLevel {
		t.Errorf("LevelOf = %v, want warn", got)
	}
	if ce := core.Check(zapcore.Entry{Level: zapcore.InfoLevel}, nil); ce != nil {
		t.Error("Check accepted an info entry at warn level")
	}
	if err := core.Sync(); err != nil {
		t.Errorf("Sync: %v", err)
	}
}
