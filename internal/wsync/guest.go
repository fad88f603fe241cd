package wsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// copyXattr holds, on the guest copy's folder, the id of the copy the
// host's record describes. It is in the trusted namespace: only the
// guest's root can set it.
const copyXattr = "trusted.paddock.sync"

// Guest serves the guest side of a Sync stream: it reads START, makes the
// copy's folder, sends its manifest, and syncs until the stream ends.
func Guest(ctx context.Context, conn Conn, log *slog.Logger) error {
	m, err := conn.Recv()
	if err != nil {
		return err
	}
	st := m.GetStart()
	if m.Kind != agentv1.SyncKind_SYNC_START || st == nil {
		return fmt.Errorf("sync: the stream must start with START")
	}
	dir := st.Path
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir || dir == "/" {
		return fmt.Errorf("sync: %q is not a clean absolute folder", dir)
	}
	if st.Remove {
		return removeCopy(dir)
	}
	if st.ReadOnly {
		// The copy is kept in a folder of its own and shown at dir
		// through a read-only bind mount: the guest's programs cannot
		// change it, the sync can.
		private := privateDir(dir)
		if err := makeCopyDir(private, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if err := bindReadOnly(private, dir, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		dir = private
	} else if err := makeCopyDir(dir, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	tree, err := OpenTree(dir)
	if err != nil {
		return err
	}
	defer tree.Close()
	tree.ChownTo(int(st.Uid), int(st.Gid))
	same := copyIs(dir, st.CopyId)
	w, err := watch(tree)
	if err != nil {
		return err
	}
	s := newSession(false, tree, conn, log)
	s.readOnly = st.ReadOnly
	s.w = w
	s.run(ctx, func() error { return s.sendManifest(ctx, same) })
	<-s.done
	return s.Err()
}

// makeCopyDir makes the copy's folder, owned by uid, and its parents,
// each searchable by everyone (a /root/project copy sits under the
// guest's /root, 0700).
func makeCopyDir(dir string, uid, gid int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("sync: %s is not a folder", dir)
	}
	if err := os.Lchown(dir, uid, gid); err != nil {
		return err
	}
	for p := filepath.Dir(dir); p != "/"; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o111 != 0o111 {
			os.Chmod(p, st.Mode().Perm()|0o111)
		}
	}
	return nil
}

// copyIs reports whether dir is the copy named id, and names it id from
// now on.
func copyIs(dir, id string) bool {
	buf := make([]byte, 128)
	n, err := unix.Lgetxattr(dir, copyXattr, buf)
	if err == nil && string(buf[:n]) == id {
		return true
	}
	unix.Lsetxattr(dir, copyXattr, []byte(id), 0)
	return false
}

// sendManifest sends every entry of the copy, recording each as synced.
func (s *Session) sendManifest(ctx context.Context, sameCopy bool) error {
	entries, skipped, err := s.tree.Walk()
	if err != nil {
		return err
	}
	for _, err := range skipped {
		s.log.Warn("sync: not readable", "err", err)
	}
	s.mu.Lock()
	for _, e := range entries {
		s.known[e.Path] = e
	}
	s.mu.Unlock()
	for len(entries) > 0 {
		n := min(len(entries), manifestMax)
		if err := s.send(ctx, &agentv1.SyncMessage{Kind: agentv1.SyncKind_SYNC_MANIFEST, Entries: entries[:n]}); err != nil {
			return err
		}
		entries = entries[n:]
	}
	return s.send(ctx, &agentv1.SyncMessage{Kind: agentv1.SyncKind_SYNC_MANIFEST_END, SameCopy: sameCopy})
}

// privateDir is where the copy shown read-only at dir is kept.
func privateDir(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return "/var/lib/paddock/sync/" + hex.EncodeToString(sum[:8])
}

// bindReadOnly shows private at dir, read-only, unless it is shown there.
func bindReadOnly(private, dir string, uid, gid int) error {
	if err := makeCopyDir(dir, uid, gid); err != nil {
		return err
	}
	var a, b unix.Stat_t
	if unix.Stat(private, &a) == nil && unix.Stat(dir, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino {
		return nil
	}
	if err := unix.Mount(private, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("sync: bind %s: %w", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
		return fmt.Errorf("sync: make %s read-only: %w", dir, err)
	}
	return nil
}

// removeCopy removes the copy at dir, if the sync made it: its read-only
// mount and private folder, or the folder itself.
func removeCopy(dir string) error {
	private := privateDir(dir)
	var a, b unix.Stat_t
	if unix.Stat(private, &a) == nil && unix.Stat(dir, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("sync: unmount %s: %w", dir, err)
		}
		os.Remove(dir) // made for the mount; left if something else is in it
		return os.RemoveAll(private)
	}
	buf := make([]byte, 128)
	if _, err := unix.Lgetxattr(dir, copyXattr, buf); err != nil {
		return nil // not a copy the sync made (or gone): left alone
	}
	return os.RemoveAll(dir)
}
