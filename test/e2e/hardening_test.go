package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"
)

// hostileScript is what a guest's root tries in the workspace ($1, with
// wstool at $2): a setuid and a setgid program, owner changes, device
// nodes, a FIFO, a socket, file capabilities and trusted attributes,
// symlinks out of the workspace. The workspace is a copy on the guest's
// own disk, so the guest may allow these there; none may reach the host.
const hostileScript = `cd "$1" || exit 9
tool=$2
echo 'echo pwned' > evil; chmod 755 evil
try() { if "$@" 2>/dev/null; then echo "$*: done"; else echo "$*: refused"; fi; }
try chmod 4755 evil
try chmod 2755 evil
try chown 0:0 evil
try chown 1234:1234 evil
echo x > owned; try chown 1234:1234 owned
try mknod blk b 8 0
try mknod chr c 1 3
try mkfifo fifo
try $tool sock sock.sock
echo 'echo cap' > capped; chmod 755 capped
try $tool xattr capped security.capability 0100000200200000000000000000000000000000
try $tool xattr capped trusted.paddock 01
try $tool xattr capped security.evil 01
mkdir -p sub && try chmod 6755 sub
mkdir -p sgid; try chmod 2775 sgid; echo x > sgid/inherits
ln -s /etc/shadow link
ln -s ../../../../../.. up
mkdir -p /tmp/pdescape && ln -s /tmp/pdescape esc && echo pwned > esc/through-link
ls -ln
`

// specialNames are the entries hostileScript makes that the host must not
// get at all.
var specialNames = []string{"blk", "chr", "fifo", "sock.sock"}

// checkWorkspaceClean fails for anything in dir that the host must never
// get from a guest: set-id bits, a device node, FIFO or socket, file
// capabilities or trusted attributes, or an owner other than owner.
func checkWorkspaceClean(t *testing.T, dir string, owner uint32) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walk %s: %v", p, err)
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Errorf("lstat %s: %v", p, err)
			return nil
		}
		switch {
		case st.Mode&(syscall.S_ISUID|syscall.S_ISGID) != 0:
			t.Errorf("%s has set-id bits on the host: mode %o", p, st.Mode)
		case st.Mode&syscall.S_IFMT == syscall.S_IFBLK, st.Mode&syscall.S_IFMT == syscall.S_IFCHR,
			st.Mode&syscall.S_IFMT == syscall.S_IFIFO, st.Mode&syscall.S_IFMT == syscall.S_IFSOCK:
			t.Errorf("%s is a special file on the host: mode %o", p, st.Mode)
		case st.Uid != owner:
			t.Errorf("%s is owned by uid %d on the host, want the workspace owner %d", p, st.Uid, owner)
		}
		for _, x := range listXattrs(p) {
			if x == "security.capability" || strings.HasPrefix(x, "trusted.") {
				t.Errorf("%s has the attribute %s on the host", p, x)
			}
		}
		return nil
	})
}

// listXattrs names p's extended attributes (p itself, not a symlink's
// target).
func listXattrs(p string) []string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n <= 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
}

// The guest's root cannot leave the host a setuid program, a file of
// another owner, a special file or a file capability, whoever owns the
// workspace: root's own folders (a 0700 mktemp -d, a folder under /root)
// and a user's. The workspace is a copy on the guest's disk, so the guest
// may do these there; the host's folder stays clean. Symlinks go both
// ways as symlinks, never as their targets' contents. In a user's folder,
// a file the user cannot read does not reach the guest. In root's
// folders the agent user's commands work.
func TestWorkspaceBoundary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test makes root-owned and other users' workspaces: run it as root (make test does)")
	}
	e := newEnv(t, "tiny")
	tool := buildWsTool(t)
	rootTmp, err := os.MkdirTemp("", "pdws") // 0700, like mktemp -d
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rootTmp) })
	underRoot, err := os.MkdirTemp("/root", "pdws")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(underRoot) })
	cases := []boundaryCase{
		{"root-mktemp", rootTmp, 0},
		{"under-root", filepath.Join(underRoot, "project"), 0},
		{"user", e.ws, 1000},
	}
	os.Mkdir(cases[1].dir, 0o700)
	otherUID, otherGID := otherUser(t)
	os.RemoveAll("/tmp/pdescape")
	t.Cleanup(func() { os.RemoveAll("/tmp/pdescape") })
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.check(t, e.with(t), fmt.Sprintf("wsb%d", i), tool, otherUID, otherGID)
		})
	}
}

