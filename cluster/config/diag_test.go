package config

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestWriteText(t *testing.T) {
	src := applyEdits(t, baseFile, []edit{{"bravo = 90 }", "charlie = 90 }"}, {`version           = 3`, "version           = 3\n\tpreemt = false"}})
	_, diags := Parse([]byte(src), "shop.hcl", Options{})
	var b strings.Builder
	if err := diags.WriteText(&b, false); err != nil {
		t.Fatal(err)
	}
	want := `shop.hcl:26:2: error: Unsupported argument
   26 | 	preemt = false
      | 	^^^^^^
    An argument named "preemt" is not expected here. Did you mean "preempt"?

shop.hcl:28:38: error: Unknown node "charlie"
   28 |   priority          = { alpha = 100, charlie = 90 }
      |                                      ^^^^^^^
    vrrp "VI_1" priority names node "charlie", but no node block has that name. Declared nodes: alpha, bravo, witness.
`
	if got := b.String(); got != want {
		t.Errorf("WriteText:\n%s\nwant:\n%s", got, want)
	}

	b.Reset()
	_ = diags.WriteText(&b, true)
	if got := b.String(); !strings.Contains(got, ansiRed+"error"+ansiReset) || !strings.Contains(got, ansiBold+"shop.hcl:26:2"+ansiReset) {
		t.Errorf("colored output lacks escapes:\n%q", got)
	}
}

func TestWriteTextWithoutPosition(t *testing.T) {
	ds := Diagnostics{{Severity: SeverityError, Summary: "Cannot read the cluster file", Detail: "open x.hcl: no such file or directory", File: "x.hcl"}}
	var b strings.Builder
	_ = ds.WriteText(&b, false)
	if want := "x.hcl: error: Cannot read the cluster file\n    open x.hcl: no such file or directory\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestUnderlineMultiLine(t *testing.T) {
	d := &Diagnostic{Line: 3, Column: 5, EndLine: 4, EndColumn: 2, Snippet: "  x = {"}
	if got := underline(d); got != "    ^^^" {
		t.Errorf("underline = %q", got)
	}
	d = &Diagnostic{Line: 1, Column: 50, EndLine: 1, EndColumn: 60, Snippet: "short"}
	if got := underline(d); got != "     ^" {
		t.Errorf("underline past the end = %q", got)
	}
}

func TestDiagnosticsError(t *testing.T) {
	var none Diagnostics
	if none.HasErrors() || none.Error() != "" {
		t.Errorf("empty: HasErrors %v, Error %q", none.HasErrors(), none.Error())
	}
	ds := Diagnostics{
		{Severity: SeverityWarning, Summary: "w", File: "f.hcl", Line: 1, Column: 1},
		{Severity: SeverityError, Summary: "Unknown node \"x\"", Detail: "Declare it.", File: "f.hcl", Line: 3, Column: 7},
		{Severity: SeverityError, Summary: "b", File: "f.hcl", Line: 4, Column: 1},
		{Severity: SeverityError, Summary: "c", File: "f.hcl", Line: 5, Column: 1},
	}
	if !ds.HasErrors() || ds.Errors() != 3 || ds.Warnings() != 1 {
		t.Errorf("counts: %v %d %d", ds.HasErrors(), ds.Errors(), ds.Warnings())
	}
	if got, want := ds.Error(), `f.hcl:3:7: Unknown node "x": Declare it. (and 2 more errors)`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := ds[:3].Error(); !strings.HasSuffix(got, "(and 1 more error)") {
		t.Errorf("Error() = %q", got)
	}
	if (Diagnostics{ds[0]}).HasErrors() {
		t.Error("a warning counts as an error")
	}
}

func TestDiagnosticJSON(t *testing.T) {
	src := applyEdits(t, baseFile, []edit{{`port     = 7788`, `port     = 77888`}})
	_, diags := Parse([]byte(src), "shop.hcl", Options{})
	b, err := json.Marshal(diags)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"severity":"error","summary":"Value out of range","detail":"port must be between 1 and 65535; got 77888.","file":"shop.hcl","line":39,"column":14,"end_line":39,"end_column":19,"snippet":"  port     = 77888"}]`
	if string(b) != want {
		t.Errorf("JSON:\n%s\nwant:\n%s", b, want)
	}
}
