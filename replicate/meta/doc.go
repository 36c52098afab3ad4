// Package meta is a replicated volume's on-disk metadata: what a node
// must remember across crashes to resynchronise with its peer without
// copying everything, and to refuse what would lose data.
//
// Three parts live in one metadata area, either at the end of the backing
// device ("internal") or in a separate file (see Layout):
//
//   - the superblock: identity (volume UUID, node), state flags, the
//     generation identifiers (GI) that tell at connect time who is ahead
//     and whether the replicas diverged, and the geometry. Two copies are
//     written alternately, each with a sequence number and a CRC32C, so a
//     torn write of one leaves the other;
//   - the dirty bitmap, one bit per 4 KiB block that may differ from the
//     peer (Bitmap);
//   - the activity log, the extents with writes that may not have reached
//     the peer, as checksummed transactions in a ring (ActivityLog).
//
// Nothing is written implicitly: Open only reads; Update, Bitmap.Flush,
// ActivityLog.Commit and ApplyAL write and sync, and return once durable.
// After a failed write the Meta refuses further updates (ErrFailed), as
// the state on disk is then unknown.
//
// The on-disk format is described in docs/metadata.md; the generation
// identifier rules in research/replication.md §2. Package meta does no
// networking and makes no decisions: the replication engine reads and
// updates this state, and the connect-time decision is a pure function
// over two nodes' GI tuples, flags and dirty counts.
package meta