// boundaryCase is a workspace TestWorkspaceBoundary gives a sandbox: its
// folder and the uid and gid that own it.
type boundaryCase struct {
	name  string
	dir   string
	owner uint32
}

// check makes sandbox name on c's folder, seeded by seed; the agent user
// works there and sees the host's symlinks as symlinks, files its owner
// cannot read stay out, and guest root's hostile script changes nothing
// beyond the folder (checkHost).
func (c boundaryCase) check(t *testing.T, e *env, name, tool string, otherUID, otherGID uint32) {
	private := c.seed(otherUID, otherGID)
	e.ok("create", "--name", name, "--template", "tiny", "--memory", "512M", "--cpus", "1", "--workspace", c.dir)
	// The agent user reads, writes and runs there.
	out := e.ok("exec", name, "--", "sh", "-c", "pwd; cat readme; echo made > agent.txt; cat agent.txt; id -u")
	if want := c.dir + "\nfrom the host\nmade\n1000\n"; out != want {
		t.Fatalf("agent in the workspace: %q, want %q", out, want)
	}
	// The host's symlinks are symlinks in the guest.
	out = e.ok("exec", name, "--", "sh", "-c", "for l in hostlink rellink; do test -L $l && readlink $l; done")
	if want := "/etc/passwd\nreadme\n"; out != want {
		t.Errorf("the host's symlinks in the guest: %q, want %q", out, want)
	}
	if private {
		out = e.ok("exec", "-u", "root", name, "--", "sh", "-c", "cat secret private/hidden 2>/dev/null; grep -r -l -e 'top secret' -e 'hidden content' . 2>/dev/null; true")
		if strings.Contains(out, "top secret") || strings.Contains(out, "hidden content") || strings.TrimSpace(out) != "" {
			t.Errorf("files the workspace's owner cannot read reached the guest:\n%s", out)
		}
	}
	e.installTool(name, tool)
	out = e.ok("exec", "-u", "root", name, "--", "sh", "-c", hostileScript, "sh", c.dir, guestToolPath)
	t.Logf("guest root tried:\n%s", out)
	if private {
		for p, want := range map[string]string{"secret": "top secret\n", "private/hidden": "hidden content\n"} {
			if b, err := os.ReadFile(filepath.Join(c.dir, p)); err != nil || string(b) != want {
				t.Errorf("the other user's %s on the host: %q, %v", p, b, err)
			}
		}
		os.RemoveAll(filepath.Join(c.dir, "private"))
		os.Remove(filepath.Join(c.dir, "secret"))
	}
	c.checkHost(t, private)
}

// seed writes a file and two symlinks into c's folder, and, in a user's
// folder, another user's private files (the host side reads as the
// folder's owner, who cannot read them); it reports whether it did.
func (c boundaryCase) seed(otherUID, otherGID uint32) (private bool) {
	own := func(p string) { os.Lchown(p, int(c.owner), int(c.owner)) }
	os.WriteFile(filepath.Join(c.dir, "readme"), []byte("from the host\n"), 0o644)
	own(filepath.Join(c.dir, "readme"))
	os.Symlink("/etc/passwd", filepath.Join(c.dir, "hostlink"))
	own(filepath.Join(c.dir, "hostlink"))
	os.Symlink("readme", filepath.Join(c.dir, "rellink"))
	own(filepath.Join(c.dir, "rellink"))
	private = c.owner != 0
	if private {
		os.WriteFile(filepath.Join(c.dir, "secret"), []byte("top secret\n"), 0o600)
		os.Chown(filepath.Join(c.dir, "secret"), int(otherUID), int(otherGID))
		os.Mkdir(filepath.Join(c.dir, "private"), 0o700)
		os.WriteFile(filepath.Join(c.dir, "private", "hidden"), []byte("hidden content\n"), 0o644)
		os.Chown(filepath.Join(c.dir, "private", "hidden"), int(otherUID), int(otherGID))
		os.Chown(filepath.Join(c.dir, "private"), int(otherUID), int(otherGID))
	}
	return private
}

