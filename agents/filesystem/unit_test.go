package filesystem

import (
	"context"
	"encoding/binary"
	"io/fs"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/cluster/config"
	"github.com/hactl/hactl/resources"
)

const mountinfo = `22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
36 22 7:3 / /srv/data rw,noatime shared:2 - ext4 /dev/loop3 rw
37 36 0:40 / /srv/data/sub rw - tmpfs tmpfs rw
38 22 7:3 /app /srv/bind rw - ext4 /dev/loop3 rw
39 22 0:41 / /srv/with\040space rw - tmpfs none\040x rw
40 22 7:4 / /srv/database rw - ext4 /dev/loop4 rw
`

func TestParseMountinfo(t *testing.T) {
	ms, err := ParseMountinfo(strings.NewReader(mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 6 {
		t.Fatalf("got %d mounts", len(ms))
	}
	want := Mount{ID: 36, Parent: 22, Major: 7, Minor: 3, Root: "/", MountPoint: "/srv/data", FSType: "ext4", Source: "/dev/loop3"}
	if ms[1] != want {
		t.Errorf("mount 1 = %+v, want %+v", ms[1], want)
	}
	if ms[4].MountPoint != "/srv/with space" || ms[4].Source != "none x" {
		t.Errorf("escapes: %+v", ms[4])
	}
	if _, err := ParseMountinfo(strings.NewReader("garbage\n")); err == nil {
		t.Error("garbage parsed")
	}
}

func TestInspect(t *testing.T) {
	ms, _ := ParseMountinfo(strings.NewReader(mountinfo))
	isLoop3 := func(m Mount) bool { return m.Major == 7 && m.Minor == 3 }
	st := inspect(ms, "/srv/data", isLoop3)
	if st.ours == nil || st.top != st.ours || st.ours.ID != 36 {
		t.Errorf("ours = %+v top = %+v", st.ours, st.top)
	}
	if len(st.submounts) != 1 || st.submounts[0].MountPoint != "/srv/data/sub" {
		t.Errorf("submounts = %+v (/srv/database is not below /srv/data)", st.submounts)
	}
	if len(st.elsewhere) != 1 || st.elsewhere[0].MountPoint != "/srv/bind" {
		t.Errorf("elsewhere = %+v", st.elsewhere)
	}
	// Something mounted over ours.
	over := append(ms, Mount{ID: 50, Parent: 36, Major: 0, Minor: 50, Root: "/", MountPoint: "/srv/data", FSType: "tmpfs", Source: "tmpfs"})
	st = inspect(over, "/srv/data", isLoop3)
	if st.ours == nil || st.top == st.ours || st.top.ID != 50 {
		t.Errorf("covered: ours = %+v top = %+v", st.ours, st.top)
	}
	st = inspect(ms, "/srv/none", isLoop3)
	if st.ours != nil || st.top != nil || len(st.elsewhere) != 2 {
		t.Errorf("unmounted: %+v", st)
	}
}

func TestUnder(t *testing.T) {
	tests := []struct {
		path, dir string
		want      bool
	}{
		{"/srv/data", "/srv/data", true},
		{"/srv/data/x/y", "/srv/data", true},
		{"/srv/data/x (deleted)", "/srv/data", true},
		{"/srv/data (deleted)", "/srv/data", true},
		{"/srv/database", "/srv/data", false},
		{"/srv/dat", "/srv/data", false},
		{"/srv", "/srv/data", false},
		{"/", "/", false},
		{"/anything", "/", false},
		{"/srv/data", "", false},
		{"srv/data", "srv/data", false},
		{"socket:[1234]", "/srv/data", false},
		{"/srv/bind/x", "/srv/data", false},
	}
	for _, tc := range tests {
		if got := under(tc.path, tc.dir); got != tc.want {
			t.Errorf("under(%q, %q) = %v, want %v", tc.path, tc.dir, got, tc.want)
		}
	}
}

func link(target string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink | 0o777}
}

// proc builds a fake /proc: one process per entry, with the given links
// (cwd, root, exe, fd/N) and maps.
func proc(procs map[string]map[string]string) fstest.MapFS {
	m := fstest.MapFS{
		"self":    link("999"),
		"meminfo": &fstest.MapFile{Data: []byte("MemTotal: 1 kB\n")},
		"sys":     &fstest.MapFile{Mode: fs.ModeDir | 0o555},
	}
	for pid, files := range procs {
		m[pid+"/cmdline"] = &fstest.MapFile{Data: []byte("prog\x00--pid\x00" + pid + "\x00")}
		m[pid+"/comm"] = &fstest.MapFile{Data: []byte("prog\n")}
		m[pid+"/fd"] = &fstest.MapFile{Mode: fs.ModeDir | 0o500}
		for name, v := range files {
			if name == "maps" {
				m[pid+"/maps"] = &fstest.MapFile{Data: []byte(v)}
			} else {
				m[pid+"/"+name] = link(v)
			}
		}
	}
	return m
}

func TestFindUsers(t *testing.T) {
	const maps = "55d4c0a00000-55d4c0a02000 r--p 00000000 fd:01 123    /usr/bin/sleep\n" +
		"7f0000000000-7f0000001000 rw-s 00000000 07:03 77     /srv/data/db/with space.mmap\n" +
		"7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0      [stack]\n"
	base := map[string]string{"cwd": "/", "root": "/", "exe": "/usr/bin/prog", "ns/mnt": "mnt:[4026531841]"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	p := proc(map[string]map[string]string{
		"10":  with(map[string]string{"cwd": "/srv/data/app"}),                           // cwd inside
		"11":  with(map[string]string{"fd/3": "/srv/data/log (deleted)"}),                // open deleted file
		"12":  with(map[string]string{"maps": maps}),                                     // mapped file with a space
		"13":  with(map[string]string{"root": "/srv/data/chroot"}),                       // chroot
		"14":  with(map[string]string{"exe": "/srv/data/bin/daemon"}),                    // running binary
		"15":  with(map[string]string{"cwd": "/srv/database"}),                           // prefix but not under
		"16":  with(map[string]string{"cwd": "/srv/src", "fd/0": "socket:[99]"}),         // bind mount source dir
		"17":  with(map[string]string{"cwd": "/srv/bind/app"}),                           // bind mount target elsewhere
		"18":  with(map[string]string{"cwd": "/srv/data"}),                               // the mountpoint itself
		"19":  with(map[string]string{"cwd": "/srv/data", "ns/mnt": "mnt:[4026532999]"}), // another mount namespace's /srv/data
		"999": with(map[string]string{"cwd": "/srv/data", "fd/4": "/srv/data/state"}),    // the agent itself
		"20":  {},                                                                        // a kernel thread: nothing readable
	})
	users, err := FindUsers(p, "/srv/data", 999)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]string{}
	for _, u := range users {
		got[u.PID] = u.Why
		if u.Cmdline != "prog --pid "+strconv.Itoa(u.PID) {
			t.Errorf("pid %d cmdline %q", u.PID, u.Cmdline)
		}
	}
	want := map[int]string{
		10: "cwd /srv/data/app",
		11: "fd 3 /srv/data/log (deleted)",
		12: "maps /srv/data/db/with space.mmap",
		13: "root /srv/data/chroot",
		14: "exe /srv/data/bin/daemon",
		18: "cwd /srv/data",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("users = %v, want %v", got, want)
	}
	// Everything is under "/": refused, not matched.
	for _, mp := range []string{"/", "", "srv/data", "/srv/data/", "/srv/../srv/data"} {
		if users, err := FindUsers(p, mp, 999); err == nil {
			t.Errorf("FindUsers(%q) = %v, want an error", mp, users)
		}
	}
}

func TestExtNeedsFsck(t *testing.T) {
	sb := func(magic, state uint16, incompat uint32) []byte {
		b := make([]byte, extSuperSize)
		binary.LittleEndian.PutUint16(b[extMagicOff:], magic)
		binary.LittleEndian.PutUint16(b[extStateOff:], state)
		binary.LittleEndian.PutUint32(b[extIncompatOff:], incompat)
		return b
	}
	tests := []struct {
		name    string
		sb      []byte
		need    bool
		why     string
		wantErr bool
	}{
		{"clean", sb(extMagic, extValidFS, 0x2c2), false, "clean", false},
		{"needs recovery", sb(extMagic, extValidFS, 0x2c2|extIncompatRcvr), true, "journal needs recovery", false},
		{"not valid", sb(extMagic, 0, 0), true, "not clean", false},
		{"errors", sb(extMagic, extValidFS|extErrorFS, 0), true, "errors", false},
		{"not ext", sb(0x1234, extValidFS, 0), false, "", true},
		{"short", make([]byte, 10), false, "", true},
	}
	for _, tc := range tests {
		need, why, err := extNeedsFsck(tc.sb)
		if (err != nil) != tc.wantErr || need != tc.need || !strings.Contains(why, tc.why) {
			t.Errorf("%s: = %v %q %v", tc.name, need, why, err)
		}
	}
}

func TestParseOptions(t *testing.T) {
	flags, data, dropped := parseOptions([]string{"noatime,nodev", "ro", "rw", "errors=remount-ro", "defaults", "x-systemd.automount", "data=ordered", "nofail", ""})
	if flags != unix.MS_NOATIME|unix.MS_NODEV {
		t.Errorf("flags = %#x", flags)
	}
	if data != "errors=remount-ro,data=ordered" {
		t.Errorf("data = %q", data)
	}
	if !reflect.DeepEqual(dropped, []string{"defaults", "x-systemd.automount", "nofail"}) {
		t.Errorf("dropped = %q", dropped)
	}
}

func TestRefusedConfig(t *testing.T) {
	for _, tc := range []struct{ device, mp string }{
		{"/dev/loop0", "/"}, {"/dev/loop0", ""}, {"/dev/loop0", "srv/data"}, {"/dev/loop0", "/srv/data/"}, {"", "/srv/data"},
	} {
		a := New(tc.device, config.Filesystem{Mountpoint: tc.mp, FSType: "ext4"}, nil)
		ctx := context.Background()
		for op, r := range map[string]resources.Result{"start": a.Start(ctx), "stop": a.Stop(ctx), "monitor": a.Monitor(ctx)} {
			if r.Code != resources.Fatal {
				t.Errorf("%s of %q on %q = %v, want Fatal", op, tc.device, tc.mp, r)
			}
		}
	}
}
