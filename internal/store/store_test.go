package store

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestValidateName(t *testing.T) {
	good := []string{"a", "web", "web-1", "0abc", strings.Repeat("a", 63)}
	bad := []string{"", "-web", "Web", "web_1", "web.1", "a/b", "..", strings.Repeat("a", 64), "we b"}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want ok", n, err)
		}
	}
	for _, n := range bad {
		if err := ValidateName(n); err == nil {
			t.Errorf("ValidateName(%q) = ok, want error", n)
		}
	}
}

func TestGenerateNameIsValid(t *testing.T) {
	for i := 0; i < 100; i++ {
		if n := GenerateName(); ValidateName(n) != nil {
			t.Fatalf("generated invalid name %q", n)
		}
	}
}

func TestParseSize(t *testing.T) {
	cases := map[string]int64{
		"512M": 512 << 20, "2G": 2 << 30, "2g": 2 << 30, "1GiB": 1 << 30, "64K": 64 << 10,
		"1048576": 1 << 20, "3T": 3 << 40, "100MB": 100 << 20,
	}
	for in, want := range cases {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "0", "1.5G", "abc", "2X", "99999999999999T"} {
		if n, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want error", in, n)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{2 << 30: "2G", 512 << 20: "512M", 1536 << 10: "1536K"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestLayoutNamesEveryFileInsideTheSandboxDir(t *testing.T) {
	l := Home("/var/lib/paddock").Sandbox("web")
	if l.Dir != "/var/lib/paddock/sandboxes/web" {
		t.Fatalf("Dir = %s", l.Dir)
	}
	paths := []string{l.Config(), l.Disk(), l.SupervisorPid(), l.QEMUPid(), l.Socket(), l.QMPSocket(),
		l.ControlSocket(), l.ConsoleLog(), l.ExecLog(), l.SupervisorLog(), l.LastExit(), l.Lock(), l.RunLock()}
	seen := map[string]bool{}
	for _, p := range paths {
		if filepath.Dir(p) != l.Dir {
			t.Errorf("%s is outside %s", p, l.Dir)
		}
		if seen[p] {
			t.Errorf("%s named twice", p)
		}
		seen[p] = true
	}
	// The longest name with the root default must fit a unix socket path.
	long := Home("/var/lib/paddock").Sandbox(strings.Repeat("a", 63))
	if len(long.Socket()) > 107 {
		t.Errorf("socket path %d bytes, over the unix limit", len(long.Socket()))
	}
}

func TestDefaultHome(t *testing.T) {
	t.Setenv("PADDOCK_HOME", "/tmp/ph")
	if h, _ := DefaultHome(); h != "/tmp/ph" {
		t.Errorf("DefaultHome with PADDOCK_HOME = %s", h)
	}
	t.Setenv("PADDOCK_HOME", "")
	t.Setenv("XDG_DATA_HOME", "/tmp/xdg")
	h, _ := DefaultHome()
	if os.Geteuid() == 0 && h != "/var/lib/paddock" {
		t.Errorf("root DefaultHome = %s", h)
	}
	if os.Geteuid() != 0 && h != "/tmp/xdg/paddock" {
		t.Errorf("user DefaultHome = %s", h)
	}
}

func TestWriteJSONAtomicLeavesNoTempFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	for i := 0; i < 3; i++ {
		if err := WriteJSON(p, map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	var v map[string]int
	if err := ReadJSON(p, &v); err != nil || v["i"] != 2 {
		t.Fatalf("read back %v, %v", v, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir has %d entries, want only c.json", len(entries))
	}
}

func TestPidFileTracksProcessIdentity(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "x.pid")
	if err := WritePidFile(p, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	pf, err := ReadPidFile(p)
	if err != nil || !pf.Alive() {
		t.Fatalf("live process not alive: %+v %v", pf, err)
	}
	reused := pf
	reused.StartTime++
	if reused.Alive() {
		t.Error("a pid with another start time counts as alive")
	}
	rebooted := pf
	rebooted.BootID = "other-boot"
	if rebooted.Alive() {
		t.Error("a pid from another boot counts as alive")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if pf.Alive() {
		t.Error("dead process still alive")
	}
}

func TestLockFileIsExclusive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	l1, err := LockFile(p, false)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks are per open file description: a second open conflicts.
	if _, err := LockFile(p, false); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	if _, err := LockFile(filepath.Join(p, "no", "dir"), false); err == nil || errors.Is(err, ErrLocked) {
		t.Fatalf("lock in a missing directory: %v, want an error other than ErrLocked", err)
	}
	l1.Unlock()
	l2, err := LockFile(p, false)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	l2.Unlock()
}

// A lock whose file is removed while another process waits on it: the
// waiter holds the new file at the path, so a third is still kept out.
func TestLockRemoveWhileWaited(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	l1, err := LockFile(p, false)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Lock)
	go func() {
		l, err := LockFile(p, true)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	time.Sleep(50 * time.Millisecond) // let it block on l1's file (if not yet, it opens the new one)
	if err := l1.Remove(); err != nil {
		t.Fatal(err)
	}
	l2 := <-got
	if l2 == nil {
		return
	}
	if _, err := LockFile(p, false); !errors.Is(err, ErrLocked) {
		t.Errorf("a third lock while the waiter holds it: %v, want ErrLocked", err)
	}
	l2.Remove()
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file after Remove: %v", err)
	}
}

func TestSecureTightensALooseHome(t *testing.T) {
	dir := t.TempDir()
	h := Home(filepath.Join(dir, "home"))
	os.MkdirAll(filepath.Join(string(h), "sandboxes", "x"), 0o755)
	os.WriteFile(filepath.Join(string(h), "sandboxes", "x", "config.json"), []byte("{}"), 0o644)
	build := filepath.Join(string(h), "templates", ".t.build-123")
	for _, d := range []string{"staging/etc", "debootstrap-work-1/etc", "modules/drivers/staging", "staging-not"} {
		os.MkdirAll(filepath.Join(build, d), 0o755)
	}
	// A kernel's own folder named staging is paddock's cache, not a root
	// filesystem being built.
	kstaging := filepath.Join(string(h), "cache", "kernels", "k", "drivers", "staging")
	os.MkdirAll(kstaging, 0o755)
	os.WriteFile(filepath.Join(kstaging, "m.ko"), nil, 0o644)
	os.Chmod(string(h), 0o755)
	var notice strings.Builder
	if err := h.Secure(&notice); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		string(h): 0o700,
		filepath.Join(string(h), "sandboxes", "x"):                0o700,
		filepath.Join(string(h), "sandboxes", "x", "config.json"): 0o600,
		filepath.Join(build, "staging", "etc"):                    0o755, // a root filesystem being built
		filepath.Join(build, "debootstrap-work-1", "etc"):         0o755, // and another
		filepath.Join(build, "modules", "drivers", "staging"):     0o700,
		filepath.Join(build, "staging-not"):                       0o700,
		kstaging:                                                  0o700,
		filepath.Join(kstaging, "m.ko"):                           0o600,
	} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, st.Mode().Perm(), want)
		}
	}
	if !strings.Contains(notice.String(), "now its owner's only") {
		t.Errorf("notice = %q", notice.String())
	}
	// A private home is left alone, silently.
	notice.Reset()
	if err := h.Secure(&notice); err != nil || notice.Len() != 0 {
		t.Errorf("second Secure: %v, %q", err, notice.String())
	}
	// A missing one is made private.
	h2 := Home(filepath.Join(dir, "new", "home"))
	if err := h2.Secure(&notice); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(string(h2)); st.Mode().Perm() != 0o700 {
		t.Errorf("new home mode %04o", st.Mode().Perm())
	}
	if notice.Len() != 0 {
		t.Errorf("a new home: notice %q", notice.String())
	}
}

