package meta

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Dump writes every field of the metadata for `hactl volume dump-md`, one
// "key: value" line each, keys in a fixed order, so people can read it
// and scripts can grep it. Sizes are in bytes with a human form after.
func (m *Meta) Dump(w io.Writer) error {
	m.superMu.Lock()
	sb, slot, copies := m.sb, m.slot, m.copies
	m.superMu.Unlock()
	l := sb.Layout
	a := m.al
	active := a.Active()
	lost := a.Lost()
	if lost == "" {
		lost = "no"
	}
	dirty := m.bm.Count()

	var b strings.Builder
	line := func(key, format string, args ...any) {
		fmt.Fprintf(&b, "%-15s %s\n", key+":", fmt.Sprintf(format, args...))
	}
	written := "unknown"
	if !sb.WrittenAt.IsZero() {
		written = sb.WrittenAt.UTC().Format(time.RFC3339Nano)
	}
	placement := "external (separate file)"
	if l.Internal {
		placement = "internal (end of the backing device)"
	}
	role := "secondary"
	if sb.GI.Primary() {
		role = "primary"
	}

	line("format", "hactl metadata version %d", sb.Version)
	line("volume-uuid", "%s", sb.VolumeUUID)
	line("volume", "%q", sb.VolumeName)
	line("node", "%q", sb.NodeName)
	line("node-id", "%d", sb.NodeID)
	line("seq", "%d", sb.Seq)
	line("written", "%s", written)
	for i, c := range copies {
		cur := ""
		if i == slot {
			cur = " (current)"
		}
		line(fmt.Sprintf("superblock-%d", i), "offset %d: %s%s", l.SuperOffset[i], c, cur)
	}
	line("flags", "%s (0x%x)", sb.Flags, uint64(sb.Flags))
	line("gi", "%s", sb.GI)
	line("gi-current", "%016X (%s)", sb.GI.Current, role)
	line("gi-bitmap", "%016X", sb.GI.Bitmap)
	line("gi-history-0", "%016X", sb.GI.History[0])
	line("gi-history-1", "%016X", sb.GI.History[1])
	line("placement", "%s", placement)
	line("backing-size", "%s", size(l.BackingSize))
	line("data-size", "%s", size(l.DataSize))
	line("meta-area", "offset %d, %s", l.MetaOffset, size(l.MetaSize))
	line("bitmap", "offset %d, %s, %d bits of %d bytes", l.BitmapOffset, size(l.BitmapSize), l.Bits(), BlockSize)
	line("dirty", "%d blocks, %s, %.2f%%", dirty, size(int64(dirty)*BlockSize), percent(dirty, l.Bits()))
	line("al-ring", "offset %d, %d transactions of %d bytes", l.ALOffset, l.ALSlots, BlockSize)
	line("al-extents", "%d x %d bytes, at most %s to resync after a crash", l.ALExtents, ExtentSize, size(int64(l.ALExtents)*ExtentSize))
	line("al-seq", "%d", a.Seq())
	line("al-active", "%d: %s", len(active), ranges(active))
	line("al-lost", "%s", lost)
	_, err := io.WriteString(w, b.String())
	return err
}

// size prints n bytes as "n (1.5 GiB)".
func size(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	v := float64(n) / 1024
	u := 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	return fmt.Sprintf("%d bytes (%.1f %s)", n, v, units[u])
}

func percent(n, of uint64) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

// ranges prints sorted extents compactly: "0-3,17,20-25", or "none".
func ranges(xs []uint32) string {
	if len(xs) == 0 {
		return "none"
	}
	var b strings.Builder
	for i := 0; i < len(xs); {
		j := i
		for j+1 < len(xs) && xs[j+1] == xs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", xs[i], xs[j])
		} else {
			fmt.Fprintf(&b, "%d", xs[i])
		}
		i = j + 1
	}
	return b.String()
}
