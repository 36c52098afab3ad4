package config

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Decoding is the first of three phases (decode, validate, build). It
// checks the file against the schema and every value on its own (types,
// formats, ranges, enums) and fills in the raw structs below, defaults
// included. Checks that relate values to each other are in validate.go.

// label is a block's name and where it was declared.
type label struct {
	Name      string
	NameRange hcl.Range // the quoted label
	DefRange  hcl.Range // type and labels: `vrrp "VI_1"`
}

type rawFile struct {
	Filename string
	Clusters []*rawCluster
	Nodes    []*rawNode
	VRRP     []*rawVRRP
	Volumes  []*rawVolume
	Groups   []*rawGroup
}

type rawCluster struct {
	label
	SecretFile  value[string]
	Quorum      value[QuorumMode]
	StartupWait value[time.Duration]
}

type rawNode struct {
	label
	Address            value[netip.Addr]
	ReplicationAddress value[netip.Addr]
	Witness            value[bool]
}

type rawVRRP struct {
	label
	Interface       value[string]
	VRID            value[int]
	Version         value[int]
	AdvertInterval  value[time.Duration]
	Priority        dict[int]
	Preempt         value[bool]
	PreemptDelay    value[time.Duration]
	VirtualIPs      list[netip.Prefix]
	TrackInterfaces list[TrackInterface]
	UnicastPeers    list[netip.Addr]
	UnicastSource   dict[netip.Addr]
	AuthPass        value[string]
	V3PseudoHeader  value[bool]
	GARPCount       value[int]
	GARPRepeatDelay value[time.Duration]
	GARPRefresh     value[time.Duration]
	VMAC            value[bool]
	Checks          []*rawCheck
}

type rawCheck struct {
	label
	Exec       list[string]
	TCP        value[string]
	HTTP       value[string]
	DNS        value[string]
	HTTPStatus value[int]
	DNSQuery   value[string]
	Interval   value[time.Duration]
	Timeout    value[time.Duration]
	Rise       value[int]
	Fall       value[int]
	Weight     value[int]
}

type rawVolume struct {
	label
	Protocol value[Protocol]
	Port     value[int]
	Disk     dict[string]
	// Meta is "internal" or a map; MetaMap holds the map form.
	MetaInternal bool
	MetaRange    hcl.Range
	MetaMap      dict[string]
	Attach       value[AttachMode]
	Resync       rawResync
	SplitBrain   rawSplitBrain
}

type rawResync struct {
	Rate     value[Size]
	MinRate  value[Size]
	MaxRate  value[Size]
	Checksum value[bool]
}

type rawSplitBrain struct {
	After0Pri value[string]
	After1Pri value[string]
	After2Pri value[string]
}

type rawGroup struct {
	label
	VRRP               value[string]
	Volume             value[string]
	Filesystem         *rawFilesystem
	Resources          []*rawResource // in declared order across kinds
	OnStopFailure      value[OnStopFailure]
	MigrationThreshold value[int]
	FailureTimeout     value[time.Duration]
}

type rawFilesystem struct {
	DefRange     hcl.Range
	Mountpoint   value[string]
	FSType       value[string]
	Options      list[string]
	Fsck         value[bool]
	MonitorWrite value[bool]
	Timeout      value[time.Duration]
}

type rawResource struct {
	label
	Kind            ResourceKind
	Unit            value[string]
	Start           list[string]
	Stop            list[string]
	Monitor         list[string]
	Environment     dict[string]
	Agent           value[string]
	Params          dict[string]
	Timeout         value[time.Duration]
	MonitorInterval value[time.Duration]
	MonitorTimeout  value[time.Duration]
}

// Schemas. The hints complete "X needs ATTR: HINT." for missing attributes.

var named = []string{"name"}

var fileSpec = blockSpec{
	kind: "file",
	blocks: []hcl.BlockHeaderSchema{
		{Type: "cluster", LabelNames: named},
		{Type: "node", LabelNames: named},
		{Type: "vrrp", LabelNames: named},
		{Type: "volume", LabelNames: named},
		{Type: "group", LabelNames: named},
	},
}

