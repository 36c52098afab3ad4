package vrrpnet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// LinkState is a tracked interface's usability.
type LinkState struct {
	Name string
	// Up is admin up (IFF_UP) and carrier (IFF_LOWER_UP).
	Up bool
	// Detail is "up", "admin down", "no carrier" or "missing".
	Detail string
}

// Details of LinkState.
const (
	DetailUp        = "up"
	DetailAdminDown = "admin down"
	DetailNoCarrier = "no carrier"
	DetailMissing   = "missing"
)

// resubscribeDelay paces new subscriptions when the kernel dropped the old
// one (its receive buffer overflowed) or refuses a new one.
const resubscribeDelay = 200 * time.Millisecond

// WatchLinks sends the current state of each named interface, then every
// change, in the calling thread's network namespace, until ctx is done;
// then it closes the channel.
//
// It never blocks on a slow consumer: it keeps at most one undelivered
// state per interface and replaces it with newer ones, so a consumer sees
// each interface's latest state, possibly skipping intermediate ones, and
// never the same state twice in a row. Interfaces are delivered in the
// order their states became pending. If the kernel drops the netlink
// subscription (a receive buffer overflow loses events), WatchLinks
// subscribes again and re-reads every interface, so it converges on the
// current state. A state read at start may be followed by an older one
// from an event queued before the read, then by the current one again.
func WatchLinks(ctx context.Context, names []string) (<-chan LinkState, error) {
	w := newWatcher(names)
	if len(w.names) == 0 {
		go func() { <-ctx.Done(); close(w.out) }()
		return w.out, nil
	}
	if err := w.start(ctx); err != nil {
		return nil, fmt.Errorf("vrrpnet: watch links %v: %w", w.names, err)
	}
	return w.out, nil
}

func uniq(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

type watcher struct {
	ns    netns.NsHandle // where the links are; kept open for resubscribing
	names []string
	out   chan LinkState

	last    map[string]LinkState // last delivered
	pending map[string]LinkState // newest undelivered
	queue   []string             // names in pending, oldest first
	index   map[string]int       // ifindex of each present tracked name

	// onSubscribe, if set, sees each new subscription; tests use it to
	// drop one as the kernel would.
	onSubscribe func(*subscription)
}

// subscription is one netlink link-update subscription.
type subscription struct {
	updates <-chan netlink.LinkUpdate
	// close closes the socket, ending the library's goroutine, which then
	// closes updates. The library leaves the socket open when a receive
	// fails, so even a dead subscription needs it. Idempotent.
	close func()
}

// end closes s and waits for its goroutine, which may be blocked sending.
func (s *subscription) end() {
	s.close()
	for range s.updates {
	}
}

func newWatcher(names []string) *watcher {
	return &watcher{
		names:   uniq(names),
		out:     make(chan LinkState),
		last:    map[string]LinkState{},
		pending: map[string]LinkState{},
		index:   map[string]int{},
	}
}

// start subscribes in the calling thread's namespace, reads the initial
// states and runs the watch until ctx is done.
func (w *watcher) start(ctx context.Context) error {
	ns, err := netns.Get()
	if err != nil {
		return fmt.Errorf("current namespace: %w", err)
	}
	w.ns = ns
	sub, err := w.sync()
	if err != nil {
		ns.Close()
		return err
	}
	go w.run(ctx, sub)
	return nil
}

// sync subscribes and then reads every tracked interface: in this order,
// so that no change falls in between.
func (w *watcher) sync() (*subscription, error) {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{Namespace: &w.ns})
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	sub := &subscription{updates: ch, close: sync.OnceFunc(func() { close(done) })}
	if w.onSubscribe != nil {
		w.onSubscribe(sub)
	}
	if err := w.resync(); err != nil {
		sub.end()
		return nil, err
	}
	return sub, nil
}

// resync reads every tracked interface afresh.
func (w *watcher) resync() error {
	h, err := netlink.NewHandleAt(w.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	var links []netlink.Link
	for range 3 {
		if links, err = h.LinkList(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list links: %w", err)
	}
	clear(w.index)
	for _, name := range w.names {
		w.set(LinkState{Name: name, Detail: DetailMissing})
	}
	for _, l := range links {
		if slices.Contains(w.names, l.Attrs().Name) {
			w.index[l.Attrs().Name] = l.Attrs().Index
			w.set(stateOf(l))
		}
	}
	return nil
}

func stateOf(l netlink.Link) LinkState {
	a := l.Attrs()
	s := LinkState{Name: a.Name}
	switch {
	case a.RawFlags&unix.IFF_UP == 0:
		s.Detail = DetailAdminDown
	case a.RawFlags&unix.IFF_LOWER_UP == 0:
		s.Detail = DetailNoCarrier
	default:
		s.Up, s.Detail = true, DetailUp
	}
	return s
}

// set makes s the state to deliver next for its interface, or drops the
// pending one if s is what the consumer already has.
func (w *watcher) set(s LinkState) {
	_, isPending := w.pending[s.Name]
	if last, ok := w.last[s.Name]; ok && last == s {
		if isPending {
			delete(w.pending, s.Name)
			w.queue = slices.DeleteFunc(w.queue, func(n string) bool { return n == s.Name })
		}
		return
	}
	if !isPending {
		w.queue = append(w.queue, s.Name)
	}
	w.pending[s.Name] = s
}

func (w *watcher) handle(u netlink.LinkUpdate) {
	name, idx := u.Link.Attrs().Name, int(u.Index)
	if u.Header.Type == unix.RTM_DELLINK {
		if i, ok := w.index[name]; ok && i == idx {
			delete(w.index, name)
			w.set(LinkState{Name: name, Detail: DetailMissing})
		}
		return
	}
	// A tracked interface renamed to something else is gone for us.
	for n, i := range w.index {
		if i == idx && n != name {
			delete(w.index, n)
			w.set(LinkState{Name: n, Detail: DetailMissing})
		}
	}
	if slices.Contains(w.names, name) {
		w.index[name] = idx
		w.set(stateOf(u.Link))
	}
}

func (w *watcher) run(ctx context.Context, sub *subscription) {
	defer func() {
		if sub != nil {
			sub.end()
		}
		w.ns.Close()
		close(w.out)
	}()
	var retry <-chan time.Time
	for {
		var (
			send    chan<- LinkState
			next    LinkState
			updates <-chan netlink.LinkUpdate
		)
		if len(w.queue) > 0 {
			send, next = w.out, w.pending[w.queue[0]]
		}
		if sub != nil {
			updates = sub.updates
		}
		select {
		case <-ctx.Done():
			return
		case send <- next:
			w.last[next.Name] = next
			delete(w.pending, next.Name)
			w.queue = w.queue[1:]
		case u, ok := <-updates:
			if ok {
				w.handle(u)
				continue
			}
			// The library closes the channel when a receive fails, e.g.
			// with ENOBUFS after the kernel dropped events.
			sub.close()
			sub = nil
			retry = time.After(resubscribeDelay)
		case <-retry:
			var err error
			if sub, err = w.sync(); err != nil {
				retry = time.After(resubscribeDelay)
			}
		}
	}
}
