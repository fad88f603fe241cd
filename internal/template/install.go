package template

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/paddock-dev/paddock/internal/store"
	"golang.org/x/sys/unix"
)

// Lock takes the lock that serialises builds and imports of template
// name, waiting (and saying so) while another holds it.
func Lock(h store.Home, name string, st *Steps) (*store.Lock, error) {
	if err := os.MkdirAll(h.TemplatesDir(), 0o700); err != nil {
		return nil, err
	}
	lock, err := store.LockFile(h.TemplateLock(name), false)
	if err == nil {
		return lock, nil
	}
	st.Note("waiting for another build of %s", name)
	if lock, err = store.LockFile(h.TemplateLock(name), true); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	return lock, nil
}

// Assemble makes template name: fill writes it into out, a fresh temporary
// directory under templates/, which then replaces the old template (see
// install). What crashed builds left is removed first; the temporary
// directory is removed whatever happens. The caller holds Lock.
func Assemble(h store.Home, name string, fill func(out store.TemplateLayout) error) error {
	removeLeftovers(h, name)
	tmp, err := os.MkdirTemp(h.TemplatesDir(), store.TemplateBuildPattern(name))
	if err != nil {
		return err
	}
	defer RemoveTree(tmp) // after a successful swap it holds the old template, or nothing
	if err := fill(store.TemplateLayout{Dir: tmp}); err != nil {
		return err
	}
	return install(tmp, h.Template(name).Dir)
}

// install moves the finished build at tmp to dst. An existing template is
// swapped out atomically (renameat2 RENAME_EXCHANGE) and left at tmp for the
// caller to remove; where the filesystem cannot exchange, it is moved aside
// first.
func install(tmp, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.ENOENT) {
		err = os.Rename(tmp, dst)
	} else if err != nil {
		old, merr := os.MkdirTemp(filepath.Dir(dst), store.TemplateOldPattern(filepath.Base(dst)))
		if merr != nil {
			return merr
		}
		if err := os.Rename(dst, filepath.Join(old, "t")); err != nil {
			return err
		}
		err = os.Rename(tmp, dst)
		defer os.RemoveAll(old)
	}
	if err != nil {
		return err
	}
	return SyncFS(filepath.Dir(dst))
}

// removeLeftovers removes what crashed builds of name left behind. Called
// with the build lock held, so no other build of name is running.
func removeLeftovers(h store.Home, name string) {
	for _, pat := range []string{store.TemplateBuildPattern(name), store.TemplateOldPattern(name)} {
		matches, _ := filepath.Glob(filepath.Join(h.TemplatesDir(), pat))
		for _, m := range matches {
			RemoveTree(m)
		}
	}
}

// SyncFS flushes the filesystem holding dir (the image and the hard-linked
// kernel included).
func SyncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
