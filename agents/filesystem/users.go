package filesystem

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
)

// User is a process that uses a mountpoint.
type User struct {
	PID     int
	Cmdline string // /proc/PID/cmdline with spaces for NULs; "[comm]" when empty
	Why     string // what holds the mount, e.g. "cwd /srv/data/app"
}

func (u User) String() string { return fmt.Sprintf("%d (%s, %s)", u.PID, u.Cmdline, u.Why) }

// FindUsers scans proc, a /proc tree (os.DirFS("/proc") or a test's
// fstest.MapFS), for processes using mountpoint: whose cwd, root, exe, an
// open file (fd/*) or a mapped file (maps) is mountpoint or below it.
// Process self (the agent's own pid) is never returned. Processes that
// vanish during the scan are skipped.
//
// Matching is by path as the kernel shows it in /proc, never by device
// number, which is what makes it safe where fuser -m is not
// (resource-agents#1304):
//
//   - A bind mount shows its own path. If mountpoint is bind-mounted at
//     /other, a process in /other/x shows /other/x and does not match; a
//     process in the source directory of a bind mount shows the source
//     path and does not match either. Only paths under the mountpoint as
//     mounted count, so a bind mount never widens the set to everything on
//     the source filesystem (fuser -m on a bind mount of a directory of /
//     matches every process on the machine).
//   - "/" is refused (under never matches it): every process would match.
//   - Sockets, pipes and anonymous files ("socket:[123]", "anon_inode:…")
//     are not paths and never match.
//
// Processes in another mount namespace are skipped (when /proc shows both
// namespaces): their paths are relative to their own namespace, so their
// "/srv/data" may be a different filesystem altogether — a container's,
// or another lab node's on the same kernel. What this cannot see is such
// a process holding a mount of its own of the same filesystem. Its mount
// keeps the filesystem alive without making our umount busy; Stop catches
// that case by checking that the device is mounted nowhere else
// afterwards.
func FindUsers(proc fs.FS, mountpoint string, self int) ([]User, error) {
	if mountpoint == "/" || !path.IsAbs(mountpoint) || path.Clean(mountpoint) != mountpoint {
		return nil, fmt.Errorf("refusing to look for users of %q: not a clean absolute path other than /", mountpoint)
	}
	rl, ok := proc.(fs.ReadLinkFS)
	if !ok {
		return nil, errors.New("proc filesystem cannot read links")
	}
	entries, err := fs.ReadDir(proc, ".")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	ourNS, _ := rl.ReadLink(strconv.Itoa(self) + "/ns/mnt")
	var users []User
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 || pid == self {
			continue
		}
		if ourNS != "" {
			if ns, err := rl.ReadLink(e.Name() + "/ns/mnt"); err == nil && ns != ourNS {
				continue
			}
		}
		why := usesMount(proc, rl, e.Name(), mountpoint)
		if why == "" {
			continue
		}
		users = append(users, User{PID: pid, Cmdline: cmdline(proc, e.Name()), Why: why})
	}
	sort.Slice(users, func(i, j int) bool { return users[i].PID < users[j].PID })
	return users, nil
}

// usesMount returns why process dir uses mountpoint, or "". The cheap
// links come first; maps is read only when they do not match.
func usesMount(proc fs.FS, rl fs.ReadLinkFS, dir, mountpoint string) string {
	for _, l := range []string{"cwd", "root", "exe"} {
		if target, err := rl.ReadLink(dir + "/" + l); err == nil && under(target, mountpoint) {
			return l + " " + target
		}
	}
	if fds, err := fs.ReadDir(proc, dir+"/fd"); err == nil {
		for _, fd := range fds {
			if target, err := rl.ReadLink(dir + "/fd/" + fd.Name()); err == nil && under(target, mountpoint) {
				return "fd " + fd.Name() + " " + target
			}
		}
	}
	if maps, err := fs.ReadFile(proc, dir+"/maps"); err == nil {
		if p := mappedUnder(maps, mountpoint); p != "" {
			return "maps " + p
		}
	}
	return ""
}

// mappedUnder returns the first file in a /proc/PID/maps text that is
// under mountpoint. A line is "addr perms offset dev inode   path"; the
// path (which may hold spaces) starts after the fifth field.
func mappedUnder(maps []byte, mountpoint string) string {
	sc := bufio.NewScanner(bytes.NewReader(maps))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		rest := sc.Text()
		for i := 0; i < 5; i++ {
			rest = strings.TrimLeft(rest, " ")
			j := strings.IndexByte(rest, ' ')
			if j < 0 {
				rest = ""
				break
			}
			rest = rest[j:]
		}
		p := strings.TrimLeft(rest, " ")
		if strings.HasPrefix(p, "/") && under(p, mountpoint) {
			return p
		}
	}
	return ""
}

func cmdline(proc fs.FS, dir string) string {
	b, err := fs.ReadFile(proc, dir+"/cmdline")
	if err == nil {
		if s := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")); s != "" {
			if len(s) > 300 {
				s = s[:300] + "…"
			}
			return s
		}
	}
	if c, err := fs.ReadFile(proc, dir+"/comm"); err == nil {
		return "[" + strings.TrimSpace(string(c)) + "]"
	}
	return "?"
}

// procFS is the real /proc.
func procFS() fs.FS { return os.DirFS("/proc") }
