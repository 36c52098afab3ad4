package nbd

import (
	"bytes"
	"encoding/binary"
	"testing"
)

const testSize = 1 << 20

// TestHandshake drives option negotiation with a hand-written client, one
// scripted conversation per case.
func TestHandshake(t *testing.T) {
	const fixed = clientFixedNewstyle | clientNoZeroes
	wantFlags := uint16(tflagHasFlags | tflagSendFlush | tflagSendFUA | tflagSendTrim | tflagSendWriteZeroes | tflagCanMultiConn)

	// expectGone checks that the server hung up.
	expectGone := func(c *client) {
		c.t.Helper()
		if !c.closed() {
			c.t.Fatal("server kept the connection open")
		}
	}
	// expectAlive checks that negotiation goes on: a GO still works.
	expectAlive := func(c *client) {
		c.t.Helper()
		c.option(optGo, infoData("vol"))
		if rs := c.optReplies(optGo); rs[len(rs)-1].typ != repAck {
			c.t.Fatalf("GO after the case: %#x", rs[len(rs)-1].typ)
		}
		if errno, _ := c.do(0, cmdFlush, 0, 0, nil); errno != 0 {
			c.t.Fatalf("flush after GO: errno %d", errno)
		}
	}
	expectErr := func(c *client, opt, typ uint32) {
		c.t.Helper()
		rs := c.optReplies(opt)
		if len(rs) != 1 || rs[0].typ != typ {
			c.t.Fatalf("option %d: replies %+v, want one of type %#x", opt, rs, typ)
		}
		if len(rs[0].data) == 0 {
			c.t.Errorf("option %d: error %#x without a message", opt, typ)
		}
	}

	tests := []struct {
		name string
		run  func(c *client)
	}{
		{"client without fixed newstyle", func(c *client) {
			c.greet(0)
			expectGone(c)
		}},
		{"unknown client flag", func(c *client) {
			c.greet(clientFixedNewstyle | 1<<5)
			expectGone(c)
		}},
		{"bad option magic", func(c *client) {
			c.greet(fixed)
			c.write(make([]byte, optHeaderLen))
			expectGone(c)
		}},
		{"unknown option", func(c *client) {
			c.greet(fixed)
			c.option(99, []byte("some data to skip"))
			expectErr(c, 99, repErrUnsup)
			expectAlive(c)
		}},
		{"structured reply refused", func(c *client) {
			c.greet(fixed)
			c.option(8, nil)
			expectErr(c, 8, repErrUnsup)
			expectAlive(c)
		}},
		{"starttls refused", func(c *client) {
			c.greet(fixed)
			c.option(5, nil)
			expectErr(c, 5, repErrUnsup)
			expectAlive(c)
		}},
		{"info unknown export", func(c *client) {
			c.greet(fixed)
			c.option(optInfo, infoData("nope"))
			expectErr(c, optInfo, repErrUnknown)
			expectAlive(c)
		}},
		{"go unknown export", func(c *client) {
			c.greet(fixed)
			c.option(optGo, infoData("nope", infoBlockSize))
			expectErr(c, optGo, repErrUnknown)
			expectAlive(c)
		}},
		{"info name length past the data", func(c *client) {
			c.greet(fixed)
			d := infoData("vol")
			binary.BigEndian.PutUint32(d, 100)
			c.option(optInfo, d)
			expectErr(c, optInfo, repErrInvalid)
			expectAlive(c)
		}},
		{"info requests count mismatch", func(c *client) {
			c.greet(fixed)
			c.option(optInfo, append(infoData("vol", infoBlockSize), 0))
			expectErr(c, optInfo, repErrInvalid)
			expectAlive(c)
		}},
		{"info too big", func(c *client) {
			c.greet(fixed)
			c.option(optInfo, make([]byte, maxOptionLen+1))
			expectErr(c, optInfo, repErrTooBig)
			expectAlive(c)
		}},
		{"info with block size, then go", func(c *client) {
			c.greet(fixed)
			c.option(optInfo, infoData("vol", infoBlockSize))
			rs := c.optReplies(optInfo)
			if len(rs) != 3 || rs[2].typ != repAck {
				c.t.Fatalf("INFO replies %+v, want export, block size, ack", rs)
			}
			wantExport := binary.BigEndian.AppendUint16(nil, infoExport)
			wantExport = binary.BigEndian.AppendUint64(wantExport, testSize)
			wantExport = binary.BigEndian.AppendUint16(wantExport, wantFlags)
			if rs[0].typ != repInfo || !bytes.Equal(rs[0].data, wantExport) {
				c.t.Errorf("INFO export reply %+v, want data % x", rs[0], wantExport)
			}
			wantSizes := binary.BigEndian.AppendUint16(nil, infoBlockSize)
			wantSizes = binary.BigEndian.AppendUint32(wantSizes, 1)
			wantSizes = binary.BigEndian.AppendUint32(wantSizes, 4096)
			wantSizes = binary.BigEndian.AppendUint32(wantSizes, 32<<20)
			if rs[1].typ != repInfo || !bytes.Equal(rs[1].data, wantSizes) {
				c.t.Errorf("INFO block size reply %+v, want data % x", rs[1], wantSizes)
			}
			expectAlive(c)
		}},
		{"go without info requests answers only the export", func(c *client) {
			c.greet(fixed)
			c.option(optGo, infoData("vol"))
			rs := c.optReplies(optGo)
			if len(rs) != 2 || rs[0].typ != repInfo || binary.BigEndian.Uint16(rs[0].data) != infoExport || rs[1].typ != repAck {
				c.t.Fatalf("GO replies %+v, want export info and ack", rs)
			}
			if errno, _ := c.do(0, cmdRead, 0, 512, nil); errno != 0 {
				c.t.Fatalf("read after GO: errno %d", errno)
			}
		}},
		{"go default export with name request", func(c *client) {
			c.greet(fixed)
			c.option(optGo, infoData("", infoName, infoName, 0x7777))
			rs := c.optReplies(optGo)
			if len(rs) != 3 {
				c.t.Fatalf("GO replies %+v, want export, name, ack", rs)
			}
			if !bytes.Equal(rs[1].data, append([]byte{0, infoName}, "vol"...)) {
				c.t.Errorf("name info % x, want the canonical name vol", rs[1].data)
			}
		}},
		{"read-only export", func(c *client) {
			c.greet(fixed)
			c.option(optInfo, infoData("ro"))
			rs := c.optReplies(optInfo)
			if f := binary.BigEndian.Uint16(rs[0].data[10:]); f != wantFlags|tflagReadOnly {
				c.t.Errorf("flags %#x, want %#x", f, wantFlags|tflagReadOnly)
			}
			expectAlive(c)
		}},
		{"list", func(c *client) {
			c.greet(fixed)
			c.option(optList, nil)
			rs := c.optReplies(optList)
			var names []string
			for _, r := range rs[:len(rs)-1] {
				if r.typ != repServer || int(binary.BigEndian.Uint32(r.data)) != len(r.data)-4 {
					c.t.Fatalf("LIST reply %+v", r)
				}
				names = append(names, string(r.data[4:]))
			}
			if len(names) != 2 || names[0] != "vol" || names[1] != "ro" || rs[len(rs)-1].typ != repAck {
				c.t.Fatalf("LIST gave %q then %#x, want [vol ro] and an ack", names, rs[len(rs)-1].typ)
			}
			expectAlive(c)
		}},
		{"list with data", func(c *client) {
			c.greet(fixed)
			c.option(optList, []byte("x"))
			expectErr(c, optList, repErrInvalid)
			expectAlive(c)
		}},
		{"abort", func(c *client) {
			c.greet(fixed)
			c.option(optAbort, nil)
			if rs := c.optReplies(optAbort); rs[0].typ != repAck {
				c.t.Fatalf("ABORT reply %#x, want ack", rs[0].typ)
			}
			expectGone(c)
		}},
		{"export name", func(c *client) {
			c.greet(clientFixedNewstyle)
			c.option(optExportName, []byte("vol"))
			b := c.read(exportReplyLen)
			if binary.BigEndian.Uint64(b) != testSize || binary.BigEndian.Uint16(b[8:]) != wantFlags || !bytes.Equal(b[10:], make([]byte, 124)) {
				c.t.Fatalf("EXPORT_NAME reply % x", b)
			}
			if errno, _ := c.do(0, cmdFlush, 0, 0, nil); errno != 0 {
				c.t.Fatalf("flush: errno %d", errno)
			}
		}},
		{"export name without zeroes", func(c *client) {
			c.greet(fixed)
			c.option(optExportName, []byte("ro"))
			b := c.read(10)
			if binary.BigEndian.Uint64(b) != testSize || binary.BigEndian.Uint16(b[8:]) != wantFlags|tflagReadOnly {
				c.t.Fatalf("EXPORT_NAME reply % x", b)
			}
			if errno, _ := c.do(0, cmdFlush, 0, 0, nil); errno != 0 {
				c.t.Fatalf("flush: errno %d", errno)
			}
		}},
		{"export name unknown", func(c *client) {
			c.greet(fixed)
			c.option(optExportName, []byte("nope"))
			expectGone(c)
		}},
		{"client hangs up", func(c *client) {
			c.greet(fixed)
			c.nc.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t,
				Export{Name: "vol", Backend: newMemBackend(t, testSize)},
				Export{Name: "ro", Backend: newMemBackend(t, testSize), ReadOnly: true})
			tt.run(dial(t, s))
		})
	}
}

func TestParseInfoRequest(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want *infoRequest
	}{
		{"empty name no infos", infoData(""), &infoRequest{name: "", infos: []uint16{}}},
		{"name and two infos", infoData("vol", 3, 1), &infoRequest{name: "vol", infos: []uint16{3, 1}}},
		{"short", []byte{0, 0, 0}, nil},
		{"name too long", append([]byte{0, 0, 0, 9}, "ab\x00\x00"...), nil},
		{"missing info", []byte{0, 0, 0, 0, 0, 2, 0, 3}, nil},
		{"trailing byte", append(infoData("a", 3), 0), nil},
		{"huge name length", []byte{0xff, 0xff, 0xff, 0xff, 0, 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseInfoRequest(tt.in)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("parseInfoRequest(% x) = %+v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got.name != tt.want.name || len(got.infos) != len(tt.want.infos) {
				t.Fatalf("parseInfoRequest(% x) = %+v, %v; want %+v", tt.in, got, err, *tt.want)
			}
			for i := range got.infos {
				if got.infos[i] != tt.want.infos[i] {
					t.Fatalf("infos %v, want %v", got.infos, tt.want.infos)
				}
			}
		})
	}
}
