// Package nbd serves block devices over the NBD protocol
// (NetworkBlockDevice/nbd doc/proto.md), so that the kernel's NBD client,
// a loop device over a FUSE file, qemu or libnbd tools can use a replicated
// volume. hactl serves one Server per volume on a unix socket.
//
// # Negotiation
//
// Only fixed newstyle negotiation is spoken: a client that does not set
// NBD_FLAG_C_FIXED_NEWSTYLE is disconnected, and the oldstyle greeting is
// never sent. NBD_FLAG_NO_ZEROES is offered. The options served are
// EXPORT_NAME, INFO, GO, LIST and ABORT; every other option (STARTTLS,
// STRUCTURED_REPLY, meta contexts, extended headers, ...) gets
// NBD_REP_ERR_UNSUP, so replies are always simple replies. INFO and GO
// always answer NBD_INFO_EXPORT, and NBD_INFO_BLOCK_SIZE and NBD_INFO_NAME
// when asked. The empty export name selects the first export given to
// NewServer. Negotiation must finish within a minute.
//
// # Transmission
//
// The transmission flags are HAS_FLAGS, SEND_FLUSH, SEND_FUA, SEND_TRIM,
// SEND_WRITE_ZEROES and CAN_MULTI_CONN, plus READ_ONLY for read-only
// exports. Each connection has one goroutine reading requests and one
// goroutine per request in flight, at most 128 of them; replies go out as
// requests finish, in any order, one whole reply at a time. The payloads of
// the requests in flight on one connection (read buffers and write data)
// total at most 64 MiB: past that the connection stops reading, which pushes
// back on the client.
//
// A request the server refuses gets EINVAL (unknown command or flag, READ or
// WRITE over MaxPayload, READ or TRIM past the end), ENOSPC (WRITE or
// WRITE_ZEROES past the end) or EPERM (anything that writes to a read-only
// export). The payload of a refused WRITE is read and discarded, never held
// in memory, so the stream stays in step whatever the length. A bad request
// magic cannot be resynchronised: the connection is closed. NBD_CMD_DISC
// stops reading, lets the requests in flight reply, then closes.
//
// Backend errors become EIO, or ENOSPC when they wrap ENOSPC, EDQUOT or
// EFBIG, EPERM when they wrap EPERM, EACCES or EROFS, and ESHUTDOWN when
// they wrap ESHUTDOWN.
//
// # Flush, FUA and multiple connections
//
// All connections to an export share its Backend, and the server keeps no
// cache of its own. A request is replied to only after its Backend call has
// returned. So when NBD_CMD_FLUSH arrives on any connection, every write the
// client has seen completed, on any connection of that export, has returned
// from the Backend, and Backend.Flush is required to make exactly those
// durable. That is what NBD_FLAG_CAN_MULTI_CONN promises. FUA is passed to
// the Backend with the write; a FUA trim is followed by a Flush.
package nbd
