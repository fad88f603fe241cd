package wsync

import (
	"fmt"
	"path"
	"strings"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// Entry is one path's version: its type, permission bits, and for a file
// its size and modification time, for a symlink its target.
type Entry = agentv1.SyncEntry

// tempPrefix starts the names of files being written; watchers and walks
// skip them.
const tempPrefix = ".paddock-sync-"

// ConflictSuffix is added to a file's name for the guest's version of a
// file both sides changed.
const ConflictSuffix = ".paddock-conflict"

// conflictType marks a base entry that no real entry equals: the next PUT
// from the guest for that path is a conflict.
const conflictType = agentv1.SyncType(-1)

// absent is the entry of a path that is not there.
func absent(p string) *Entry { return &Entry{Path: p, Type: agentv1.SyncType_SYNC_ABSENT} }

// isAbsent reports whether e names nothing.
func isAbsent(e *Entry) bool { return e == nil || e.Type == agentv1.SyncType_SYNC_ABSENT }

// same reports whether a and b are the same version of a path. A folder's
// time and size are not compared: they change with its contents.
func same(a, b *Entry) bool {
	if isAbsent(a) || isAbsent(b) {
		return isAbsent(a) && isAbsent(b)
	}
	if a.Type != b.Type || a.Perm != b.Perm {
		return false
	}
	switch a.Type {
	case agentv1.SyncType_SYNC_FILE:
		return a.Size == b.Size && a.MtimeNs == b.MtimeNs
	case agentv1.SyncType_SYNC_SYMLINK:
		return a.Target == b.Target
	}
	return true
}

// checkPath refuses a path that is not a clean relative path below the
// folder: the guest's messages are not trusted.
func checkPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case len(p) > 4096:
		return fmt.Errorf("path too long")
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("path %q has a NUL byte", p)
	case path.IsAbs(p), path.Clean(p) != p, p == "..", strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q is not a clean relative path", p)
	}
	return nil
}

// checkEntry refuses an entry a side would not make.
func checkEntry(e *Entry) error {
	if e == nil {
		return fmt.Errorf("no entry")
	}
	if err := checkPath(e.Path); err != nil {
		return err
	}
	switch e.Type {
	case agentv1.SyncType_SYNC_ABSENT, agentv1.SyncType_SYNC_DIR:
	case agentv1.SyncType_SYNC_FILE:
		if e.Size < 0 {
			return fmt.Errorf("%s: negative size", e.Path)
		}
	case agentv1.SyncType_SYNC_SYMLINK:
		if e.Target == "" || len(e.Target) > 4096 || strings.ContainsRune(e.Target, 0) {
			return fmt.Errorf("%s: bad symlink target", e.Path)
		}
	default:
		return fmt.Errorf("%s: unknown type %d", e.Path, e.Type)
	}
	if e.Perm&^0o777 != 0 {
		return fmt.Errorf("%s: permission bits %o beyond 0777", e.Path, e.Perm)
	}
	return nil
}

// under reports whether p is dir or below it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// isTemp reports whether the last element of p is a file being written.
func isTemp(p string) bool { return strings.HasPrefix(path.Base(p), tempPrefix) }
