package meta

import (
	"errors"
	"fmt"
	"time"
)

// Conditions callers branch on. Errors returned by this package wrap one
// of these where it applies, with the details in the message.
var (
	// ErrNoMetadata: neither superblock copy carries the hactl magic. The
	// device was never initialised with Create, or holds something else,
	// or (internal metadata) the device was resized since Create.
	ErrNoMetadata = errors.New("no hactl metadata")
	// ErrVersion: the metadata was written by a newer hactl in a format
	// this one does not know. Nothing is written to it.
	ErrVersion = errors.New("unknown metadata format version")
	// ErrCorrupt: hactl metadata is there but no superblock copy is
	// valid, or the activity log or bitmap cannot be read back.
	ErrCorrupt = errors.New("corrupt metadata")
	// ErrSizeMismatch: the metadata was created for a backing device of a
	// different size.
	ErrSizeMismatch = errors.New("metadata does not match the backing device size")
	// ErrExists: Create found metadata and Force was not set. The error
	// is an *ExistsError saying what was found.
	ErrExists = errors.New("metadata already exists")
	// ErrTooSmall and ErrTooLarge: the backing device is out of range.
	ErrTooSmall = errors.New("backing device too small")
	ErrTooLarge = errors.New("backing device too large")
	// ErrALFull: every activity-log slot holds an extent with writes in
	// flight, so Commit cannot make room. Retry after a Release.
	ErrALFull = errors.New("activity log full: every extent has writes in flight")
	// ErrALNotApplied: the activity log could not be reconstructed and
	// ApplyAL has not been called yet; committing now would erase the
	// evidence that every block may differ from the peer.
	ErrALNotApplied = errors.New("activity log lost and not yet applied to the bitmap")
	// ErrFailed: an earlier metadata write or sync failed, so what is on
	// disk is unknown. Every later update fails with this until the
	// metadata is opened again.
	ErrFailed = errors.New("metadata device failed")
)

// ExistsError is returned by Create when the device already holds hactl
// metadata. When Valid, Found is its newest superblock; otherwise the
// magic is there but this hactl cannot use it (damaged, or a newer
// format), and Detail says why.
type ExistsError struct {
	Found  Superblock
	Valid  bool
	Detail string
}

func (e *ExistsError) Error() string {
	if !e.Valid {
		return fmt.Sprintf("meta: unusable hactl metadata found (%s); use force to overwrite it", e.Detail)
	}
	s := e.Found
	when := "never"
	if !s.WrittenAt.IsZero() {
		when = s.WrittenAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("meta: hactl metadata found: volume %q uuid %s, node %q (id %d), %d bytes of data, last written %s; use force to overwrite it",
		s.VolumeName, s.VolumeUUID, s.NodeName, s.NodeID, s.Layout.DataSize, when)
}

// Is makes errors.Is(err, ErrExists) true.
func (e *ExistsError) Is(target error) bool { return target == ErrExists }
