// Package replicate is the replication engine of one volume on one node:
// it ties the metadata (replicate/meta), the transfer log (replicate/txlog)
// and the replication link (replicate/wire) into a block device that the NBD
// server (replicate/nbd) and the loop attachment (replicate/attach) serve.
//
// A Volume is Secondary or Primary. Only a Primary serves I/O: a write
// marks its activity-log extent hot (committing a transaction first when
// the extent was cold), waits for overlapping writes still in flight, goes
// to the peer and to the local disk, and completes per protocol — A: local
// done and sent; B: local done and the peer received it; C: local done and
// the peer wrote it. A FUA write is always completed as protocol C with FUA
// on both sides. A flush syncs the local disk and closes the epoch; it
// completes when the peer has acknowledged the epoch's barrier, that is,
// synced every write of it. Writes the peer never acknowledged, and every
// write while disconnected, set their blocks in the dirty bitmap.
//
// A Secondary applies the Primary's writes in the order they arrive (which
// is epoch order), syncs its disk on each barrier before acknowledging it,
// and refuses local I/O with ErrNotPrimary.
//
// Connection setup is Run's job: it calls Config.Connect in a loop with a
// backoff, decides on each new link what to do with the generation
// identifiers (replicate/decide) and either connects, resyncs or refuses.
// The two nodes of a volume are never Primary together while connected:
// a connected promotion asks the peer first, and a link on which both
// sides are Primary is refused.
package replicate