// checkHost checks c's folder on the host after the hostile script: clean
// (owners, modes), the guest's special files not copied, its files and
// symlinks as made, nothing written through a symlink.
func (c boundaryCase) checkHost(t *testing.T, private bool) {
	checkWorkspaceClean(t, c.dir, c.owner)
	for _, n := range specialNames {
		if _, err := os.Lstat(filepath.Join(c.dir, n)); err == nil {
			t.Errorf("the guest's special file %s was copied to the host", n)
		}
	}
	for n, want := range map[string]string{"evil": "echo pwned\n", "owned": "x\n", "capped": "echo cap\n", "agent.txt": "made\n", "sgid/inherits": "x\n"} {
		if b, err := os.ReadFile(filepath.Join(c.dir, n)); err != nil || string(b) != want {
			t.Errorf("%s on the host: %q, %v", n, b, err)
		}
	}
	// The guest's symlinks are symlinks on the host, never copies
	// of their targets, and nothing is written through them.
	for n, want := range map[string]string{"link": "/etc/shadow", "up": "../../../../../..", "esc": "/tmp/pdescape"} {
		st, err := os.Lstat(filepath.Join(c.dir, n))
		if err != nil || st.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("the guest's symlink %s on the host: %v, %v", n, st, err)
			continue
		}
		if got, _ := os.Readlink(filepath.Join(c.dir, n)); got != want {
			t.Errorf("the guest's symlink %s points to %q on the host, want %q", n, got, want)
		}
	}
	if _, err := os.Lstat("/tmp/pdescape"); err == nil {
		t.Errorf("the guest's write through its symlink made /tmp/pdescape on the host")
	}
}

// QEMU runs as an unprivileged uid of its own with no capabilities, when
// paddock runs as root.
func TestQEMUUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("run as root (make test does): the test checks what root's paddock does")
	}
	e := newEnv(t, "tiny")
	e.create("qu1")
	e.create("qu2")
	uids := map[string]bool{}
	for _, n := range []string{"qu1", "qu2"} {
		pid := e.inspect(n).QEMUPid
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		fields := map[string]string{}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				fields[k] = strings.TrimSpace(v)
			}
		}
		uid := strings.Fields(fields["Uid"])
		if len(uid) == 0 || uid[0] == "0" || uid[1] == "0" || uid[2] == "0" {
			t.Errorf("%s: qemu runs with uids %q", n, fields["Uid"])
		}
		uids[uid[0]] = true
		// CapBnd is left full: it is the bounding set of QEMU's own user
		// namespace, reset by the kernel when the namespace is made, and
		// with no_new_privs and a non-root uid there nothing can use it.
		for _, c := range []string{"CapEff", "CapPrm", "CapInh", "CapAmb"} {
			if fields[c] != "0000000000000000" {
				t.Errorf("%s: qemu %s = %s, want none", n, c, fields[c])
			}
		}
		if fields["NoNewPrivs"] != "1" || fields["Seccomp"] != "2" {
			t.Errorf("%s: qemu NoNewPrivs=%s Seccomp=%s", n, fields["NoNewPrivs"], fields["Seccomp"])
		}
		if fields["Groups"] != "" {
			t.Errorf("%s: qemu keeps groups %q", n, fields["Groups"])
		}
		// The supervisor keeps no capability once its VM runs.
		sup, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.inspect(n).SupervisorPid))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(sup), "CapEff:\t0000000000000000") || !strings.Contains(string(sup), "CapPrm:\t0000000000000000") {
			t.Errorf("%s: the supervisor keeps capabilities:\n%s", n, grepLines(string(sup), "Cap"))
		}
	}
	if len(uids) != 2 {
		t.Errorf("the two sandboxes' QEMUs share a uid: %v", uids)
	}
}

// otherUser is a local user who is not root and owns nothing of paddock's.
func otherUser(t *testing.T) (uid, gid uint32) {
	t.Helper()
	const name = "paddock-e2e-other"
	if out, err := exec.Command("id", "-u", name).Output(); err != nil {
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v: %s", name, err, out)
		}
	} else if len(out) == 0 {
		t.Fatal("id printed nothing")
	}
	u, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	g, _ := exec.Command("id", "-g", name).Output()
	un, _ := strconv.Atoi(strings.TrimSpace(string(u)))
	gn, _ := strconv.Atoi(strings.TrimSpace(string(g)))
	return uint32(un), uint32(gn)
}

