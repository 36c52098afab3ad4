package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
)

const testSize = 1 << 30 // the test volume: 1 GiB

// payload returns the bytes a message puts after the header.
func payload(m Msg) []byte {
	return append(m.appendTo(nil), m.bulk()...)
}

// frame returns a whole frame of type t with the given payload, as it is
// on the wire.
func frame(t Type, seq uint64, p []byte) []byte {
	b := make([]byte, HeaderLen, HeaderLen+len(p))
	putHeader(b, header{typ: t, seq: seq, length: uint32(len(p))})
	return append(b, p...)
}

// frames concatenates frames of ms, numbered from 1.
func frames(ms ...Msg) []byte {
	var b []byte
	for i, m := range ms {
		b = append(b, frame(m.Type(), uint64(i+1), payload(m))...)
	}
	return b
}

// readConn is a Conn that only reads, from b: a link's data or meta
// connection (up), or one in its handshake (route onHandshake).
func readConn(b []byte, r route, size uint64) *Conn {
	c := &Conn{r: bufio.NewReader(bytes.NewReader(b)), rbuf: make([]byte, maxSmall), size: size}
	if r != onHandshake {
		c.route, c.up = r, true
	}
	return c
}

// routeOf is the connection a type travels on once the link is up, or
// onHandshake.
func routeOf(t Type) route {
	r := types[t].route
	switch {
	case r&onData != 0:
		return onData
	case r&onMeta != 0:
		return onMeta
	}
	return onHandshake
}

// unpooled forgets m's pooled buffer, for comparing messages.
func unpooled(m Msg) Msg {
	switch m := m.(type) {
	case *Data:
		m.buf = nil
	case *ResyncData:
		m.buf = nil
	case *BitmapChunk:
		m.buf = nil
	}
	return m
}

// mutate returns a copy of b changed by f.
func mutate(b []byte, f func(b []byte)) []byte {
	b = bytes.Clone(b)
	f(b)
	return b
}

func put64(off int, v uint64) func([]byte) {
	return func(b []byte) { binary.BigEndian.PutUint64(b[off:], v) }
}

func put32(off int, v uint32) func([]byte) {
	return func(b []byte) { binary.BigEndian.PutUint32(b[off:], v) }
}

func put16(off int, v uint16) func([]byte) {
	return func(b []byte) { binary.BigEndian.PutUint16(b[off:], v) }
}

// filled returns n bytes of a pattern that differs from sector to sector.
func filled(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/SectorSize)
	}
	return b
}

func testHello(node string) Hello {
	return Hello{
		Node:       node,
		Volume:     "data",
		VolumeUUID: [16]byte{0xde, 0xad, 0xbe, 0xef, 15: 1},
		Size:       testSize,
		Gen:        Generations{Current: 0x1111, Bitmap: 0x2222, History: [2]uint64{0x3333, 0x4444}},
		Dirty:      17,
		Flags:      FlagConsistent | FlagWasUpToDate,
		Role:       RoleSecondary,
		Disk:       DiskUpToDate,
	}
}

var testSecret = []byte("correct horse battery staple")

// testConfig is node's side of the test volume.
func testConfig(node string) Config {
	h := testHello(node)
	return Config{Secret: testSecret, Local: func() Hello { return h }}
}
