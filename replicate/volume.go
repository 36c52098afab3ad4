package replicate

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hactl/hactl/replicate/decide"
	"github.com/hactl/hactl/replicate/meta"
	"github.com/hactl/hactl/replicate/txlog"
	"github.com/hactl/hactl/replicate/wire"
)

// Errors callers branch on.
var (
	// ErrNotPrimary: I/O on a Secondary. It matches fs.ErrPermission, which
	// the NBD server answers with EPERM.
	ErrNotPrimary = fmt.Errorf("volume is not Primary: %w", fs.ErrPermission)
	// ErrPeerPrimary: the connected peer is Primary, so this node cannot be.
	ErrPeerPrimary = errors.New("the peer is Primary")
	// ErrNoUpToDateData: promotion needs UpToDate data (or --force).
	ErrNoUpToDateData = errors.New("no UpToDate data")
	// ErrClosed: the volume was closed.
	ErrClosed = errors.New("volume closed")
	// ErrDiskFailed: the backing disk or its metadata failed an I/O; the
	// volume refuses further I/O until it is opened again.
	ErrDiskFailed = errors.New("backing disk failed")
)

// Role is a node's role for a volume.
type Role uint8

const (
	Secondary Role = iota
	Primary
)

func (r Role) String() string {
	if r == Primary {
		return "Primary"
	}
	return "Secondary"
}

func (r Role) wire() wire.Role {
	if r == Primary {
		return wire.RolePrimary
	}
	return wire.RoleSecondary
}

// ConnState is the state of the replication link, DRBD's names.
type ConnState string

const (
	StandAlone ConnState = "StandAlone" // no peer configured, or closed
	Connecting ConnState = "Connecting" // waiting for or dialing the peer
	Connected  ConnState = "Connected"  // replicating
	SyncSource ConnState = "SyncSource" // connected, sending a resync
	SyncTarget ConnState = "SyncTarget" // connected, receiving a resync
)

// Disk is the backing store of the data: a file or a block device.
// *os.File wrapped by NewFileDisk is the production one; meta.MemDevice
// serves tests. Sync must make every completed write durable.
type Disk interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// Discarder is an optional Disk extension for TRIM and WRITE_ZEROES. Both
// must leave the range reading as zeroes, so that the two replicas stay
// byte-identical (a trimmed range on the Primary and on the Secondary must
// compare equal). Without it the engine writes zeroes.
type Discarder interface {
	// PunchHole deallocates the range; it reads as zeroes afterwards.
	PunchHole(off, length int64) error
	// ZeroRange makes the range read as zeroes, keeping it allocated.
	ZeroRange(off, length int64) error
}

// Config describes one node's side of a volume.
type Config struct {
	Volume   string
	Node     string // this node
	Peer     string // the peer node; "" runs the volume without a peer
	Protocol txlog.Protocol
	Disk     Disk
	Meta     *meta.Meta // open; the Volume updates it and the caller closes its device
	// Connect returns the next link to the peer, set up with wc (the
	// secret and Local are filled in by the Volume). Dial and Listen build
	// one; tests use an in-memory pair. nil: no peer.
	Connect func(ctx context.Context, wc wire.Config) (*wire.Link, error)
	Secret  []byte
	Policy  decide.Policies
	Log     *zap.Logger
	// Fence, when set, is asked before a Primary completes a write its
	// peer did not get (the link is down): nil lets the write complete
	// alone — the peer acknowledged being Outdated (see MarkPeerOutdated),
	// or it is silent on every path and this node has quorum. It may block
	// while the peer is being outdated (the write waits: DRBD's fencing
	// with frozen I/O); an error fails the write, which then changed
	// nothing the application was told of (no quorum). A nil answer holds
	// until the link is up again. Without Fence, writes complete alone.
	Fence func(ctx context.Context) error
	// PingInterval and PingTimeout tune the liveness check on the link
	// (DefaultPingInterval, DefaultPingTimeout when zero).
	PingInterval, PingTimeout time.Duration
	// EpochInterval closes an open epoch that long after its first write
	// even without a flush, so activity-log extents do not stay hot
	// forever under an application that never flushes. Default 1 s.
	EpochInterval time.Duration
	// ResyncWindow is how many bytes of resync data may be unacknowledged;
	// the dynamic controller aims to keep this much in flight. Default 8 MiB.
	ResyncWindow int64
	// ResyncRate fixes the resync rate (bytes/s); 0 runs the dynamic
	// controller, which holds ResyncMinRate while the application writes
	// and never exceeds ResyncMaxRate (0: no cap). See rate.go.
	ResyncRate, ResyncMinRate, ResyncMaxRate int64
	// ResyncChecksum sends a hash of each out-of-sync range first and the
	// data only where the target's differs (DRBD's csums-alg).
	ResyncChecksum bool
	// ResyncCheckpoint is how often a resync makes its progress durable,
	// so an interrupted one resumes from what is left. Default 2 s.
	ResyncCheckpoint time.Duration
	// Rand is the source of generation UUIDs; nil: crypto/rand.
	Rand io.Reader
}

