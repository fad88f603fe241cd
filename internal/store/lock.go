package store

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Lock is an exclusive advisory lock on a file (flock). It is released when
// the process dies, so a killed paddock never leaves a sandbox locked.
type Lock struct{ f *os.File }

// ErrLocked is what LockFile returns, wrapped, when another process holds
// the lock.
var ErrLocked = errors.New("locked by another paddock process")

// LockFile takes an exclusive lock on path, creating it if needed. With
// wait false it fails at once when another process holds the lock.
func LockFile(path string, wait bool) (*Lock, error) {
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
	return &Lock{f: f}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() error { return l.f.Close() }
