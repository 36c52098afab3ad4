package nbd

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// fileBackend serves a file, as the engine will serve its backing device.
type fileBackend struct {
	f    *os.File
	fd   int
	size int64
}

// newFileBackend creates a sparse file of size bytes in dir.
func newFileBackend(t *testing.T, dir string, size int64) *fileBackend {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "backing.img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return &fileBackend{f: f, fd: int(f.Fd()), size: size}
}

func (b *fileBackend) Size() int64                             { return b.size }
func (b *fileBackend) ReadAt(p []byte, off int64) (int, error) { return b.f.ReadAt(p, off) }
func (b *fileBackend) Flush() error                            { return unix.Fdatasync(b.fd) }

func (b *fileBackend) WriteAt(p []byte, off int64, fua bool) (int, error) {
	n, err := b.f.WriteAt(p, off)
	if err == nil && fua {
		err = b.Flush()
	}
	return n, err
}

func (b *fileBackend) Trim(off, n int64) error {
	return unix.Fallocate(b.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}

func (b *fileBackend) WriteZeroes(off, n int64, fua bool) error {
	err := unix.Fallocate(b.fd, unix.FALLOC_FL_ZERO_RANGE, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) {
		err = nil
		zero := make([]byte, min(n, 1<<20))
		for done := int64(0); done < n && err == nil; done += int64(len(zero)) {
			_, err = b.f.WriteAt(zero[:min(int64(len(zero)), n-done)], off+done)
		}
	}
	if err == nil && fua {
		err = b.Flush()
	}
	return err
}

// needTools skips the test unless the commands are installed.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("interop with real NBD clients is skipped in -short mode")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/install-deps.sh installs libnbd-bin and fio): %v", tool, err)
		}
	}
}

func uri(export, socket string) string {
	return fmt.Sprintf("nbd+unix:///%s?socket=%s", export, socket)
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, out, stderr.Bytes())
	}
	return out
}

func fileHash(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// TestInteropNbdinfo: libnbd's nbdinfo sees the exports, sizes, flags and
// block sizes the server announces.
func TestInteropNbdinfo(t *testing.T) {
	needTools(t, "nbdinfo")
	const size = 16 << 20
	s := newTestServer(t,
		Export{Name: "vol", Backend: newMemBackend(t, size)},
		Export{Name: "ro", Backend: newMemBackend(t, size/2), ReadOnly: true})
	sock, _ := listen(t, s)

	type info struct {
		Exports []struct {
			Name         string `json:"export-name"`
			Size         int64  `json:"export-size"`
			ReadOnly     bool   `json:"is_read_only"`
			CanFlush     bool   `json:"can_flush"`
			CanFUA       bool   `json:"can_fua"`
			CanTrim      bool   `json:"can_trim"`
			CanZero      bool   `json:"can_zero"`
			CanMultiConn bool   `json:"can_multi_conn"`
			MinBlock     int64  `json:"block_size_minimum"`
			PrefBlock    int64  `json:"block_size_preferred"`
			MaxBlock     int64  `json:"block_size_maximum"`
		} `json:"exports"`
	}
	for _, tt := range []struct {
		export   string
		size     int64
		readOnly bool
	}{{"vol", size, false}, {"ro", size / 2, true}} {
		t.Run(tt.export, func(t *testing.T) {
			out := run(t, "nbdinfo", "--json", uri(tt.export, sock))
			var got info
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("nbdinfo output: %v\n%s", err, out)
			}
			if len(got.Exports) != 1 {
				t.Fatalf("nbdinfo reported %d exports:\n%s", len(got.Exports), out)
			}
			e := got.Exports[0]
			if e.Name != tt.export || e.Size != tt.size || e.ReadOnly != tt.readOnly ||
				!e.CanFlush || !e.CanFUA || !e.CanTrim || !e.CanZero || !e.CanMultiConn ||
				e.MinBlock != MinBlockSize || e.PrefBlock != PreferredBlockSize || e.MaxBlock != MaxPayload {
				t.Fatalf("nbdinfo reported %+v", e)
			}
		})
	}

	out := run(t, "nbdinfo", "--list", "--json", "nbd+unix:///?socket="+sock)
	var list info
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("nbdinfo --list output: %v\n%s", err, out)
	}
	if len(list.Exports) != 2 || list.Exports[0].Name != "vol" || list.Exports[1].Name != "ro" {
		t.Fatalf("nbdinfo --list reported:\n%s", out)
	}
}

