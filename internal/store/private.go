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

// Secure makes the home (0700) if it is missing, and once per home
// (PrivateMark) takes the group and other permissions off every folder
// and file in it: a home, a template or a cache entry made by a paddock
// that left them open, or opened by hand, is tightened, and notice gets
// one line saying so. A home that others could enter is swept again even
// when it has the mark. Root filesystems being built (rootfsInProgress)
// keep their modes; the home's own mode keeps others out of them.
func (h Home) Secure(notice io.Writer) error {
	if err := os.MkdirAll(string(h), 0o700); err != nil {
		return fmt.Errorf("PADDOCK_HOME %s: %w", h, err)
	}
	st, err := os.Stat(string(h))
	if err != nil {
		return fmt.Errorf("PADDOCK_HOME %s: %w", h, err)
	}
	_, marked := os.Stat(h.PrivateMark())
	if st.Mode().Perm()&0o077 == 0 && marked == nil {
		return nil
	}
	n, err := MakePrivate(string(h), h.rootfsInProgress)
	if err != nil {
		return fmt.Errorf("make PADDOCK_HOME %s private: %w", h, err)
	}
	if err := os.WriteFile(h.PrivateMark(), nil, 0o600); err != nil {
		return fmt.Errorf("PADDOCK_HOME %s: %w", h, err)
	}
	switch {
	case n == 1:
		fmt.Fprintf(notice, "paddock: a folder or file in %s was open to other users; it is now its owner's only\n", h)
	case n > 1:
		fmt.Fprintf(notice, "paddock: %d folders and files in %s were open to other users; they are now its owner's only\n", n, h)
	}
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
// everything in it, keeping set-id and sticky bits, and says how many
// it changed; symlinks are not followed, and folders for which skip (if
// not nil) is true are left as they are, with what they hold.
func MakePrivate(dir string, skip func(path string) bool) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
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
		mode := info.Mode()
		if mode.Perm()&0o077 == 0 {
			return nil
		}
		n++
		return os.Chmod(p, mode.Perm()&^0o077|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
	})
	return n, err
}
