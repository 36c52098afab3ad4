package config

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// Severities of a Diagnostic.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
)

// Diagnostic is one problem found in a cluster file. Line and Column are
// 1-based and point at the offending value (for a map, at its key); both
// are 0 when the problem has no place in the file (an unreadable file, a
// --node that names no node).
type Diagnostic struct {
	Severity  string `json:"severity"`
	Summary   string `json:"summary"`
	Detail    string `json:"detail"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	Column    int    `json:"column"`
	EndLine   int    `json:"end_line"`
	EndColumn int    `json:"end_column"`
	Snippet   string `json:"snippet"` // the source line at Line, without its newline
}

// Diagnostics is the list of problems of one or more files, in file order.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error (not a warning).
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Errors returns the number of errors.
func (ds Diagnostics) Errors() int {
	n := 0
	for _, d := range ds {
		if d.Severity == SeverityError {
			n++
		}
	}
	return n
}

// Warnings returns the number of warnings.
func (ds Diagnostics) Warnings() int {
	return len(ds) - ds.Errors()
}

// Error returns the first error as "file:line:col: summary: detail" and
// how many more there are: one line, for logs (the agent's reload).
// "hactl validate" shows them all.
func (ds Diagnostics) Error() string {
	var first *Diagnostic
	for i := range ds {
		if ds[i].Severity == SeverityError {
			first = &ds[i]
			break
		}
	}
	if first == nil {
		return ""
	}
	msg := first.position() + ": " + first.Summary
	if first.Detail != "" {
		msg += ": " + first.Detail
	}
	if n := ds.Errors() - 1; n == 1 {
		msg += " (and 1 more error)"
	} else if n > 1 {
		msg += fmt.Sprintf(" (and %d more errors)", n)
	}
	return msg
}

// position renders "file:line:col", or less when parts are unknown.
func (d *Diagnostic) position() string {
	switch {
	case d.Line == 0:
		return d.File
	case d.File == "":
		return fmt.Sprintf("%d:%d", d.Line, d.Column)
	default:
		return fmt.Sprintf("%s:%d:%d", d.File, d.Line, d.Column)
	}
}

// ANSI escapes for WriteText with color.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[1;31m"
	ansiYellow = "\x1b[1;33m"
	ansiCyan   = "\x1b[36m"
)

// WriteText prints every diagnostic the way compilers do:
//
//	cluster.hcl:14:29: error: Unknown node "charlie"
//	   14 |   priority = { alpha = 100, charlie = 90 }
//	      |                             ^^^^^^^
//	    No node block is named "charlie". Did you mean "bravo"? ...
//
// with ANSI colors when color is true.
func (ds Diagnostics) WriteText(w io.Writer, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	var buf bytes.Buffer
	for i := range ds {
		d := &ds[i]
		if i > 0 {
			buf.WriteByte('\n')
		}
		sevColor := ansiRed
		if d.Severity == SeverityWarning {
			sevColor = ansiYellow
		}
		if pos := d.position(); pos != "" {
			buf.WriteString(paint(ansiBold, pos) + ": ")
		}
		fmt.Fprintf(&buf, "%s: %s\n", paint(sevColor, d.Severity), paint(ansiBold, d.Summary))
		if d.Line > 0 && d.Snippet != "" {
			gutter := fmt.Sprintf("%5d | ", d.Line)
			blank := strings.Repeat(" ", len(gutter)-2) + "| "
			fmt.Fprintf(&buf, "%s%s\n", paint(ansiCyan, gutter), d.Snippet)
			fmt.Fprintf(&buf, "%s%s\n", paint(ansiCyan, blank), paint(sevColor, underline(d)))
		}
		if d.Detail != "" {
			for _, line := range strings.Split(d.Detail, "\n") {
				fmt.Fprintf(&buf, "    %s\n", line)
			}
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// underline returns the carets under the diagnostic's range in its
// snippet, keeping tabs so the carets line up with the source.
func underline(d *Diagnostic) string {
	runes := []rune(d.Snippet)
	start := min(max(d.Column-1, 0), len(runes))
	end := len(runes)
	if d.EndLine == d.Line && d.EndColumn-1 <= len(runes) {
		end = d.EndColumn - 1
	}
	end = max(end, start+1)
	var b strings.Builder
	for _, r := range runes[:start] {
		if r == '\t' {
			b.WriteRune('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	b.WriteString(strings.Repeat("^", end-start))
	return b.String()
}

// sources maps file names to their bytes, for snippets.
type sources map[string][]byte

// convert turns hcl diagnostics into ours, sorted by position (stable, so
// several problems at one place keep the order the checks found them).
func (src sources) convert(hds hcl.Diagnostics) Diagnostics {
	out := make(Diagnostics, 0, len(hds))
	for _, hd := range hds {
		d := Diagnostic{
			Severity: SeverityError,
			Summary:  hd.Summary,
			Detail:   hd.Detail,
		}
		if hd.Severity == hcl.DiagWarning {
			d.Severity = SeverityWarning
		}
		if r := hd.Subject; r != nil {
			d.File = r.Filename
			if r.Start.Line > 0 {
				d.Line, d.Column = r.Start.Line, r.Start.Column
				d.EndLine, d.EndColumn = r.End.Line, r.End.Column
				d.Snippet = sourceLine(src[r.Filename], r.Start.Line)
			}
		}
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return out
}

// sourceLine returns line n (1-based) of src without its line ending, or
// "" when src has no such line or it is not valid UTF-8.
func sourceLine(src []byte, n int) string {
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(src, '\n')
		if j < 0 {
			return ""
		}
		src = src[j+1:]
	}
	if j := bytes.IndexByte(src, '\n'); j >= 0 {
		src = src[:j]
	}
	src = bytes.TrimSuffix(src, []byte("\r"))
	if !utf8.Valid(src) {
		return ""
	}
	return string(src)
}