// The liveness check on the link. DRBD pings every 10 s, but here a
// Primary's writes wait for a silent peer until the check fails, so it
// runs every second: a peer that vanished holds writes up for 1.5 s at
// most, and the Primary goes on disconnected.
const (
	DefaultPingInterval = time.Second
	DefaultPingTimeout  = 500 * time.Millisecond
)

// Volume is one node's side of a replicated volume. It implements
// nbd.Backend (Size, ReadAt, WriteAt, Flush, Trim, WriteZeroes); Device
// returns the attach.Device view.
type Volume struct {
	cfg  Config
	log  *zap.Logger
	m    *meta.Meta
	size int64

	ctx    context.Context // ends on Close
	cancel context.CancelFunc

	inflight txlog.InFlight
	tl       *txlog.TransferLog

	// mu guards the state below. Writers hold it shared while they decide
	// where a write goes and hand it to the link (so a teardown, which
	// holds it exclusively, sees each write either sent or not).
	mu         sync.RWMutex
	role       Role
	disk       wire.DiskState
	pc         *peerConn // the link while up
	conn       ConnState
	lastErr    string // why the last link ended or was refused
	splitBrain *decide.SplitBrainOutcome
	failed     error // set once the disk failed: no more I/O
	closed     bool
	running    bool       // Run was called
	sent       wire.Hello // what the last handshake announced
	promoting  chan error // a connected promotion waiting for the peer's answer
	// discard is the node whose changes an operator asked to discard at
	// the next split-brain handshake ("" none); see Resolve.
	discard string
	// standAlone: the last link was refused for a reason only an operator
	// can fix (split brain, unrelated data); reconnecting slows down.
	standAlone bool
	// sbChanged are the blocks each side changed, when split brain was
	// last detected: node → bytes.
	sbChanged map[string]uint64
	kick      chan struct{} // wakes Run's reconnect wait (Resolve)
	// lastVerify is the last online verify run from this node.
	lastVerify *verifyRun

	// roleMu serialises Promote and Demote.
	roleMu sync.Mutex
	// io counts Primary I/O in progress, which Demote waits for.
	io sync.WaitGroup

	sendMu sync.Mutex // orders TransferLog.Add with the Data frames on the wire

	reqMu sync.Mutex
	reqs  map[uint64]*request // writes sent, until barrier-acked or failed
	ids   uint64

	alMu      sync.Mutex    // one activity-log commit at a time
	alFree    chan struct{} // closed (and replaced) at a release while alWaiting
	alWaiting bool          // a write waits for room in the activity log (under reqMu)

	// aloneMu serialises writes that complete without the peer
	// (fence.go), so Fence runs once at a time; fenced and lostPeer are
	// under mu.
	aloneMu sync.Mutex
	fenced  bool // Fence said yes since the link went down
	// lostPeer: the link went down under this UpToDate Primary; the new
	// data generation starts with the first write that completes alone.
	lostPeer bool

	runDone chan struct{}
	stats   counters
}

// counters are the volume's I/O counters, read by Status.
type counters struct {
	mu                          sync.Mutex
	writes, writeBytes, flushes uint64
	reads, readBytes            uint64
	alCommits                   uint64
	resyncedBytes               uint64
	resyncSameBytes             uint64 // of resyncedBytes: found equal by checksum, not sent
}

