package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// wsTool is a small static program the workspace tests run in the guest
// (the tiny template has busybox, which lacks setfattr and unix sockets)
// and on the host (the same listing of a tree on both sides):
//
//	tree DIR                  one line per entry below DIR: path, type, mode, sha256 or target
//	watchsum PATH STOP        reads PATH whole again and again until STOP exists; prints each new observation (size sha256, or absent)
//	lat DIR N                 N times: writes DIR/g.txt = "i guest-ns", waits for DIR/h.txt = "i", prints "i guest-ns" when it saw it
//	append PATH MS DUR DONE   appends "G<i>\n" to PATH every MS ms for DUR ms, then writes the count to DONE
//	sock PATH                 binds a unix socket at PATH and leaves it (exit 1 if refused)
//	xattr PATH NAME HEX       sets an extended attribute (exit 1 if refused)
//	now                       prints the clock in ns
const wsToolSrc = `package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

func main() {
	a := os.Args[1:]
	switch a[0] {
	case "tree":
		tree(a[1])
	case "watchsum":
		watchsum(a[1], a[2])
	case "lat":
		n, _ := strconv.Atoi(a[2])
		lat(a[1], n)
	case "append":
		ms, _ := strconv.Atoi(a[2])
		dur, _ := strconv.Atoi(a[3])
		appendLoop(a[1], ms, dur, a[4])
	case "sock":
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: a[1], Net: "unix"})
		if err != nil {
			fmt.Println("refused:", err)
			os.Exit(1)
		}
		l.SetUnlinkOnClose(false)
		l.Close()
		fmt.Println("done")
	case "xattr":
		v, err := hex.DecodeString(a[3])
		if err == nil {
			err = syscall.Setxattr(a[1], a[2], v, 0)
		}
		if err != nil {
			fmt.Println("refused:", err)
			os.Exit(1)
		}
		fmt.Println("done")
	case "now":
		fmt.Println(time.Now().UnixNano())
	default:
		fmt.Fprintln(os.Stderr, "unknown command", a[0])
		os.Exit(2)
	}
}

func sum(p string) string {
	f, err := os.Open(p)
	if err != nil {
		if os.IsNotExist(err) {
			return "absent"
		}
		return "unreadable"
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "unreadable"
	}
	return fmt.Sprintf("%d %x", n, h.Sum(nil))
}

func tree(root string) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if err != nil {
			fmt.Printf("%q error %v\n", rel, err)
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			fmt.Printf("%q error %v\n", rel, err)
			return nil
		}
		m := info.Mode()
		bits := uint32(m.Perm())
		if m&fs.ModeSetuid != 0 {
			bits |= 0o4000
		}
		if m&fs.ModeSetgid != 0 {
			bits |= 0o2000
		}
		if m&fs.ModeSticky != 0 {
			bits |= 0o1000
		}
		switch {
		case m.IsRegular():
			fmt.Printf("%q file %04o %s\n", rel, bits, sum(p))
		case m.IsDir():
			fmt.Printf("%q dir %04o\n", rel, bits)
		case m&fs.ModeSymlink != 0:
			t, _ := os.Readlink(p)
			fmt.Printf("%q symlink %q\n", rel, t)
		default:
			fmt.Printf("%q special %v\n", rel, m)
		}
		return nil
	})
}

func watchsum(p, stop string) {
	last, reads := "", 0
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(stop); err == nil {
			break
		}
		s := sum(p)
		reads++
		if s != last {
			fmt.Println(s)
			last = s
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("reads", reads)
}

func lat(dir string, n int) {
	for i := 1; i <= n; i++ {
		time.Sleep(700 * time.Millisecond)
		os.WriteFile(filepath.Join(dir, "g.txt"), []byte(fmt.Sprintf("%d %d\n", i, time.Now().UnixNano())), 0o644)
		want := fmt.Sprintf("%d\n", i)
		deadline := time.Now().Add(30 * time.Second)
		for {
			if b, err := os.ReadFile(filepath.Join(dir, "h.txt")); err == nil && string(b) == want {
				break
			}
			if time.Now().After(deadline) {
				fmt.Printf("%d timeout\n", i)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		fmt.Printf("%d %d\n", i, time.Now().UnixNano())
	}
}

func appendLoop(p string, ms, dur int, done string) {
	end := time.Now().Add(time.Duration(dur) * time.Millisecond)
	i := 0
	for time.Now().Before(end) {
		i++
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			fmt.Fprintf(f, "G%d\n", i)
			f.Close()
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
	os.WriteFile(done, []byte(strconv.Itoa(i)+"\n"), 0o644)
}
`

// buildWsTool builds wsTool for linux/amd64 (the guest's and this host's)
// and returns its path.
func buildWsTool(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.go"), []byte(wsToolSrc), 0o644)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module wstool\n\ngo 1.22\n"), 0o644)
	bin := filepath.Join(dir, "wstool")
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build wstool: %v: %s", err, out)
	}
	return bin
}

// guestToolPath is where installTool puts wsTool in the guest, outside
// the workspace.
const guestToolPath = "/usr/local/bin/wstool"

