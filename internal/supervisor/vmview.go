package supervisor

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/paddock-dev/paddock/internal/vm/qemu"
)

// QEMU never runs as root. When paddock runs as root, each QEMU runs as
// an unprivileged host uid of its own (vmIDs) inside a user namespace in
// which it is uid 1000 (the guest's default agent user), with no
// capabilities and no groups. It reaches no host path by name: every
// directory it needs (its sandbox's, the template's, the saved state's)
// is a detached bind mount idmapped so that the directory's owner appears
// as QEMU's uid, inherited as a file descriptor and named
// /proc/self/fd/N/... Files QEMU writes there belong on disk to the
// directory's owner. When paddock runs as a plain user, QEMU runs as that
// user and reaches paddock's files by name, as that user may anyway.
// Either way QEMU runs under qemu.Confinement's file filter. The
// workspace QEMU never reaches, and the VM has no shared folder: the
// supervisor syncs the workspace (workspace.go).

// vmUIDBase is the first host uid given to a QEMU; vmUIDSpan uids follow.
// They lie far above the ranges that useradd and /etc/subuid hand out.
const (
	vmUIDBase = 0x7e000000
	vmUIDSpan = 0x00ffffff
)

// guestOwner is the uid and gid a confined QEMU has in its user namespace.
const guestOwner = 1000

// vmIDs is the host uid (and gid) of the QEMU of the VM named key: one per
// sandbox, so that one escaped QEMU cannot signal or trace another.
func vmIDs(key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return vmUIDBase + h.Sum32()%vmUIDSpan
}

// vmKey names a sandbox's VM for vmIDs.
func (s *sup) vmKey() string { return string(s.opts.Home) + "\x00" + s.cfg.Name }

// qemuUID is the host uid the QEMU of the VM named key runs as.
func qemuUID(key string) uint32 {
	if confined() {
		return vmIDs(key)
	}
	return uint32(os.Geteuid())
}

// confined reports whether QEMU runs as a uid of its own (paddock is root).
func confined() bool { return os.Geteuid() == 0 }

// vmTree is one directory QEMU reaches through a descriptor.
type vmTree struct {
	dir  string // host path
	file *os.File
}

// vmView is what one QEMU reaches of the host and by which paths. Close
// it once QEMU has started (QEMU holds its own copies).
type vmView struct {
	confine qemu.Confinement
	trees   []vmTree
	// cwd is the directory QEMU's relative names are in: the sandbox
	// directory when QEMU runs as the caller, "/" when confined.
	cwd string
}

// vmDir is a directory a QEMU needs, and whether it may write there.
type vmDir struct {
	path     string
	writable bool
}

// newVMView gives the QEMU of the VM named key (a sandbox or a saved
// state) the directories dirs, its own directory first.
func newVMView(key string, dirs []vmDir, accel string) (v *vmView, err error) {
	v = &vmView{cwd: dirs[0].path}
	defer func() {
		if err != nil {
			v.Close()
		}
	}()
	if !confined() {
		return v, nil
	}
	id := vmIDs(key)
	v.cwd = "/"
	v.confine = qemu.Confinement{HostUID: id, HostGID: id, GuestUID: guestOwner, GuestGID: guestOwner}
	if accel == "kvm" {
		var st unix.Stat_t
		if unix.Stat("/dev/kvm", &st) == nil {
			v.confine.ExtraGIDs = []uint32{st.Gid}
		}
	}
	namespaces := map[idMap]*os.File{}
	defer func() {
		for _, ns := range namespaces {
			ns.Close()
		}
	}()
	mapping := func(m idMap) (*os.File, error) {
		if ns := namespaces[m]; ns != nil {
			return ns, nil
		}
		ns, err := userNamespace(m)
		namespaces[m] = ns
		return ns, err
	}
	self := idMap{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid()), toUID: id, toGID: id}
	for _, d := range dirs {
		if v.has(d.path) {
			continue
		}
		ns, err := mapping(self)
		if err != nil {
			return nil, err
		}
		f, err := idmappedTree(d.path, ns, !d.writable)
		if err != nil {
			return nil, err
		}
		v.add(d.path, f)
	}
	return v, nil
}

func (v *vmView) add(dir string, f *os.File) {
	v.trees = append(v.trees, vmTree{dir: dir, file: f})
	v.confine.Files = append(v.confine.Files, f)
}

func (v *vmView) has(dir string) bool {
	for _, t := range v.trees {
		if t.dir == dir {
			return true
		}
	}
	return false
}

// path is the name by which QEMU reaches the host path p: through the
// tree that holds it, else relative to cwd, else p itself.
func (v *vmView) path(p string) string {
	for i := len(v.trees) - 1; i >= 0; i-- {
		if rel, ok := within(v.trees[i].dir, p); ok {
			return qemu.TreePath(i, rel)
		}
	}
	if rel, ok := within(v.cwd, p); ok && rel != "." {
		return rel
	}
	return p
}