var clusterSpec = blockSpec{kind: "cluster", attrs: []attrSpec{
	{name: "secret_file", required: true, hint: `the file holding the shared secret that authenticates and encrypts cluster traffic, e.g. secret_file = "/etc/hactl/secret"`},
	{name: "quorum"},
	{name: "startup_wait"},
}}

var nodeSpec = blockSpec{kind: "node", attrs: []attrSpec{
	{name: "address", required: true, hint: `its IP address on the cluster network, e.g. address = "192.0.2.11"`},
	{name: "replication_address"},
	{name: "witness"},
}}

var vrrpSpec = blockSpec{kind: "vrrp",
	attrs: []attrSpec{
		{name: "interface", required: true, hint: `the network interface that carries the virtual IPs, e.g. interface = "eth0"`},
		{name: "virtual_router_id", required: true, hint: `a number from 1 to 255, unique on the segment, e.g. virtual_router_id = 51`},
		{name: "version"},
		{name: "advert_interval"},
		{name: "priority", required: true, hint: `the priority of each node that may hold the virtual IPs, e.g. priority = { alpha = 100, bravo = 90 }`},
		{name: "preempt"},
		{name: "preempt_delay"},
		{name: "virtual_ips", required: true, hint: `the addresses it moves, with the interface's prefix length, e.g. virtual_ips = ["192.0.2.100/24"]`},
		{name: "track_interface"},
		{name: "unicast_peers"},
		{name: "unicast_source"},
		{name: "auth_pass"},
		{name: "v3_checksum_pseudo_header"},
		{name: "garp_count"},
		{name: "garp_repeat_delay"},
		{name: "garp_refresh"},
		{name: "vmac"},
	},
	blocks: []hcl.BlockHeaderSchema{{Type: "check", LabelNames: named}},
}

var checkSpec = blockSpec{kind: "vrrp.check", attrs: []attrSpec{
	{name: "exec"}, {name: "tcp"}, {name: "http"}, {name: "dns"},
	{name: "http_status"}, {name: "dns_query"},
	{name: "interval"}, {name: "timeout"}, {name: "rise"}, {name: "fall"}, {name: "weight"},
}}

var volumeSpec = blockSpec{kind: "volume",
	attrs: []attrSpec{
		{name: "protocol"},
		{name: "port", required: true, hint: `the TCP port of its replication link, the same on every node, e.g. port = 7788`},
		{name: "disk", required: true, hint: `the backing device or file on each data node, e.g. disk = { alpha = "/dev/vg0/data", bravo = "/dev/vg0/data" }`},
		{name: "meta"},
		{name: "attach"},
	},
	blocks: []hcl.BlockHeaderSchema{{Type: "resync"}, {Type: "split_brain"}},
}

var resyncSpec = blockSpec{kind: "volume.resync", attrs: []attrSpec{
	{name: "rate"}, {name: "min_rate"}, {name: "max_rate"}, {name: "checksum"},
}}

var splitBrainSpec = blockSpec{kind: "volume.split_brain", attrs: []attrSpec{
	{name: "after_0pri"}, {name: "after_1pri"}, {name: "after_2pri"},
}}

var groupSpec = blockSpec{kind: "group",
	attrs: []attrSpec{
		{name: "vrrp", required: true, hint: `the vrrp instance whose Master runs the group, e.g. vrrp = "VI_1"`},
		{name: "volume"},
		{name: "on_stop_failure"},
		{name: "migration_threshold"},
		{name: "failure_timeout"},
	},
	blocks: []hcl.BlockHeaderSchema{
		{Type: "filesystem"},
		{Type: "service", LabelNames: named},
		{Type: "exec", LabelNames: named},
		{Type: "ocf", LabelNames: named},
	},
}

var filesystemSpec = blockSpec{kind: "group.filesystem", attrs: []attrSpec{
	{name: "mountpoint", required: true, hint: `the absolute directory to mount the volume on, e.g. mountpoint = "/srv/data"`},
	{name: "fstype", required: true, hint: `the filesystem type, e.g. fstype = "ext4"`},
	{name: "options"}, {name: "fsck"}, {name: "monitor_write"}, {name: "timeout"},
}}

