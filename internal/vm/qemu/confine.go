package qemu

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	seccomp "github.com/elastic/go-seccomp-bpf"
)

// Confinement is who QEMU runs as and what it may do to files, on top of
// its own -sandbox. Whatever the caller, QEMU gets the file filter
// (fileFilter): it cannot make a setuid or setgid file, change an owner,
// make a device node, FIFO or socket file, or set an extended attribute.
// QEMU has no file server (the workspace is synced by the supervisor,
// never shared); the filter is a second wall should a device's code be
// made to write host files.
type Confinement struct {
	// HostUID and HostGID, when HostUID is not 0, are the unprivileged
	// host ids QEMU runs as (the caller must be root). QEMU then runs in a
	// user namespace of its own in which it is GuestUID/GuestGID, mapped to
	// HostUID/HostGID, with no capabilities and no supplementary groups.
	HostUID, HostGID uint32
	// GuestUID and GuestGID are QEMU's ids inside its user namespace.
	GuestUID, GuestGID uint32
	// ExtraGIDs are host groups QEMU keeps (mapped to the same ids), such
	// as /dev/kvm's group.
	ExtraGIDs []uint32
	// Files are inherited by QEMU as fd 3, 4, ...: the trees it reaches
	// its files through (see TreePath).
	Files []*os.File
}

// TreePath is the path by which QEMU reaches name inside Files[i].
func TreePath(i int, name string) string {
	p := "/proc/self/fd/" + strconv.Itoa(3+i)
	if name != "" && name != "." {
		p += "/" + name
	}
	return p
}

// sysProcAttr is QEMU's process attributes under c.
func (c Confinement) sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if c.HostUID == 0 {
		return attr
	}
	attr.Cloneflags = syscall.CLONE_NEWUSER
	attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: int(c.GuestUID), HostID: int(c.HostUID), Size: 1}}
	attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: int(c.GuestGID), HostID: int(c.HostGID), Size: 1}}
	groups := []uint32{}
	for _, g := range c.ExtraGIDs {
		attr.GidMappings = append(attr.GidMappings, syscall.SysProcIDMap{ContainerID: int(g), HostID: int(g), Size: 1})
		groups = append(groups, g)
	}
	// setgroups is allowed so that the child drops the caller's groups
	// (root's would otherwise stay with it).
	attr.GidMappingsEnableSetgroups = true
	attr.Credential = &syscall.Credential{Uid: c.GuestUID, Gid: c.GuestGID, Groups: groups}
	return attr
}

// setuidBits are the mode bits QEMU may never set on a host file.
const setuidBits = 0o6000

// fileFilter is the seccomp policy QEMU runs under in addition to its
// own: every call that could leave the host a setuid or setgid file, a
// file owned by another user, a device node, FIFO or socket file, or file
// capabilities and ACLs, fails with EPERM. Calls whose mode cannot be
// read by a filter (openat2: the mode is in a struct; io_uring: requests
// in shared memory) fail too; QEMU does not use them.
func fileFilter() seccomp.Filter {
	modeSet := func(name string, arg uint32) seccomp.NameWithConditions {
		return seccomp.NameWithConditions{Name: name, Conditions: []seccomp.Condition{
			{Argument: arg, Operation: seccomp.BitsSet, Value: setuidBits},
		}}
	}
	// BitsSet matches when any of the bits is set.
	createWithMode := func(name string, flagsArg, modeArg uint32) seccomp.NameWithConditions {
		return seccomp.NameWithConditions{Name: name, Conditions: []seccomp.Condition{
			{Argument: flagsArg, Operation: seccomp.BitsSet, Value: syscall.O_CREAT},
			{Argument: modeArg, Operation: seccomp.BitsSet, Value: setuidBits},
		}}
	}
	return seccomp.Filter{
		NoNewPrivs: true,
		Policy: seccomp.Policy{
			DefaultAction: seccomp.ActionAllow,
			Syscalls: []seccomp.SyscallGroup{{
				Action: seccomp.ActionErrno,
				Names: []string{
					"chown", "fchown", "lchown", "fchownat",
					"mknod", "mknodat",
					"setxattr", "lsetxattr", "fsetxattr", "setxattrat",
					"openat2", "io_uring_setup",
				},
				NamesWithCondtions: []seccomp.NameWithConditions{
					modeSet("chmod", 1), modeSet("fchmod", 1), modeSet("fchmodat", 2), modeSet("fchmodat2", 2),
					modeSet("creat", 1), modeSet("mkdir", 1), modeSet("mkdirat", 2),
					createWithMode("open", 1, 2), createWithMode("openat", 2, 3),
				},
			}},
		},
	}
}

// loadFileFilter installs fileFilter on the calling thread (which must be
// locked to its goroutine): a child forked from it inherits the filter,
// the rest of the process does not.
func loadFileFilter() error {
	if err := seccomp.LoadFilter(fileFilter()); err != nil {
		return fmt.Errorf("qemu file filter: %w", err)
	}
	return nil
}