// randomImage writes a file of size bytes: random data with a few
// all-zero stretches, so that nbdcopy also sends zeroing requests.
func randomImage(t *testing.T, path string, size int, seed uint64) {
	t.Helper()
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for range 8 {
		off := r.IntN(size - 2<<20)
		clear(b[off : off+r.IntN(2<<20)])
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestInteropNbdcopy copies a random 64 MiB image into a file-backed export
// and back out with nbdcopy, on one connection and on four (multi-conn),
// and compares hashes.
func TestInteropNbdcopy(t *testing.T) {
	needTools(t, "nbdcopy")
	const size = 64 << 20
	for _, conns := range []int{1, 4} {
		t.Run(fmt.Sprintf("connections=%d", conns), func(t *testing.T) {
			dir := t.TempDir()
			be := newFileBackend(t, dir, size)
			s := newTestServer(t, Export{Name: "vol", Backend: be})
			sock, _ := listen(t, s)
			in, out := filepath.Join(dir, "in.img"), filepath.Join(dir, "out.img")
			randomImage(t, in, size, uint64(conns))
			// nbdcopy opens no more connections than it has threads.
			n, threads := fmt.Sprintf("--connections=%d", conns), fmt.Sprintf("--threads=%d", conns)

			run(t, "nbdcopy", n, threads, "--flush", in, uri("vol", sock))
			if fileHash(t, be.f.Name()) != fileHash(t, in) {
				t.Fatal("the backing file differs from the image copied in")
			}
			run(t, "nbdcopy", n, threads, uri("vol", sock), out)
			if fileHash(t, out) != fileHash(t, in) {
				t.Fatal("the image copied out differs from the one copied in")
			}

			st := s.Stats()
			t.Logf("stats: %+v", st)
			if want := uint64(2 * conns); st.ConnsTotal < want {
				t.Errorf("%d connections, want at least %d", st.ConnsTotal, want)
			}
			if st.BytesWritten == 0 || st.BytesRead < size || st.Flushes == 0 || st.Refused != 0 || st.BackendErrors != 0 {
				t.Errorf("unexpected stats %+v", st)
			}
		})
	}
}

// TestInteropFio writes 32 MiB at random with fio's nbd engine, 32 requests
// deep, and has fio verify every block's crc32c.
func TestInteropFio(t *testing.T) {
	needTools(t, "fio")
	if out, _ := exec.Command("fio", "--enghelp").CombinedOutput(); !bytes.Contains(out, []byte("\tnbd\n")) {
		t.Skip("this fio build has no nbd ioengine")
	}
	dir := t.TempDir()
	be := newFileBackend(t, dir, 64<<20)
	s := newTestServer(t, Export{Name: "vol", Backend: be})
	sock, _ := listen(t, s)

	out := run(t, "fio", "--name=nbd-verify", "--ioengine=nbd", "--uri="+uri("vol", sock),
		"--rw=randwrite", "--bs=4k", "--iodepth=32", "--size=32m", "--verify=crc32c", "--verify_state_save=0",
		"--output-format=json")
	var res struct {
		Jobs []struct {
			Name  string `json:"jobname"`
			Error int    `json:"error"`
			Write struct {
				IOBytes int64 `json:"io_bytes"`
			} `json:"write"`
			Read struct {
				IOBytes int64 `json:"io_bytes"`
			} `json:"read"`
		} `json:"jobs"`
	}
	// fio may print notes before the JSON document.
	if i := bytes.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("fio output: %v\n%s", err, out)
	}
	if len(res.Jobs) != 1 {
		t.Fatalf("fio reported %d jobs:\n%s", len(res.Jobs), out)
	}
	j := res.Jobs[0]
	if j.Error != 0 || j.Write.IOBytes != 32<<20 || j.Read.IOBytes != 32<<20 {
		t.Fatalf("fio job %+v: want no error, 32 MiB written and 32 MiB read back to verify", j)
	}
	if st := s.Stats(); st.Refused != 0 || st.BackendErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
}
