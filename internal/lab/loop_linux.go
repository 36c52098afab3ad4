package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// devNum is a device number split in major and minor.
type devNum struct{ major, minor uint32 }

// loopDev is one attached loop device.
type loopDev struct {
	name    string // loop3
	backing string // backing file path as the kernel reports it
	dev     devNum // device the backing file lives on
}

// attachedLoops lists the loop devices that have a backing file.
func attachedLoops() []loopDev {
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []loopDev
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // detached meanwhile
		}
		name := filepath.Base(filepath.Dir(filepath.Dir(f)))
		d := loopDev{name: name, backing: strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")}
		if fd, err := unix.Open("/dev/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			if info, err := unix.IoctlLoopGetStatus64(fd); err == nil {
				d.dev = devNum{unix.Major(info.Device), unix.Minor(info.Device)}
			}
			unix.Close(fd)
		}
		out = append(out, d)
	}
	return out
}

// labLoops picks the loop devices whose backing file lives under dir or on
// one of devs (file systems that existed only inside the lab's nodes,
// such as a FUSE mount presenting a volume).
func labLoops(loops []loopDev, dir string, devs map[devNum]bool) []loopDev {
	var out []loopDev
	for _, l := range loops {
		if under(l.backing, dir) || devs[l.dev] {
			out = append(out, l)
		}
	}
	return out
}

// detachLoops detaches the loop devices and waits, at most timeout, until
// the kernel has let go of them. A device still open elsewhere (for
// example mounted) is only marked for autoclear by LOOP_CLR_FD, which is
// why the wait is needed.
func detachLoops(loops []loopDev, timeout time.Duration) error {
	var errs []error
	for _, l := range loops {
		fd, err := unix.Open("/dev/"+l.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("open /dev/%s: %w", l.name, err))
			continue
		}
		err = unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
		unix.Close(fd)
		if err != nil && !errors.Is(err, unix.ENXIO) {
			errs = append(errs, fmt.Errorf("detach /dev/%s (%s): %w", l.name, l.backing, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	deadline := time.Now().Add(timeout)
	for {
		var busy []string
		for _, l := range loops {
			if _, err := os.Stat(filepath.Join("/sys/block", l.name, "loop", "backing_file")); err == nil {
				busy = append(busy, "/dev/"+l.name)
			}
		}
		if len(busy) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loop devices still attached after %v (in use?): %s", timeout, strings.Join(busy, ", "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
