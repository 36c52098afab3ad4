package config

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// This file turns HCL attributes into typed values with the ranges that
// diagnostics need. Values are evaluated without variables or functions:
// the cluster file is data, not a program.

// value is one decoded attribute.
type value[T any] struct {
	V     T
	Set   bool      // written in the file; false: V is the default
	Bad   bool      // written but invalid (already reported); V is the zero value
	Range hcl.Range // the value's expression; the block header when not Set
}

// usable reports whether V may be checked against other values: either a
// valid value from the file or the default.
func (v value[T]) usable() bool { return !v.Bad }

// item is one element of a list attribute.
type item[T any] struct {
	V     T
	Range hcl.Range
}

// list is a decoded list attribute. Invalid items are left out.
type list[T any] struct {
	Items []item[T]
	Set   bool
	Bad   bool // some item or the list itself was invalid
	Range hcl.Range
}

// entry is one key = value pair of a map attribute.
type entry[T any] struct {
	Key      string
	KeyRange hcl.Range
	V        T
	Range    hcl.Range
}

// dict is a decoded map attribute. Invalid entries are left out.
type dict[T any] struct {
	Entries []entry[T]
	Set     bool
	Bad     bool
	Range   hcl.Range
}

// lookup returns the entry for key.
func (d dict[T]) lookup(key string) (entry[T], bool) {
	for _, e := range d.Entries {
		if e.Key == key {
			return e, true
		}
	}
	return entry[T]{}, false
}

// decoder collects diagnostics while the raw structs are filled in.
type decoder struct {
	diags hcl.Diagnostics
}

func (d *decoder) add(sev hcl.DiagnosticSeverity, rng hcl.Range, summary, detail string) {
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail, Subject: rng.Ptr()})
}

func (d *decoder) errorf(rng hcl.Range, summary, format string, args ...any) {
	d.add(hcl.DiagError, rng, summary, fmt.Sprintf(format, args...))
}

func (d *decoder) warnf(rng hcl.Range, summary, format string, args ...any) {
	d.add(hcl.DiagWarning, rng, summary, fmt.Sprintf(format, args...))
}

// eval evaluates a literal expression. ok is false when it is not a
// literal or failed (the diagnostics are recorded).
func (d *decoder) eval(expr hcl.Expression) (cty.Value, bool) {
	if !d.literal(expr) {
		return cty.NilVal, false
	}
	v, diags := expr.Value(nil)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	return v, true
}

// literal reports whether expr is plain data: strings without
// interpolation, numbers, bools, null, lists and maps of those. The file
// describes a cluster, it does not compute one; refusing expressions also
// keeps evaluation cheap on any input (formatting a number like 1e99999999
// as text takes seconds).
func (d *decoder) literal(expr hcl.Expression) bool {
	syn, ok := expr.(hclsyntax.Expression)
	if !ok {
		return true
	}
	var first *hcl.Diagnostic
	report := func(n hclsyntax.Node, summary, detail string) {
		if first == nil {
			first = &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Subject: n.Range().Ptr(),
				Detail: detail + " The cluster file is plain data: write the value itself, e.g. \"192.0.2.11\", 100 or [\"a\", \"b\"]."}
		}
	}
	_ = hclsyntax.VisitAll(syn, func(n hclsyntax.Node) hcl.Diagnostics {
		switch n := n.(type) {
		case *hclsyntax.LiteralValueExpr, *hclsyntax.TupleConsExpr, *hclsyntax.ObjectConsExpr, *hclsyntax.ObjectConsKeyExpr:
		case *hclsyntax.TemplateExpr:
			for _, p := range n.Parts {
				// Literal text parts are strings; anything else was ${...}.
				if lit, ok := p.(*hclsyntax.LiteralValueExpr); !ok || lit.Val.Type() != cty.String {
					report(n, "Interpolation not allowed", "Strings may not contain ${...} or %{...}; write $${ for a literal ${.")
					break
				}
			}
		case *hclsyntax.TemplateWrapExpr:
			report(n, "Interpolation not allowed", "Strings may not contain ${...} or %{...}; write $${ for a literal ${.")
		case *hclsyntax.UnaryOpExpr:
			if _, lit := n.Val.(*hclsyntax.LiteralValueExpr); n.Op != hclsyntax.OpNegate || !lit {
				report(n, "Expressions not allowed", "Only a minus sign before a number is allowed here.")
			}
		case *hclsyntax.ScopeTraversalExpr, *hclsyntax.RelativeTraversalExpr:
			report(n, "Variables not allowed", "There are no variables in a cluster file.")
		case *hclsyntax.FunctionCallExpr:
			report(n, "Function calls not allowed", "There are no functions in a cluster file.")
		default:
			report(n, "Expressions not allowed", "Operators, conditionals and for expressions are not allowed.")
		}
		return nil
	})
	if first != nil {
		d.diags = append(d.diags, first)
		return false
	}
	return true
}

