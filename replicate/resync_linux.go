package replicate

import "golang.org/x/sys/unix"

// startWriteback starts writing a resync range back to the file without
// waiting for it (sync_file_range, SYNC_FILE_RANGE_WRITE): the
// checkpoint's fdatasync then finds most of the data already on its way,
// instead of the whole window of page cache at once, and the final one
// does not stall the end of the resync. It is a hint; it changes no
// durability guarantee, so its error is ignored.
func startWriteback(d Disk, off, n int64) {
	if fd, ok := d.(*FileDisk); ok {
		_ = unix.SyncFileRange(int(fd.f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
	}
}

// readAhead asks the kernel to start reading a range the walk will send
// soon (posix_fadvise WILLNEED), so that the workers' reads find it in
// the page cache instead of waiting for the disk one range at a time. A
// hint too.
func readAhead(d Disk, off, n int64) {
	if fd, ok := d.(*FileDisk); ok {
		_ = unix.Fadvise(int(fd.f.Fd()), off, n, unix.FADV_WILLNEED)
	}
}