// probeVar makes the test binary a probe (TestMain): it tries each action
// and prints one line per action.
const probeVar = "PADDOCK_E2E_PROBE"

func TestMain(m *testing.M) {
	if spec := os.Getenv(probeVar); spec != "" {
		var actions [][2]string
		json.Unmarshal([]byte(spec), &actions)
		for _, a := range actions {
			fmt.Printf("%s %s: %s\n", a[0], a[1], probe(a[0], a[1]))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// probe tries one action as the current user: "allowed" or "denied".
func probe(kind, path string) string {
	var err error
	switch kind {
	case "read":
		var f *os.File
		if f, err = os.Open(path); err == nil {
			_, err = f.Read(make([]byte, 1))
			f.Close()
		}
	case "list":
		_, err = os.ReadDir(path)
	case "connect":
		var c net.Conn
		if c, err = net.DialTimeout("unix", path, 2*time.Second); err == nil {
			c.SetReadDeadline(time.Now().Add(time.Second))
			// A peer-checked socket closes at once; a server that serves
			// would wait for the request.
			_, err = c.Read(make([]byte, 1))
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				err = nil
			}
			c.Close()
		}
	case "lock":
		var f *os.File
		if f, err = os.OpenFile(path, os.O_RDONLY, 0); err == nil {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			f.Close()
		}
	}
	if err != nil {
		return "denied"
	}
	return "allowed"
}

// runProbe runs the probe as uid/gid and returns its lines.
func runProbe(t *testing.T, uid, gid uint32, actions [][2]string) []string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pdprobe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "probe")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(actions)
	cmd := exec.Command(bin)
	cmd.Env = []string{probeVar + "=" + string(spec)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe as %d: %v: %s", uid, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// Another local user reads nothing of paddock's state, connects to no
// socket and takes no lock: not a sandbox's config (its -e values), logs,
// disk or sockets, nor a --cold sandbox's disk, a checkpoint's memory,
// the templates or the cache. Every file is its owner's alone.
func TestHostStatePrivate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test switches to another user: run it as root (make test does)")
	}
	e := newEnv(t, "tiny")
	e.create("priv", "-e", "API_KEY=sekrit")
	e.ok("exec", "priv", "--", "echo", "hi")
	e.ok("checkpoint", "priv", "privck")
	e.create("privcold", "--cold")
	uid, gid := otherUser(t)
	dir := filepath.Join(e.home, "sandboxes", "priv")
	cold := filepath.Join(e.home, "sandboxes", "privcold")
	ck := filepath.Join(e.home, "checkpoints", "privck")
	// The test's home links to the shared templates and cache (newEnv):
	// what is checked is where they really are.
	var shared []string
	for _, d := range []string{"templates", "cache"} {
		real, err := filepath.EvalSymlinks(filepath.Join(e.home, d))
		if err != nil {
			t.Fatal(err)
		}
		shared = append(shared, real)
	}
	tiny := filepath.Join(shared[0], "tiny")
	var actions [][2]string
	for _, f := range []string{"config.json", "console.log", "exec.jsonl", "net.jsonl", "supervisor.log", "policy.yaml", "disk.qcow2"} {
		actions = append(actions, [2]string{"read", filepath.Join(dir, f)})
	}
	actions = append(actions,
		[2]string{"read", filepath.Join(cold, "disk.qcow2")},
		[2]string{"read", filepath.Join(tiny, "root.ext4")}, [2]string{"read", filepath.Join(tiny, "vmlinux")},
		[2]string{"list", filepath.Join(tiny, "modules")}, [2]string{"list", shared[0]}, [2]string{"list", shared[1]},
		[2]string{"read", filepath.Join(ck, "memory.state")},
		[2]string{"list", e.home}, [2]string{"list", dir},
		[2]string{"connect", filepath.Join(dir, "sv.sock")},
		[2]string{"connect", filepath.Join(dir, "ctl.sock")},
		[2]string{"connect", filepath.Join(dir, "qmp.sock")},
		[2]string{"connect", filepath.Join(dir, "net.sock")},
		[2]string{"lock", filepath.Join(dir, "lock")},
		[2]string{"lock", filepath.Join(dir, "run.lock")},
	)
	lines := runProbe(t, uid, gid, actions)
	if len(lines) != len(actions) {
		t.Fatalf("probe printed %d lines for %d actions: %q", len(lines), len(actions), lines)
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, ": denied") {
			t.Errorf("another user: %s", l)
		}
	}
	socketsCheckPeer(t, e, dir, uid, gid)
	noPermissionForOthers(t, append([]string{dir, cold, ck}, shared...))
	if st, err := os.Stat(e.home); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("PADDOCK_HOME mode: %v %v", st.Mode(), err)
	}
	if out := e.ok("exec", "priv", "--", "echo", "still"); out != "still\n" {
		t.Errorf("after the probes: %q", out)
	}
}

