package store

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Mask is the umask of every paddock process: what paddock writes under
// PADDOCK_HOME is its owner's alone (folders 0700, files 0600), created
// so, never loosened and then fixed.
const Mask = 0o077

// Secure makes the home (0700) if it is missing. A home that others could
// enter (made by an older paddock or by hand) is tightened, and notice
// gets one line saying so: every folder and file in it loses its group
// and other permissions. Root filesystems being built (rootfsInProgress)
// keep their modes; the home's own mode keeps others out of them.
func (h Home) Secure(notice io.Writer) error {
	if err := os.MkdirAll(string(h), 0o700); err != nil {
		return fmt.Errorf("PADDOCK_HOME %s: %w", h, err)
	}
	st, err := os.Stat(string(h))
	if err != nil {
		return fmt.Errorf("PADDOCK_HOME %s: %w", h, err)
	}
	if st.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := MakePrivate(string(h), h.rootfsInProgress); err != nil {
		return fmt.Errorf("make PADDOCK_HOME %s private: %w", h, err)
	}
	fmt.Fprintf(notice, "paddock: %s was open to other users (mode %04o); it and everything in it are now its owner's only\n", h, st.Mode().Perm())
	return nil
}

// rootfsInProgress reports whether p is a root filesystem that a template
// build or import is assembling, whose modes are the guest's: the staging
// or debootstrap-work-* folder of a build folder templates/.NAME.build-*
// (TemplateBuildPattern).
func (h Home) rootfsInProgress(p string) bool {
	build := filepath.Dir(p)
	if filepath.Dir(build) != h.TemplatesDir() {
		return false
	}
	if ok, _ := filepath.Match(TemplateBuildPattern("*"), filepath.Base(build)); !ok {
		return false
	}
	if p == (TemplateLayout{Dir: build}).Staging() {
		return true
	}
	ok, _ := filepath.Match(DebootstrapWorkPattern, filepath.Base(p))
	return ok
}

// MakePrivate takes the group and other permissions off dir and
// everything in it, keeping set-id and sticky bits; symlinks are not
// followed, and folders for which skip (if not nil) is true are left as
// they are, with what they hold.
func MakePrivate(dir string, skip func(path string) bool) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		if d.IsDir() && p != dir && skip != nil && skip(p) {
			return fs.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if mode := info.Mode(); mode.Perm()&0o077 != 0 {
			return os.Chmod(p, mode.Perm()&^0o077|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		}
		return nil
	})
}