var resourceAttrs = []attrSpec{{name: "timeout"}, {name: "monitor_interval"}, {name: "monitor_timeout"}}

var serviceSpec = blockSpec{kind: "group.service", attrs: append([]attrSpec{
	{name: "unit"},
}, resourceAttrs...)}

var execSpec = blockSpec{kind: "group.exec", attrs: append([]attrSpec{
	{name: "start", required: true, hint: `the command that starts it, as an argv list without a shell, e.g. start = ["/usr/local/bin/warm", "--all"]`},
	{name: "stop"}, {name: "monitor"}, {name: "environment"},
}, resourceAttrs...)}

var ocfSpec = blockSpec{kind: "group.ocf", attrs: append([]attrSpec{
	{name: "agent", required: true, hint: `the resource agent as provider:type or an absolute path, e.g. agent = "heartbeat:IPaddr2"`},
	{name: "params"},
}, resourceAttrs...)}

// decodeFile decodes the top-level body of a parsed file.
func decodeFile(d *decoder, b hcl.Body, filename string) *rawFile {
	f := &rawFile{Filename: filename}
	top := d.open(fileSpec, "the cluster file", b, hcl.Range{Filename: filename})
	for _, blk := range top.content.Blocks {
		lb := d.label(blk)
		what := fmt.Sprintf("%s %q", blk.Type, lb.Name)
		switch blk.Type {
		case "cluster":
			f.Clusters = append(f.Clusters, decodeCluster(d, lb, d.open(clusterSpec, what, blk.Body, lb.DefRange)))
		case "node":
			f.Nodes = append(f.Nodes, decodeNode(lb, d.open(nodeSpec, what, blk.Body, lb.DefRange)))
		case "vrrp":
			f.VRRP = append(f.VRRP, decodeVRRP(d, lb, d.open(vrrpSpec, what, blk.Body, lb.DefRange)))
		case "volume":
			f.Volumes = append(f.Volumes, decodeVolume(d, lb, d.open(volumeSpec, what, blk.Body, lb.DefRange)))
		case "group":
			f.Groups = append(f.Groups, decodeGroup(d, lb, d.open(groupSpec, what, blk.Body, lb.DefRange)))
		}
	}
	return f
}

// label reads a block's name and checks its form.
func (d *decoder) label(blk *hcl.Block) label {
	lb := label{DefRange: blk.DefRange, NameRange: blk.DefRange}
	if len(blk.Labels) > 0 {
		lb.Name, lb.NameRange = blk.Labels[0], blk.LabelRanges[0]
		if err := checkName(lb.Name); err != nil {
			d.errorf(lb.NameRange, "Invalid name", "%s is not a valid %s name: %s. Use letters, digits, '_', '-' and '.', starting with a letter, digit or '_'.", strconv.Quote(lb.Name), blk.Type, err)
		}
	}
	return lb
}

func decodeCluster(_ *decoder, lb label, b *body) *rawCluster {
	return &rawCluster{
		label:       lb,
		SecretFile:  attr(b, "secret_file", asNonEmpty),
		Quorum:      attr(b, "quorum", asEnum(QuorumAuto, QuorumMajority, QuorumTwoNode)),
		StartupWait: attr(b, "startup_wait", asDuration(false)),
	}
}

func decodeNode(lb label, b *body) *rawNode {
	return &rawNode{
		label:              lb,
		Address:            attr(b, "address", asAddr),
		ReplicationAddress: attr(b, "replication_address", asAddr),
		Witness:            attr(b, "witness", asBool),
	}
}

// Limits from the wire formats and keepalived.
const (
	maxPreemptDelay = 1000 * time.Second // keepalived's limit
	maxAuthPass     = 8                  // v2 PASS field
)

