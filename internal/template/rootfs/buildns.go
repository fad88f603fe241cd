package rootfs

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"syscall"

	"github.com/paddock-dev/paddock/internal/template"
	"golang.org/x/sys/unix"
)

// buildUID is the host uid and gid that code fetched from a package
// registry runs as while a template is built: root in its own user
// namespace, nobody on the host. It lies below the uids given to QEMUs
// (vmUIDBase in internal/supervisor) and far above those useradd and
// /etc/subuid hand out.
const buildUID = 0x7d000000

// buildJail runs a command chrooted into a template's Debian tree in new
// user, mount, PID, IPC and UTS namespaces: root inside is buildUID
// outside (with no supplementary groups), so it can write only what
// buildUID owns and what is writable by all; every process it starts dies
// with it (it is PID 1 of its namespace); and without net it has a new
// network namespace of its own, where not even loopback is up.
//
// The tree's own path need not be reachable by buildUID (PADDOCK_HOME is
// root's, 0700): the chroot goes through /proc/self/fd of a descriptor
// opened by the builder. The tree's root directory itself must be
// searchable by others.
type buildJail struct {
	root string
	uid  uint32
	net  bool // keep the host's network (to fetch); false: none at all
	log  *slog.Logger
}

// sysProcAttr is the namespaces, id mapping and chroot of a jailed
// command; rootFD is an open descriptor of the tree.
func (j buildJail) sysProcAttr(rootFD int) *syscall.SysProcAttr {
	flags := uintptr(unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS)
	if !j.net {
		flags |= unix.CLONE_NEWNET
	}
	ids := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(j.uid), Size: 1}}
	return &syscall.SysProcAttr{
		Cloneflags:  flags,
		UidMappings: ids,
		GidMappings: ids,
		// Allowed so the child can drop the builder's supplementary groups
		// (root's, on the host) before it execs; inside, only gid 0 is
		// mapped, so nothing else can be taken up.
		GidMappingsEnableSetgroups: true,
		Credential:                 &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
		Chroot:                     fmt.Sprintf("/proc/self/fd/%d", rootFD),
		Pdeathsig:                  syscall.SIGKILL,
	}
}

// run runs argv (argv[0] an absolute path in the tree) with env and
// returns its standard output; on failure the error names the command and
// ends with the last lines it printed.
func (j buildJail) run(ctx context.Context, env []string, argv ...string) ([]byte, error) {
	fd, err := unix.Open(j.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open build tree: %w", err)
	}
	defer unix.Close(fd)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = "/" // after the chroot: the tree's root, not the builder's directory
	cmd.SysProcAttr = j.sysProcAttr(fd)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if j.log != nil {
		j.log.Debug("template: running in build jail", "argv", argv, "network", j.net, "uid", j.uid)
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		where := "without network"
		if j.net {
			where = "with network"
		}
		tail := template.LastLines(stderr.String()+stdout.String(), 8)
		return nil, fmt.Errorf("%s (as uid %d, %s): %w\n%s", strings.Join(argv, " "), j.uid, where, err, tail)
	}
	return stdout.Bytes(), nil
}
