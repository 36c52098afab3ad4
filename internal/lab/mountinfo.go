package lab

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// mountEntry is one line of /proc/<pid>/mountinfo.
type mountEntry struct {
	Major, Minor uint32
	Root         string // path inside the file system
	Point        string // mount point
	FSType       string
	Source       string
}

// parseMountInfo reads the proc(5) mountinfo format:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func parseMountInfo(r io.Reader) ([]mountEntry, error) {
	var out []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || sep+2 >= len(f) {
			return nil, fmt.Errorf("mountinfo: malformed line %q", sc.Text())
		}
		maj, min, ok := strings.Cut(f[2], ":")
		ma, err1 := strconv.ParseUint(maj, 10, 32)
		mi, err2 := strconv.ParseUint(min, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("mountinfo: bad device %q", f[2])
		}
		out = append(out, mountEntry{
			Major: uint32(ma), Minor: uint32(mi),
			Root: unescapeMount(f[3]), Point: unescapeMount(f[4]),
			FSType: f[sep+1], Source: unescapeMount(f[sep+2]),
		})
	}
	return out, sc.Err()
}

// unescapeMount undoes the octal escapes (\040 for space, ...) the kernel
// writes for unusual characters in paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// under reports whether path is dir or inside it.
func under(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// mountsUnder returns the mount points at or below dir, deepest first, so
// that unmounting them in order never hits a busy parent.
func mountsUnder(ms []mountEntry, dir string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		if under(m.Point, dir) && !seen[m.Point] {
			seen[m.Point] = true
			out = append(out, m.Point)
		}
	}
	sortDeepestFirst(out)
	return out
}

func sortDeepestFirst(points []string) {
	sort.SliceStable(points, func(i, j int) bool {
		di, dj := strings.Count(points[i], "/"), strings.Count(points[j], "/")
		if di != dj {
			return di > dj
		}
		return points[i] > points[j]
	})
}

type mountKey struct {
	major, minor uint32
	root, point  string
}

// localMounts returns the mounts of a node namespace that were made
// inside it rather than copied from the host when it was created: those
// whose device, root and mount point match no host mount. Deepest first.
func localMounts(node, host []mountEntry) []mountEntry {
	inHost := map[mountKey]bool{}
	for _, m := range host {
		inHost[mountKey{m.Major, m.Minor, m.Root, m.Point}] = true
	}
	var out []mountEntry
	for _, m := range node {
		if !inHost[mountKey{m.Major, m.Minor, m.Root, m.Point}] {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].Point, "/") > strings.Count(out[j].Point, "/")
	})
	return out
}
