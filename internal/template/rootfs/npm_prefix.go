package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// installPrefix copies the folder src of the tree at root (a staging npm
// prefix that the build jail wrote) into dst of the same tree (npmPrefix),
// as the builder's (root's) files. Every destination is reached with
// openat2(RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS), so no symlink, the
// packages' or the tree's, leads a write elsewhere; symlinks are copied as
// symlinks, hard links as separate files. Modes keep their permission bits
// only (no setuid, setgid or sticky bit), and device nodes, FIFOs and
// sockets are refused. An existing file or symlink at a destination is
// replaced; an existing folder is kept; a folder is never put in place
// of a file or symlink.
//
// The source is not guarded against changes while it is read: every
// process that could write it died with the jail's PID namespace.
func installPrefix(root, src, dst string) error {
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootFD)
	srcAbs := filepath.Join(root, src)
	return filepath.WalkDir(srcAbs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(srcAbs, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if err := copyEntry(rootFD, p, target, fi); err != nil {
			return fmt.Errorf("install /%s: %w", target, err)
		}
		return nil
	})
}

// copyEntry makes target (relative to the tree rootFD) a copy of the
// entry at host path p, whose lstat is fi.
func copyEntry(rootFD int, p, target string, fi fs.FileInfo) error {
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	dir, err := unix.Openat2(rootFD, filepath.Dir(target), how)
	if err != nil {
		return fmt.Errorf("open its folder: %w", err)
	}
	defer unix.Close(dir)
	base := filepath.Base(target)
	perm := uint32(fi.Mode().Perm())
	var old unix.Stat_t
	exists := unix.Fstatat(dir, base, &old, unix.AT_SYMLINK_NOFOLLOW) == nil
	oldIsDir := exists && old.Mode&unix.S_IFMT == unix.S_IFDIR
	if fi.IsDir() {
		if exists && !oldIsDir {
			return errors.New("a file or symlink is there already")
		}
		if !exists {
			if err := unix.Mkdirat(dir, base, perm); err != nil {
				return err
			}
		}
		return unix.Fchmodat(dir, base, perm, 0)
	}
	if oldIsDir {
		return errors.New("a folder is there already")
	}
	if exists {
		if err := unix.Unlinkat(dir, base, 0); err != nil {
			return err
		}
	}
	switch fi.Mode().Type() {
	case fs.ModeSymlink:
		link, err := os.Readlink(p)
		if err != nil {
			return err
		}
		return unix.Symlinkat(link, dir, base)
	case 0:
		return copyFileAt(p, dir, base, perm)
	default:
		return fmt.Errorf("a %s from an npm package: refused (only files, folders and symlinks are installed)", fi.Mode().Type())
	}
}

// copyFileAt copies the regular file at host path p to a new file base
// in the folder dir, with mode perm.
func copyFileAt(p string, dir int, base string, perm uint32) error {
	in, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	fd, err := unix.Openat(dir, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return err
	}
	out := os.NewFile(uintptr(fd), base)
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Chmod(fs.FileMode(perm)) // the umask took bits off
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
