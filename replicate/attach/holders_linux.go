package attach

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// holders lists who has the block device devPath or one of its partitions
// open: stacked devices (/sys/block/X/holders), mounts
// (/proc/self/mountinfo) and processes (/proc/*/fd). The descriptor ownFD
// of this process is the attachment's own handle and is not counted (-1
// for none). When none of those explain an exclusive claim (a mount in
// another mount namespace, an O_EXCL opener), an exclusive open probe still
// reports it.
//
// Process fds are matched by their link text, never by stat: a stat would
// follow the link into arbitrary filesystems, including a dead or our own
// FUSE mount, and could block.
func holders(devPath string, ownFD int) ([]string, error) {
	nodes, err := blockNodes(devPath)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nodes {
		if ents, err := os.ReadDir(filepath.Join(n.sysDir, "holders")); err == nil {
			for _, e := range ents {
				out = append(out, fmt.Sprintf("%sused by /dev/%s", n.prefix(devPath), e.Name()))
			}
		}
	}

	mounts, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		for _, n := range nodes {
			if m.devNum == n.devNum {
				out = append(out, fmt.Sprintf("%smounted on %s (%s)", n.prefix(devPath), m.mountPoint, m.fsType))
			}
		}
	}

	self := os.Getpid()
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue // gone, a kernel thread, or not ours to see
		}
	fds:
		for _, fd := range fds {
			if pid == self && fd.Name() == strconv.Itoa(ownFD) {
				continue
			}
			target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil {
				continue
			}
			for _, n := range nodes {
				if target == n.path {
					comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
					out = append(out, fmt.Sprintf("%sopened by pid %d (%s)", n.prefix(devPath), pid, strings.TrimSpace(string(comm))))
					break fds
				}
			}
		}
	}

	if len(out) == 0 {
		fd, err := unix.Open(devPath, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
		if err == unix.EBUSY {
			out = append(out, "claimed exclusively by a holder not visible here (a mount in another mount namespace?)")
		} else if err == nil {
			unix.Close(fd)
		}
	}
	return out, nil
}

// blockNode is a block device or one of its partitions.
type blockNode struct {
	path   string // /dev/nbd0p1
	devNum string // "major:minor"
	sysDir string // /sys/block/nbd0/nbd0p1
}

// prefix names a partition in a holder description; the whole device
// needs no name, the error already has it.
func (n blockNode) prefix(whole string) string {
	if n.path == whole {
		return ""
	}
	return "partition " + n.path + " "
}

// blockNodes returns the device and its partitions.
func blockNodes(devPath string) ([]blockNode, error) {
	var st unix.Stat_t
	if err := unix.Stat(devPath, &st); err != nil {
		return nil, err
	}
	name := filepath.Base(devPath)
	sysDir := filepath.Join("/sys/block", name)
	nodes := []blockNode{{devPath, fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)), sysDir}}
	parts, _ := filepath.Glob(filepath.Join(sysDir, name+"*", "dev"))
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		dir := filepath.Dir(p)
		nodes = append(nodes, blockNode{"/dev/" + filepath.Base(dir), strings.TrimSpace(string(b)), dir})
	}
	return nodes, nil
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	devNum     string // "major:minor" of the mounted device
	mountPoint string
	fsType     string
	source     string
}

func readMountinfo() ([]mountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			continue
		}
		out = append(out, mountEntry{
			devNum:     fields[2],
			mountPoint: unescapeMount(fields[4]),
			fsType:     fields[sep+1],
			source:     unescapeMount(fields[sep+2]),
		})
	}
	return out, sc.Err()
}

// unescapeMount undoes the octal escapes (\040 for space, ...) the kernel
// uses in mountinfo.
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

// busyError formats ErrBusy with the holders and the way out.
func busyError(devPath string, hs []string) error {
	return fmt.Errorf("%w: %s is %s; unmount it or stop them first", ErrBusy, devPath, strings.Join(hs, ", "))
}
