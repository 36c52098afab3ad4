package attach

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ownerTag marks what hactl creates for a volume: the FUSE file system's
// source name and the kernel NBD device's backend identifier
// (/sys/block/nbdN/backend) are "hactl:<volume>", which is how a restarted
// agent finds the NBD device a crashed one left behind.
const ownerTag = "hactl:"

// nbdFlagCanMultiConn is NBD_FLAG_CAN_MULTI_CONN from the NBD protocol.
const nbdFlagCanMultiConn = 1 << 8

// connectNBD dials the sockets and hands them to the kernel, returning the
// device index.
func connectNBD(ctx context.Context, volume string, blockSize int, o NBDOptions) (int, error) {
	conns := max(o.Connections, 1)
	if conns > 1 && o.Flags&nbdFlagCanMultiConn == 0 {
		return 0, fmt.Errorf("%d connections asked but the server does not offer NBD_FLAG_CAN_MULTI_CONN", conns)
	}
	if o.Dial == nil || o.Size <= 0 {
		return 0, errors.New("nbd mode needs NBDOptions.Dial and the export size")
	}
	c, err := dialGenl()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	family, err := c.nbdFamily()
	if err != nil {
		return 0, err
	}

	var socks []*os.File
	defer func() {
		// The kernel holds its own references after CONNECT; on failure
		// closing ours hangs up on the server.
		for _, s := range socks {
			s.Close()
		}
	}()
	fds := make([]int, 0, conns)
	for i := range conns {
		s, err := o.Dial(ctx)
		if err != nil {
			return 0, fmt.Errorf("dial NBD connection %d of %d: %w", i+1, conns, err)
		}
		socks = append(socks, s)
		fds = append(fds, int(s.Fd()))
	}

	req := nbdConnect{
		Index:     -1,
		Size:      uint64(o.Size),
		BlockSize: uint64(blockSize),
		Timeout:   uint64((o.Timeout + time.Second - 1) / time.Second),
		Flags:     uint64(o.Flags),
		FDs:       fds,
		Backend:   ownerTag + volume,
	}
	replies, err := c.request(func(seq uint32) []byte { return connectMsg(family, seq, req) })
	if err != nil {
		return 0, fmt.Errorf("NBD_CMD_CONNECT: %w", err)
	}
	for _, m := range replies {
		if b, ok := attr(m.Attrs, nbdAttrIndex); ok && len(b) >= 4 {
			return int(binary.NativeEndian.Uint32(b)), nil
		}
	}
	return 0, errors.New("NBD_CMD_CONNECT: reply without NBD_ATTR_INDEX")
}

// disconnectNBD tells the kernel to drop /dev/nbd<index>.
func disconnectNBD(index int) error {
	c, err := dialGenl()
	if err != nil {
		return err
	}
	defer c.Close()
	family, err := c.nbdFamily()
	if err != nil {
		return err
	}
	if _, err := c.request(func(seq uint32) []byte { return disconnectMsg(family, seq, uint32(index)) }); err != nil {
		return fmt.Errorf("NBD_CMD_DISCONNECT /dev/nbd%d: %w", index, err)
	}
	return nil
}

// nbdsBackedBy returns the indexes of NBD devices whose backend identifier
// names the volume.
func nbdsBackedBy(volume string) []int {
	files, _ := filepath.Glob("/sys/block/nbd*/backend")
	var out []int
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil || strings.TrimSpace(string(b)) != ownerTag+volume {
			continue
		}
		var idx int
		if _, err := fmt.Sscanf(filepath.Base(filepath.Dir(p)), "nbd%d", &idx); err == nil {
			out = append(out, idx)
		}
	}
	return out
}

// waitNBDReady waits for the device node and a non-zero size, which the
// kernel sets when it starts the device; udev may lag behind.
func waitNBDReady(ctx context.Context, index int) error {
	dev := fmt.Sprintf("/dev/nbd%d", index)
	size := fmt.Sprintf("/sys/block/nbd%d/size", index)
	for {
		b, err := os.ReadFile(size)
		if _, serr := os.Stat(dev); serr == nil && err == nil && strings.TrimSpace(string(b)) != "0" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not appear: %w", dev, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
