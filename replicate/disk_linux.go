package replicate

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// FileDisk is a Disk on an open file or block device: Sync is fdatasync,
// and TRIM and WRITE_ZEROES use fallocate, falling back to writing zeroes
// where the file system or device does not support it.
type FileDisk struct {
	f *os.File
}

// NewFileDisk wraps f; the caller keeps closing it.
func NewFileDisk(f *os.File) *FileDisk { return &FileDisk{f: f} }

func (d *FileDisk) ReadAt(p []byte, off int64) (int, error)  { return d.f.ReadAt(p, off) }
func (d *FileDisk) WriteAt(p []byte, off int64) (int, error) { return d.f.WriteAt(p, off) }

// Sync is fdatasync: the data and what is needed to read it back.
func (d *FileDisk) Sync() error {
	for {
		err := unix.Fdatasync(int(d.f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}

// PunchHole deallocates the range; it reads as zeroes.
func (d *FileDisk) PunchHole(off, length int64) error {
	return d.fallocate(unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
}

// ZeroRange zeroes the range and keeps it allocated.
func (d *FileDisk) ZeroRange(off, length int64) error {
	return d.fallocate(unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, off, length)
}

func (d *FileDisk) fallocate(mode uint32, off, length int64) error {
	err := unix.Fallocate(int(d.f.Fd()), mode, off, length)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
		for length > 0 {
			n := min(length, int64(len(zeroes)))
			if _, err := d.f.WriteAt(zeroes[:n], off); err != nil {
				return err
			}
			off, length = off+n, length-n
		}
		return nil
	}
	return err
}
