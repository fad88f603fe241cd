package wsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// Conn is one Sync stream, either end.
type Conn interface {
	Send(*agentv1.SyncMessage) error
	Recv() (*agentv1.SyncMessage, error)
}

const (
	window      = 32        // messages a side may send that the other has not credited
	creditEvery = 4         // a reader credits this many handled messages at once
	chunkSize   = 256 << 10 // file bytes in one message
	manifestMax = 1000      // entries in one manifest message

	quiet      = 50 * time.Millisecond // a changed path is sent once quiet this long
	holdOpen   = time.Second           // ... or this long, while a writer has it open
	maxHold    = 5 * time.Second       // ... but never held longer than this
	rescanTick = 2 * time.Second       // how often folders the watcher could not watch are rescanned
)

// Session is one side of a Sync stream.
type Session struct {
	host     bool
	readOnly bool
	tree     *Tree
	w        *watcher
	conn     Conn
	log      *slog.Logger

	sendMu sync.Mutex
	tokens chan struct{} // one per message that may be sent now

	mu      sync.Mutex
	known   map[string]*Entry // the host's base, the guest's last synced versions
	changed bool              // known changed since the host last saved it
	reqs    []request
	wakeReq chan struct{}
	pulls   map[string]bool // the host asked the guest for these
	flushes map[uint64]chan struct{}
	seq     uint64
	// marks[seq] is sent when flush seq went out; a FLUSHED for it
	// confirms that many (the other side handles messages in order).
	marks map[uint64]uint64

	// sent counts the messages this side sent that may change the other
	// side (not credits or flush messages); confirmed, how many of them
	// a FLUSHED answer has covered. Equal: nothing sent is unapplied.
	sent, confirmed atomic.Uint64

	dirty map[string]*dirtyPath // the sender's alone

	in      *Incoming // a file being received, or nil
	inSkip  bool      // the rest of the file being received is dropped
	inAfter func(error)

	ready        chan struct{} // host: closed when the first sync is done
	readyOnce    sync.Once
	readyErr     error
	done         chan struct{}
	err          error
	cancel       context.CancelFunc
	statePath    string            // host: where known is kept
	guestEntries map[string]*Entry // host: the manifest so far
	copyID       string            // host: names the guest copy known describes
}

type reqKind int

const (
	reqPush reqKind = iota
	reqPull
	reqFlush
	reqFlushOut
	reqError
)

type request struct {
	kind   reqKind
	path   string
	pulled bool
	seq    uint64
	text   string
}

type dirtyPath struct {
	first, last time.Time
	writing     bool // modified, not yet closed by its writer
	force       bool // send even if unchanged since last synced
	pulled      bool
}

