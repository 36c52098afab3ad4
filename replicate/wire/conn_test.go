package wire

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// pipeLink sets up a link over net.Pipe between nodes a (client) and b.
func pipeLink(t *testing.T, a, b Config) (*Link, *Link) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	la, lb, err := Pipe(ctx, a, b)
	if err != nil {
		t.Fatalf("Pipe: %v", err)
	}
	t.Cleanup(func() { la.Close(); lb.Close() })
	return la, lb
}

// TestConcurrentSends: frames sent from many goroutines arrive whole,
// each sender's in its order, with consecutive sequence numbers.
func TestConcurrentSends(t *testing.T) {
	a, b := pipeLink(t, testConfig("a"), testConfig("b"))
	const senders, each = 8, 100
	handshake := b.Data.rseq // the frames of the handshake
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := SectorSize * (1 + (g*each+i)%64)
				m := &Data{BlockID: uint64(g)<<32 | uint64(i), Offset: uint64(g) * MaxData, Flags: WriteAckWrite, Payload: bytes.Repeat([]byte{byte(g), byte(i)}, n/2)}
				if err := a.Data.Send(m); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	next := make([]int, senders)
	for range senders * each {
		m, err := b.Data.Recv()
		if err != nil {
			t.Fatal(err)
		}
		d := m.(*Data)
		g, i := int(d.BlockID>>32), int(uint32(d.BlockID))
		if i != next[g] {
			t.Fatalf("sender %d: write %d arrived, want %d", g, i, next[g])
		}
		next[g]++
		if want := bytes.Repeat([]byte{byte(g), byte(i)}, len(d.Payload)/2); !bytes.Equal(d.Payload, want) {
			t.Fatalf("sender %d write %d: payload differs", g, i)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := b.Data.rseq - handshake; got != senders*each {
		t.Errorf("%d sequence numbers used, want %d", got, senders*each)
	}
}

// TestSendTimeout: a peer that takes nothing breaks the connection after
// the send timeout, and the connection stays broken.
func TestSendTimeout(t *testing.T) {
	cfg := testConfig("a")
	cfg.SendTimeout = 20 * time.Millisecond
	a, _ := pipeLink(t, cfg, testConfig("b"))
	err := a.Data.Send(&Data{Payload: make([]byte, MaxData)})
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send to a peer that reads nothing = %v, want a deadline error", err)
	}
	if again := a.Data.Send(&Barrier{Epoch: 1}); again == nil || again.Error() != err.Error() {
		t.Fatalf("next Send = %v, want the same error %v", again, err)
	}
}

// TestRoutes: the Link's connections take only their own messages.
func TestRoutes(t *testing.T) {
	a, b := pipeLink(t, testConfig("a"), testConfig("b"))
	if err := a.Meta.Send(&Data{Payload: make([]byte, 512)}); !errors.Is(err, ErrUnexpected) {
		t.Errorf("Data on meta: %v, want ErrUnexpected", err)
	}
	if err := a.Data.Send(&WriteAck{Length: 512}); !errors.Is(err, ErrUnexpected) {
		t.Errorf("WriteAck on data: %v, want ErrUnexpected", err)
	}
	if err := a.Data.Send(&challenge{}); !errors.Is(err, ErrUnexpected) {
		t.Errorf("Challenge once up: %v, want ErrUnexpected", err)
	}
	// Checked against the size both agreed on.
	if err := a.Data.Send(&Data{Offset: testSize, Payload: make([]byte, 512)}); !errors.Is(err, ErrMalformed) {
		t.Errorf("Data past the end: %v, want ErrMalformed", err)
	}
	go a.Meta.Send(&WriteAck{BlockID: 1, Offset: 0, Length: 512})
	if m, err := b.Meta.Recv(); err != nil || m.(*WriteAck).BlockID != 1 {
		t.Errorf("Recv on meta = %v, %v", m, err)
	}
}

// TestLinkDisconnect: Disconnect reaches the peer after the data before
// it, and closes our end.
func TestLinkDisconnect(t *testing.T) {
	a, b := pipeLink(t, testConfig("a"), testConfig("b"))
	done := make(chan error, 1)
	go func() {
		if err := a.Data.Send(&Barrier{Epoch: 1}); err != nil {
			done <- err
			return
		}
		done <- a.Disconnect(ReasonSplitBrain, "generations diverged\nsee hactl status")
	}()
	if m, err := b.Data.Recv(); err != nil || m.Type() != TypeBarrier {
		t.Fatalf("first frame %v, %v; want the Barrier", m, err)
	}
	m, err := b.Data.Recv()
	if err != nil {
		t.Fatal(err)
	}
	want := &Disconnect{Reason: ReasonSplitBrain, Text: "generations diverged?see hactl status"}
	if d, ok := m.(*Disconnect); !ok || *d != *want {
		t.Fatalf("got %+v, want %+v", m, want)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := a.Data.Send(&Barrier{Epoch: 2}); err == nil {
		t.Fatal("Send after Disconnect succeeded")
	}
}
