package wsync

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Owner runs functions on one OS thread whose file-system uid and gid
// (and groups) are a folder owner's: files it makes are the owner's, and
// it reads and writes only what the owner may. The supervisor makes one
// while it still has its capabilities; the thread keeps the identity
// after they are dropped.
type Owner struct {
	calls chan func()
}

// NewOwner starts the thread. When the process is not root, the thread
// keeps the process's identity (which must then be the owner's).
func NewOwner(uid, gid uint32) (*Owner, error) {
	o := &Owner{calls: make(chan func())}
	started := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if unix.Geteuid() == 0 {
			if err := setFSIdentity(uid, gid); err != nil {
				started <- err
				return
			}
		}
		started <- nil
		for f := range o.calls {
			f()
		}
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return o, nil
}

// Do runs f on the owner's thread.
func (o *Owner) Do(f func() error) error {
	var err error
	done := make(chan struct{})
	o.calls <- func() { err = f(); close(done) }
	<-done
	return err
}

// Close ends the thread.
func (o *Owner) Close() { close(o.calls) }

// setFSIdentity sets the calling thread's groups (none), fsgid and fsuid.
// The kernel keeps each per thread; Go's syscall.Setgroups would change
// every thread, so SETGROUPS is called raw.
func setFSIdentity(uid, gid uint32) error {
	groups := []uint32{gid}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 1, uintptr(unsafe.Pointer(&groups[0])), 0); e != 0 {
		return fmt.Errorf("set the sync thread's groups: %w", e)
	}
	runtime.KeepAlive(groups)
	unix.Setfsgid(int(gid))
	if got, _ := unix.SetfsgidRetGid(-1); got != int(gid) {
		return fmt.Errorf("set the sync thread's file-system gid %d: still %d", gid, got)
	}
	unix.Setfsuid(int(uid))
	if got, _ := unix.SetfsuidRetUid(-1); got != int(uid) {
		return fmt.Errorf("set the sync thread's file-system uid %d: still %d", uid, got)
	}
	return nil
}
