package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/wsync"
)

// A synced folder is the host side of internal/wsync: a host folder,
// pinned, read and written by a thread with its owner's file-system
// identity, and kept in step with a copy on the guest's disk (at the same
// path for the workspace; anywhere for a folder that mount add gave) by a
// session over the agent link while the link is up.
type folder struct {
	host, guest string
	readOnly    bool
	state       string // the sync record (wsync.HostOptions.StatePath)
	tree        *wsync.Tree

	mu      sync.Mutex
	session *wsync.Session // nil between sessions
	stopped bool           // no new session: the VM is being saved or stopped, or the folder removed
}

// firstSyncTimeout bounds the first sync of a start (the whole folder
// copied into a new sandbox).
const firstSyncTimeout = 30 * time.Minute

// owners are the threads with a folder owner's file-system identity, one
// per uid. A root supervisor makes them while it still has the
// capabilities to (openFolders); later, only these owners' folders can be
// added.
type owners struct {
	mu sync.Mutex
	by map[uint32]*wsync.Owner
}

func (o *owners) get(uid, gid uint32, canMake bool) (*wsync.Owner, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if w := o.by[uid]; w != nil {
		return w, nil
	}
	if !canMake {
		return nil, fmt.Errorf("it is owned by uid %d, and a running sandbox can only add folders owned by the workspace's owner or by paddock's user: stop the sandbox and start it again, or change the folder's owner", uid)
	}
	w, err := wsync.NewOwner(uid, gid)
	if err != nil {
		return nil, err
	}
	if o.by == nil {
		o.by = map[uint32]*wsync.Owner{}
	}
	o.by[uid] = w
	return w, nil
}

// openFolders pins the workspace and the added folders and starts their
// owners' threads, and one for paddock's own user; it runs while the
// supervisor still has its capabilities.
func (s *sup) openFolders() error {
	if _, err := s.owners.get(uint32(os.Geteuid()), uint32(os.Getegid()), true); err != nil {
		return err
	}
	if s.cfg.Workspace != "" {
		f, err := s.openFolder(store.Mount{Host: s.cfg.Workspace, Guest: s.cfg.Workspace}, s.layout.SyncState(), true)
		if err != nil {
			return err
		}
		s.folders = append(s.folders, f)
	}
	for _, m := range s.cfg.Mounts {
		f, err := s.openFolder(m, s.mountState(m.Guest), true)
		if err != nil {
			return fmt.Errorf("folder %s: %w", m.Host, err)
		}
		s.folders = append(s.folders, f)
	}
	return nil
}

// mountState is the sync record of the folder added at guest path g.
func (s *sup) mountState(g string) string {
	sum := sha256.Sum256([]byte(g))
	return s.layout.MountSyncState(hex.EncodeToString(sum[:8]))
}

func (s *sup) openFolder(m store.Mount, state string, canMake bool) (*folder, error) {
	f, err := openWorkspace(m.Host)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	owner, err := s.owners.get(st.Uid, st.Gid, canMake)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(fd)
	tree := wsync.NewTree(fd)
	tree.RunAs(owner.Do)
	return &folder{host: m.Host, guest: m.Guest, readOnly: m.ReadOnly, state: state, tree: tree}, nil
}

// startSync starts every folder's session and waits for their first
// syncs: every change made on either side while no session ran is then
// on the other.
func (s *sup) startSync(ctx context.Context) error {
	for _, f := range s.syncedFolders() {
		if err := s.startFolder(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

func (s *sup) syncedFolders() []*folder {
	s.foldersMu.Lock()
	defer s.foldersMu.Unlock()
	return append([]*folder(nil), s.folders...)
}

func (s *sup) startFolder(ctx context.Context, f *folder) error {
	f.mu.Lock()
	f.stopped = false
	f.mu.Unlock()
	sess, err := s.openSession(ctx, f)
	if err != nil {
		return err
	}
	t := time.NewTimer(firstSyncTimeout)
	defer t.Stop()
	select {
	case <-sess.Ready():
		if err := sess.ReadyErr(); err != nil {
			return fmt.Errorf("sync %s: %w", f.host, err)
		}
	case <-t.C:
		return fmt.Errorf("sync %s: not done after %s", f.host, firstSyncTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	go s.keepSyncing(f, sess)
	return nil
}

func (s *sup) openSession(ctx context.Context, f *folder) (*wsync.Session, error) {
	agent, err := s.link.agent(ctx)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	stream, err := agent.Sync(sctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("sync %s: %w", f.host, err)
	}
	sess, err := wsync.Host(sctx, stream, f.tree, wsync.HostOptions{
		GuestPath: f.guest, UID: s.cfg.User.UID, GID: s.cfg.User.GID, ReadOnly: f.readOnly,
		StatePath: f.state, Log: s.log.With("folder", f.host),
	})
	if err != nil {
		cancel()
		return nil, err
	}
	go func() { <-sess.Done(); cancel() }()
	f.mu.Lock()
	f.session = sess
	f.mu.Unlock()
	return sess, nil
}

// keepSyncing starts a new session when one ends by itself (the agent
// link broke), until the folder's sync is stopped.
func (s *sup) keepSyncing(f *folder, sess *wsync.Session) {
	for {
		<-sess.Done()
		f.mu.Lock()
		over := f.stopped || f.session != sess
		if !over {
			f.session = nil
		}
		f.mu.Unlock()
		if over {
			return
		}
		s.log.Warn("folder sync ended; starting again", "folder", f.host, "err", sess.Err())
		for {
			select {
			case <-s.qemu.Done():
				return
			case <-time.After(time.Second):
			}
			f.mu.Lock()
			stopped := f.stopped
			f.mu.Unlock()
			if stopped {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			next, err := s.openSession(ctx, f)
			cancel()
			if err == nil {
				sess = next
				break
			}
			s.log.Warn("folder sync", "folder", f.host, "err", err)
		}
	}
}

// flushWorkspace returns once every change of the synced folders seen on
// either side has been applied on the other.
func (s *sup) flushWorkspace(ctx context.Context) {
	for _, f := range s.syncedFolders() {
		f.flush(ctx, s, (*wsync.Session).Flush)
	}
}

// flushWorkspaceOut returns once every change of the synced folders seen
// on the host is in the guest (before an exec starts).
func (s *sup) flushWorkspaceOut(ctx context.Context) {
	for _, f := range s.syncedFolders() {
		f.flush(ctx, s, (*wsync.Session).FlushOut)
	}
}

func (f *folder) flush(ctx context.Context, s *sup, flush func(*wsync.Session, context.Context) error) {
	f.mu.Lock()
	sess := f.session
	f.mu.Unlock()
	if sess == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := flush(sess, ctx); err != nil {
		s.log.Warn("folder sync flush", "folder", f.host, "err", err)
	}
}

// stop flushes and ends the folder's session.
func (f *folder) stop(ctx context.Context, s *sup) {
	f.flush(ctx, s, (*wsync.Session).Flush)
	f.mu.Lock()
	sess := f.session
	f.session, f.stopped = nil, true
	f.mu.Unlock()
	if sess != nil {
		sess.Close()
	}
}

// stopSync flushes and ends every session: before the VM is saved (no
// host session may be open then) or stopped.
func (s *sup) stopSync(ctx context.Context) {
	for _, f := range s.syncedFolders() {
		f.stop(ctx, s)
	}
}

// copySyncState gives a fork on its parent's workspace the parent's sync
// record as of the checkpoint, so its first sync knows which side changed.
func copySyncState(from, to string) error {
	b, err := os.ReadFile(from)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}