// trackAttr decodes track_interface: a list of interfaces, each of which
// puts the instance in FAULT while it is down, or a map of interface to
// weight (added to the priority while it is down; 0 = FAULT).
func trackAttr(b *body) list[TrackInterface] {
	const name = "track_interface"
	if expr, _ := b.expr(name); expr != nil {
		if _, isMap := expr.(*hclsyntax.ObjectConsExpr); isMap {
			m := mapAttr(b, name, asInt(-254, 254))
			out := list[TrackInterface]{Set: m.Set, Bad: m.Bad, Range: m.Range}
			for _, e := range m.Entries {
				ifname, ok := asInterface(valueCtx{b.d, name, e.KeyRange}, cty.StringVal(e.Key))
				if !ok {
					out.Bad = true
					continue
				}
				out.Items = append(out.Items, item[TrackInterface]{V: TrackInterface{Name: ifname, Weight: e.V}, Range: e.KeyRange})
			}
			return out
		}
	}
	l := listAttr(b, name, asInterface)
	out := list[TrackInterface]{Set: l.Set, Bad: l.Bad, Range: l.Range}
	for _, it := range l.Items {
		out.Items = append(out.Items, item[TrackInterface]{V: TrackInterface{Name: it.V}, Range: it.Range})
	}
	return out
}

func decodeVRRP(d *decoder, lb label, b *body) *rawVRRP {
	v := &rawVRRP{
		label:           lb,
		Interface:       attr(b, "interface", asInterface),
		VRID:            attr(b, "virtual_router_id", asInt(1, 255)),
		Version:         attr(b, "version", asInt(2, 3)),
		AdvertInterval:  attr(b, "advert_interval", asDuration(true)),
		Priority:        mapAttr(b, "priority", asInt(1, 255)),
		Preempt:         attr(b, "preempt", asBool),
		PreemptDelay:    attr(b, "preempt_delay", asDuration(false)),
		VirtualIPs:      listAttr(b, "virtual_ips", asVIP),
		TrackInterfaces: trackAttr(b),
		UnicastPeers:    listAttr(b, "unicast_peers", asIPv4),
		UnicastSource:   mapAttr(b, "unicast_source", asIPv4),
		AuthPass:        attr(b, "auth_pass", asString),
		V3PseudoHeader:  attr(b, "v3_checksum_pseudo_header", asBool),
		GARPCount:       attr(b, "garp_count", asInt(0, 255)),
		GARPRepeatDelay: attr(b, "garp_repeat_delay", asDuration(false)),
		GARPRefresh:     attr(b, "garp_refresh", asDuration(false)),
		VMAC:            attr(b, "vmac", asBool),
	}
	if v.PreemptDelay.usable() && v.PreemptDelay.V > maxPreemptDelay {
		d.errorf(v.PreemptDelay.Range, "Value out of range", "preempt_delay must be at most %s (keepalived's limit); got %s.", maxPreemptDelay, v.PreemptDelay.V)
		v.PreemptDelay.Bad = true
	}
	if v.AuthPass.usable() && len(v.AuthPass.V) > maxAuthPass {
		d.errorf(v.AuthPass.Range, "Password too long", "auth_pass has %d bytes; VRRPv2 PASS authentication carries at most %d. Shorten it (keepalived would silently truncate it).", len(v.AuthPass.V), maxAuthPass)
		v.AuthPass.Bad = true
	}
	if v.Priority.Set && !v.Priority.Bad && len(v.Priority.Entries) == 0 {
		d.errorf(v.Priority.Range, "No node may run this instance", "priority is empty. List each node that may hold the virtual IPs with its priority, e.g. { alpha = 100, bravo = 90 }.")
	}
	if v.VirtualIPs.Set && !v.VirtualIPs.Bad && len(v.VirtualIPs.Items) == 0 {
		d.errorf(v.VirtualIPs.Range, "No virtual IPs", "virtual_ips is empty. List at least one address with its prefix length, e.g. [\"192.0.2.100/24\"].")
	}
	for _, blk := range b.content.Blocks {
		clb := d.label(blk)
		what := fmt.Sprintf("check %q of vrrp %q", clb.Name, lb.Name)
		v.Checks = append(v.Checks, decodeCheck(d, clb, d.open(checkSpec, what, blk.Body, clb.DefRange)))
	}
	return v
}

// probeKinds are the attributes of a check block that pick its probe.
var probeKinds = []string{"exec", "tcp", "http", "dns"}

