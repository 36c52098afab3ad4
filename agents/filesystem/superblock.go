package filesystem

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// The ext2/3/4 superblock: 1024 bytes at offset 1024 (e2fsprogs
// lib/ext2fs/ext2_fs.h).
const (
	extSuperOffset  = 1024
	extSuperSize    = 1024
	extMagicOff     = 0x38
	extStateOff     = 0x3A
	extIncompatOff  = 0x60
	extMagic        = 0xEF53
	extValidFS      = 0x0001 // s_state: cleanly unmounted
	extErrorFS      = 0x0002 // s_state: errors detected
	extIncompatRcvr = 0x0004 // needs_recovery: the journal must be replayed
)

// isExt reports whether hactl checks fstype itself before fsck.
func isExt(fstype string) bool {
	return fstype == "ext2" || fstype == "ext3" || fstype == "ext4"
}

// extNeedsFsck decides from an ext superblock whether the filesystem was
// cleanly unmounted, with the reason. This is what `dumpe2fs -h` shows as
// "Filesystem state" and the needs_recovery feature, read without running
// it.
//
// A journaled filesystem keeps s_state "clean" on disk while mounted and
// sets needs_recovery instead, so a crash shows as needs_recovery; ext2
// clears the valid bit while mounted. Either, or the error bit the kernel
// sets when it met corruption, means "not cleanly unmounted".
//
// hactl reads the superblock rather than always running `e2fsck -p`:
// preen mode also forces a full check when the mount count or the check
// interval is reached, which could turn a failover into a long fsck at a
// moment nobody chose.
func extNeedsFsck(sb []byte) (bool, string, error) {
	if len(sb) < extSuperSize {
		return false, "", fmt.Errorf("superblock: %d bytes, want %d", len(sb), extSuperSize)
	}
	if m := binary.LittleEndian.Uint16(sb[extMagicOff:]); m != extMagic {
		return false, "", fmt.Errorf("no ext2/3/4 superblock (magic %#04x)", m)
	}
	state := binary.LittleEndian.Uint16(sb[extStateOff:])
	incompat := binary.LittleEndian.Uint32(sb[extIncompatOff:])
	switch {
	case state&extErrorFS != 0:
		return true, "the filesystem has recorded errors", nil
	case state&extValidFS == 0:
		return true, "the filesystem state is not clean", nil
	case incompat&extIncompatRcvr != 0:
		return true, "the journal needs recovery (not cleanly unmounted)", nil
	}
	return false, "the filesystem is clean", nil
}

// readExtSuperblock reads the superblock of device.
func readExtSuperblock(device string) ([]byte, error) {
	f, err := os.Open(device)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", device, err)
	}
	defer f.Close()
	sb := make([]byte, extSuperSize)
	if _, err := f.ReadAt(sb, extSuperOffset); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read superblock of %s: %w", device, err)
	}
	return sb, nil
}
