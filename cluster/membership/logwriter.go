package membership

import (
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// logWriter adapts memberlist's *log.Logger output into zap. memberlist
// writes one Printf per line, tagged with a level: "[DEBUG] memberlist:
// Stream connection from=192.0.2.2:51234".
type logWriter struct{ log *zap.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	lvl, msg, peer := parseLogLine(string(p))
	if ce := w.log.Check(lvl, msg); ce != nil {
		if peer != "" {
			ce.Write(zap.String("peer_addr", peer))
		} else {
			ce.Write()
		}
	}
	return len(p), nil
}

// logLevels maps memberlist's tags to zap levels. memberlist uses both ERR
// and ERROR.
var logLevels = map[string]zapcore.Level{
	"TRACE": zapcore.DebugLevel,
	"DEBUG": zapcore.DebugLevel,
	"INFO":  zapcore.InfoLevel,
	"WARN":  zapcore.WarnLevel,
	"ERR":   zapcore.ErrorLevel,
	"ERROR": zapcore.ErrorLevel,
}

// parseLogLine splits one memberlist log line into a level, the message
// without the tag and the "memberlist: " prefix, and the remote address of
// a trailing "from=host:port" (memberlist's LogAddress/LogConn). It
// accepts lines with or without the standard log timestamp. Untagged
// lines (memberlist has a few, e.g. "Err: Could not set the deadline")
// are logged at warn: they report failures but carry no level.
func parseLogLine(line string) (lvl zapcore.Level, msg, peer string) {
	line = strings.TrimRight(line, "\r\n")
	line = stripTimestamp(line)
	lvl = zapcore.WarnLevel
	if rest, ok := strings.CutPrefix(line, "["); ok {
		if tag, after, ok := strings.Cut(rest, "]"); ok {
			if l, known := logLevels[strings.ToUpper(tag)]; known {
				lvl = l
				line = strings.TrimLeft(after, " ")
			}
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	if i := strings.LastIndex(line, " from="); i >= 0 && !strings.Contains(line[i+1:], " ") {
		peer = line[i+len(" from="):]
		line = line[:i]
	}
	return lvl, strings.TrimSpace(line), peer
}

// stripTimestamp removes a leading "2006/01/02 15:04:05 " (optionally with
// microseconds), which memberlist's default logger adds.
func stripTimestamp(s string) string {
	const date = "2006/01/02 "
	if len(s) < len(date)+len("15:04:05 ") || s[4] != '/' || s[7] != '/' || s[10] != ' ' {
		return s
	}
	if !allDigits(s[:4]) || !allDigits(s[5:7]) || !allDigits(s[8:10]) {
		return s
	}
	t := s[len(date):]
	end := strings.IndexByte(t, ' ')
	if end < 0 {
		return s
	}
	clock := t[:end]
	if len(clock) < 8 || clock[2] != ':' || clock[5] != ':' {
		return s
	}
	return t[end+1:]
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0
}