func decodeCheck(d *decoder, lb label, b *body) *rawCheck {
	c := &rawCheck{
		label:      lb,
		Exec:       listAttr(b, "exec", asArg),
		TCP:        attr(b, "tcp", hostPort(0)),
		HTTP:       attr(b, "http", func(c valueCtx, v cty.Value) (string, bool) { return parsed(c, v, "Invalid URL", parseHTTPURL) }),
		DNS:        attr(b, "dns", hostPort(53)),
		HTTPStatus: attr(b, "http_status", asInt(100, 599)),
		DNSQuery:   attr(b, "dns_query", asNonEmpty),
		Interval:   attr(b, "interval", asDuration(true)),
		Timeout:    attr(b, "timeout", asDuration(true)),
		Rise:       attr(b, "rise", asInt(1, 100)),
		Fall:       attr(b, "fall", asInt(1, 100)),
		Weight:     attr(b, "weight", asInt(-254, 254)),
	}
	if !c.Timeout.Set && !c.Timeout.Bad {
		c.Timeout.V = c.Interval.V // the computed default
	}
	var kinds []string
	for _, k := range probeKinds {
		if b.has(k) {
			kinds = append(kinds, k)
		}
	}
	switch {
	case len(kinds) == 0:
		d.errorf(lb.DefRange, "Check has no probe", "check %q must set exactly one of exec, tcp, http or dns, e.g. tcp = \"127.0.0.1:5432\".", lb.Name)
	case len(kinds) > 1:
		second := b.content.Attributes[kinds[1]]
		d.errorf(second.NameRange, "Check has several probes", "check %q sets %s; a check runs exactly one probe. Split it into one check block per probe.", lb.Name, strings.Join(kinds, " and "))
	}
	if c.Exec.Set && !c.Exec.Bad && len(c.Exec.Items) == 0 {
		d.errorf(c.Exec.Range, "Empty command", "exec must name a program and its arguments, e.g. [\"/usr/local/bin/check\", \"--quiet\"].")
	}
	if c.HTTPStatus.Set && !b.has("http") {
		d.errorf(c.HTTPStatus.Range, "Argument only for http checks", "http_status applies to http checks; remove it or add http = \"http://...\".")
	}
	if c.DNSQuery.Set && !b.has("dns") {
		d.errorf(c.DNSQuery.Range, "Argument only for dns checks", "dns_query applies to dns checks; remove it or add dns = \"SERVER[:PORT]\".")
	}
	if b.has("dns") && !b.has("dns_query") {
		d.errorf(lb.DefRange, "Missing required argument", "check %q is a dns check and needs dns_query: the name to resolve, e.g. dns_query = \"shop.example.\".", lb.Name)
	}
	if c.Timeout.Set && c.Timeout.usable() && c.Interval.usable() && c.Timeout.V > c.Interval.V {
		d.errorf(c.Timeout.Range, "Check timeout longer than its interval", "timeout is %s but interval is %s; a probe must finish before the next one starts. Lower timeout or raise interval.", c.Timeout.V, c.Interval.V)
	}
	return c
}

func hostPort(defaultPort int) scalar[string] {
	return func(c valueCtx, v cty.Value) (string, bool) {
		return parsed(c, v, "Invalid address", func(s string) (string, error) { return parseHostPort(s, defaultPort) })
	}
}

func asNonEmpty(c valueCtx, v cty.Value) (string, bool) {
	return parsed(c, v, "Empty value", func(s string) (string, error) {
		if strings.TrimSpace(s) == "" {
			return "", fmt.Errorf("it must not be empty")
		}
		return s, nil
	})
}