// installTool copies the tool into the sandbox's root file system
// through exec's stdin.
func (e *env) installTool(name, tool string) {
	e.t.Helper()
	b, err := os.ReadFile(tool)
	if err != nil {
		e.t.Fatal(err)
	}
	out, errs, code := e.runIn(string(b), "exec", "-i", "-u", "root", "-w", "/", name, "--", "sh", "-c",
		"mkdir -p /usr/local/bin && cat > "+guestToolPath+".tmp && chmod 755 "+guestToolPath+".tmp && mv "+guestToolPath+".tmp "+guestToolPath)
	if code != 0 {
		e.t.Fatalf("install wstool in %s: exit %d: %s%s", name, code, out, errs)
	}
}

// hostTree lists dir with the tool on the host.
func hostTree(t *testing.T, tool, dir string) string {
	t.Helper()
	out, err := exec.Command(tool, "tree", dir).Output()
	if err != nil {
		t.Fatalf("wstool tree %s on the host: %v", dir, err)
	}
	return string(out)
}

// guestTree lists dir in the sandbox (as root, so the guest's own
// permissions do not hide anything).
func (e *env) guestTree(name, dir string) string {
	e.t.Helper()
	return e.ok("exec", "-u", "root", "-w", "/", name, "--", guestToolPath, "tree", dir)
}

// waitTreesEqual polls until the workspace's listing is the same on the
// host and in the guest (names, types, modes, contents, targets), and
// returns it.
func (e *env) waitTreesEqual(t *testing.T, name, tool string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		g := e.guestTree(name, e.ws)
		h := hostTree(t, tool, e.ws)
		if g == h {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the host's and the guest's workspace still differ:\n%s", timeout, treeDiff(h, g))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// treeDiff lists the lines only one of two listings has.
func treeDiff(host, guest string) string {
	hs, gs := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(host), "\n") {
		hs[l] = true
	}
	for _, l := range strings.Split(strings.TrimSpace(guest), "\n") {
		gs[l] = true
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(host), "\n") {
		if !gs[l] {
			b.WriteString("host only:  " + l + "\n")
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(guest), "\n") {
		if !hs[l] {
			b.WriteString("guest only: " + l + "\n")
		}
	}
	return b.String()
}

// noTempFiles fails for a .paddock-sync-* name in a listing.
func noTempFiles(t *testing.T, where, listing string) {
	t.Helper()
	for _, l := range strings.Split(listing, "\n") {
		if strings.Contains(l, ".paddock-sync-") {
			t.Errorf("a sync temporary file is left on the %s: %s", where, l)
		}
	}
}

// wsOwner is the uid and gid that own the workspace.
func (e *env) wsOwner() (int, int) {
	var st syscall.Stat_t
	if err := syscall.Stat(e.ws, &st); err != nil {
		e.t.Fatal(err)
	}
	return int(st.Uid), int(st.Gid)
}

// hostWrite writes rel in the workspace as its owner's editor would leave
// it: missing folders made, everything owned by the workspace's owner.
func (e *env) hostWrite(rel, content string, perm os.FileMode) {
	e.t.Helper()
	p := filepath.Join(e.ws, rel)
	e.hostMkdir(filepath.Dir(rel))
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		e.t.Fatal(err)
	}
	uid, gid := e.wsOwner()
	os.Chown(p, uid, gid)
	os.Chmod(p, perm)
}

// hostMkdir makes the folder rel and its parents, owned by the
// workspace's owner.
func (e *env) hostMkdir(rel string) {
	e.t.Helper()
	uid, gid := e.wsOwner()
	var made []string
	for d := filepath.Join(e.ws, rel); d != e.ws && len(d) > len(e.ws); d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		made = append(made, d)
	}
	for i := len(made) - 1; i >= 0; i-- {
		if err := os.Mkdir(made[i], 0o755); err != nil {
			e.t.Fatal(err)
		}
		os.Chown(made[i], uid, gid)
	}
}

// hostSymlink makes rel a symlink to target, owned by the workspace's
// owner.
func (e *env) hostSymlink(target, rel string) {
	e.t.Helper()
	p := filepath.Join(e.ws, rel)
	if err := os.Symlink(target, p); err != nil {
		e.t.Fatal(err)
	}
	uid, gid := e.wsOwner()
	os.Lchown(p, uid, gid)
}

// hostRead reads rel in the workspace ("" when it is not there).
func (e *env) hostRead(rel string) string {
	b, err := os.ReadFile(filepath.Join(e.ws, rel))
	if err != nil {
		return ""
	}
	return string(b)
}

// waitHostFile polls until the host's rel reads want.
func (e *env) waitHostFile(t *testing.T, rel, want string, timeout time.Duration) {
	t.Helper()
	waitFor(t, "host "+rel+" = "+strings.TrimSpace(want), timeout, func() bool { return e.hostRead(rel) == want })
}

// guestSh runs a script as the agent user in the workspace and fails the
// test unless it exits 0.
func (e *env) guestSh(name, script string) string {
	e.t.Helper()
	return e.ok("exec", name, "--", "sh", "-c", script)
}
