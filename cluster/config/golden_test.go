package config

import (
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the testdata/invalid/*.golden files")

// goldenLines renders diagnostics as the golden files hold them: one
// "line:col: summary" per diagnostic, warnings marked.
func goldenLines(diags Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		sev := ""
		if d.Severity == SeverityWarning {
			sev = "warning: "
		}
		fmt.Fprintf(&b, "%d:%d: %s%s\n", d.Line, d.Column, sev, d.Summary)
	}
	return b.String()
}

// TestInvalidGolden parses every broken file under testdata/invalid and
// compares its diagnostics with the .golden file next to it. Files named
// host_*.hcl run with host checks on a machine with no interfaces and no
// disks (the secret file is read for real, relative to testdata/invalid).
func TestInvalidGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("only %d invalid files, want at least 25", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".hcl")
		t.Run(name, func(t *testing.T) {
			opts := Options{}
			if strings.HasPrefix(name, "host_") {
				opts = Options{HostChecks: true, host: emptyHost{}}
			}
			c, diags := Load(file, opts)
			got := goldenLines(diags)
			golden := strings.TrimSuffix(file, ".hcl") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				var text strings.Builder
				_ = diags.WriteText(&text, false)
				t.Errorf("diagnostics differ from %s\ngot:\n%s\nwant:\n%s\nfull text:\n%s", golden, got, want, text.String())
			}
			if name != "warnings" {
				if c != nil || !diags.HasErrors() {
					t.Errorf("broken file gave a model (%v) or no errors", c != nil)
				}
			} else if c == nil || diags.HasErrors() || len(diags) == 0 {
				t.Errorf("warnings only: want a model and warnings, got model=%v diags=%v", c != nil, diags)
			}
			for _, d := range diags {
				if d.Summary == "" || d.Detail == "" {
					t.Errorf("%d:%d: diagnostic without summary or detail: %+v", d.Line, d.Column, d)
				}
				if d.Line > 0 && d.Snippet == "" {
					t.Errorf("%d:%d: %s: no snippet", d.Line, d.Column, d.Summary)
				}
			}
		})
	}
}

// emptyHost is a machine with no interfaces, no disks and no cluster
// address; secrets are read from the real file system.
type emptyHost struct{}

func (emptyHost) ReadSecret(path string) ([]byte, fs.FileMode, error) {
	b, err := os.ReadFile(path)
	return b, 0o600, err
}
func (emptyHost) Exists(string) (bool, error) { return false, nil }
func (emptyHost) InterfaceAddrs(string) ([]netip.Prefix, bool, error) {
	return nil, false, nil
}
func (emptyHost) LocalAddrs() ([]netip.Addr, error) { return nil, nil }
func (emptyHost) Hostname() (string, error)         { return "workstation", nil }
