// Package logging builds hactl's zap loggers: human-readable or JSON lines on
// a terminal or file, native journald entries under systemd.
//
// Subsystems name their logger (logger.Named("vrrp")) and use the shared
// Key* field names, so that `journalctl LOGGER=vrrp VRID=7` or a JSON query
// finds the same entries whatever the format.
//
// In journald entries a zap key becomes an upper-case field name (peer-addr
// is PEER_ADDR, a field in zap.Namespace("peer") is PEER_...), and values
// are text, arrays and objects as JSON. Keys that would start with a digit or
// clash with the fields the core writes itself (MESSAGE, PRIORITY, LOGGER,
// CODE_*, ...) get a FIELD_ prefix: zap.Int("priority", 100) is
// FIELD_PRIORITY.
package logging

import (
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	// DefaultJournalSocket is where journald listens for native entries.
	DefaultJournalSocket = "/run/systemd/journal/socket"
	// DefaultIdentifier is the journal's SYSLOG_IDENTIFIER for hactl.
	DefaultIdentifier = "hactl"
)

// Options configures New. The zero value logs at info level to stderr in the
// format FormatAuto picks.
type Options struct {
	// Format is how entries are written; empty means FormatAuto.
	Format Format
	// Level is the minimum level logged.
	Level zapcore.Level
	// Output receives console and JSON lines, and reports of failed writes
	// in every format. Nil means stderr.
	Output io.Writer
	// JournalSocket is the journal's native socket; empty means
	// DefaultJournalSocket.
	JournalSocket string
	// Identifier is SYSLOG_IDENTIFIER in journal entries; empty means
	// DefaultIdentifier.
	Identifier string
}

func (o Options) journalSocket() string {
	if o.JournalSocket == "" {
		return DefaultJournalSocket
	}
	return o.JournalSocket
}

func (o Options) identifier() string {
	if o.Identifier == "" {
		return DefaultIdentifier
	}
	return o.Identifier
}

// New returns a logger that records callers and adds stack traces from
// DPanic up. Plain errors get no stack: an HA agent logs expected failures
// (an unreachable peer) often, and the reason field says what matters.
// For FormatJournald, New connects to the journal right away and fails if it
// cannot.
func New(opts Options) (*zap.Logger, error) {
	return newLogger(opts, processEnvironment())
}

func newLogger(opts Options, env environment) (*zap.Logger, error) {
	out := opts.Output
	if out == nil {
		out = os.Stderr
	}
	sink := zapcore.Lock(zapcore.AddSync(out))

	var core zapcore.Core
	switch f := resolveFormat(opts, env); f {
	case FormatConsole:
		core = zapcore.NewCore(zapcore.NewConsoleEncoder(consoleEncoderConfig()), sink, opts.Level)
	case FormatJSON:
		core = zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), sink, opts.Level)
	case FormatJournald:
		j, err := newJournalCore(opts.Level, opts.journalSocket(), opts.identifier())
		if err != nil {
			return nil, err
		}
		core = j
	default:
		return nil, fmt.Errorf("logging: unknown format %q (want auto, console, json or journald)", f)
	}
	return zap.New(core,
		zap.ErrorOutput(sink),
		zap.AddCaller(),
		zap.AddStacktrace(zapcore.DPanicLevel),
	), nil
}

// consoleEncoderConfig is for people reading a terminal: local ISO 8601 time,
// level, logger name, message, then the fields as JSON. The caller is left
// out to keep lines short; JSON and journald entries carry it.
func consoleEncoderConfig() zapcore.EncoderConfig {
	return zapcore.EncoderConfig{
		TimeKey:          "ts",
		LevelKey:         "level",
		NameKey:          "logger",
		MessageKey:       "msg",
		StacktraceKey:    "stacktrace",
		LineEnding:       zapcore.DefaultLineEnding,
		EncodeLevel:      zapcore.CapitalLevelEncoder,
		EncodeTime:       zapcore.ISO8601TimeEncoder,
		EncodeDuration:   zapcore.StringDurationEncoder,
		EncodeName:       zapcore.FullNameEncoder,
		ConsoleSeparator: "\t",
	}
}
