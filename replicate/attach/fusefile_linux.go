package attach

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// The FUSE filesystem: a root directory (mode 0700) with one regular file
// that is the volume. Its size never changes, so the kernel may cache
// attributes and the directory entry for long; data is never cached
// (FOPEN_DIRECT_IO).

const (
	fuseMaxWrite      = 1 << 20 // the kernel's ceiling for one FUSE request
	fuseMaxBackground = 128     // async (loop direct I/O) requests in flight
	fuseAttrTimeout   = time.Hour
	fileBlock         = 4096 // st_blksize and statfs f_bsize
)

type rootNode struct {
	fs.Inode
	name string
	file *fileNode
}

var (
	_ fs.NodeOnAdder   = (*rootNode)(nil)
	_ fs.NodeGetattrer = (*rootNode)(nil)
	_ fs.NodeStatfser  = (*rootNode)(nil)
	_ fs.NodeGetattrer = (*fileNode)(nil)
	_ fs.NodeSetattrer = (*fileNode)(nil)
	_ fs.NodeOpener    = (*fileNode)(nil)
	_ fs.NodeReader    = (*fileNode)(nil)
	_ fs.NodeWriter    = (*fileNode)(nil)
	_ fs.NodeFsyncer   = (*fileNode)(nil)
	_ fs.NodeFlusher   = (*fileNode)(nil)
	_ fs.NodeAllocater = (*fileNode)(nil)
	_ fs.NodeStatfser  = (*fileNode)(nil)
)

func (r *rootNode) OnAdd(ctx context.Context) {
	ch := r.NewPersistentInode(ctx, r.file, fs.StableAttr{Mode: syscall.S_IFREG, Ino: 2})
	r.AddChild(r.name, ch, false)
}

func (r *rootNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o700
	out.Nlink = 2
	out.SetTimes(nil, &r.file.mtime, &r.file.mtime)
	out.SetTimeout(fuseAttrTimeout)
	return 0
}

func (r *rootNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	return r.file.Statfs(ctx, out)
}

// fileNode is the volume as a file.
type fileNode struct {
	fs.Inode
	dev   Device
	zero  Zeroer // nil when the device cannot zero ranges
	size  int64
	mtime time.Time
}

func (f *fileNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o600
	out.Nlink = 1
	out.Size = uint64(f.size)
	out.Blocks = uint64(f.size+511) / 512
	out.Blksize = fileBlock
	out.SetTimes(nil, &f.mtime, &f.mtime)
	out.SetTimeout(fuseAttrTimeout)
	return 0
}

// Setattr accepts only what leaves the file as it is: the size is the
// volume's, so a truncate (an accidental "> file" included) is refused.
func (f *fileNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok && int64(sz) != f.size {
		return syscall.EPERM
	}
	if _, ok := in.GetMode(); ok {
		return syscall.EPERM
	}
	if _, ok := in.GetUID(); ok {
		return syscall.EPERM
	}
	if _, ok := in.GetGID(); ok {
		return syscall.EPERM
	}
	return f.Getattr(ctx, fh, out) // time updates are accepted and ignored
}

// Open hands out no file handle: all state is in the node. FOPEN_DIRECT_IO
// keeps the kernel from caching the volume's data a second time (and from
// ever holding dirty pages that only this process can write back);
// FOPEN_PARALLEL_DIRECT_WRITES lets the kernel send writes to different
// ranges concurrently instead of serialising them on the inode lock.
func (f *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_TRUNC != 0 && f.size != 0 {
		return nil, 0, syscall.EPERM
	}
	return nil, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_PARALLEL_DIRECT_WRITES, 0
}

func (f *fileNode) Read(ctx context.Context, _ fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= f.size || off < 0 {
		return fuse.ReadResultData(nil), 0
	}
	dest = dest[:min(int64(len(dest)), f.size-off)]
	n, err := f.dev.ReadAt(dest, off)
	if n < len(dest) {
		// A block device has no holes: a short read is a failure, unless
		// the device says otherwise with an errno.
		if err == nil {
			err = syscall.EIO
		}
		return nil, toErrno(err)
	}
	return fuse.ReadResultData(dest), 0
}

// Write never extends the file: like a block device, a write past the end
// fails with ENOSPC and one across the end is cut short.
func (f *fileNode) Write(ctx context.Context, _ fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if off >= f.size || off < 0 {
		return 0, syscall.ENOSPC
	}
	data = data[:min(int64(len(data)), f.size-off)]
	n, err := f.dev.WriteAt(data, off)
	if err != nil {
		return 0, toErrno(err)
	}
	return uint32(n), 0
}

// Fsync is the loop device's REQ_OP_FLUSH (and fsync/fdatasync on the file).
func (f *fileNode) Fsync(ctx context.Context, _ fs.FileHandle, flags uint32) syscall.Errno {
	return toErrno(f.dev.Flush())
}

// Flush is sent on every close of the file: make what the closer wrote
// durable, so close-to-open users of the file get the same guarantee as
// fsync.
func (f *fileNode) Flush(ctx context.Context, _ fs.FileHandle) syscall.Errno {
	return toErrno(f.dev.Flush())
}

// fallocate modes from include/uapi/linux/falloc.h.
const (
	fallocKeepSize    = 0x01
	fallocPunchHole   = 0x02
	fallocZeroRange   = 0x10
	fallocWriteZeroes = 0x80
)

// Allocate serves the loop device's discard (PUNCH_HOLE) and write-zeroes
// (PUNCH_HOLE, ZERO_RANGE or WRITE_ZEROES, by kernel version and REQ_NOUNMAP)
// through the Zeroer; plain preallocation inside the file is a no-op because
// every block already exists.
func (f *fileNode) Allocate(ctx context.Context, _ fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	end := off + size
	if end < off || int64(end) > f.size {
		return syscall.ENOSPC
	}
	switch mode &^ fallocKeepSize {
	case 0:
		return 0
	case fallocPunchHole:
		if f.zero == nil {
			return syscall.EOPNOTSUPP
		}
		return toErrno(f.zero.WriteZeroes(int64(off), int64(size), true))
	case fallocZeroRange, fallocWriteZeroes:
		if f.zero == nil {
			return syscall.EOPNOTSUPP
		}
		return toErrno(f.zero.WriteZeroes(int64(off), int64(size), false))
	default:
		return syscall.EOPNOTSUPP
	}
}

// Statfs describes a full filesystem of one file. The loop device takes
// its discard granularity from f_bsize.
func (f *fileNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = fileBlock
	out.Frsize = fileBlock
	out.Blocks = uint64(f.size) / fileBlock
	out.Files = 1
	out.NameLen = 255
	return 0
}

// toErrno passes an errno the device chose through to the kernel and turns
// anything else into EIO.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && errno != 0 {
		return errno
	}
	return syscall.EIO
}
