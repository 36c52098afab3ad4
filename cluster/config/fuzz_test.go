package config

import (
	"encoding/json"
	"io"
	"testing"
)

// FuzzParse feeds arbitrary bytes through the whole pipeline. Whatever the
// input, Parse must not panic, must return a model exactly when there are
// no errors, and every diagnostic must render.
func FuzzParse(f *testing.F) {
	f.Add([]byte(baseFile))
	f.Add([]byte(`cluster "c" { secret_file = "s" }`))
	f.Add([]byte(`vrrp "v" { priority = { a = 1, "b" = 2 } virtual_ips = [for x in [] : x] }`))
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, opts := range []Options{{}, {Node: "alpha", HostChecks: true, host: emptyHost{}}} {
			c, diags := Parse(src, "fuzz.hcl", opts)
			if (c != nil) == diags.HasErrors() {
				t.Fatalf("model %v with errors %v", c != nil, diags.HasErrors())
			}
			for _, d := range diags {
				if d.Summary == "" {
					t.Fatalf("diagnostic without summary: %+v", d)
				}
			}
			if err := diags.WriteText(io.Discard, true); err != nil {
				t.Fatal(err)
			}
			_ = diags.Error()
			if _, err := json.Marshal(diags); err != nil {
				t.Fatal(err)
			}
			if c != nil {
				_ = c.Summary()
				_, _ = LocalNode(c, nil, "alpha")
			}
		}
	})
}