// isNull reports whether expr is the literal null.
func isNull(expr hcl.Expression) bool {
	lit, ok := expr.(*hclsyntax.LiteralValueExpr)
	return ok && lit.Val.IsNull()
}

// numberText formats a number for messages without the cost of an exact
// decimal rendering of huge values.
func numberText(bf *big.Float) string {
	if i, acc := bf.Int64(); acc == big.Exact {
		return strconv.FormatInt(i, 10)
	}
	f, _ := bf.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// attrSpec describes one attribute of a block.
type attrSpec struct {
	name     string
	required bool
	hint     string // for "missing required argument": what it is, with an example
}

// blockSpec is the schema of one block type.
type blockSpec struct {
	kind   string // defaults table key
	attrs  []attrSpec
	blocks []hcl.BlockHeaderSchema
}

func (s blockSpec) schema() *hcl.BodySchema {
	bs := &hcl.BodySchema{Blocks: s.blocks}
	for _, a := range s.attrs {
		bs.Attributes = append(bs.Attributes, hcl.AttributeSchema{Name: a.name})
	}
	return bs
}

// body is one block being decoded.
type body struct {
	d       *decoder
	spec    blockSpec
	what    string // `vrrp "VI_1"`, for messages
	def     hcl.Range
	content *hcl.BodyContent
}

// open checks b against spec (unknown attributes and blocks, with hcl's
// "did you mean" hints; missing required attributes) and returns it for
// decoding. An absent optional block is opened with a nil hcl.Body and
// decodes to its defaults.
func (d *decoder) open(spec blockSpec, what string, b hcl.Body, def hcl.Range) *body {
	content := &hcl.BodyContent{Attributes: hcl.Attributes{}}
	if b != nil {
		c, diags := b.Content(spec.schema())
		d.diags = append(d.diags, diags...)
		if c != nil {
			content = c
		}
		for _, a := range spec.attrs {
			if _, ok := content.Attributes[a.name]; a.required && !ok {
				d.errorf(def, "Missing required argument",
					"%s needs %s: %s.", what, a.name, a.hint)
			}
		}
	}
	return &body{d: d, spec: spec, what: what, def: def, content: content}
}

// has reports whether the file sets name (to anything, even null).
func (b *body) has(name string) bool {
	_, ok := b.content.Attributes[name]
	return ok
}

// expr returns the expression for name: from the file when written and not
// null, else the default. set says which.
func (b *body) expr(name string) (expr hcl.Expression, set bool) {
	if a, ok := b.content.Attributes[name]; ok && !isNull(a.Expr) {
		return a.Expr, true
	}
	return defaultExpr(b.spec.kind, name), false
}

// valueCtx is handed to a scalar conversion: where the value is and which
// attribute it belongs to.
type valueCtx struct {
	d    *decoder
	attr string
	rng  hcl.Range
}

func (c valueCtx) errorf(summary, format string, args ...any) {
	c.d.errorf(c.rng, summary, format, args...)
}

// scalar converts one evaluated value; it reports its own diagnostics.
type scalar[T any] func(c valueCtx, v cty.Value) (T, bool)

// found is an attribute (or its default) looked up and evaluated.
type found struct {
	expr hcl.Expression // nil: neither set nor defaulted
	set  bool           // written in the file
	rng  hcl.Range      // the value's range, or the block's when not set
	v    cty.Value
	ok   bool // evaluated without error
}

// find looks attribute name up in b and evaluates it: the start that
// attr, listAttr and mapAttr share.
func (b *body) find(name string) found {
	f := found{rng: b.def}
	f.expr, f.set = b.expr(name)
	if f.expr == nil {
		return f
	}
	if f.set {
		f.rng = f.expr.Range()
	}
	f.v, f.ok = b.d.eval(f.expr)
	return f
}

func attr[T any](b *body, name string, conv scalar[T]) value[T] {
	f := b.find(name)
	out := value[T]{Range: f.rng, Set: f.set}
	if f.expr == nil {
		return out
	}
	ok := f.ok
	if ok {
		out.V, ok = conv(valueCtx{b.d, name, f.expr.Range()}, f.v)
	}
	out.Bad = !ok
	return out
}

func listAttr[T any](b *body, name string, conv scalar[T]) list[T] {
	f := b.find(name)
	out := list[T]{Range: f.rng, Set: f.set}
	if f.expr == nil {
		return out
	}
	if !f.ok {
		out.Bad = true
		return out
	}
	if ty := f.v.Type(); !ty.IsTupleType() && !ty.IsListType() && !ty.IsSetType() {
		b.d.errorf(f.expr.Range(), "Incorrect attribute value type", "%s must be a list, e.g. %s = [...].", name, name)
		out.Bad = true
		return out
	}
	items, diags := hcl.ExprList(f.expr)
	if diags.HasErrors() {
		b.d.errorf(f.expr.Range(), "Incorrect attribute value type", "%s must be a list written out as [...].", name)
		out.Bad = true
		return out
	}
	for _, ie := range items {
		iv, ok := b.d.eval(ie)
		var x T
		if ok {
			x, ok = conv(valueCtx{b.d, name, ie.Range()}, iv)
		}
		if !ok {
			out.Bad = true
			continue
		}
		out.Items = append(out.Items, item[T]{V: x, Range: ie.Range()})
	}
	return out
}

func mapAttr[T any](b *body, name string, conv scalar[T]) dict[T] {
	f := b.find(name)
	out := dict[T]{Range: f.rng, Set: f.set}
	if f.expr == nil {
		return out
	}
	if !f.ok {
		out.Bad = true
		return out
	}
	out.Entries, out.Bad = decodeMap(b.d, name, f.expr, f.v, conv)
	return out
}

// decodeMap decodes the pairs of a map expression already evaluated to v.
func decodeMap[T any](d *decoder, name string, expr hcl.Expression, v cty.Value, conv scalar[T]) (entries []entry[T], bad bool) {
	if ty := v.Type(); !ty.IsObjectType() && !ty.IsMapType() {
		d.errorf(expr.Range(), "Incorrect attribute value type", "%s must be a map, e.g. %s = { alpha = ..., bravo = ... }.", name, name)
		return nil, true
	}
	pairs, diags := hcl.ExprMap(expr)
	if diags.HasErrors() {
		d.errorf(expr.Range(), "Incorrect attribute value type", "%s must be a map written out as { key = value, ... }.", name)
		return nil, true
	}
	seen := make(map[string]hcl.Range)
	for _, p := range pairs {
		kv, ok := d.eval(p.Key)
		var key string
		if ok {
			key, ok = asString(valueCtx{d, name, p.Key.Range()}, kv)
		}
		if !ok {
			bad = true
			continue
		}
		if first, dup := seen[key]; dup {
			d.errorf(p.Key.Range(), "Duplicate map key", "%q is already set (line %d, column %d); each key may appear once in %s. Remove one of them.", key, first.Start.Line, first.Start.Column, name)
			bad = true
			continue
		}
		seen[key] = p.Key.Range()
		vv, ok := d.eval(p.Value)
		var x T
		if ok {
			x, ok = conv(valueCtx{d, name, p.Value.Range()}, vv)
		}
		if !ok {
			bad = true
			continue
		}
		entries = append(entries, entry[T]{Key: key, KeyRange: p.Key.Range(), V: x, Range: p.Value.Range()})
	}
	return entries, bad
}

// Scalar conversions.

func asString(c valueCtx, v cty.Value) (string, bool) {
	if v.IsNull() {
		c.errorf("Incorrect attribute value type", "%s must be a string, not null.", c.attr)
		return "", false
	}
	if v.Type() == cty.Number {
		// cty renders numbers exactly, which is slow for huge ones.
		return numberText(v.AsBigFloat()), true
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		c.errorf("Incorrect attribute value type", "%s must be a string, e.g. %s = \"...\".", c.attr, c.attr)
		return "", false
	}
	return s.AsString(), true
}

func asBool(c valueCtx, v cty.Value) (bool, bool) {
	if !v.IsNull() {
		if b, err := convert.Convert(v, cty.Bool); err == nil {
			return b.True(), true
		}
	}
	c.errorf("Incorrect attribute value type", "%s must be true or false.", c.attr)
	return false, false
}

// asInt returns a conversion to a whole number in lo..hi.
func asInt(lo, hi int) scalar[int] {
	return func(c valueCtx, v cty.Value) (int, bool) {
		if !v.IsNull() {
			if n, err := convert.Convert(v, cty.Number); err == nil {
				bf := n.AsBigFloat()
				if !bf.IsInt() {
					c.errorf("Invalid value", "%s must be a whole number; got %s.", c.attr, numberText(bf))
					return 0, false
				}
				if bf.Cmp(big.NewFloat(float64(lo))) < 0 || bf.Cmp(big.NewFloat(float64(hi))) > 0 {
					c.errorf("Value out of range", "%s must be between %d and %d; got %s.", c.attr, lo, hi, numberText(bf))
					return 0, false
				}
				i, _ := bf.Int64()
				return int(i), true
			}
		}
		c.errorf("Incorrect attribute value type", "%s must be a number.", c.attr)
		return 0, false
	}
}

// asDuration returns a duration conversion; positive also refuses 0.
func asDuration(positive bool) scalar[time.Duration] {
	return func(c valueCtx, v cty.Value) (time.Duration, bool) {
		s, ok := asString(c, v)
		if !ok {
			return 0, false
		}
		dur, err := parseDuration(s)
		if err != nil {
			c.errorf("Invalid duration", "%s: %s.", c.attr, err)
			return 0, false
		}
		if positive && dur == 0 {
			c.errorf("Invalid duration", "%s must be longer than 0.", c.attr)
			return 0, false
		}
		return dur, true
	}
}

func asSize(c valueCtx, v cty.Value) (Size, bool) {
	s, ok := asString(c, v)
	if !ok {
		return 0, false
	}
	n, err := ParseSize(s)
	if err != nil {
		c.errorf("Invalid size", "%s: %s.", c.attr, err)
		return 0, false
	}
	return n, true
}

func asAddr(c valueCtx, v cty.Value) (netip.Addr, bool) {
	return parsed(c, v, "Invalid IP address", parseAddr)
}

func asIPv4(c valueCtx, v cty.Value) (netip.Addr, bool) {
	return parsed(c, v, "Invalid IP address", parseIPv4)
}

func asVIP(c valueCtx, v cty.Value) (netip.Prefix, bool) {
	return parsed(c, v, "Invalid virtual IP", parseVIP)
}

func asAbsPath(c valueCtx, v cty.Value) (string, bool) {
	return parsed(c, v, "Path is not absolute", func(s string) (string, error) { return s, checkAbsPath(s) })
}

func asInterface(c valueCtx, v cty.Value) (string, bool) {
	return parsed(c, v, "Invalid interface name", func(s string) (string, error) { return s, checkInterfaceName(s) })
}

// asArg is one element of an argv: any non-empty string.
func asArg(c valueCtx, v cty.Value) (string, bool) {
	return parsed(c, v, "Empty argument", func(s string) (string, error) {
		if s == "" {
			return "", errors.New("one of its arguments is empty; remove it or give it a value")
		}
		return s, nil
	})
}

// parsed runs a text parser on a string value and reports its error.
func parsed[T any](c valueCtx, v cty.Value, summary string, parse func(string) (T, error)) (T, bool) {
	var zero T
	s, ok := asString(c, v)
	if !ok {
		return zero, false
	}
	x, err := parse(s)
	if err != nil {
		c.errorf(summary, "%s: %s.", c.attr, err)
		return zero, false
	}
	return x, true
}

// asEnum returns a conversion to one of allowed, with a "did you mean".
func asEnum[T ~string](allowed ...T) scalar[T] {
	return func(c valueCtx, v cty.Value) (T, bool) {
		s, ok := asString(c, v)
		if !ok {
			return "", false
		}
		names := make([]string, len(allowed))
		for i, a := range allowed {
			if string(a) == s {
				return a, true
			}
			names[i] = string(a)
		}
		if len(names) == 1 {
			c.errorf("Invalid value", "%s must be %q; got %q.", c.attr, names[0], s)
		} else {
			c.errorf("Invalid value", "%s must be one of %s; got %q.%s", c.attr, quoteList(names), s, didYouMean(s, names))
		}
		return "", false
	}
}

// didYouMean returns ` Did you mean "x"?` for the closest candidate within
// a few edits of s, or "".
func didYouMean(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein.Distance(strings.ToLower(s), strings.ToLower(c), nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

// quoteList renders `"a", "b" or "c"`.
func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	switch len(q) {
	case 0:
		return "(none)"
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