// socketsCheckPeer: even with a way in (the folders opened to all), the
// sockets check who connects: another user's connection is closed
// unanswered. qmp.sock and ctl.sock are QEMU's and cannot: the sandbox
// folder's 0700 alone keeps others out of them.
func socketsCheckPeer(t *testing.T, e *env, dir string, uid, gid uint32) {
	for _, d := range []string{e.home, filepath.Join(e.home, "sandboxes"), dir} {
		os.Chmod(d, 0o755)
	}
	socks := []string{filepath.Join(dir, "sv.sock"), filepath.Join(dir, "net.sock")}
	for _, s := range socks {
		os.Chmod(s, 0o777)
	}
	lines := runProbe(t, uid, gid, [][2]string{{"connect", socks[0]}, {"connect", socks[1]}})
	for _, s := range socks {
		os.Chmod(s, 0o700)
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, ": denied") {
			t.Errorf("another user, folders open: %s", l)
		}
	}
	for _, d := range []string{e.home, filepath.Join(e.home, "sandboxes"), dir} {
		os.Chmod(d, 0o700)
	}
}

// noPermissionForOthers: no file or folder under roots gives others any
// permission. Root filesystems being built and downloads under way
// (another test's) are skipped.
func noPermissionForOthers(t *testing.T, roots []string) {
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if n := d.Name(); d.IsDir() && strings.HasPrefix(n, ".") && (strings.Contains(n, ".build-") ||
				strings.Contains(n, ".old-") || strings.HasPrefix(n, ".unpack-") || strings.HasPrefix(n, ".download-")) {
				return fs.SkipDir
			}
			if info, err := d.Info(); err == nil && info.Mode()&fs.ModeSymlink == 0 && info.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s: mode %v", p, info.Mode())
			}
			return nil
		})
	}
}

// A workspace inside another sandbox's is refused (that guest could swap a
// folder on its path for a symlink); and a workspace whose path became a
// symlink after create is not followed at the next start.
func TestWorkspacePinned(t *testing.T) {
	e := newEnv(t, "tiny")
	os.MkdirAll(filepath.Join(e.ws, "svc"), 0o755)
	e.create("outer")
	_, errs, code := e.run("create", "--name", "inner", "--template", "tiny", "--workspace", filepath.Join(e.ws, "svc"))
	if code == 0 || !strings.Contains(errs, `inside sandbox "outer"'s workspace`) {
		t.Fatalf("nested workspace: exit %d, %s", code, errs)
	}
	for _, ws := range []string{e.home, filepath.Join(e.home, "sandboxes"), filepath.Dir(e.home)} {
		_, errs, code = e.run("create", "--name", "holder", "--template", "tiny", "--workspace", ws)
		if code == 0 || !strings.Contains(errs, "paddock's state") {
			t.Fatalf("workspace %s, at, in or around PADDOCK_HOME: exit %d, %s", ws, code, errs)
		}
	}
	e.ok("rm", "-f", "outer")

	// The swap, as another sandbox's guest would make it: the folder
	// becomes a symlink to / between a stop and a start.
	proj, err := os.MkdirTemp("", "pdproj")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(proj) })
	os.MkdirAll(filepath.Join(proj, "svc"), 0o755)
	os.WriteFile(filepath.Join(proj, "svc", "mine"), []byte("x"), 0o644)
	e.ok("create", "--name", "pinned", "--template", "tiny", "--memory", "512M", "--cpus", "1", "--workspace", filepath.Join(proj, "svc"))
	e.ok("stop", "pinned")
	os.Rename(filepath.Join(proj, "svc"), filepath.Join(proj, "svc.bak"))
	if err := os.Symlink("/", filepath.Join(proj, "svc")); err != nil {
		t.Fatal(err)
	}
	_, errs, code = e.run("start", "pinned")
	if code == 0 || !strings.Contains(errs, "no longer a directory") {
		t.Fatalf("start on a swapped workspace: exit %d, %s", code, errs)
	}
	if st := e.inspect("pinned").State; st == "running" {
		t.Fatalf("started on a swapped workspace: %s", st)
	}
	os.Remove(filepath.Join(proj, "svc"))
	os.Rename(filepath.Join(proj, "svc.bak"), filepath.Join(proj, "svc"))
	e.ok("start", "pinned")
	if out := e.ok("exec", "pinned", "--", "ls"); out != "mine\n" {
		t.Fatalf("after the folder is back: %q", out)
	}
}