func decodeVolume(d *decoder, lb label, b *body) *rawVolume {
	v := &rawVolume{
		label:    lb,
		Protocol: attr(b, "protocol", asEnum(ProtocolA, ProtocolB, ProtocolC)),
		Port:     attr(b, "port", asInt(1, 65535)),
		Disk:     mapAttr(b, "disk", asAbsPath),
		Attach:   attr(b, "attach", asEnum(AttachAuto, AttachNBD, AttachLoop, AttachNone)),
	}
	decodeMeta(d, b, v)

	// resync and split_brain appear at most once; absent, they take their
	// defaults.
	var resync, sb *hcl.Block
	for _, blk := range b.content.Blocks {
		p := &resync
		if blk.Type == "split_brain" {
			p = &sb
		}
		if *p != nil {
			d.errorf(blk.DefRange, "Duplicate "+blk.Type+" block", "volume %q already has a %s block at line %d; merge them into one.", lb.Name, blk.Type, (*p).DefRange.Start.Line)
			continue
		}
		*p = blk
	}
	rb := openOptional(d, resyncSpec, fmt.Sprintf("resync of volume %q", lb.Name), resync, lb.DefRange)
	v.Resync = rawResync{
		Rate:     attr(rb, "rate", asSize),
		MinRate:  attr(rb, "min_rate", asSize),
		MaxRate:  attr(rb, "max_rate", asSize),
		Checksum: attr(rb, "checksum", asBool),
	}
	sbb := openOptional(d, splitBrainSpec, fmt.Sprintf("split_brain of volume %q", lb.Name), sb, lb.DefRange)
	v.SplitBrain = rawSplitBrain{
		// after_0pri also takes discard-node-NAME; validate checks the name.
		After0Pri: attr(sbb, "after_0pri", asAfter0Pri),
		After1Pri: attr(sbb, "after_1pri", asEnumString("disconnect", "consensus", "discard-secondary")),
		After2Pri: attr(sbb, "after_2pri", asEnumString("disconnect")),
	}
	return v
}

// openOptional opens blk, or an empty body when the block is absent.
func openOptional(d *decoder, spec blockSpec, what string, blk *hcl.Block, parentDef hcl.Range) *body {
	if blk == nil {
		return d.open(spec, what, nil, parentDef)
	}
	return d.open(spec, what, blk.Body, blk.DefRange)
}

// decodeMeta reads meta, which is "internal" or a per-node map of paths.
func decodeMeta(d *decoder, b *body, v *rawVolume) {
	v.MetaInternal = true
	v.MetaRange = b.def
	expr, set := b.expr("meta")
	if !set {
		return
	}
	v.MetaRange = expr.Range()
	val, ok := d.eval(expr)
	if !ok {
		return
	}
	if ty := val.Type(); ty.IsObjectType() || ty.IsMapType() {
		v.MetaInternal = false
		entries, bad := decodeMap(d, "meta", expr, val, asAbsPath)
		v.MetaMap = dict[string]{Entries: entries, Set: true, Bad: bad, Range: expr.Range()}
		return
	}
	if !val.Type().Equals(cty.String) || val.AsString() != "internal" {
		d.errorf(expr.Range(), "Invalid value", "meta must be \"internal\" or a map of metadata file paths per node, e.g. { alpha = \"/var/lib/hactl/data.meta\", bravo = \"/var/lib/hactl/data.meta\" }.")
	}
}

var after0Pri = []string{"disconnect", "discard-younger-primary", "discard-older-primary", "discard-zero-changes", "discard-least-changes"}

const discardNodePrefix = "discard-node-"

func asAfter0Pri(c valueCtx, v cty.Value) (string, bool) {
	s, ok := asString(c, v)
	if !ok {
		return "", false
	}
	if strings.HasPrefix(s, discardNodePrefix) {
		return s, true
	}
	for _, a := range after0Pri {
		if s == a {
			return s, true
		}
	}
	c.errorf("Invalid value", "%s must be one of %s, or \"discard-node-NAME\" with the name of a node; got %q.%s",
		c.attr, quoteList(after0Pri), s, didYouMean(s, after0Pri))
	return "", false
}

func asEnumString(allowed ...string) scalar[string] { return asEnum(allowed...) }

