package filesystem

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	ID, Parent   int
	Major, Minor uint32 // st_dev of files on the mount
	Root         string // the directory of the filesystem mounted here ("/" unless a bind mount of a subdirectory)
	MountPoint   string
	FSType       string
	Source       string
}

// ParseMountinfo parses /proc/self/mountinfo (proc(5)). Lines are in
// mount order, so of several mounts on one mountpoint the last is the one
// that is visible.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, err := parseMountLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func parseMountLine(line string) (Mount, error) {
	pre, post, ok := strings.Cut(line, " - ")
	if !ok {
		return Mount{}, fmt.Errorf("no separator in %q", line)
	}
	f := strings.Fields(pre)
	g := strings.Fields(post)
	if len(f) < 6 || len(g) < 2 {
		return Mount{}, fmt.Errorf("too few fields in %q", line)
	}
	var m Mount
	var err error
	if m.ID, err = strconv.Atoi(f[0]); err != nil {
		return Mount{}, fmt.Errorf("mount id %q: %w", f[0], err)
	}
	if m.Parent, err = strconv.Atoi(f[1]); err != nil {
		return Mount{}, fmt.Errorf("parent id %q: %w", f[1], err)
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return Mount{}, fmt.Errorf("device %q", f[2])
	}
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return Mount{}, fmt.Errorf("device %q", f[2])
	}
	m.Major, m.Minor = uint32(ma), uint32(mi)
	m.Root, m.MountPoint = unescape(f[3]), unescape(f[4])
	m.FSType, m.Source = unescape(g[0]), unescape(g[1])
	return m, nil
}

// unescape undoes the kernel's octal escapes (\040 for a space, \011,
// \012, \134) in mountinfo fields.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
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

// under reports whether path is dir or inside it, by path as the kernel
// shows it: dir itself, or dir followed by "/". It never matches for "/"
// (everything is under "/"), nor for a relative or empty dir. A " (deleted)"
// suffix the kernel adds to unlinked files is ignored.
func under(path, dir string) bool {
	if dir == "" || dir == "/" || dir[0] != '/' {
		return false
	}
	path = strings.TrimSuffix(path, " (deleted)")
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// mountState is what mountinfo says about the agent's mountpoint.
type mountState struct {
	top       *Mount  // the visible mount on the mountpoint; nil if none
	ours      *Mount  // the mount of our device on the mountpoint (visible or covered); nil if none
	elsewhere []Mount // mounts of our device on other mountpoints (bind mounts, a second mount)
	submounts []Mount // mounts below the mountpoint, in mount order
}

// inspect finds the agent's mounts; isDev says whether a mount is of the
// agent's device.
func inspect(mounts []Mount, mountpoint string, isDev func(Mount) bool) mountState {
	var st mountState
	for i := range mounts {
		m := &mounts[i]
		switch {
		case m.MountPoint == mountpoint:
			st.top = m
			if isDev(*m) {
				st.ours = m
			}
		case under(m.MountPoint, mountpoint):
			st.submounts = append(st.submounts, *m)
		case isDev(*m):
			st.elsewhere = append(st.elsewhere, *m)
		}
	}
	return st
}

// MountedAt returns the source of the visible mount on mountpoint in this
// process's mount namespace, and false when nothing is mounted there.
func MountedAt(mountpoint string) (string, bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	mounts, err := ParseMountinfo(f)
	if err != nil {
		return "", false, err
	}
	src, found := "", false
	for _, m := range mounts {
		if m.MountPoint == mountpoint {
			src, found = m.Source, true // the last one is the visible one
		}
	}
	return src, found, nil
}