// A private home without the mark (made by a paddock that left its
// templates open) is swept once.
func TestSecureSweepsAnUnmarkedHome(t *testing.T) {
	var notice strings.Builder
	h3 := Home(filepath.Join(t.TempDir(), "old"))
	mod := filepath.Join(string(h3), "templates", "t", "modules", "kernel", "m.ko")
	os.MkdirAll(filepath.Dir(mod), 0o700)
	os.WriteFile(mod, nil, 0o600)
	for p := mod; p != string(h3); p = filepath.Dir(p) {
		os.Chmod(p, 0o755) // 4 folders and a file, whatever the umask
	}
	os.Chmod(mod, 0o644)
	if err := h3.Secure(&notice); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(mod); st.Mode().Perm() != 0o600 {
		t.Errorf("old template's module: mode %04o", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Dir(mod)); st.Mode().Perm() != 0o700 {
		t.Errorf("old template's folder: mode %04o", st.Mode().Perm())
	}
	if !strings.Contains(notice.String(), "5 folders and files in "+string(h3)) {
		t.Errorf("notice = %q", notice.String())
	}
	// Once marked, a private home is not walked again.
	os.Chmod(mod, 0o644)
	if err := h3.Secure(io.Discard); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(mod); st.Mode().Perm() != 0o644 {
		t.Errorf("marked home was walked again: mode %04o", st.Mode().Perm())
	}
}

func TestListenUnixRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test switches users: run it as root (make test does)")
	}
	dir, err := os.MkdirTemp("", "peer")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s.sock")
	l, err := ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	os.Chmod(dir, 0o755)
	os.Chmod(sock, 0o777) // the mode alone would let anyone in
	read := func(uid uint32) string {
		cmd := exec.Command("/usr/bin/python3", "-c", `import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(s.recv(10).decode().strip() or "closed")`, sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client as %d: %v: %s", uid, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := read(0); got != "hello" {
		t.Errorf("root: %q, want hello", got)
	}
	if got := read(65534); got != "closed" {
		t.Errorf("another user: %q, want the connection closed", got)
	}
}
