package logging

import (
	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"
)

// journalCore is a zapcore.Core that sends every entry to journald over the
// native protocol, so that priority, logger name, call site and each field
// are indexed: journalctl -p warning LOGGER=vrrp VRID=7.
type journalCore struct {
	zapcore.LevelEnabler
	journal *journalSocket // shared by every core derived with With
	ident   string
	fields  []byte // fields added with With, already encoded; never mutated
	prefix  string // namespace opened with With
}

var bufferPool = buffer.NewPool()

func newJournalCore(enab zapcore.LevelEnabler, socket, ident string) (*journalCore, error) {
	j, err := dialJournal(socket, journalWriteTimeout)
	if err != nil {
		return nil, err
	}
	return &journalCore{LevelEnabler: enab, journal: j, ident: ident}, nil
}

// Level lets zapcore.LevelOf answer without probing every level.
func (c *journalCore) Level() zapcore.Level { return zapcore.LevelOf(c.LevelEnabler) }

func (c *journalCore) With(fields []zapcore.Field) zapcore.Core {
	buf := bufferPool.Get()
	defer buf.Free()
	buf.AppendBytes(c.fields)
	enc := fieldEncoder{buf: buf, prefix: c.prefix}
	for _, f := range fields {
		f.AddTo(&enc)
	}
	clone := *c
	clone.fields = append([]byte(nil), buf.Bytes()...)
	clone.prefix = enc.prefix
	return &clone
}

func (c *journalCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

// Write sends the entry before returning. MESSAGE stays the bare message:
// the logger name goes to LOGGER, where it can be matched.
func (c *journalCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	buf := bufferPool.Get()
	defer buf.Free()

	appendField(buf, "MESSAGE", ent.Message)
	appendField(buf, "PRIORITY", priority(ent.Level))
	appendField(buf, "SYSLOG_IDENTIFIER", c.ident)
	if ent.LoggerName != "" {
		appendField(buf, "LOGGER", ent.LoggerName)
	}
	if ent.Caller.Defined {
		appendField(buf, "CODE_FILE", ent.Caller.File)
		buf.AppendString("CODE_LINE=")
		buf.AppendInt(int64(ent.Caller.Line))
		buf.AppendByte('\n')
		if ent.Caller.Function != "" {
			appendField(buf, "CODE_FUNC", ent.Caller.Function)
		}
	}
	if ent.Stack != "" {
		appendField(buf, "STACKTRACE", ent.Stack)
	}
	buf.AppendBytes(c.fields)
	enc := fieldEncoder{buf: buf, prefix: c.prefix}
	for _, f := range fields {
		f.AddTo(&enc)
	}
	return c.journal.send(buf.Bytes())
}

// Sync has nothing to flush: Write hands each entry to the kernel.
func (c *journalCore) Sync() error { return nil }

// priority maps a zap level to a syslog priority. DPanic, Panic and Fatal
// are all "crit": the agent cannot go on, but the host is fine.
func priority(l zapcore.Level) string {
	switch {
	case l <= zapcore.DebugLevel:
		return "7"
	case l == zapcore.InfoLevel:
		return "6"
	case l == zapcore.WarnLevel:
		return "4"
	case l == zapcore.ErrorLevel:
		return "3"
	}
	return "2"
}
