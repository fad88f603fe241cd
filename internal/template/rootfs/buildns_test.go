package rootfs

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/paddock-dev/paddock/internal/template"
)

// needRoot fails (never skips) a test that makes namespaces for another
// uid: make test runs as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (it maps a user namespace onto another host uid): run it as root, as make test does")
	}
}

// jailTree is a tree with busybox-static as /bin/busybox, a root-owned
// file readable only by group 0 (/secret) and a folder owned by buildUID
// (/out), as the npm step lays out a Debian tree.
func jailTree(t *testing.T) string {
	t.Helper()
	if err := template.MissingTools("busybox"); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox-static: %v (apt-get install busybox-static)", err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755))
	must(os.WriteFile(filepath.Join(root, "secret"), []byte("x"), 0o040))
	must(os.Chmod(filepath.Join(root, "secret"), 0o040))
	must(os.Mkdir(filepath.Join(root, "out"), 0o700))
	must(os.Lchown(filepath.Join(root, "out"), buildUID, buildUID))
	return root
}

// TestBuildJail checks what code from a package registry gets during a
// build: a non-root host uid without root's groups, its own PID
// namespace, and (in the install-script phase) no network at all.
func TestBuildJail(t *testing.T) {
	needRoot(t)
	root := jailTree(t)
	ctx := context.Background()
	offline := buildJail{root: root, uid: buildUID}
	online := buildJail{root: root, uid: buildUID, net: true}
	bb := func(j buildJail, args ...string) (string, error) {
		out, err := j.run(ctx, nil, append([]string{"/bin/busybox"}, args...)...)
		return string(out), err
	}

	// A file it makes belongs to buildUID on the host.
	if _, err := bb(offline, "touch", "/out/made"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(root, "out", "made"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != buildUID || st.Gid != buildUID {
		t.Errorf("file made in the jail is owned by %d:%d on the host, want %d:%d", st.Uid, st.Gid, buildUID, buildUID)
	}
	// Root's files and root's group are out of reach.
	if out, err := bb(offline, "touch", "/made-by-jail"); err == nil {
		t.Errorf("the jail wrote to a root-owned folder: %s", out)
	}
	if out, err := bb(offline, "cat", "/secret"); err == nil {
		t.Errorf("the jail read a file only group 0 may read (supplementary groups kept?): %q", out)
	}
	// PID 1 of its own PID namespace.
	if out, err := bb(offline, "sh", "-c", "echo $$"); err != nil || strings.TrimSpace(out) != "1" {
		t.Errorf("pid in the jail: %q, %v; want 1", out, err)
	}

	// Without network: only a loopback device, and it is down.
	out, err := bb(offline, "ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], " lo:") || strings.Contains(lines[0], "UP") {
		t.Errorf("links without network:\n%s\nwant only lo, down", out)
	}

	// A host loopback listener: reachable with network, not without.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	hostPort := []string{"nc", "127.0.0.1", strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:")}
	if out, err := bb(offline, hostPort...); err == nil {
		t.Errorf("connected to host 127.0.0.1:%d without network: %s", port, out)
	}
	if out, err := bb(online, hostPort...); err != nil {
		t.Errorf("with network, connecting to host 127.0.0.1:%d: %v %s", port, err, out)
	}
}
