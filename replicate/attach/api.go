package attach

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Device is what a loop attachment serves: a fixed-size array of bytes.
// The volume engine implements it; an NBD backend has the same shape
// (READ, WRITE, FLUSH).
//
// Methods are called concurrently from many goroutines, with ranges inside
// [0, Size()). I/O coming from the block device is aligned to its block
// size; the FUSE file under it (root-only) accepts any range, so a Device
// must not assume alignment. ReadAt and WriteAt follow io.ReaderAt and
// io.WriterAt: they must not keep p after returning. An error that wraps a syscall.Errno (EIO, ENOSPC,
// EROFS, ...) is passed to the kernel as that errno; any other error becomes
// EIO.
type Device interface {
	// Size is the volume size in bytes. It must not change while attached.
	Size() int64
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Flush makes every completed write durable (NBD_CMD_FLUSH).
	Flush() error
}

// Zeroer is implemented by a Device that can zero a range without a data
// transfer (NBD_CMD_WRITE_ZEROES). When mayTrim is true the device may also
// deallocate the range (NBD's WRITE_ZEROES without NO_HOLE); either way the
// range must read back as zeros afterwards.
//
// The kernel's discard and write-zeroes requests on /dev/loopN reach the
// FUSE file as fallocate(PUNCH_HOLE) and fallocate(ZERO_RANGE), and a file
// promises zeros after both, which a bare NBD TRIM does not: that is why
// the optional interface is Zeroer and not a Trim. Without it, those
// requests are refused with EOPNOTSUPP and the kernel falls back to writing
// zeros, or skips the discard.
type Zeroer interface {
	WriteZeroes(off, n int64, mayTrim bool) error
}

// Mode says how a volume is exposed to the OS. The values are those of the
// volume's attach setting (config.AttachMode).
type Mode string

// The attach modes.
const (
	ModeAuto Mode = "auto" // nbd when the kernel NBD client is available, else loop
	ModeNBD  Mode = "nbd"  // kernel NBD client, /dev/nbdN
	ModeLoop Mode = "loop" // FUSE file on a loop device, /dev/loopN
	ModeNone Mode = "none" // nothing attached
)

// DefaultRuntimeDir is used when Options.RuntimeDir is empty.
const DefaultRuntimeDir = "/run/hactl"

// Errors callers branch on.
var (
	// ErrBusy: the block device is open (mounted, used by a device-mapper
	// or md device, or held by a process). The error text names the holders.
	ErrBusy = errors.New("block device in use")
	// ErrNBDUnavailable: the kernel has no NBD client (module nbd absent).
	ErrNBDUnavailable = errors.New("kernel NBD client not available")
	// ErrAttached: the volume is already attached, in this process or in
	// another live one.
	ErrAttached = errors.New("volume already attached")
)

// Options describe one attachment.
type Options struct {
	// Volume is the volume name. It names the FUSE mount and file, the
	// lock file and the NBD backend identifier, so it must be a plain file
	// name: letters, digits, '.', '_' and '-', not starting with '.'.
	Volume string
	Mode   Mode
	// RuntimeDir holds the per-volume FUSE mount points and lock files
	// under RuntimeDir/attach. Default DefaultRuntimeDir.
	RuntimeDir string
	// BlockSize is the logical block size of the block device: 512, 1024,
	// 2048 or 4096 (default 4096, the engine's bitmap granularity, so no
	// write is smaller than a bitmap block).
	BlockSize int

	// Device is served in loop mode (and in auto mode when it picks loop).
	Device Device

	// NBD is used in nbd mode (and in auto mode when it picks nbd).
	NBD NBDOptions
}

// NBDOptions configure the kernel NBD client. The kernel does not negotiate:
// it is handed sockets already in the transmission phase.
type NBDOptions struct {
	// Dial returns a socket connected to the volume's NBD server with the
	// newstyle handshake done (NBD_OPT_GO acknowledged). It is called once
	// per connection; Attach closes its copy after the kernel has taken a
	// reference.
	Dial func(ctx context.Context) (*os.File, error)
	// Size is the export size and Flags the transmission flags
	// (NBD_FLAG_*), both as the server sent them in the handshake.
	Size  int64
	Flags uint16
	// Connections is how many sockets the kernel uses (default 1; more
	// only when Flags has NBD_FLAG_CAN_MULTI_CONN).
	Connections int
	// Timeout is the kernel's per-request timeout (rounded up to whole
	// seconds); zero leaves the kernel default.
	Timeout time.Duration
}

// Info describes an attachment, for status and logs.
type Info struct {
	Volume string
	// Mode is the mode in use: nbd, loop or none, never auto.
	Mode Mode
	// Reason says why this mode was chosen.
	Reason string
	// Path is the block device, /dev/loopN or /dev/nbdN; empty for none.
	Path string
	// DirectIO reports whether the loop device accepted LO_FLAGS_DIRECT_IO
	// on the FUSE file; when false it does buffered I/O to that file (still
	// without a second page cache, because the file itself is direct I/O).
	DirectIO bool
	// BackingFile is the FUSE file the loop device is bound to.
	BackingFile string
}

// String is a one-line summary for logs.
func (i Info) String() string {
	switch i.Mode {
	case ModeLoop:
		io := "buffered"
		if i.DirectIO {
			io = "direct I/O"
		}
		return fmt.Sprintf("volume %q attached as %s (loop on %s, %s)", i.Volume, i.Path, i.BackingFile, io)
	case ModeNBD:
		return fmt.Sprintf("volume %q attached as %s (kernel NBD client)", i.Volume, i.Path)
	default:
		return fmt.Sprintf("volume %q not attached (%s)", i.Volume, i.Reason)
	}
}