// An image with a setuid program and device nodes, imported as root,
// leaves none of them on the host, and has both, right, in the guest. The
// template's files and folders (its modules too) are root's alone.
func TestImportPrivilegedFiles(t *testing.T) {
	e := importEnv(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mod := time.Unix(1700000000, 0)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "opt/", Mode: 0o755, ModTime: mod})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "opt/suid", Mode: 0o4755, Size: 3, ModTime: mod})
	tw.Write([]byte("#!\n"))
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "opt/sgid", Mode: 0o2755, Uid: 5, Gid: 6, Size: 3, ModTime: mod})
	tw.Write([]byte("#!\n"))
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeBlock, Name: "opt/disk", Mode: 0o666, Devmajor: 8, Devminor: 0, ModTime: mod})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeChar, Name: "opt/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: mod})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeFifo, Name: "opt/fifo", Mode: 0o600, Uid: 5, ModTime: mod})
	tw.Close()
	img, err := mutate.AppendLayers(testImage(t, 0), tarLayer(t, buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(e.home, "priv.tar")
	writeArchive(t, img, "priv:1", archive)
	e.ok("template", "import", "privimg", "docker-archive:"+archive)
	filepath.WalkDir(e.home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, _ := d.Info()
		if info == nil {
			return nil
		}
		if m := info.Mode(); m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) != 0 {
			t.Errorf("the import left %s (%v) on the host", p, m)
		}
		if rel, _ := filepath.Rel(e.home, p); strings.HasPrefix(rel, "templates/privimg") && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("the imported template's %s: mode %v", rel, info.Mode())
		}
		return nil
	})
	e.ok("create", "--name", "pimg", "--template", "privimg", "--memory", "512M", "--cpus", "1", "--workspace", e.ws)
	out := e.ok("exec", "-u", "root", "pimg", "--", "stat", "-c", "%n %A %u %g %t,%T", "/opt/suid", "/opt/sgid", "/opt/disk", "/opt/null", "/opt/fifo")
	want := "/opt/suid -rwsr-xr-x 0 0 0,0\n/opt/sgid -rwxr-sr-x 5 6 0,0\n/opt/disk brw-rw-rw- 0 0 8,0\n/opt/null crw-rw-rw- 0 0 1,3\n/opt/fifo prw------- 5 0 0,0\n"
	if out != want {
		t.Errorf("in the guest:\n%s\nwant:\n%s", out, want)
	}
}

// A sandbox whose network policy file is gone does not start with a
// default: the error names the file.
func TestMissingPolicyFailsClosed(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("nopol", "--policy", "deny-all")
	e.ok("stop", "nopol")
	policy := filepath.Join(e.home, "sandboxes", "nopol", "policy.yaml")
	if err := os.Remove(policy); err != nil {
		t.Fatal(err)
	}
	_, errs, code := e.run("start", "nopol")
	if code == 0 || !strings.Contains(errs, policy) || !strings.Contains(errs, "missing") {
		t.Fatalf("start without a policy: exit %d, %s", code, errs)
	}
	_, errs, code = e.run("policy", "show", "nopol")
	if code == 0 || !strings.Contains(errs, "no network policy") {
		t.Fatalf("policy show without a policy: exit %d, %s", code, errs)
	}
}

