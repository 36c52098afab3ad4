package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Default is one row of the defaults table: the value an optional
// attribute takes when the file leaves it out.
type Default struct {
	Block string // "vrrp", "vrrp.check", "group.filesystem", "resource" (service, exec and ocf)
	Attr  string
	// Value is the default written as HCL, exactly as an operator would
	// write it in the file. The decoder parses it with the same code as a
	// value from the file, so a default can never disagree with the rules
	// for that attribute. Empty when the default is computed (see Note).
	Value string
	Note  string
}

// Defaults is the one table of defaults. docs/cluster-file.md repeats it
// (a test keeps the two in step); no other code in this package may
// invent a default. Attributes that are absent here are either required
// or have no value when unset (e.g. a group without a volume).
var Defaults = []Default{
	{"cluster", "quorum", `"auto"`, `majority with 3 or more voters, "two_node" with 2`},
	{"cluster", "startup_wait", `"60s"`, "wait this long for the peers' state before starting groups"},

	{"node", "witness", `false`, "a witness votes in quorum and holds no data"},

	{"vrrp", "version", `3`, "VRRPv3 (RFC 5798)"},
	{"vrrp", "advert_interval", `"1s"`, "keepalived's advert_int default"},
	{"vrrp", "preempt", `true`, "a higher priority takes over from a lower one"},
	{"vrrp", "preempt_delay", `"0s"`, "take over at once"},
	{"vrrp", "track_interface", `[]`, "track no interface"},
	{"vrrp", "unicast_peers", `[]`, "multicast to 224.0.0.18"},
	{"vrrp", "unicast_source", `{}`, "the interface's primary address"},
	{"vrrp", "auth_pass", `""`, "no authentication"},
	{"vrrp", "v3_checksum_pseudo_header", `true`, "keepalived's default; false for RFC 9568 routers"},
	{"vrrp", "garp_count", `5`, "gratuitous ARPs per VIP on takeover"},
	{"vrrp", "garp_repeat_delay", `"5s"`, `a second burst of garp_count after this; "0s" for none`},
	{"vrrp", "garp_refresh", `"0s"`, "no periodic refresh"},
	{"vrrp", "vmac", `false`, "adverts and GARPs from the NIC's own MAC"},

	{"vrrp.check", "http_status", `200`, "http checks only"},
	{"vrrp.check", "interval", `"2s"`, "how often the probe runs"},
	{"vrrp.check", "timeout", ``, "the check's interval"},
	{"vrrp.check", "rise", `2`, "successes before a failed check counts as passing"},
	{"vrrp.check", "fall", `3`, "failures before a passing check counts as failed"},
	{"vrrp.check", "weight", `0`, "0 puts the instance in FAULT while the check fails"},

	{"volume", "protocol", `"C"`, "synchronous: a write completes when both disks have it"},
	{"volume", "meta", `"internal"`, "metadata in a reserved area at the end of the disk"},
	{"volume", "attach", `"auto"`, "nbd where the kernel module exists, else loop"},

	{"volume.resync", "rate", `"0"`, "0: the dynamic controller between min_rate and max_rate"},
	{"volume.resync", "min_rate", `"50M"`, "bytes/s the dynamic controller keeps while the application writes"},
	{"volume.resync", "max_rate", `"0"`, "0: unlimited"},
	{"volume.resync", "checksum", `false`, "copy every out-of-sync block"},

	{"volume.split_brain", "after_0pri", `"disconnect"`, "stay disconnected and tell the operator"},
	{"volume.split_brain", "after_1pri", `"disconnect"`, "stay disconnected and tell the operator"},
	{"volume.split_brain", "after_2pri", `"disconnect"`, "stay disconnected and tell the operator"},

	{"group", "on_stop_failure", `"block"`, "keep the group blocked here; the peer does not promote"},
	{"group", "migration_threshold", `0`, "never move the group because of resource failures"},
	{"group", "failure_timeout", `"0s"`, "failures are never forgotten"},

	{"group.filesystem", "options", `[]`, "mount's defaults"},
	{"group.filesystem", "fsck", `true`, "fsck when the volume was not cleanly unmounted"},
	{"group.filesystem", "monitor_write", `false`, "monitor by statfs only"},
	{"group.filesystem", "timeout", `"60s"`, "mount and unmount, including fsck"},

	{"resource", "timeout", `"60s"`, "start and stop"},
	{"resource", "monitor_interval", `"10s"`, "how often monitor runs"},
	{"resource", "monitor_timeout", `"20s"`, "how long one monitor may take"},
	{"group.service", "unit", ``, `the block's name plus ".service"`},
	{"group.exec", "stop", `[]`, "nothing runs on stop"},
	{"group.exec", "monitor", `[]`, "not monitored: running once start succeeded"},
	{"group.exec", "environment", `{}`, "the agent's environment only"},
	{"group.ocf", "params", `{}`, "no OCF_RESKEY_ variables"},
}

// defaultExprs holds the parsed Value of every row, keyed by block and
// attribute. The resource rows are copied to service, exec and ocf.
var defaultExprs = func() map[[2]string]hcl.Expression {
	m := make(map[[2]string]hcl.Expression)
	for _, d := range Defaults {
		if d.Value == "" {
			continue
		}
		expr, diags := hclsyntax.ParseExpression([]byte(d.Value), "defaults.go", hcl.InitialPos)
		if diags.HasErrors() {
			panic(fmt.Sprintf("config: default %s.%s = %s: %s", d.Block, d.Attr, d.Value, diags.Error()))
		}
		blocks := []string{d.Block}
		if d.Block == "resource" {
			blocks = []string{"group.service", "group.exec", "group.ocf"}
		}
		for _, b := range blocks {
			m[[2]string{b, d.Attr}] = expr
		}
	}
	return m
}()

// defaultExpr returns the default of block.attr, or nil when it has none.
func defaultExpr(block, attr string) hcl.Expression {
	return defaultExprs[[2]string{block, attr}]
}
