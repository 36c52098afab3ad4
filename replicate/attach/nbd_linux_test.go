package attach

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// The generic netlink path itself works: nlctrl resolves itself.
func TestGenlResolveNlctrl(t *testing.T) {
	c, err := dialGenl()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id, err := c.resolveFamily("nlctrl")
	if err != nil || id != genlIDCtrl {
		t.Fatalf("resolve nlctrl = %#x, %v; want %#x", id, err, genlIDCtrl)
	}
}

func requireNoNBD(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/module/nbd"); err == nil {
		t.Skip("skipping: the nbd module is loaded; this test is for kernels without it")
	}
	if nbdAvailable() == nil {
		t.Skip("skipping: the kernel NBD client is available (module auto-loaded)")
	}
}

func TestNBDUnavailable(t *testing.T) {
	requireNoNBD(t)
	err := nbdAvailable()
	if !errors.Is(err, ErrNBDUnavailable) || !strings.Contains(err.Error(), "module nbd not loaded") {
		t.Fatalf("nbdAvailable = %v, want ErrNBDUnavailable saying the module is not loaded", err)
	}

	m, why := Resolve(ModeAuto)
	if m != ModeLoop || !strings.Contains(why, "not available") {
		t.Errorf("Resolve(auto) = %s (%s), want loop because nbd is not available", m, why)
	}
	t.Logf("Resolve(auto) = %s: %s", m, why)

	vol, rt := testVolume(t)
	_, err = Attach(context.Background(), Options{
		Volume: vol, Mode: ModeNBD, RuntimeDir: rt,
		NBD: NBDOptions{
			Size: 64 << 20,
			Dial: func(context.Context) (*os.File, error) {
				t.Error("Dial called although the kernel has no NBD client")
				return nil, errors.New("unreachable")
			},
		},
	})
	if !errors.Is(err, ErrNBDUnavailable) || !strings.Contains(err.Error(), vol) || !strings.Contains(err.Error(), `use attach = "loop"`) {
		t.Fatalf("Attach(nbd) = %v, want ErrNBDUnavailable naming the volume and the way out", err)
	}
	t.Log(err)
}

func TestModeNone(t *testing.T) {
	vol, rt := testVolume(t)
	ctx := context.Background()
	a, err := Attach(ctx, Options{Volume: vol, Mode: ModeNone, RuntimeDir: rt})
	if err != nil {
		t.Fatal(err)
	}
	if info := a.Info(); info.Mode != ModeNone || info.Path != "" {
		t.Errorf("Info = %+v, want mode none and no path", info)
	}
	// The volume is taken, even with nothing attached.
	if _, err := Attach(ctx, Options{Volume: vol, Mode: ModeNone, RuntimeDir: rt}); !errors.Is(err, ErrAttached) {
		t.Errorf("second Attach = %v, want ErrAttached", err)
	}
	for range 2 {
		if err := a.Detach(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	b, err := Attach(ctx, Options{Volume: vol, Mode: ModeNone, RuntimeDir: rt})
	if err != nil {
		t.Fatalf("Attach after Detach: %v", err)
	}
	b.Detach(ctx, false)
}

func TestOptionsCheck(t *testing.T) {
	dev := newMemDevice(1 << 20)
	for name, o := range map[string]Options{
		"empty volume":        {Mode: ModeLoop, Device: dev},
		"path in volume":      {Volume: "../etc", Mode: ModeLoop, Device: dev},
		"dot volume":          {Volume: ".hidden", Mode: ModeLoop, Device: dev},
		"long volume":         {Volume: strings.Repeat("v", 64), Mode: ModeLoop, Device: dev},
		"unknown mode":        {Volume: "v", Mode: "iscsi", Device: dev},
		"relative runtime":    {Volume: "v", Mode: ModeLoop, RuntimeDir: "run", Device: dev},
		"block size":          {Volume: "v", Mode: ModeLoop, BlockSize: 1000, Device: dev},
		"loop without device": {Volume: "v", Mode: ModeLoop, RuntimeDir: t.TempDir()},
		"nbd without dial":    {Volume: "v", Mode: ModeNBD, RuntimeDir: t.TempDir()},
	} {
		if _, err := Attach(context.Background(), o); err == nil {
			t.Errorf("%s: Attach succeeded", name)
		}
	}
}