// Open takes a volume's metadata and disk into service as a Secondary. It
// applies the attach rules of docs/metadata.md: after an unclean shutdown
// the activity log's extents are marked dirty (and a node that was Primary
// is flagged crashed-primary); the clean-shutdown flag is cleared before
// anything is written.
func Open(cfg Config) (*Volume, error) {
	if cfg.Meta == nil || cfg.Disk == nil {
		return nil, errors.New("replicate: Config needs Meta and Disk")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	switch cfg.Protocol {
	case txlog.ProtocolA, txlog.ProtocolB, txlog.ProtocolC:
	case 0:
		cfg.Protocol = txlog.ProtocolC
	default:
		return nil, fmt.Errorf("replicate: unknown protocol %q", rune(cfg.Protocol))
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = DefaultPingTimeout
	}
	if cfg.EpochInterval <= 0 {
		cfg.EpochInterval = time.Second
	}
	if cfg.ResyncWindow <= 0 {
		cfg.ResyncWindow = 8 << 20
	}
	if cfg.ResyncCheckpoint <= 0 {
		cfg.ResyncCheckpoint = 2 * time.Second
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	m := cfg.Meta
	sb := m.Super()
	log := cfg.Log.With(zap.String("volume", cfg.Volume))

	if !sb.Flags.Has(meta.FlagCleanShutdown) || m.AL().Lost() != "" {
		n, err := m.ApplyAL()
		if err != nil {
			return nil, fmt.Errorf("replicate: volume %s: applying the activity log: %w", cfg.Volume, err)
		}
		log.Warn("volume was not shut down cleanly; activity-log extents marked out of sync",
			zap.String("event", "unclean-attach"), zap.Int("extents", n),
			zap.Bool("was_primary", sb.Flags.Has(meta.FlagPrimary)))
	}
	if sb.Flags.Has(meta.FlagFullSync) {
		m.Bitmap().SetAll()
		if err := m.Bitmap().Flush(); err != nil {
			return nil, fmt.Errorf("replicate: volume %s: %w", cfg.Volume, err)
		}
	}
	err := m.Update(func(s *meta.Superblock) error {
		if !s.Flags.Has(meta.FlagCleanShutdown) && s.Flags.Has(meta.FlagPrimary) {
			s.Flags |= meta.FlagCrashedPrimary
		}
		s.Flags &^= meta.FlagCleanShutdown | meta.FlagPrimary | meta.FlagFullSync | meta.FlagConnected
		s.GI = s.GI.Demote()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replicate: volume %s: %w", cfg.Volume, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	v := &Volume{
		cfg:     cfg,
		log:     log,
		m:       m,
		size:    m.Layout().DataSize,
		ctx:     ctx,
		cancel:  cancel,
		tl:      txlog.NewTransferLog(0),
		role:    Secondary,
		disk:    initialDisk(m.Super().Flags),
		conn:    StandAlone,
		reqs:    make(map[uint64]*request),
		alFree:  make(chan struct{}),
		runDone: make(chan struct{}),
		kick:    make(chan struct{}, 1),
	}
	if cfg.Connect != nil {
		v.conn = Connecting
	}
	return v, nil
}

// initialDisk is the disk state on attach, before the peer is known:
// DRBD's Inconsistent / Outdated / Consistent.
func initialDisk(f meta.Flags) wire.DiskState {
	switch {
	case !f.Has(meta.FlagConsistent):
		return wire.DiskInconsistent
	case f.Has(meta.FlagOutdated):
		return wire.DiskOutdated
	default:
		return wire.DiskConsistent
	}
}

// Size is the volume's size in bytes.
func (v *Volume) Size() int64 { return v.size }

// Name is the volume's name.
func (v *Volume) Name() string { return v.cfg.Volume }

// Role is the volume's role on this node now.
func (v *Volume) Role() Role {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.role
}

// Close stops the volume: it waits for Run to return (when it was
// started), fails what is still in flight, flushes the bitmap and marks
// the metadata clean. A Primary is demoted first; Close does not check
// who has the device open — the caller detaches it before.
func (v *Volume) Close() error {
	if v.Role() == Primary {
		_ = v.Demote(context.Background())
	}
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	running := v.running
	v.mu.Unlock()
	v.cancel()
	if running {
		<-v.runDone
	}
	v.io.Wait()

	var errs []error
	if err := v.cfg.Disk.Sync(); err != nil {
		errs = append(errs, err)
	}
	if err := v.m.Bitmap().Flush(); err != nil {
		errs = append(errs, err)
	}
	if err := v.m.Update(func(s *meta.Superblock) error {
		s.Flags |= meta.FlagCleanShutdown
		s.Flags &^= meta.FlagPrimary | meta.FlagConnected
		s.GI = s.GI.Demote()
		return nil
	}); err != nil {
		errs = append(errs, err)
	}
	v.mu.Lock()
	v.role = Secondary
	v.conn = StandAlone
	v.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("replicate: volume %s: close: %w", v.cfg.Volume, err)
	}
	return nil
}

// newUUID is a fresh generation UUID.
func (v *Volume) newUUID() (uint64, error) { return meta.NewUUID(v.cfg.Rand) }

// diskFailed records a failed disk or metadata I/O: DRBD detaches, we
// refuse further I/O and report it.
func (v *Volume) diskFailed(op string, err error) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.diskFailedLocked(op, err)
}

func (v *Volume) diskFailedLocked(op string, err error) error {
	if v.failed == nil {
		v.failed = fmt.Errorf("%s: %w", op, err)
		v.disk = wire.DiskFailed
		v.log.Error("backing disk failed; refusing I/O until the volume is reopened",
			zap.String("event", "disk-failed"), zap.String("op", op), zap.Error(err))
	}
	return fmt.Errorf("%w: %s: %v", ErrDiskFailed, op, err)
}
