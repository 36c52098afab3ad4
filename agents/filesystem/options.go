package filesystem

import (
	"strings"

	"golang.org/x/sys/unix"
)

// mountFlags maps the generic mount options to mount(2) flags, as mount(8)
// does; clear says the option turns the flag off.
var mountFlags = map[string]struct {
	flag  uintptr
	clear bool
}{
	"ro":          {unix.MS_RDONLY, false},
	"rw":          {unix.MS_RDONLY, true},
	"nosuid":      {unix.MS_NOSUID, false},
	"suid":        {unix.MS_NOSUID, true},
	"nodev":       {unix.MS_NODEV, false},
	"dev":         {unix.MS_NODEV, true},
	"noexec":      {unix.MS_NOEXEC, false},
	"exec":        {unix.MS_NOEXEC, true},
	"sync":        {unix.MS_SYNCHRONOUS, false},
	"async":       {unix.MS_SYNCHRONOUS, true},
	"dirsync":     {unix.MS_DIRSYNC, false},
	"noatime":     {unix.MS_NOATIME, false},
	"atime":       {unix.MS_NOATIME, true},
	"nodiratime":  {unix.MS_NODIRATIME, false},
	"diratime":    {unix.MS_NODIRATIME, true},
	"relatime":    {unix.MS_RELATIME, false},
	"norelatime":  {unix.MS_RELATIME, true},
	"strictatime": {unix.MS_STRICTATIME, false},
	"lazytime":    {unix.MS_LAZYTIME, false},
	"nolazytime":  {unix.MS_LAZYTIME, true},
	"silent":      {unix.MS_SILENT, false},
	"loud":        {unix.MS_SILENT, true},
	"mand":        {unix.MS_MANDLOCK, false},
	"nomand":      {unix.MS_MANDLOCK, true},
}

// userspaceOnly are fstab options meant for mount(8) or systemd, which the
// kernel would reject as filesystem data.
func userspaceOnly(o string) bool {
	switch o {
	case "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group", "nofail", "_netdev":
		return true
	}
	return strings.HasPrefix(o, "x-") || strings.HasPrefix(o, "comment=")
}

// parseOptions splits mount options into mount(2) flags and the
// filesystem-specific data string; dropped lists the userspace-only
// options that were ignored.
func parseOptions(opts []string) (flags uintptr, data string, dropped []string) {
	var rest []string
	for _, o := range opts {
		for _, o := range strings.Split(o, ",") { // "noatime,nodev" as one item works too
			o = strings.TrimSpace(o)
			switch f, ok := mountFlags[o]; {
			case o == "":
			case ok && f.clear:
				flags &^= f.flag
			case ok:
				flags |= f.flag
			case userspaceOnly(o):
				dropped = append(dropped, o)
			default:
				rest = append(rest, o)
			}
		}
	}
	return flags, strings.Join(rest, ","), dropped
}