func decodeGroup(d *decoder, lb label, b *body) *rawGroup {
	g := &rawGroup{
		label:              lb,
		VRRP:               attr(b, "vrrp", asNonEmpty),
		Volume:             attr(b, "volume", asNonEmpty),
		OnStopFailure:      attr(b, "on_stop_failure", asEnum(StopFailureBlock, StopFailureSelfFence)),
		MigrationThreshold: attr(b, "migration_threshold", asInt(0, 1000000)),
		FailureTimeout:     attr(b, "failure_timeout", asDuration(false)),
	}
	blocks := append(hcl.Blocks(nil), b.content.Blocks...)
	// Resources run in the order they are written, whatever their kind.
	sort.SliceStable(blocks, func(i, j int) bool { return blocks[i].DefRange.Start.Byte < blocks[j].DefRange.Start.Byte })
	for _, blk := range blocks {
		if blk.Type == "filesystem" {
			if g.Filesystem != nil {
				d.errorf(blk.DefRange, "Duplicate filesystem block", "group %q already has a filesystem at line %d; a group mounts its one volume once.", lb.Name, g.Filesystem.DefRange.Start.Line)
				continue
			}
			g.Filesystem = decodeFilesystem(blk.DefRange, d.open(filesystemSpec, fmt.Sprintf("filesystem of group %q", lb.Name), blk.Body, blk.DefRange))
			continue
		}
		rlb := d.label(blk)
		what := fmt.Sprintf("%s %q of group %q", blk.Type, rlb.Name, lb.Name)
		switch blk.Type {
		case "service":
			g.Resources = append(g.Resources, decodeService(rlb, d.open(serviceSpec, what, blk.Body, rlb.DefRange)))
		case "exec":
			g.Resources = append(g.Resources, decodeExec(d, rlb, d.open(execSpec, what, blk.Body, rlb.DefRange)))
		case "ocf":
			g.Resources = append(g.Resources, decodeOCF(rlb, d.open(ocfSpec, what, blk.Body, rlb.DefRange)))
		}
	}
	return g
}

func decodeFilesystem(def hcl.Range, b *body) *rawFilesystem {
	return &rawFilesystem{
		DefRange:     def,
		Mountpoint:   attr(b, "mountpoint", asAbsPath),
		FSType:       attr(b, "fstype", asNonEmpty),
		Options:      listAttr(b, "options", asArg),
		Fsck:         attr(b, "fsck", asBool),
		MonitorWrite: attr(b, "monitor_write", asBool),
		Timeout:      attr(b, "timeout", asDuration(true)),
	}
}

func decodeResource(kind ResourceKind, lb label, b *body) *rawResource {
	return &rawResource{
		label:           lb,
		Kind:            kind,
		Timeout:         attr(b, "timeout", asDuration(true)),
		MonitorInterval: attr(b, "monitor_interval", asDuration(true)),
		MonitorTimeout:  attr(b, "monitor_timeout", asDuration(true)),
	}
}

func decodeService(lb label, b *body) *rawResource {
	r := decodeResource(KindService, lb, b)
	r.Unit = attr(b, "unit", asNonEmpty)
	if !r.Unit.Set && !r.Unit.Bad {
		r.Unit.V = lb.Name + ".service" // the computed default
	}
	return r
}

func decodeExec(d *decoder, lb label, b *body) *rawResource {
	r := decodeResource(KindExec, lb, b)
	r.Start = listAttr(b, "start", asArg)
	r.Stop = listAttr(b, "stop", asArg)
	r.Monitor = listAttr(b, "monitor", asArg)
	r.Environment = mapAttr(b, "environment", asString)
	if r.Start.Set && !r.Start.Bad && len(r.Start.Items) == 0 {
		d.errorf(r.Start.Range, "Empty command", "start must name a program and its arguments, e.g. [\"/usr/local/bin/warm\"].")
	}
	for _, e := range r.Environment.Entries {
		if !envNameRE.MatchString(e.Key) {
			d.errorf(e.KeyRange, "Invalid environment variable name", "%q is not a variable name; use letters, digits and '_', not starting with a digit.", e.Key)
		}
	}
	return r
}

func decodeOCF(lb label, b *body) *rawResource {
	r := decodeResource(KindOCF, lb, b)
	r.Agent = attr(b, "agent", func(c valueCtx, v cty.Value) (string, bool) {
		return parsed(c, v, "Invalid OCF agent", func(s string) (string, error) { return s, checkOCFAgent(s) })
	})
	r.Params = mapAttr(b, "params", asString)
	for _, e := range r.Params.Entries {
		if !envNameRE.MatchString(e.Key) {
			b.d.errorf(e.KeyRange, "Invalid OCF parameter name", "%q cannot become OCF_RESKEY_%s; use letters, digits and '_', not starting with a digit.", e.Key, e.Key)
		}
	}
	return r
}
