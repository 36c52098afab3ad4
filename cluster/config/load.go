package config

import (
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Options select the checks that depend on where the file is read.
type Options struct {
	// Node checks the file as this node: it must be one of the file's
	// nodes, and with HostChecks its interfaces, subnets and disks are
	// looked up on this machine. Empty: check the file on its own.
	Node string
	// HostChecks enables the checks that only hold on a cluster node: the
	// secret file is readable (and, with Node, the node's interfaces and
	// disks exist). Off, a file can be validated on a workstation.
	HostChecks bool

	host host // the machine; nil means the real one (tests inject a fake)
}

// Load reads and validates the cluster file at path. It returns the model
// when the file has no errors (warnings may come with it), else nil and
// every problem found.
func Load(path string, opts Options) (*Cluster, Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Diagnostics{{
			Severity: SeverityError,
			Summary:  "Cannot read the cluster file",
			Detail:   err.Error(),
			File:     path,
		}}
	}
	return Parse(src, path, opts)
}

// Parse validates a cluster file held in memory. filename is used in
// diagnostics and to resolve a relative secret_file.
func Parse(src []byte, filename string, opts Options) (*Cluster, Diagnostics) {
	srcs := sources{filename: src}
	file, hd := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if hd.HasErrors() {
		// A broken syntax tree gives misleading schema errors; report the
		// syntax alone.
		return nil, srcs.convert(hd)
	}
	d := &decoder{diags: hd}
	raw := decodeFile(d, file.Body, filename)
	validate(d, raw)
	if opts.Node != "" {
		checkAsNode(d, raw, opts)
	}
	if opts.HostChecks {
		h := opts.host
		if h == nil {
			h = osHost{}
		}
		hostChecks(d, h, raw, opts.Node)
	}
	diags := srcs.convert(d.diags)
	if diags.HasErrors() {
		return nil, diags
	}
	return build(raw), diags
}

// checkAsNode reports a --node that the file does not declare. The
// diagnostic has no position: the name came from the command line.
func checkAsNode(d *decoder, f *rawFile, opts Options) {
	var names []string
	for _, n := range f.Nodes {
		if n.Name == opts.Node {
			return
		}
		names = append(names, n.Name)
	}
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Unknown node %q", opts.Node),
		Detail: fmt.Sprintf("The file is being checked as node %q, but it declares no such node.%s Declared nodes: %s.",
			opts.Node, didYouMean(opts.Node, names), orNone(names)),
		Subject: &hcl.Range{Filename: f.Filename},
	})
}
