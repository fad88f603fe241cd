package supervisor

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dropCapabilities empties the supervisor's capability sets, on every
// thread, once its VM runs: what it does from then on (serving the CLI,
// the guest link, the network, logs, checkpoints of its own files) needs
// none, and a supervisor that the guest's traffic compromised gets no
// more than root's file ownership. Making the idmapped mounts QEMU starts
// with (vmview.go) is what needed them. Its QEMU, in a user namespace that
// the supervisor's uid owns, can still be signalled. A no-op unless root.
func dropCapabilities() error {
	if os.Geteuid() != 0 {
		return nil
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	_, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	if errno != 0 {
		return fmt.Errorf("drop the supervisor's capabilities: %w", errno)
	}
	return nil
}
