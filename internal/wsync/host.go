package wsync

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sort"

	"google.golang.org/protobuf/proto"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// HostOptions says what the host side syncs, with whom and where.
type HostOptions struct {
	GuestPath string // the copy's absolute path in the guest
	UID, GID  uint32 // the guest user that owns the copy
	ReadOnly  bool   // the guest's changes are not written on the host
	StatePath string // where the last synced versions are kept (0600)
	Log       *slog.Logger
}

// Host starts the host side of a Sync stream on conn for tree: it sends
// START, and the first sync runs at once. Ready says when it is done.
func Host(ctx context.Context, conn Conn, tree *Tree, opts HostOptions) (*Session, error) {
	s := newSession(true, tree, conn, opts.Log)
	s.readOnly = opts.ReadOnly
	s.statePath = opts.StatePath
	s.load()
	w, err := watch(tree)
	if err != nil {
		return nil, err
	}
	s.w = w
	if err := w.unwatched(); err != nil {
		s.log.Warn("sync: some host folders are not watched; they are rescanned every 2s", "err", err)
	}
	start := &agentv1.SyncMessage{Kind: agentv1.SyncKind_SYNC_START, Start: &agentv1.SyncStart{
		Path: opts.GuestPath, Uid: opts.UID, Gid: opts.GID, ReadOnly: opts.ReadOnly, CopyId: s.copyID,
	}}
	s.run(ctx, func() error { return s.send(ctx, start) })
	return s, nil
}

// Ready is closed when the first sync is done (or the session ended).
func (s *Session) Ready() <-chan struct{} { return s.ready }

// ReadyErr is why the first sync failed, once Ready is closed.
func (s *Session) ReadyErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyErr
}

// load reads the last synced versions, or starts a new copy id.
func (s *Session) load() {
	b, err := os.ReadFile(s.statePath)
	var m agentv1.SyncMessage
	if err == nil && proto.Unmarshal(b, &m) == nil && m.Start.GetCopyId() != "" {
		s.copyID = m.Start.CopyId
		for _, e := range m.Entries {
			if checkEntry(e) == nil {
				s.known[e.Path] = e
			}
		}
		return
	}
	id := make([]byte, 16)
	rand.Read(id)
	s.copyID = hex.EncodeToString(id)
}

// save writes the last synced versions if they changed.
func (s *Session) save() {
	if s.statePath == "" {
		return
	}
	s.mu.Lock()
	if !s.changed {
		s.mu.Unlock()
		return
	}
	m := &agentv1.SyncMessage{Start: &agentv1.SyncStart{CopyId: s.copyID}}
	for _, e := range s.known {
		if e.Type != conflictType {
			m.Entries = append(m.Entries, e)
		}
	}
	s.changed = false
	s.mu.Unlock()
	b, err := proto.Marshal(m)
	if err == nil {
		err = writeFileAtomic(s.statePath, b)
	}
	if err != nil {
		s.log.Warn("sync: save state", "err", err)
	}
}

func writeFileAtomic(name string, b []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// manifest collects the guest's entries; at the end the first sync is
// decided.
func (s *Session) manifest(m *agentv1.SyncMessage) error {
	if s.guestEntries == nil {
		s.guestEntries = map[string]*Entry{}
	}
	for _, e := range m.Entries {
		if err := checkEntry(e); err != nil {
			return fmt.Errorf("sync: bad manifest entry: %w", err)
		}
		s.guestEntries[e.Path] = e
	}
	if m.Kind == agentv1.SyncKind_SYNC_MANIFEST_END {
		guest := s.guestEntries
		s.guestEntries = nil
		return s.reconcile(guest, m.SameCopy)
	}
	return nil
}

// reconcile decides each path from the host's, the guest's and the last
// synced versions, and asks for a flush whose answer makes the session
// ready. A guest copy the record is not of (a new sandbox, one reset, a
// folder that was there before) is made the host's.
func (s *Session) reconcile(guest map[string]*Entry, sameCopy bool) error {
	entries, skipped, err := s.tree.Walk()
	if err != nil {
		return fmt.Errorf("read the workspace: %w", err)
	}
	for _, err := range skipped {
		s.log.Warn("sync: not readable by the workspace's owner, not synced", "err", err)
	}
	hostEntries := make(map[string]*Entry, len(entries))
	for _, e := range entries {
		hostEntries[e.Path] = e
	}
	s.mu.Lock()
	if !sameCopy {
		s.known = map[string]*Entry{}
	}
	paths := map[string]bool{}
	for _, set := range []map[string]*Entry{hostEntries, guest, s.known} {
		for p := range set {
			paths[p] = true
		}
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	var pushes, pulls []string
	for _, p := range sorted {
		h, g, b := hostEntries[p], guest[p], s.known[p]
		switch {
		case same(h, g):
			s.setKnown(p, orAbsent(h, p))
		case s.readOnly, !sameCopy, same(g, b), h != nil && g != nil && h.Type == agentv1.SyncType_SYNC_DIR && g.Type == agentv1.SyncType_SYNC_DIR:
			pushes = append(pushes, p)
		case same(h, b), isAbsent(h):
			s.setKnown(p, orAbsent(h, p))
			s.pulls[p] = true
			pulls = append(pulls, p)
		default:
			s.known[p] = &Entry{Path: p, Type: conflictType}
			pulls = append(pulls, p)
		}
	}
	s.changed = true
	s.mu.Unlock()
	for _, p := range pulls {
		s.request(request{kind: reqPull, path: p})
	}
	for _, p := range pushes {
		s.request(request{kind: reqPush, path: p})
	}
	go func() { s.setReady(s.Flush(context.Background())) }()
	return nil
}

func orAbsent(e *Entry, p string) *Entry {
	if e == nil {
		return absent(p)
	}
	return e
}