func newSession(host bool, tree *Tree, conn Conn, log *slog.Logger) *Session {
	s := &Session{
		host: host, tree: tree, conn: conn, log: log,
		tokens:  make(chan struct{}, window),
		known:   map[string]*Entry{},
		wakeReq: make(chan struct{}, 1),
		pulls:   map[string]bool{},
		flushes: map[uint64]chan struct{}{},
		marks:   map[uint64]uint64{},
		dirty:   map[string]*dirtyPath{},
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	for i := 0; i < window; i++ {
		s.tokens <- struct{}{}
	}
	return s
}

// run starts the session's reader and sender; the session ends when
// either ends.
func (s *Session) run(ctx context.Context, first func() error) {
	ctx, s.cancel = context.WithCancel(ctx)
	errs := make(chan error, 2)
	go func() { errs <- s.readLoop(ctx) }()
	go func() {
		if err := first(); err != nil {
			errs <- err
			return
		}
		errs <- s.sendLoop(ctx)
	}()
	go func() {
		err := <-errs
		s.cancel()
		if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
			err = nil
		}
		s.mu.Lock()
		s.err = err
		for _, ch := range s.flushes {
			close(ch)
		}
		s.flushes = map[uint64]chan struct{}{}
		s.mu.Unlock()
		if s.in != nil {
			s.in.Abort()
		}
		s.w.close()
		if s.host {
			s.save()
		}
		s.setReady(fmt.Errorf("the workspace sync ended: %v", err))
		close(s.done)
	}()
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended (nil when it was closed or the stream ended).
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the session and waits for it. A stream that can say it
// sends no more (ttrpc's) tells the other side, whose session ends too.
func (s *Session) Close() {
	if c, ok := s.conn.(interface{ CloseSend() error }); ok {
		s.sendMu.Lock()
		c.CloseSend()
		s.sendMu.Unlock()
	}
	s.cancel()
	<-s.done
}

// send sends m, waiting for the window; credit messages go at once.
func (s *Session) send(ctx context.Context, m *agentv1.SyncMessage) error {
	if m.Kind != agentv1.SyncKind_SYNC_CREDIT {
		select {
		case <-s.tokens:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	switch m.Kind {
	case agentv1.SyncKind_SYNC_CREDIT, agentv1.SyncKind_SYNC_FLUSH, agentv1.SyncKind_SYNC_FLUSHED:
	default:
		s.sent.Add(1)
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.conn.Send(m)
}

func (s *Session) request(r request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
	select {
	case s.wakeReq <- struct{}{}:
	default:
	}
}

// sendLoop sends what the watcher reports and what requests ask for.
func (s *Session) sendLoop(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	rescan := time.NewTicker(rescanTick)
	defer rescan.Stop()
	for {
		s.absorb()
		s.mu.Lock()
		reqs := s.reqs
		s.reqs = nil
		s.mu.Unlock()
		for _, r := range reqs {
			if err := s.handleRequest(ctx, r); err != nil {
				return err
			}
		}
		next, err := s.sendDirty(ctx, false)
		if err != nil {
			return err
		}
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.w.notify:
		case <-s.wakeReq:
		case <-timer.C:
		case <-rescan.C:
			if s.w.unwatched() != nil {
				s.rescan()
			}
			if s.host {
				s.save()
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func (s *Session) handleRequest(ctx context.Context, r request) error {
	switch r.kind {
	case reqPush:
		d := s.mark(r.path)
		d.force, d.pulled = true, d.pulled || r.pulled
	case reqPull:
		return s.send(ctx, &agentv1.SyncMessage{Kind: agentv1.SyncKind_SYNC_PULL, Path: r.path})
	case reqError:
		return s.send(ctx, &agentv1.SyncMessage{Kind: agentv1.SyncKind_SYNC_ERROR, Path: r.path, Error: r.text})
	case reqFlush, reqFlushOut:
		s.w.drain()
		s.absorb()
		if _, err := s.sendDirty(ctx, true); err != nil {
			return err
		}
		sent := s.sent.Load()
		s.mu.Lock()
		if r.kind == reqFlushOut && sent == s.confirmed.Load() {
			// Nothing this side sent waits to be applied: no round trip.
			if ch := s.flushes[r.seq]; ch != nil {
				delete(s.flushes, r.seq)
				close(ch)
			}
			s.mu.Unlock()
			return nil
		}
		s.marks[r.seq] = sent
		s.mu.Unlock()
		kind := agentv1.SyncKind_SYNC_FLUSHED
		if s.host {
			kind = agentv1.SyncKind_SYNC_FLUSH
		}
		return s.send(ctx, &agentv1.SyncMessage{Kind: kind, Seq: r.seq})
	}
	return nil
}

// mark notes a change of p.
func (s *Session) mark(p string) *dirtyPath {
	d := s.dirty[p]
	now := time.Now()
	if d == nil {
		d = &dirtyPath{first: now}
		s.dirty[p] = d
	}
	d.last = now
	return d
}

// absorb takes the watcher's changes into the dirty set.
func (s *Session) absorb() {
	changes, lost := s.w.take()
	for _, c := range changes {
		d := s.mark(c.path)
		if c.writing {
			d.writing = true
		}
		if c.closed {
			d.writing = false
		}
	}
	if lost {
		s.rescan()
	}
}

// rescan marks every path whose entry differs from the last synced one:
// after the watcher lost events, or for folders it could not watch.
func (s *Session) rescan() {
	entries, _, err := s.tree.Walk()
	if err != nil {
		s.log.Warn("sync rescan", "err", err)
		return
	}
	seen := map[string]bool{}
	s.mu.Lock()
	for _, e := range entries {
		seen[e.Path] = true
		if !same(e, s.known[e.Path]) {
			s.mark(e.Path)
		}
	}
	for p, e := range s.known {
		if !seen[p] && !isAbsent(e) {
			s.mark(p)
		}
	}
	s.mu.Unlock()
}

// due is when a dirty path is to be sent.
func (d *dirtyPath) due() time.Time {
	if d.force {
		return d.last
	}
	t := d.last.Add(quiet)
	if d.writing {
		t = d.last.Add(holdOpen)
	}
	if limit := d.first.Add(maxHold); t.After(limit) {
		t = limit
	}
	return t
}

// sendDirty sends the dirty paths that are due (all of them with all),
// folders and files before removals, parents first and removals children
// first, and answers when the next one is due.
func (s *Session) sendDirty(ctx context.Context, all bool) (time.Time, error) {
	now := time.Now()
	var due []string
	var next time.Time
	for p, d := range s.dirty {
		t := d.due()
		if all || !t.After(now) {
			due = append(due, p)
		} else if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	sort.Strings(due)
	type out struct {
		e, base *Entry
		d       *dirtyPath
	}
	var puts, removes []out
	for _, p := range due {
		d := s.dirty[p]
		delete(s.dirty, p)
		e, base, ok := s.decide(p, d)
		if !ok {
			continue
		}
		if isAbsent(e) {
			removes = append(removes, out{e, base, d})
		} else {
			puts = append(puts, out{e, base, d})
		}
	}
	for i := len(removes) - 1; i >= 0; i-- {
		puts = append(puts, removes[i])
	}
	for _, o := range puts {
		if err := s.put(ctx, o.e, o.base, o.d); err != nil {
			return next, err
		}
	}
	return next, nil
}

// decide answers whether p is to be sent, its entry now and the entry last
// synced, and records the entry as synced.
func (s *Session) decide(p string, d *dirtyPath) (e, base *Entry, ok bool) {
	if !s.host && s.readOnly {
		return nil, nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.tree.Stat(p)
	if err != nil {
		s.log.Warn("sync: cannot read", "path", p, "err", err)
		return nil, nil, false
	}
	base = s.known[p]
	if !d.force && same(e, base) {
		return nil, nil, false
	}
	s.setKnown(p, e)
	return e, base, true
}

// setKnown records e as p's synced version; a folder gone takes the
// versions below it along.
func (s *Session) setKnown(p string, e *Entry) {
	old := s.known[p]
	if isAbsent(e) {
		delete(s.known, p)
		if old != nil && old.Type == agentv1.SyncType_SYNC_DIR {
			for q := range s.known {
				if under(q, p) {
					delete(s.known, q)
				}
			}
		}
	} else {
		s.known[p] = e
	}
	s.changed = true
}

// put sends entry e (with its bytes for a file).
func (s *Session) put(ctx context.Context, e, base *Entry, d *dirtyPath) error {
	m := &agentv1.SyncMessage{Kind: agentv1.SyncKind_SYNC_PUT, Entry: e, Pulled: d.pulled}
	if !s.host {
		m.Base = base
	}
	if e.Type != agentv1.SyncType_SYNC_FILE {
		return s.send(ctx, m)
	}
	f, opened, err := s.tree.Open(e.Path)
	if err != nil || !same(opened, e) {
		s.mu.Lock()
		s.restoreKnown(e.Path, base)
		s.mu.Unlock()
		if err != nil && !notThere(err) {
			// Not readable (another user's file, on the host): not
			// synced, until it changes.
			s.log.Warn("sync: cannot read, not synced", "path", e.Path, "err", err)
			return nil
		}
		// Changed or gone since the stat: it is dirty again, and sent as
		// it is then, against the same base.
		s.mark(e.Path)
		return nil
	}
	defer f.Close()
	var sent int64
	first := true
	var aborted bool
	err = copyChunks(io.LimitReader(f, e.Size), chunkSize, func(b []byte, last bool) error {
		sent += int64(len(b))
		if last {
			now, err := fileEntry(f, e.Path)
			aborted = err != nil || !same(now, e) || sent != e.Size
		}
		var msg *agentv1.SyncMessage
		if first {
			msg, first = m, false
			msg.Data, msg.More = b, !last
			if aborted {
				// A file changed before its first chunk went: send it
				// as announced would be a lie; send nothing.
				return errSkip
			}
		} else {
			msg = &agentv1.SyncMessage{Kind: agentv1.SyncKind_SYNC_DATA, Data: b, More: !last, Abort: aborted}
		}
		return s.send(ctx, msg)
	})
	if errors.Is(err, errSkip) {
		err = nil
	}
	if err != nil && ctx.Err() != nil {
		return err
	}
	if err != nil || aborted {
		if err != nil {
			s.log.Warn("sync: read", "path", e.Path, "err", err)
			if !first {
				// The receiver waits for the file's last chunk.
				if err := s.send(ctx, &agentv1.SyncMessage{Kind: agentv1.SyncKind_SYNC_DATA, Abort: true}); err != nil {
					return err
				}
			}
		}
		s.mu.Lock()
		s.restoreKnown(e.Path, base)
		s.mu.Unlock()
		s.mark(e.Path) // sent again once it is quiet
	}
	return nil
}

var errSkip = errors.New("skip")

func (s *Session) restoreKnown(p string, base *Entry) {
	if base == nil {
		delete(s.known, p)
	} else {
		s.known[p] = base
	}
}

// readLoop handles what the other side sends, crediting it.
func (s *Session) readLoop(ctx context.Context) error {
	handled := 0
	for {
		m, err := s.conn.Recv()
		if err != nil {
			return err
		}
		if m.Kind == agentv1.SyncKind_SYNC_CREDIT {
			for i := uint32(0); i < m.Credit && i < window; i++ {
				select {
				case s.tokens <- struct{}{}:
				default:
				}
			}
			continue
		}
		if err := s.handle(ctx, m); err != nil {
			return err
		}
		if handled++; handled == creditEvery {
			handled = 0
			if err := s.send(ctx, &agentv1.SyncMessage{Kind: agentv1.SyncKind_SYNC_CREDIT, Credit: creditEvery}); err != nil {
				return err
			}
		}
	}
}

// handle acts on one message.
func (s *Session) handle(ctx context.Context, m *agentv1.SyncMessage) error {
	if s.in != nil || s.inSkip {
		if m.Kind != agentv1.SyncKind_SYNC_DATA {
			return fmt.Errorf("sync: %v in the middle of a file", m.Kind)
		}
		return s.receiveData(m.Data, m.More, m.Abort)
	}
	switch m.Kind {
	case agentv1.SyncKind_SYNC_PUT:
		if err := checkEntry(m.Entry); err != nil {
			return fmt.Errorf("sync: bad entry: %w", err)
		}
		if m.Base != nil {
			m.Base.Path = m.Entry.Path
		}
		if s.host {
			return s.hostPut(m)
		}
		return s.guestPut(m)
	case agentv1.SyncKind_SYNC_PULL:
		if s.host || checkPath(m.Path) != nil {
			return fmt.Errorf("sync: unexpected pull")
		}
		s.request(request{kind: reqPush, path: m.Path, pulled: true})
	case agentv1.SyncKind_SYNC_FLUSH:
		s.request(request{kind: reqFlush, seq: m.Seq})
	case agentv1.SyncKind_SYNC_FLUSHED:
		s.mu.Lock()
		if mark, ok := s.marks[m.Seq]; ok {
			delete(s.marks, m.Seq)
			if mark > s.confirmed.Load() {
				s.confirmed.Store(mark)
			}
		}
		if ch := s.flushes[m.Seq]; ch != nil {
			delete(s.flushes, m.Seq)
			close(ch)
		}
		s.mu.Unlock()
	case agentv1.SyncKind_SYNC_ERROR:
		s.log.Warn("sync: the other side could not apply a change", "path", m.Path, "err", m.Error)
		if s.host {
			s.mu.Lock()
			delete(s.known, m.Path) // the next session decides it afresh
			s.changed = true
			s.mu.Unlock()
		}
	case agentv1.SyncKind_SYNC_MANIFEST, agentv1.SyncKind_SYNC_MANIFEST_END:
		if !s.host {
			return fmt.Errorf("sync: unexpected manifest")
		}
		return s.manifest(m)
	case agentv1.SyncKind_SYNC_DATA:
		return fmt.Errorf("sync: data without a file")
	default:
		return fmt.Errorf("sync: unexpected message %v", m.Kind)
	}
	return nil
}

// hostPut applies a guest's change when the host's file and base are still
// the version the guest changed; otherwise it is a conflict: the guest's
// file is written beside the host's and the host's is sent again.
func (s *Session) hostPut(m *agentv1.SyncMessage) error {
	e := m.Entry
	s.mu.Lock()
	h, err := s.tree.Stat(e.Path)
	b := s.known[e.Path]
	pulled := s.pulls[e.Path]
	delete(s.pulls, e.Path)
	s.mu.Unlock()
	if err != nil {
		return s.skip(m, err)
	}
	if same(h, e) {
		s.mu.Lock()
		s.setKnown(e.Path, h)
		s.mu.Unlock()
		return s.skip(m, nil)
	}
	if same(h, b) && ((m.Pulled && pulled) || same(m.Base, b)) {
		return s.apply(m, e.Path, true, h)
	}
	s.request(request{kind: reqPush, path: e.Path})
	if e.Type != agentv1.SyncType_SYNC_FILE && e.Type != agentv1.SyncType_SYNC_SYMLINK {
		return s.skip(m, nil)
	}
	name, err := s.conflictName(e.Path)
	if err != nil {
		return s.skip(m, err)
	}
	s.log.Warn("sync: changed on both sides; the host's version is kept, the guest's is beside it", "path", e.Path, "guest_version", name)
	return s.apply(m, name, false, nil)
}

// conflictName answers a free name for the guest's version of p.
func (s *Session) conflictName(p string) (string, error) {
	for i := 1; i < 100; i++ {
		name := p + ConflictSuffix
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		e, err := s.tree.Stat(name)
		if err != nil {
			return "", err
		}
		if isAbsent(e) {
			return name, nil
		}
	}
	return "", fmt.Errorf("%s: too many conflict copies", p)
}

// guestPut applies the host's change, unless the guest holds an unsent
// change of that path: then that change goes to the host first (where it
// is a conflict) and the host sends its version again.
func (s *Session) guestPut(m *agentv1.SyncMessage) error {
	e := m.Entry
	s.mu.Lock()
	g, err := s.tree.Stat(e.Path)
	k := s.known[e.Path]
	s.mu.Unlock()
	if err != nil {
		return s.skip(m, err)
	}
	if !s.readOnly && !same(g, k) && !same(g, e) {
		s.request(request{kind: reqPush, path: e.Path})
		return s.skip(m, nil)
	}
	return s.apply(m, e.Path, true, g)
}

// errChangedMeanwhile stops a write whose target changed after the
// decision to write it.
var errChangedMeanwhile = errors.New("changed while the other side's version was received")

// apply writes entry m.Entry at p, recording it as synced when record.
// expect, when set, is what p was when the write was decided: if p is
// something else just before the rename, the write is dropped and the
// local version sent instead (on the guest, it then becomes the host's
// conflict copy).
func (s *Session) apply(m *agentv1.SyncMessage, p string, record bool, expect *Entry) error {
	e := cloneEntry(m.Entry)
	e.Path = p
	var recorded bool
	// before runs on the tree's thread (the owner's, on the host) with
	// s.mu held by the caller of locked: it must not take s.mu itself,
	// or it would wait for a sender that waits for the tree's thread.
	before := func(cur *Entry) error {
		if expect != nil && !same(cur, expect) && !same(cur, e) {
			return errChangedMeanwhile
		}
		if record {
			s.setKnown(p, e)
			recorded = true
		}
		return nil
	}
	// locked makes the write and its record one step for the sender,
	// which compares the tree with the record under s.mu.
	locked := func(write func() error) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		err := write()
		if err != nil && recorded {
			delete(s.known, p) // unknown: decided afresh
		}
		return err
	}
	after := func(err error) { s.written(p, err) }
	switch e.Type {
	case agentv1.SyncType_SYNC_FILE:
		in, err := s.tree.Create(e)
		if err != nil {
			after(err)
			return s.skip(m, nil)
		}
		s.in = in
		s.inAfter = func(err error) {
			if err == nil {
				err = locked(func() error { return in.Commit(before) })
			} else {
				in.Abort()
			}
			after(err)
		}
		return s.receiveData(m.Data, m.More, false)
	case agentv1.SyncType_SYNC_DIR:
		after(locked(func() error { return s.tree.Mkdir(e, before) }))
	case agentv1.SyncType_SYNC_SYMLINK:
		after(locked(func() error { return s.tree.Symlink(e, before) }))
	case agentv1.SyncType_SYNC_ABSENT:
		s.remove(p, e, record)
	}
	return nil
}

// written ends a write of p that failed with err, or did not (nil): one
// that lost to a change made meanwhile sends the local version instead;
// another failure is reported to the other side.
func (s *Session) written(p string, err error) {
	if errors.Is(err, errChangedMeanwhile) {
		if s.host {
			s.log.Warn("sync: changed on the host while the guest's version was received; the host's is kept", "path", p)
		}
		s.request(request{kind: reqPush, path: p})
		return
	}
	if err != nil {
		s.log.Warn("sync: cannot write", "path", p, "err", err)
		s.request(request{kind: reqError, path: p, text: err.Error()})
	}
}

// remove applies the other side's removal of p (e, of type absent),
// recording it as synced when record. Under s.mu throughout: what is kept
// (a file changed here since it was last synced) is decided from the
// versions synced before this removal, and sent back.
func (s *Session) remove(p string, e *Entry, record bool) {
	s.mu.Lock()
	prev := map[string]*Entry{}
	for q, k := range s.known {
		if under(q, p) {
			prev[q] = k
		}
	}
	kept, err := s.tree.Remove(p, func(cur *Entry) bool {
		return cur.Type != agentv1.SyncType_SYNC_DIR && !same(cur, prev[cur.Path])
	}, nil)
	if record {
		s.setKnown(p, e)
		for _, q := range kept {
			if k := prev[q]; k != nil {
				s.known[q] = k
			}
		}
	}
	s.mu.Unlock()
	s.written(p, err)
	for _, q := range kept {
		s.request(request{kind: reqPush, path: q})
	}
}

// skip drops the PUT m (and the rest of its file), after reporting err.
func (s *Session) skip(m *agentv1.SyncMessage, err error) error {
	if err != nil {
		s.log.Warn("sync: cannot apply", "path", m.Entry.GetPath(), "err", err)
	}
	if m.Kind == agentv1.SyncKind_SYNC_PUT && m.More {
		s.inSkip = true
	}
	return nil
}

// receiveData writes the next bytes of the file being received.
func (s *Session) receiveData(b []byte, more, abort bool) error {
	if s.inSkip {
		s.inSkip = more && !abort
		return nil
	}
	in := s.in
	var err error
	if abort {
		err = errAborted
	} else {
		_, err = in.Write(b) // on error the rest of the file is dropped
	}
	if err != nil || !more {
		s.in = nil
		s.inSkip = more && err != nil && !abort
		after := s.inAfter
		s.inAfter = nil
		if errors.Is(err, errAborted) {
			in.Abort()
			return nil
		}
		after(err)
	}
	return nil
}

var errAborted = errors.New("aborted by the sender")

// Flush returns once every change either side had seen when it was called
// has been applied on the other, or the session ended.
func (s *Session) Flush(ctx context.Context) error {
	return s.flush(ctx, reqFlush)
}

// FlushOut returns once every change seen on this side has reached the
// other: Flush's first half. When nothing this side sent is still
// unconfirmed it asks the other side nothing (an exec's start, after an
// idle spell, costs no round trip).
func (s *Session) FlushOut(ctx context.Context) error {
	return s.flush(ctx, reqFlushOut)
}

func (s *Session) flush(ctx context.Context, kind reqKind) error {
	s.mu.Lock()
	s.seq++
	seq := s.seq
	ch := make(chan struct{})
	s.flushes[seq] = ch
	s.mu.Unlock()
	s.request(request{kind: kind, seq: seq})
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
	}
	if err := s.Err(); err != nil {
		return err
	}
	select {
	case <-s.done:
		return fmt.Errorf("the workspace sync ended")
	default:
	}
	if s.host {
		s.save()
	}
	return nil
}

func cloneEntry(e *Entry) *Entry {
	return &Entry{Path: e.Path, Type: e.Type, Perm: e.Perm, Size: e.Size, MtimeNs: e.MtimeNs, Target: e.Target}
}

// setReady ends the first sync, with err if it failed.
func (s *Session) setReady(err error) {
	s.readyOnce.Do(func() {
		s.mu.Lock()
		s.readyErr = err
		s.mu.Unlock()
		close(s.ready)
	})
}
