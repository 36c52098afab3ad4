package logging

import (
	"fmt"
	"strings"

	"go.uber.org/zap/zapcore"
)

// Format selects how log entries are written.
type Format string

const (
	// FormatAuto writes to journald when stderr is connected to the journal
	// (the agent runs under systemd) and to the console otherwise.
	FormatAuto Format = "auto"
	// FormatConsole writes human-readable lines.
	FormatConsole Format = "console"
	// FormatJSON writes one JSON object per line with zap's production keys.
	FormatJSON Format = "json"
	// FormatJournald sends native journal entries to the journal socket.
	FormatJournald Format = "journald"
)

// ParseFormat parses a --log-format value. The empty string means FormatAuto.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "":
		return FormatAuto, nil
	case FormatAuto, FormatConsole, FormatJSON, FormatJournald:
		return f, nil
	}
	return "", fmt.Errorf("logging: unknown format %q (want auto, console, json or journald)", s)
}

// ParseLevel parses a --log-level value, case-insensitively. The empty string
// means info, which is also the zero value of zapcore.Level.
func ParseLevel(s string) (zapcore.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return zapcore.DebugLevel, nil
	case "", "info":
		return zapcore.InfoLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	case "dpanic":
		return zapcore.DPanicLevel, nil
	case "panic":
		return zapcore.PanicLevel, nil
	case "fatal":
		return zapcore.FatalLevel, nil
	}
	return zapcore.InfoLevel, fmt.Errorf("logging: unknown level %q (want debug, info, warn, error, dpanic, panic or fatal)", s)
}
