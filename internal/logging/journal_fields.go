package logging

import (
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"
)

// The native journal protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL): an entry
// is a run of fields, each NAME=value\n, or, when the value holds a newline,
// NAME\n, the value's length as a 64-bit little-endian integer, the value
// and \n.

// maxNameLen is journald's limit on field names; it drops longer ones.
const maxNameLen = 64

// renamePrefix marks a zap key that could not be used as is: it would start
// with a digit, sanitize to nothing, or shadow a field the core writes itself.
const renamePrefix = "FIELD_"

// appendField appends a field whose name is already valid.
func appendField(buf *buffer.Buffer, name, value string) {
	buf.AppendString(name)
	appendValue(buf, value)
}

func appendValue(buf *buffer.Buffer, value string) {
	if strings.IndexByte(value, '\n') < 0 {
		buf.AppendByte('=')
		buf.AppendString(value)
		buf.AppendByte('\n')
		return
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(value)))
	buf.AppendByte('\n')
	buf.AppendBytes(n[:])
	buf.AppendString(value)
	buf.AppendByte('\n')
}

// appendName appends prefix+key as a journal field name. journald accepts
// only [A-Z0-9_], not starting with '_' (its own trusted fields) or a digit,
// and silently drops the field otherwise; so lower case is upper-cased,
// anything else becomes '_', and leading underscores go.
func appendName(buf *buffer.Buffer, prefix, key string) {
	var arr [maxNameLen]byte
	name := arr[:0]
	for _, s := range [...]string{prefix, key} {
		for i := 0; i < len(s) && len(name) < maxNameLen; i++ {
			c := s[i]
			switch {
			case 'a' <= c && c <= 'z':
				c -= 'a' - 'A'
			case 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			default:
				c = '_'
			}
			if c == '_' && len(name) == 0 {
				continue
			}
			name = append(name, c)
		}
	}
	switch {
	case len(name) == 0:
		buf.AppendString(renamePrefix[:len(renamePrefix)-1])
	case '0' <= name[0] && name[0] <= '9', isCoreField(name):
		buf.AppendString(renamePrefix)
		name = name[:min(len(name), maxNameLen-len(renamePrefix))]
	}
	buf.AppendBytes(name)
}

// isCoreField reports whether name is written by journalCore itself; a zap
// field of that name (zap.Int("priority", 100) in VRRP, say) would otherwise
// add a second value that journalctl shows instead of ours.
func isCoreField(name []byte) bool {
	switch string(name) {
	case "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "LOGGER",
		"CODE_FILE", "CODE_LINE", "CODE_FUNC", "STACKTRACE":
		return true
	}
	return false
}

// fieldEncoder is a zapcore.ObjectEncoder that appends zap fields to an
// entry as journal fields with text values. Namespaces become name
// prefixes: after zap.Namespace("peer"), zap.String("addr", a) is PEER_ADDR.
type fieldEncoder struct {
	buf    *buffer.Buffer
	prefix string
}

var _ zapcore.ObjectEncoder = (*fieldEncoder)(nil)

func (e *fieldEncoder) begin(key string) {
	appendName(e.buf, e.prefix, key)
	e.buf.AppendByte('=')
}

func (e *fieldEncoder) end() { e.buf.AppendByte('\n') }

func (e *fieldEncoder) AddString(key, value string) {
	appendName(e.buf, e.prefix, key)
	appendValue(e.buf, value)
}

func (e *fieldEncoder) AddByteString(key string, value []byte) { e.AddString(key, string(value)) }

// AddBinary uses base64, like zap's JSON encoder: journald could store raw
// bytes, but journalctl would then show the field as a blob.
func (e *fieldEncoder) AddBinary(key string, value []byte) {
	e.AddString(key, base64.StdEncoding.EncodeToString(value))
}

func (e *fieldEncoder) AddBool(key string, value bool) {
	e.begin(key)
	e.buf.AppendBool(value)
	e.end()
}

func (e *fieldEncoder) AddInt64(key string, value int64) {
	e.begin(key)
	e.buf.AppendInt(value)
	e.end()
}

