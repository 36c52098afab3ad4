package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hactl/hactl/cluster/config"
)

func TestValidateExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.hcl")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	code, stdout, stderr := runCapture(append([]string{"validate", "--host-checks=false"}, files...)...)
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != len(files) {
		t.Fatalf("want one line per file, got:\n%s", stdout)
	}
	for _, want := range []string{
		`../../examples/nfs.hcl: valid: cluster "nfs": 2 nodes, 1 vrrp instance, 1 volume, 1 group`,
		`../../examples/postgres.hcl: valid: cluster "pg": 3 nodes (1 witness), 1 vrrp instance, 1 volume, 1 group`,
	} {
		if !strings.Contains(stdout, want+"\n") {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

func TestValidateDefaultPath(t *testing.T) {
	code, stdout, _ := runCapture("validate", "--config", "../../examples/dns.hcl", "--host-checks=false")
	if code != exitOK || !strings.HasPrefix(stdout, `../../examples/dns.hcl: valid: cluster "dns"`) {
		t.Fatalf("exit %d, %q", code, stdout)
	}
}

func TestValidateInvalid(t *testing.T) {
	file := "../../cluster/config/testdata/invalid/unknown_references.hcl"
	code, stdout, stderr := runCapture("validate", file)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d", code, exitFailure)
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
	for _, want := range []string{
		file + `:19:38: error: Unknown node "bravoo"`,
		`   19 |   priority          = { alpha = 100, bravoo = 90 }`,
		`Did you mean "bravo"?`,
		file + `:36:12: error: Unknown volume "dta"`,
		"hactl: " + file + " is not valid (7 errors)\n",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "\x1b[") {
		t.Error("colors written to a non-terminal")
	}
}

func TestValidateMissingFile(t *testing.T) {
	code, stdout, stderr := runCapture("validate", "no/such/cluster.hcl")
	if code != exitFailure || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	if stderr != "hactl: open no/such/cluster.hcl: no such file or directory\n" {
		t.Errorf("stderr = %q, want one line", stderr)
	}
}

func TestValidateJSON(t *testing.T) {
	code, stdout, stderr := runCapture("validate", "--json", "--host-checks=false", "../../examples/web.hcl")
	if code != exitOK || stdout != "[]\n" || stderr != "" {
		t.Fatalf("valid: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	bad := "../../cluster/config/testdata/invalid/warnings.hcl"
	worse := "../../cluster/config/testdata/invalid/quorum_majority.hcl"
	code, stdout, stderr = runCapture("validate", "--json", bad, worse, "missing.hcl")
	if code != exitFailure || stderr != "" {
		t.Fatalf("invalid: exit %d, stderr %q", code, stderr)
	}
	var diags []config.Diagnostic
	if err := json.Unmarshal([]byte(stdout), &diags); err != nil {
		t.Fatalf("stdout is not a JSON array of diagnostics: %v\n%s", err, stdout)
	}
	if len(diags) != 8 {
		t.Fatalf("got %d diagnostics, want 6 warnings + 1 error + 1 unreadable file:\n%s", len(diags), stdout)
	}
	q := diags[6]
	if q.Severity != "error" || q.Summary != "Majority quorum needs three voters" || q.File != worse || q.Line != 4 || q.Column != 17 || q.EndColumn != 27 || q.Snippet == "" || q.Detail == "" {
		t.Errorf("diagnostic = %+v", q)
	}
	if m := diags[7]; m.File != "missing.hcl" || m.Line != 0 || m.Severity != "error" {
		t.Errorf("missing file = %+v", m)
	}
	for _, key := range []string{`"severity"`, `"summary"`, `"detail"`, `"file"`, `"line"`, `"column"`, `"end_line"`, `"end_column"`, `"snippet"`} {
		if !strings.Contains(stdout, key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

func TestValidateAsNode(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../examples/nfs.hcl")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "cluster.hcl")
	src = []byte(strings.Replace(string(src), `"/etc/hactl/secret"`, `"secret"`, 1))
	if err := os.WriteFile(file, src, 0o600); err != nil {
		t.Fatal(err)
	}

	code, _, stderr := runCapture("validate", "--node", "nfs9", "--host-checks=false", file)
	if code != exitFailure || !strings.Contains(stderr, `error: Unknown node "nfs9"`) || !strings.Contains(stderr, `Did you mean "nfs1"?`) {
		t.Fatalf("unknown node: exit %d\n%s", code, stderr)
	}

	code, stdout, stderr := runCapture("validate", "--node", "nfs2", "--host-checks=false", file)
	if code != exitOK || !strings.HasSuffix(stdout, `(as node "nfs2")`+"\n") {
		t.Fatalf("as nfs2: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// Host checks on this machine: the secret next to the file is missing.
	code, _, stderr = runCapture("validate", "--host-checks", file)
	if code != exitFailure || !strings.Contains(stderr, "error: Cannot read the secret file") {
		t.Fatalf("missing secret: exit %d\n%s", code, stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("c2VjcmV0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCapture("validate", "--host-checks", file)
	if code != exitOK || !strings.Contains(stdout, "valid: cluster \"nfs\"") {
		t.Fatalf("with secret: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
