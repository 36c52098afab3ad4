// Package wire is the replication link between the two nodes of a volume:
// the frame format, the messages, and connection setup. It knows nothing of
// disks, epochs or resync; the engine above drives those with the messages
// defined here. docs/replication-protocol.md describes the bytes.
//
// A link is two TCP connections to the volume's port, as in DRBD: Data
// carries writes, barriers, state changes and resync traffic in order; Meta
// carries acks and pings, so an ack never waits behind a megabyte of data.
// Each frame has a 20-byte header (magic, layout version, type, flags,
// sequence number, payload length) and a typed payload of at most MaxData
// bytes of block data plus a few fields. Sequence numbers count frames per
// connection and direction; a gap or repeat breaks the connection.
//
// Setting up a link: the dialer opens the data connection, both sides
// prove they hold the cluster secret (mutual HMAC-SHA256
// challenge-response), exchange Hellos (versions, node, volume, size,
// generations, role, disk state) and check them; then the dialer opens the
// meta connection, authenticates it the same way and joins it to the
// session the first handshake made. Any refusal is sent to the peer as a
// Disconnect with a reason, so both sides return the same error (ErrAuth,
// ErrVersion, ErrWrongVolume, ErrWrongPeer, ErrSizeMismatch).
//
// Using a link:
//
//	link, err := wire.Dial(ctx, "198.51.100.12:7788", cfg) // or Listen + Accept
//	go readMeta(link.Meta) // acks; answer Ping with PingAck, pass PingAck to Pinger.Acked
//	go wire.NewPinger(link.Meta, 0, 0).Run(ctx)
//	link.Data.Send(&wire.Data{BlockID: id, Epoch: e, Offset: off, Flags: wire.WriteAckWrite, Payload: p})
//
// Conn.Send is safe for concurrent use and writes each frame whole; a
// Conn's Recv belongs to one goroutine. Any error from either means the
// link is broken: close it and reconnect with a Backoff.
package wire