func (e *fieldEncoder) AddUint64(key string, value uint64) {
	e.begin(key)
	e.buf.AppendUint(value)
	e.end()
}

func (e *fieldEncoder) AddFloat64(key string, value float64) {
	e.begin(key)
	e.buf.AppendFloat(value, 64)
	e.end()
}

func (e *fieldEncoder) AddFloat32(key string, value float32) {
	e.begin(key)
	e.buf.AppendFloat(float64(value), 32)
	e.end()
}

func (e *fieldEncoder) AddComplex128(key string, value complex128) {
	e.AddString(key, strconv.FormatComplex(value, 'g', -1, 128))
}

func (e *fieldEncoder) AddComplex64(key string, value complex64) {
	e.AddString(key, strconv.FormatComplex(complex128(value), 'g', -1, 64))
}

func (e *fieldEncoder) AddDuration(key string, value time.Duration) { e.AddString(key, value.String()) }

func (e *fieldEncoder) AddTime(key string, value time.Time) {
	e.begin(key)
	e.buf.AppendTime(value, time.RFC3339Nano)
	e.end()
}

func (e *fieldEncoder) AddInt(key string, value int)         { e.AddInt64(key, int64(value)) }
func (e *fieldEncoder) AddInt32(key string, value int32)     { e.AddInt64(key, int64(value)) }
func (e *fieldEncoder) AddInt16(key string, value int16)     { e.AddInt64(key, int64(value)) }
func (e *fieldEncoder) AddInt8(key string, value int8)       { e.AddInt64(key, int64(value)) }
func (e *fieldEncoder) AddUint(key string, value uint)       { e.AddUint64(key, uint64(value)) }
func (e *fieldEncoder) AddUint32(key string, value uint32)   { e.AddUint64(key, uint64(value)) }
func (e *fieldEncoder) AddUint16(key string, value uint16)   { e.AddUint64(key, uint64(value)) }
func (e *fieldEncoder) AddUint8(key string, value uint8)     { e.AddUint64(key, uint64(value)) }
func (e *fieldEncoder) AddUintptr(key string, value uintptr) { e.AddUint64(key, uint64(value)) }

func (e *fieldEncoder) AddArray(key string, value zapcore.ArrayMarshaler) error {
	return e.addJSON(key, func(enc zapcore.ObjectEncoder) error { return enc.AddArray(jsonValueKey, value) })
}

func (e *fieldEncoder) AddObject(key string, value zapcore.ObjectMarshaler) error {
	return e.addJSON(key, func(enc zapcore.ObjectEncoder) error { return enc.AddObject(jsonValueKey, value) })
}

func (e *fieldEncoder) AddReflected(key string, value any) error {
	return e.addJSON(key, func(enc zapcore.ObjectEncoder) error { return enc.AddReflected(jsonValueKey, value) })
}

func (e *fieldEncoder) OpenNamespace(key string) { e.prefix += key + "_" }

// Composite values are rendered by zap's own JSON encoder, as the only field
// of an otherwise empty entry, {"v":<value>}, from which the value is cut.
// Durations and times read as they do in scalar fields.
const jsonValueKey = "v"

var jsonValueConfig = zapcore.EncoderConfig{
	EncodeDuration: zapcore.StringDurationEncoder,
	EncodeTime:     zapcore.RFC3339NanoTimeEncoder,
	SkipLineEnding: true,
}

func (e *fieldEncoder) addJSON(key string, add func(zapcore.ObjectEncoder) error) error {
	enc := zapcore.NewJSONEncoder(jsonValueConfig)
	// On error, nothing has been appended: zap then records key+"Error".
	if err := add(enc); err != nil {
		return err
	}
	out, err := enc.EncodeEntry(zapcore.Entry{}, nil)
	if err != nil {
		return err
	}
	defer out.Free()
	b := out.Bytes()
	e.AddString(key, string(b[len(`{"`+jsonValueKey+`":`):len(b)-1]))
	return nil
}
