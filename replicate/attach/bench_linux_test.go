package attach

import (
	"math/rand/v2"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkLoop measures O_DIRECT I/O through /dev/loopN, the FUSE file and
// an in-memory Device: the cost of the attach path alone, without the
// engine or a disk behind it.
func BenchmarkLoop(b *testing.B) {
	requireLoopRoot(b)
	const size = 256 << 20
	vol, rt := testVolume(b)
	dev := newMemDevice(size)
	a, err := Attach(b.Context(), Options{Volume: vol, Mode: ModeLoop, RuntimeDir: rt, Device: dev})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Detach(b.Context(), true)
	b.Logf("%s", a.Info())
	fd, err := unix.Open(a.Info().Path, unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)

	for _, bc := range []struct {
		name  string
		bs    int
		write bool
		rand  bool
	}{
		{"write-seq-1MiB", 1 << 20, true, false},
		{"read-seq-1MiB", 1 << 20, false, false},
		{"write-rand-4KiB", 4096, true, true},
		{"read-rand-4KiB", 4096, false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := alignedBuf(bc.bs)
			blocks := int64(size / bc.bs)
			b.SetBytes(int64(bc.bs))
			var i int64
			for b.Loop() {
				off := (i % blocks) * int64(bc.bs)
				if bc.rand {
					off = rand.Int64N(blocks) * int64(bc.bs)
				}
				i++
				var err error
				if bc.write {
					_, err = unix.Pwrite(fd, buf, off)
				} else {
					_, err = unix.Pread(fd, buf, off)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