// Close closes the view's descriptors.
func (v *vmView) Close() {
	for _, t := range v.trees {
		t.file.Close()
	}
	v.trees, v.confine.Files = nil, nil
}

// within returns p relative to dir when p is dir or below it.
func within(dir, p string) (string, bool) {
	if p == dir {
		return ".", true
	}
	if strings.HasPrefix(p, dir+"/") {
		return p[len(dir)+1:], true
	}
	return "", false
}

// idMap maps one owner (uid, gid) on disk to QEMU's host ids.
type idMap struct{ uid, gid, toUID, toGID uint32 }

// idmappedTree clones the directory at path as a detached mount
// idmapped by the user namespace ns (userNamespace): the owner it maps
// appears as QEMU's ids, and files QEMU creates are stored as that owner's;
// no setuid or device files; read-only when ro. Other owners appear as the
// overflow id and are not writable.
func idmappedTree(path string, ns *os.File, ro bool) (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("clone mount of %s: %w", path, err)
	}
	tree := os.NewFile(uintptr(fd), path)
	attr := unix.MountAttr{
		Attr_set:  unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV,
		Userns_fd: uint64(ns.Fd()),
	}
	if ro {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		tree.Close()
		return nil, fmt.Errorf("idmapped mount of %s: %w (QEMU runs unprivileged and needs idmapped mounts: Linux 5.12 or later, on a filesystem that supports them, such as ext4, xfs or btrfs)", path, err)
	}
	return tree, nil
}

// userNamespace returns a user namespace whose only ids are m.uid and
// m.gid, mapped to m.toUID and m.toGID: the idmapping of a mount. It is
// held by a child made with a bare clone (no exec, which would cost a
// start of this binary, ~20 ms) that only pauses until it is killed, once
// the namespace is open.
func userNamespace(m idMap) (*os.File, error) {
	pid, err := pausedChild(syscall.CLONE_NEWUSER)
	if err != nil {
		return nil, fmt.Errorf("user namespace: %w", err)
	}
	defer func() {
		syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
	}()
	proc := fmt.Sprintf("/proc/%d/", pid)
	for file, line := range map[string]string{"uid_map": fmt.Sprintf("%d %d 1", m.uid, m.toUID), "gid_map": fmt.Sprintf("%d %d 1", m.gid, m.toGID)} {
		if err := os.WriteFile(proc+file, []byte(line), 0); err != nil {
			return nil, fmt.Errorf("user namespace: %w", err)
		}
	}
	f, err := os.Open(proc + "ns/user")
	if err != nil {
		return nil, fmt.Errorf("user namespace: %w", err)
	}
	return f, nil
}

// pausedChild clones this process into new namespaces (flags) as a child
// that waits for SIGKILL. The child runs nothing of the Go runtime: after
// the clone it only makes raw calls, as a forked child does before its
// exec (syscall.forkAndExecInChild). It shares every descriptor of this
// process, the sandbox's run lock included, so it must not outlive it: it
// dies with its parent (PR_SET_PDEATHSIG), and exits at once if the parent
// is already gone.
func pausedChild(flags uintptr) (int, error) {
	parent := uintptr(syscall.Getpid())
	syscall.ForkLock.Lock()
	pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, flags|uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 {
		syscall.ForkLock.Unlock()
		return 0, errno
	}
	if pid == 0 {
		syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0)
		if ppid, _, _ := syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0); ppid != parent {
			syscall.RawSyscall(syscall.SYS_EXIT, 0, 0, 0)
		}
		for {
			syscall.RawSyscall(syscall.SYS_PAUSE, 0, 0, 0)
		}
	}
	syscall.ForkLock.Unlock()
	return int(pid), nil
}

// openWorkspace opens the workspace directory ws, one component at a
// time without following a symlink, so that a symlink swapped into its
// path (by this or another sandbox's guest) is refused rather than
// followed; the descriptor is what the workspace sync works through.
func openWorkspace(ws string) (*os.File, error) {
	if !filepath.IsAbs(ws) || filepath.Clean(ws) != ws {
		return nil, fmt.Errorf("workspace %q is not a clean absolute path", ws)
	}
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	for _, part := range strings.Split(ws[1:], "/") {
		next, err := unix.Openat(fd, part, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
				return nil, fmt.Errorf("workspace %s: %s is no longer a directory (a symlink?): paddock does not follow it; restore the folder or remove the sandbox", ws, part)
			}
			return nil, fmt.Errorf("workspace %s: %w", ws, err)
		}
		fd = next
	}
	return os.NewFile(uintptr(fd), ws), nil
}
