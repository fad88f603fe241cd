package store

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Lock is an exclusive advisory lock on a file (flock). It is released when
// the process dies, so a killed paddock never leaves a sandbox locked.
type Lock struct {
	f    *os.File
	path string
}

// ErrLocked is what LockFile returns, wrapped, when another process holds
// the lock.
var ErrLocked = errors.New("locked by another paddock process")

// LockFile takes an exclusive lock on path, creating it if needed. With
// wait false it fails at once when another process holds the lock. A lock
// whose file was removed (Remove) while this one waited is taken again on
// the file now at path.
func LockFile(path string, wait bool) (*Lock, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, err
		}
		how := unix.LOCK_EX
		if !wait {
			how |= unix.LOCK_NB
		}
		if err := unix.Flock(int(f.Fd()), how); err != nil {
			f.Close()
			if err == unix.EWOULDBLOCK {
				return nil, fmt.Errorf("%s is %w", path, ErrLocked)
			}
			return nil, err
		}
		if samePath(f, path) {
			return &Lock{f: f, path: path}, nil
		}
		f.Close()
	}
}

// samePath reports whether f is still the file at path.
func samePath(f *os.File, path string) bool {
	held, err := f.Stat()
	if err != nil {
		return false
	}
	now, err := os.Stat(path)
	return err == nil && os.SameFile(held, now)
}

// Unlock releases the lock.
func (l *Lock) Unlock() error { return l.f.Close() }

// Remove removes the lock's file and releases the lock: for a lock whose
// object is gone (a removed template). Whoever waited on it takes a new
// file's lock (LockFile).
func (l *Lock) Remove() error {
	err := os.Remove(l.path)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}