// A plain user's paddock: its own home and template, QEMU running as that
// user, the agent taking the user's uid, and the same file filter.
func TestPlainUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test makes a user and runs paddock as it: run it as root (make test does)")
	}
	const name = "paddock-e2e-user"
	if exec.Command("id", "-u", name).Run() != nil {
		if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v: %s", err, out)
		}
	}
	dir, err := os.MkdirTemp("", "pdplain")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	for _, b := range []string{"paddock", "paddock-agent"} {
		data, err := os.ReadFile(filepath.Join(filepath.Dir(paddockBin(t)), b))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, b), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := `set -e
export PADDOCK_HOME="$HOME/pdhome"
rm -rf "$PADDOCK_HOME" "$HOME/proj"; mkdir "$HOME/proj"; cd "$HOME/proj"
P=` + filepath.Join(dir, "paddock") + `
$P template build tiny >/dev/null 2>&1 || $P template build tiny
$P create --name mine --template tiny --memory 512M --cpus 1 >/dev/null
trap '$P rm -f mine >/dev/null' EXIT
$P exec mine -- sh -c 'echo made > f; id -u'
$P exec -u root mine -- sh -c 'chmod 4755 f 2>/dev/null && echo chmod-done || echo chmod-refused'
ps -o uid=,comm= -u "$(id -u)" | grep qemu-system | awk '{print $1}' | sort -u
stat -c '%U %a' f "$PADDOCK_HOME"
find "$PADDOCK_HOME" ! -type l -perm /077 -printf 'open to others: %m %p\n'
`
	cmd := exec.Command("su", "-", name, "-c", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("as %s: %v\n%s%s", name, err, out, stderr.String())
	}
	// A plain user has no cgroup of its own to delegate: paddock says so.
	if !strings.Contains(stderr.String(), "runs without host CPU, memory and pids limits") {
		t.Errorf("as %s, no notice of running without host limits:\n%s", name, stderr.String())
	}
	uid, _ := exec.Command("id", "-u", name).Output()
	id := strings.TrimSpace(string(uid))
	// The workspace is a copy on the guest's disk: chmod 4755 may work
	// there, but the host's file gets no set-id bit (its x bits, 755, or
	// none of it, 644, if the guest refused).
	want := id + "\nchmod-refused\n" + id + "\n" + name + " 644\n" + name + " 700\n"
	if strings.Contains(string(out), "chmod-done") {
		want = id + "\nchmod-done\n" + id + "\n" + name + " 755\n" + name + " 700\n"
	}
	if string(out) != want {
		t.Fatalf("as %s:\n%s\nwant:\n%s", name, out, want)
	}
}

// A guest's escape sequences reach the host's terminal as text, unless
// the user asked for a terminal (exec -t); a pipe gets the bytes as they
// are.
func TestGuestBytesEscapedOnTerminal(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("esc")
	script := `printf 'title\033]0;pwned\007 clear\033[2J end\n'; printf 'err\033[31m\n' >&2`
	onTerminal := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(e.bin, args...)
		cmd.Env = append(os.Environ(), "PADDOCK_HOME="+e.home)
		ptmx, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		out, _ := io.ReadAll(ptmx) // EIO when the command ends
		cmd.Wait()
		return string(out)
	}
	out := onTerminal("exec", "esc", "--", "sh", "-c", script)
	if strings.Contains(out, "\x1b") || !strings.Contains(out, `title\x1b]0;pwned\x07 clear\x1b[2J end`) || !strings.Contains(out, `err\x1b[31m`) {
		t.Errorf("exec on a terminal, no -t: %q", out)
	}
	if out := onTerminal("exec", "-t", "esc", "--", "sh", "-c", script); !strings.Contains(out, "\x1b]0;pwned\x07") {
		t.Errorf("exec -t: the terminal asked for gets the bytes: %q", out)
	}
	if out := e.ok("exec", "esc", "--", "sh", "-c", script); !strings.Contains(out, "\x1b]0;pwned\x07") {
		t.Errorf("exec into a pipe: %q", out)
	}
	e.ok("exec", "-u", "root", "esc", "--", "sh", "-c", `printf 'console\033]0;pwned\007 line\n' > /dev/console`)
	waitFor(t, "the line in the console log", 10*time.Second, func() bool {
		return strings.Contains(e.ok("logs", "esc"), "console\x1b]0;pwned")
	})
	if out := onTerminal("logs", "esc"); strings.Contains(out, "\x1b") || !strings.Contains(out, `console\x1b]0;pwned\x07 line`) {
		t.Errorf("logs on a terminal: %q", out)
	}
}
