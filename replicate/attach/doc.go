// Package attach exposes a replicated volume to the operating system as a
// block device: the "attach" setting of a volume (DESIGN.md §5).
//
//   - loop: the volume is presented as one regular file of exactly
//     Device.Size() bytes on a private FUSE mount served by this process
//     (<RuntimeDir>/attach/<volume>/<volume>), and that file is bound to a
//     free loop device with LOOP_CONFIGURE. Needs only the fuse and loop
//     modules, which is why tests and the lab use it.
//   - nbd: the kernel NBD client is handed sockets already connected to the
//     volume's NBD server (handshake done) through the "nbd" generic netlink
//     family, giving /dev/nbdN.
//   - auto: nbd when the kernel's "nbd" family resolves (resolving it makes
//     the kernel try to load the module), loop otherwise.
//   - none: nothing is attached; the volume is reachable on its NBD socket.
//
// # Avoiding deadlocks in loop mode
//
// The FUSE server runs inside hactl, and every write the kernel makes to
// /dev/loopN (including writeback of a filesystem mounted on it) comes back
// into this process through FUSE. The package keeps that loop free of
// cycles:
//
//   - The FUSE file is opened with FOPEN_DIRECT_IO, so the kernel keeps no
//     page cache for it: there are no dirty FUSE pages whose writeback would
//     have to wait for the same process, and the data is not cached twice
//     (once above the loop device, once below it).
//   - The loop device is put in direct I/O mode (LO_FLAGS_DIRECT_IO) when the
//     kernel accepts it, so it submits asynchronous I/O to the FUSE file
//     instead of buffered writes from its worker; the FUSE connection
//     negotiates async direct I/O, parallel direct writes, 1 MiB requests and
//     a deep background queue so many requests are in flight at once.
//   - Requests are served concurrently on their own goroutines; Device
//     methods must never touch the attached block device, the FUSE file or a
//     filesystem mounted on them (for example by logging to a file there).
//   - FSYNC and FLUSH on the file map to Device.Flush and nothing else; the
//     serving path never waits for writeback of any page cache.
//   - Detach clears the loop device before unmounting, while the FUSE server
//     still runs, so the loop device's final flush is served; a forced detach
//     aborts the FUSE connection instead, so a holder that never lets go
//     cannot wedge the process.
//
// What remains is the generic risk of any userspace block server (nbd-server
// and qemu-nbd share it): under memory pressure, an allocation in the serving
// path can wait for reclaim that needs writeback through this same process.
// SetIOFlusher asks the kernel to treat the process as part of the I/O path
// (PR_SET_IO_FLUSHER), which removes that risk; see its documentation.
//
// # Crash recovery and detach
//
// The loop device is configured with LO_FLAGS_AUTOCLEAR and this process
// keeps it open, so if hactl dies the loop device is released as soon as
// nobody else holds it. What a crash leaves behind, a dead FUSE mount and
// possibly a loop device still bound to its file, is found and cleaned by
// the next Attach for the same volume (or by CleanStale). A per-volume lock
// file keeps two live attachments of one volume apart.
//
// Detach is idempotent and refuses while the block device is open (a
// mount, a device-mapper or md holder, or a process), naming the holders,
// unless forced.
package attach
