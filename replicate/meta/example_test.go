package meta_test

import (
	"fmt"
	"log"

	"github.com/hactl/hactl/replicate/meta"
)

// The life of a volume's metadata as the replication engine drives it:
// create, attach after a crash, a write while disconnected, a clean
// detach.
func Example() {
	dev := meta.NewMemDevice(256 << 20) // the backing device; metadata at its end
	cfg := meta.Config{Device: dev, Internal: true, BackingSize: dev.Size()}

	// hactl volume create-md
	m, err := meta.Create(cfg, meta.CreateOptions{NodeID: 1, NodeName: "alpha", VolumeName: "data"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("data size:", m.Layout().DataSize)

	// Attach: apply the activity log if the last shutdown was not clean,
	// then mark the metadata in use before the first write.
	m, err = meta.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if sb := m.Super(); sb.Flags&meta.FlagCleanShutdown == 0 || m.AL().Lost() != "" {
		if _, err := m.ApplyAL(); err != nil {
			log.Fatal(err)
		}
	}
	uuid, err := meta.NewUUID(nil)
	if err != nil {
		log.Fatal(err)
	}
	err = m.Update(func(s *meta.Superblock) error {
		s.Flags &^= meta.FlagCleanShutdown
		s.Flags |= meta.FlagConsistent | meta.FlagWasUpToDate | meta.FlagPrimary
		s.GI = s.GI.Promote(uuid, false) // forced promotion, peer not connected
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	// A 64 KiB write at 10 MiB while disconnected.
	off, n := int64(10<<20), int64(64<<10)
	first, last := meta.Extents(off, n)
	for e := first; e <= last; e++ {
		if m.AL().Activate(e) {
			for !m.AL().IsActive(e) {
				if err := m.AL().Commit(); err != nil {
					log.Fatal(err)
				}
			}
		}
	}
	// ... the data write goes to the backing device here ...
	m.Bitmap().Set(meta.Blocks(off, n))
	for e := first; e <= last; e++ {
		m.AL().Release(e)
	}

	// Clean detach: the bitmap first, then the flag that says it is complete.
	if err := m.Bitmap().Flush(); err != nil {
		log.Fatal(err)
	}
	err = m.Update(func(s *meta.Superblock) error {
		s.Flags = s.Flags&^meta.FlagPrimary | meta.FlagCleanShutdown
		s.GI = s.GI.Demote()
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	m, err = meta.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("dirty blocks:", m.Bitmap().Count())
	fmt.Println("hot extents:", m.AL().Active())
	fmt.Println("flags:", m.Super().Flags)
	// Output:
	// data size: 268386304
	// dirty blocks: 16
	// hot extents: [2]
	// flags: consistent,was-up-to-date,clean-shutdown
}
