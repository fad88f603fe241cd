package supervisor

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/paddock-dev/paddock/internal/wsync"
)

// workspace is the host side of the workspace sync (internal/wsync): the
// workspace folder, pinned, and the thread that reads and writes it as
// its owner. The copy in the guest is a folder on the guest's disk at the
// same path; a session keeps the two in step while the agent link is up.
type workspace struct {
	tree  *wsync.Tree
	owner *wsync.Owner

	mu      sync.Mutex
	session *wsync.Session // nil between sessions
	stopped bool           // no new session: the VM is being saved or stopped
}

// firstSyncTimeout bounds the first sync of a start (the whole workspace
// copied into a new sandbox).
const firstSyncTimeout = 30 * time.Minute

// openWorkspaceSync pins the workspace and starts its owner's thread; it
// runs while the supervisor still has the capabilities to take the
// owner's file-system identity.
func (s *sup) openWorkspaceSync() error {
	if s.cfg.Workspace == "" {
		return nil
	}
	f, err := openWorkspace(s.cfg.Workspace)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return err
	}
	owner, err := wsync.NewOwner(st.Uid, st.Gid)
	if err != nil {
		f.Close()
		return err
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		owner.Close()
		return err
	}
	unix.CloseOnExec(fd)
	tree := wsync.NewTree(fd)
	tree.RunAs(owner.Do)
	s.ws = &workspace{tree: tree, owner: owner}
	return nil
}

// startSync opens a sync session over the agent link and waits for its
// first sync: every change made on either side while no session ran is
// then on the other.
func (s *sup) startSync(ctx context.Context) error {
	w := s.ws
	if w == nil {
		return nil
	}
	w.mu.Lock()
	w.stopped = false
	w.mu.Unlock()
	sess, err := s.openSession(ctx)
	if err != nil {
		return err
	}
	t := time.NewTimer(firstSyncTimeout)
	defer t.Stop()
	select {
	case <-sess.Ready():
		if err := sess.ReadyErr(); err != nil {
			return fmt.Errorf("sync the workspace: %w", err)
		}
	case <-t.C:
		return fmt.Errorf("sync the workspace: not done after %s", firstSyncTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	go s.keepSyncing(sess)
	return nil
}

func (s *sup) openSession(ctx context.Context) (*wsync.Session, error) {
	w := s.ws
	agent, err := s.link.agent(ctx)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	stream, err := agent.Sync(sctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("sync the workspace: %w", err)
	}
	sess, err := wsync.Host(sctx, stream, w.tree, wsync.HostOptions{
		GuestPath: s.cfg.Workspace, UID: s.cfg.User.UID, GID: s.cfg.User.GID,
		StatePath: s.layout.SyncState(), Log: s.log.With("workspace", s.cfg.Workspace),
	})
	if err != nil {
		cancel()
		return nil, err
	}
	go func() { <-sess.Done(); cancel() }()
	w.mu.Lock()
	w.session = sess
	w.mu.Unlock()
	return sess, nil
}

// keepSyncing starts a new session when one ends by itself (the agent
// link broke), until the sync is stopped.
func (s *sup) keepSyncing(sess *wsync.Session) {
	w := s.ws
	for {
		<-sess.Done()
		w.mu.Lock()
		stopped := w.stopped || w.session != sess
		if !stopped {
			w.session = nil
		}
		w.mu.Unlock()
		if stopped {
			return
		}
		s.log.Warn("workspace sync ended; starting again", "err", sess.Err())
		for {
			time.Sleep(time.Second)
			select {
			case <-s.qemu.Done():
				return
			default:
			}
			w.mu.Lock()
			stopped := w.stopped
			w.mu.Unlock()
			if stopped {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			next, err := s.openSession(ctx)
			cancel()
			if err == nil {
				sess = next
				break
			}
			s.log.Warn("workspace sync", "err", err)
		}
	}
}

// flushWorkspace returns once every change of the workspace seen on
// either side has been applied on the other (no-op without a session).
func (s *sup) flushWorkspace(ctx context.Context) {
	if s.ws == nil {
		return
	}
	s.ws.mu.Lock()
	sess := s.ws.session
	s.ws.mu.Unlock()
	if sess == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := sess.Flush(ctx); err != nil {
		s.log.Warn("workspace sync flush", "err", err)
	}
}

// stopSync flushes and ends the session: before the VM is saved (no host
// session may be open then) or stopped.
func (s *sup) stopSync(ctx context.Context) {
	if s.ws == nil {
		return
	}
	s.flushWorkspace(ctx)
	s.ws.mu.Lock()
	sess := s.ws.session
	s.ws.session, s.ws.stopped = nil, true
	s.ws.mu.Unlock()
	if sess != nil {
		sess.Close()
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
