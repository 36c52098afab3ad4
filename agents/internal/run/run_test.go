package run

import (
	"strings"
	"testing"
)

func TestTailKeepsTheEnd(t *testing.T) {
	var tl tail
	for i := 0; i < 10000; i++ {
		_, _ = tl.Write([]byte("0123456789 line\n"))
	}
	_, _ = tl.Write([]byte("the end\n"))
	s := tl.String()
	if len(s) > outputLimit || !strings.HasSuffix(s, "the end\n") || !strings.HasPrefix(s, "0123456789 line\n") {
		t.Errorf("tail: %d bytes, starts %q", len(s), s[:20])
	}
	var big tail
	_, _ = big.Write([]byte(strings.Repeat("x", 2*outputLimit) + "\nlast"))
	if got := big.String(); got != "last" {
		t.Errorf("one big write: %q", got)
	}
}

func TestLastLines(t *testing.T) {
	if got := LastLines("a\n\nb\n c \n\n", 2); got != "b; c" {
		t.Errorf("LastLines = %q", got)
	}
	if got := LastLines(strings.Repeat("y", 500), 1); len(got) > 210 {
		t.Errorf("LastLines does not cut long lines: %d bytes", len(got))
	}
}

func TestLookPath(t *testing.T) {
	if p, err := LookPath("sh", "relative:/bin"); err != nil || p != "/bin/sh" {
		t.Errorf("LookPath(sh) = %q, %v", p, err)
	}
	if _, err := LookPath("sh", "bin:"); err == nil {
		t.Error("LookPath used a relative PATH entry")
	}
	if _, err := LookPath("/etc/passwd", ""); err == nil {
		t.Error("LookPath accepted a non-executable file")
	}
}
