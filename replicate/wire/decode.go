package wire

import "encoding/binary"

// decode parses the payload of a frame of type t, whose length the header
// check has bounded, and validates the message against a volume of size
// bytes (0: unknown). p holds the payload, except that for Data,
// ResyncData and BitmapChunk it holds the fields and bulk the bytes after
// them, which the message then refers to; everything else is copied.
func decode(t Type, p, bulk []byte, size uint64) (Msg, error) {
	d := cursor{b: p}
	var m Msg
	switch t {
	case TypeChallenge:
		c := &challenge{}
		d.read(c.nonce[:])
		m = c
	case TypeResponse:
		r := &response{}
		d.read(r.mac[:])
		m = r
	case TypeJoin:
		j := &join{}
		d.read(j.session[:])
		m = j
	case TypeHello:
		m = decodeHello(&d)
	case TypeDisconnect:
		m = &Disconnect{Reason: Reason(d.u16()), Text: string(d.rest())}
	case TypeData:
		m = &Data{BlockID: d.u64(), Epoch: d.u64(), Offset: d.u64(), Flags: WriteFlags(d.u32()), Payload: bulk}
	case TypeTrim:
		m = &Trim{BlockID: d.u64(), Epoch: d.u64(), Offset: d.u64(), Flags: WriteFlags(d.u32()), Length: d.u32()}
	case TypeWriteZeroes:
		m = &WriteZeroes{BlockID: d.u64(), Epoch: d.u64(), Offset: d.u64(), Flags: WriteFlags(d.u32()), Length: d.u32()}
	case TypeBarrier:
		m = &Barrier{Epoch: d.u64()}
	case TypeStateChange:
		m = &StateChange{Role: Role(d.u8()), Disk: DiskState(d.u8()), Flags: StateFlags(d.u64()), Gen: d.gen(), Dirty: d.u64()}
	case TypeRecvAck:
		a := &RecvAck{BlockID: d.u64(), Offset: d.u64(), Length: d.u32()}
		if s := Status(d.u32()); s != StatusOK {
			return nil, malformed(t, "status %v", s)
		}
		m = a
	case TypeWriteAck:
		m = &WriteAck{BlockID: d.u64(), Offset: d.u64(), Length: d.u32(), Status: Status(d.u32())}
	case TypeNegAck:
		m = &NegAck{BlockID: d.u64(), Offset: d.u64(), Length: d.u32(), Status: Status(d.u32())}
	case TypeBarrierAck:
		m = &BarrierAck{Epoch: d.u64(), Writes: d.u32()}
	case TypePing:
		m = &Ping{Nonce: d.u64()}
	case TypePingAck:
		m = &PingAck{Nonce: d.u64()}
	case TypeResyncRequest:
		m = &ResyncRequest{Offset: d.u64(), Length: d.u32()}
	case TypeResyncData:
		m = &ResyncData{Offset: d.u64(), Payload: bulk}
	case TypeResyncHash:
		h := &ResyncHash{Offset: d.u64(), Length: d.u32()}
		d.read(h.Hash[:])
		m = h
	case TypeResyncAck:
		m = &ResyncAck{Offset: d.u64(), Length: d.u32(), Status: Status(d.u32())}
	case TypeVerifyHash:
		h := &VerifyHash{Offset: d.u64(), Length: d.u32()}
		d.read(h.Hash[:])
		m = h
	case TypeVerifyAck:
		m = &VerifyAck{Offset: d.u64(), Length: d.u32(), Status: Status(d.u32())}
	case TypeBitmapChunk:
		c := &BitmapChunk{Start: d.u64()}
		switch f := d.u32(); f {
		case 0:
		case bitmapLast:
			c.Last = true
		default:
			return nil, malformed(t, "flags %#x", f)
		}
		c.Bits = bulk
		m = c
	default:
		return nil, ErrUnknownType
	}
	if d.short {
		return nil, malformed(t, "truncated payload of %d bytes", len(p))
	}
	// Only Hello may grow (see Hello); anything else left over means the
	// peer and we disagree on the layout.
	if len(d.b) != 0 && t != TypeHello {
		return nil, malformed(t, "%d bytes after the message", len(d.b))
	}
	if err := m.check(size); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeFlat decodes a payload held in one slice.
func decodeFlat(t Type, p []byte, size uint64) (Msg, error) {
	if !types[t].bulk {
		return decode(t, p, nil, size)
	}
	n := min(fixedLen(t), len(p))
	return decode(t, p[:n], p[n:], size)
}

func decodeHello(d *cursor) *Hello {
	h := &Hello{MinVersion: d.u16(), MaxVersion: d.u16(), Role: Role(d.u8()), Disk: DiskState(d.u8())}
	d.read(h.VolumeUUID[:])
	h.Size = d.u64()
	h.Gen = d.gen()
	h.Dirty = d.u64()
	h.Flags = StateFlags(d.u64())
	h.Node = string(d.bytes(int(d.u8())))
	h.Volume = string(d.bytes(int(d.u8())))
	d.b = nil // a newer peer's extension
	return h
}

// cursor reads big-endian fields; reading past the end sets short and
// yields zeroes, so decoders check once at the end instead of per field.
type cursor struct {
	b     []byte
	short bool
}

func (d *cursor) bytes(n int) []byte {
	if n > len(d.b) {
		d.short = true
		d.b = nil
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *cursor) read(dst []byte) { copy(dst, d.bytes(len(dst))) }

func (d *cursor) rest() []byte {
	v := d.b
	d.b = nil
	return v
}

func (d *cursor) u8() uint8 {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *cursor) u16() uint16 {
	if b := d.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (d *cursor) u32() uint32 {
	if b := d.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *cursor) u64() uint64 {
	if b := d.bytes(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *cursor) gen() Generations {
	return Generations{Current: d.u64(), Bitmap: d.u64(), History: [2]uint64{d.u64(), d.u64()}}
}
