package logging

import (
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// environment is what FormatAuto looks at. New uses the real process; tests
// substitute their own so that detection is testable without systemd.
type environment struct {
	lookupEnv    func(key string) (string, bool)
	stderrID     func() (dev, ino uint64, err error)
	socketExists func(path string) bool
}

func processEnvironment() environment {
	return environment{
		lookupEnv: os.LookupEnv,
		stderrID: func() (uint64, uint64, error) {
			var st unix.Stat_t
			if err := unix.Fstat(2, &st); err != nil {
				return 0, 0, err
			}
			return uint64(st.Dev), uint64(st.Ino), nil
		},
		socketExists: func(path string) bool {
			fi, err := os.Stat(path)
			return err == nil && fi.Mode().Type() == fs.ModeSocket
		},
	}
}

// resolveFormat turns FormatAuto into a concrete format.
func resolveFormat(opts Options, env environment) Format {
	if opts.Format != FormatAuto && opts.Format != "" {
		return opts.Format
	}
	// A caller that redirected output elsewhere wants lines there.
	if opts.Output != nil && opts.Output != io.Writer(os.Stderr) {
		return FormatConsole
	}
	if stderrIsJournal(env) && env.socketExists(opts.journalSocket()) {
		return FormatJournald
	}
	return FormatConsole
}

// stderrIsJournal reports whether stderr is the journal stream systemd set up
// for this service. JOURNAL_STREAM alone is not enough: a child of the service
// inherits it even when its stderr was redirected (a unit's script running
// `hactl status 2>>file`), so systemd.exec(5) says to compare it with
// stderr's device and inode.
func stderrIsJournal(env environment) bool {
	v, ok := env.lookupEnv("JOURNAL_STREAM")
	if !ok {
		return false
	}
	devStr, inoStr, ok := strings.Cut(v, ":")
	if !ok {
		return false
	}
	dev, err := strconv.ParseUint(devStr, 10, 64)
	if err != nil {
		return false
	}
	ino, err := strconv.ParseUint(inoStr, 10, 64)
	if err != nil {
		return false
	}
	gotDev, gotIno, err := env.stderrID()
	return err == nil && gotDev == dev && gotIno == ino
}
