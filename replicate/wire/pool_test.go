package wire

import (
	"bytes"
	"testing"
)

func TestSizeClass(t *testing.T) {
	for _, tc := range []struct{ n, class int }{
		{1, 0}, {SectorSize, 0}, {minBulk, 0}, {minBulk + 1, 1}, {2 * minBulk, 1},
		{2*minBulk + 1, 2}, {MaxData - 1, sizeClasses - 1}, {MaxData, sizeClasses - 1},
	} {
		if got := sizeClass(tc.n); got != tc.class {
			t.Errorf("sizeClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
		if b := getBulk(tc.n); len(*b) != tc.n || cap(*b) != minBulk<<tc.class {
			t.Errorf("getBulk(%d): len %d cap %d", tc.n, len(*b), cap(*b))
		}
	}
}

// TestRelease: a received payload goes back to its pool once; anything
// else is left alone.
func TestRelease(t *testing.T) {
	sent := &Data{Offset: 0, Payload: filled(3 * SectorSize)}
	m, err := readConn(frames(sent), onData, testSize).Recv()
	if err != nil {
		t.Fatal(err)
	}
	d := m.(*Data)
	if d.buf == nil || cap(*d.buf) != minBulk || !bytes.Equal(d.Payload, sent.Payload) {
		t.Fatalf("received %+v", d)
	}
	Release(d)
	if d.Payload != nil || d.buf != nil {
		t.Fatalf("after Release: %+v", d)
	}
	Release(d) // twice is harmless

	Release(sent) // not from Recv: the caller's buffer stays the caller's
	if sent.Payload == nil {
		t.Fatal("Release took a payload Recv did not make")
	}
	Release(&Ping{})
}
