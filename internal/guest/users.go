package guest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Users reads and edits the account files under Root ("/" in the guest, a
// temporary directory in tests). The guest may be busybox only, so there is
// no useradd and no NSS: the files are parsed here.
type Users struct {
	Root string
}

func (u Users) path(p string) string { return filepath.Join(u.Root, p) }

// Identity is everything an exec needs to know about its user.
type Identity struct {
	Name   string
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups, from /etc/group
	Home   string
	Shell  string
}

// errNoUser is returned by Lookup for a name that is not in /etc/passwd.
var errNoUser = errors.New("no such user")

// Lookup finds a user by name or numeric uid in /etc/passwd. A numeric uid
// without an entry is allowed (as with docker exec -u 1234): its gid is the
// uid, its home /.
func (u Users) Lookup(nameOrUID string) (Identity, error) {
	b, err := os.ReadFile(u.path("/etc/passwd"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Identity{}, fmt.Errorf("look up user %q: %w", nameOrUID, err)
	}
	uid, numErr := strconv.ParseUint(nameOrUID, 10, 32)
	var id Identity
	found := false
	for _, e := range ParsePasswd(b) {
		if e.Name == nameOrUID || (numErr == nil && e.UID == uint32(uid)) {
			id = Identity{Name: e.Name, UID: e.UID, GID: e.GID, Home: e.Home, Shell: e.Shell}
			found = true
			break
		}
	}
	if !found {
		if numErr != nil {
			return Identity{}, fmt.Errorf("user %q: %w in %s", nameOrUID, errNoUser, "/etc/passwd")
		}
		id = Identity{Name: nameOrUID, UID: uint32(uid), GID: uint32(uid), Home: "/"}
	}
	if id.Home == "" {
		id.Home = "/"
	}
	if id.Shell == "" {
		id.Shell = "/bin/sh"
	}
	gb, err := os.ReadFile(u.path("/etc/group"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Identity{}, fmt.Errorf("look up groups of %q: %w", id.Name, err)
	}
	id.Groups = []uint32{id.GID}
	for _, g := range ParseGroup(gb) {
		for _, m := range g.Members {
			if m == id.Name && g.GID != id.GID {
				id.Groups = append(id.Groups, g.GID)
			}
		}
	}
	return id, nil
}

// Exists reports whether name has an /etc/passwd entry.
func (u Users) Exists(name string) bool {
	b, err := os.ReadFile(u.path("/etc/passwd"))
	if err != nil {
		return false
	}
	for _, e := range ParsePasswd(b) {
		if e.Name == name {
			return true
		}
	}
	return false
}

// Ensure makes the account files describe name with uid, gid and home:
// the group and the user are created if missing or changed if they differ,
// other lines stay as they are. The home directory is created and owned by
// the user. If /etc/sudoers.d exists the user gets password-less sudo.
func (u Users) Ensure(name string, uid, gid uint32, home string) error {
	if name == "" {
		return errors.New("user has no name")
	}
	if home == "" {
		home = "/home/" + name
	}
	if !filepath.IsAbs(home) {
		return fmt.Errorf("user %s: home %q is not an absolute path", name, home)
	}
	shell := "/bin/sh"
	if _, err := os.Stat(u.path("/bin/bash")); err == nil {
		shell = "/bin/bash"
	}
	if err := u.edit("/etc/group", func(b []byte) ([]byte, bool) { return EnsureGroup(b, name, gid) }); err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	if err := u.edit("/etc/passwd", func(b []byte) ([]byte, bool) {
		// Keep the user's shell if it has one.
		for _, e := range ParsePasswd(b) {
			if e.Name == name && e.Shell != "" {
				shell = e.Shell
			}
		}
		return EnsurePasswd(b, PasswdEntry{Name: name, UID: uid, GID: gid, Home: home, Shell: shell})
	}); err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	if _, err := os.Stat(u.path("/etc/shadow")); err == nil {
		if err := u.edit("/etc/shadow", func(b []byte) ([]byte, bool) { return EnsureShadow(b, name, time.Now()) }); err != nil {
			return fmt.Errorf("user %s: %w", name, err)
		}
	}
	h := u.path(home)
	if _, err := os.Stat(h); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(h, 0o755); err != nil {
			return fmt.Errorf("user %s: create home: %w", name, err)
		}
		if err := os.Chmod(h, 0o750); err != nil {
			return fmt.Errorf("user %s: create home: %w", name, err)
		}
	}
	if err := os.Lchown(h, int(uid), int(gid)); err != nil {
		return fmt.Errorf("user %s: chown home: %w", name, err)
	}
	if fi, err := os.Stat(u.path("/etc/sudoers.d")); err == nil && fi.IsDir() {
		line := []byte(name + " ALL=(ALL) NOPASSWD:ALL\n")
		if err := writeFileAtomic(u.path("/etc/sudoers.d/paddock-agent"), line, 0o440); err != nil {
			return fmt.Errorf("user %s: sudo: %w", name, err)
		}
	}
	return nil
}

// edit rewrites one account file through fn.
func (u Users) edit(rel string, fn func([]byte) ([]byte, bool)) error {
	return editFile(u.path(rel), fn)
}

// editFile rewrites a file through fn, atomically, keeping its mode; a file
// that does not exist starts empty with mode 0644.
func editFile(p string, fn func([]byte) ([]byte, bool)) error {
	perm := os.FileMode(0o644)
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if fi, err := os.Stat(p); err == nil {
		perm = fi.Mode().Perm()
	}
	out, changed := fn(b)
	if !changed {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(p, out, perm)
}
