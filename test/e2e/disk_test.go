package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const gib = int64(1) << 30

// rootSize is the size of the guest's root file system (df, in bytes).
func (e *env) rootSize(name string) int64 {
	e.t.Helper()
	out := e.ok("exec", name, "--", "df", "-k", "/")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	if len(fields) < 2 {
		e.t.Fatalf("df -k /: %q", out)
	}
	kb, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		e.t.Fatalf("df -k /: %q: %v", out, err)
	}
	return kb << 10
}

// fillDisk writes zeros to /big as root until the disk is full, and checks
// that the writer got ENOSPC, wrote close to limit, and that the host's
// overlay stayed below limit plus a tenth; then that the sandbox answers.
func (e *env) fillDisk(name string, limit int64) {
	e.t.Helper()
	out, errs, code := e.run("exec", "-u", "root", name, "--", "sh", "-c", "dd if=/dev/zero of=/big bs=1M; echo exit=$?; stat -c %s /big")
	if !strings.Contains(errs+out, "No space left on device") || !strings.Contains(out, "exit=1") || code != 0 {
		e.t.Fatalf("dd until full: exit %d, want ENOSPC\nstdout: %s\nstderr: %s", code, out, errs)
	}
	fields := strings.Fields(out)
	written, _ := strconv.ParseInt(fields[len(fields)-1], 10, 64)
	if written < limit*85/100 || written > limit {
		e.t.Errorf("dd wrote %d bytes before ENOSPC, want about %d", written, limit)
	}
	var st syscall.Stat_t
	disk := filepath.Join(e.home, "sandboxes", name, "disk.qcow2")
	if err := syscall.Stat(disk, &st); err != nil {
		e.t.Fatal(err)
	}
	if host := st.Blocks * 512; host > limit+limit/10 {
		e.t.Errorf("the host's overlay holds %d bytes for a %d-byte disk", host, limit)
	} else {
		e.t.Logf("guest wrote %d bytes; host overlay %d bytes allocated", written, host)
	}
	if out := e.ok("exec", name, "--", "echo", "alive"); strings.TrimSpace(out) != "alive" {
		e.t.Fatalf("exec after a full disk: %q", out)
	}
}

// near reports whether the file system size got is that of a disk of
// size bytes (ext4 keeps a few percent for itself).
func near(got, size int64) bool { return got > size*90/100 && got <= size }

func TestDiskTiny(t *testing.T) {
	e := newEnv(t, "tiny")
	for _, mode := range []string{"restore", "cold"} {
		t.Run(mode, func(t *testing.T) {
			e := e.with(t)
			extra := []string{"--disk", "1G"}
			if mode == "cold" {
				extra = append(extra, "--cold")
			}
			e.create("disk-"+mode, extra...)
			if got := e.rootSize("disk-" + mode); !near(got, gib) {
				t.Fatalf("root file system of a --disk 1G sandbox: %d bytes", got)
			}
			e.fillDisk("disk-"+mode, gib)
			if mode == "cold" {
				return
			}
			// A start after a stop boots cold on the grown overlay.
			e.ok("stop", "disk-"+mode)
			e.ok("start", "disk-"+mode)
			if got := e.rootSize("disk-" + mode); !near(got, gib) {
				t.Fatalf("root file system after stop and start: %d bytes", got)
			}
			e.ok("rm", "-f", "disk-"+mode)
		})
	}
}

// A fork keeps its checkpoint's disk, or grows it; it never shrinks it.
func TestDiskFork(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("src", "--disk", "1G")
	e.ok("checkpoint", "src", "ck")
	e.ok("create", "--name", "same", "--from", "ck")
	if got := e.rootSize("same"); !near(got, gib) {
		t.Fatalf("fork of a 1G sandbox: %d bytes", got)
	}
	e.ok("create", "--name", "more", "--from", "ck", "--disk", "2G")
	if got := e.rootSize("more"); !near(got, 2*gib) {
		t.Fatalf("fork with --disk 2G: %d bytes", got)
	}
	_, errs, code := e.run("create", "--name", "less", "--from", "ck", "--disk", "600M")
	if code == 0 || !strings.Contains(errs, "has its 1G of disk or more") {
		t.Fatalf("fork with a smaller disk: exit %d: %s", code, errs)
	}
}

// debian's image is 16G: --disk 1G is refused (a disk only grows), a
// bigger disk grows the restored VM's.
func TestDiskDebian(t *testing.T) {
	e := newEnv(t, "debian")
	_, errs, code := e.run("create", "--name", "small", "--template", "debian", "--disk", "1G", "--workspace", e.ws)
	if code == 0 || !strings.Contains(errs, "smaller than the 16G") || !strings.Contains(errs, "use at least 16G") {
		t.Fatalf("debian --disk 1G: exit %d: %s", code, errs)
	}
	e.ok("create", "--name", "big", "--template", "debian", "--memory", "512M", "--disk", "20G", "--workspace", e.ws)
	if got := e.rootSize("big"); !near(got, 20*gib) {
		t.Fatalf("debian --disk 20G: %d bytes", got)
	}
	if out := e.ok("exec", "big", "--", "echo", "ok"); strings.TrimSpace(out) != "ok" {
		t.Fatalf("exec: %q", out)
	}
}

func TestDiskRefused(t *testing.T) {
	e := newEnv(t, "tiny")
	for _, tc := range []struct{ disk, want string }{
		{"1T", "is free under PADDOCK_HOME"},
		{"256M", "smaller than the 512M"},
		{"lots", "invalid size"},
		{"-1G", "invalid size"},
	} {
		_, errs, code := e.run("create", "--name", "no", "--template", "tiny", "--disk", tc.disk, "--workspace", e.ws)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("--disk %s: exit %d, want an error saying %q: %s", tc.disk, code, tc.want, errs)
		}
	}
	var list []struct{ Name string }
	if err := json.Unmarshal([]byte(e.ok("ls", "--json")), &list); err != nil || len(list) != 0 {
		t.Errorf("refused creates left sandboxes: %v %v", list, err)
	}
	entries, _ := os.ReadDir(filepath.Join(e.home, "sandboxes"))
	if len(entries) != 0 {
		t.Errorf("refused creates left %d folders", len(entries))
	}
}

// Below MinFreeSpace (1 GiB) free under PADDOCK_HOME, create refuses and
// says how to make room.
func TestDiskLowSpace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a small tmpfs as PADDOCK_HOME: run it as root (make test does)")
	}
	e := newEnv(t, "tiny")
	th := templatesHome(t)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m,mode=0700", "tmpfs", e.home).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", e.home).Run() })
	for _, d := range []string{"templates", "cache"} {
		if err := os.Symlink(filepath.Join(th, d), filepath.Join(e.home, d)); err != nil {
			t.Fatal(err)
		}
	}
	_, errs, code := e.run("create", "--name", "no", "--template", "tiny", "--workspace", e.ws)
	if code == 0 || !strings.Contains(errs, "below the 1G a sandbox needs") || !strings.Contains(errs, "paddock rm") {
		t.Fatalf("create on a 256M home: exit %d: %s", code, errs)
	}
	entries, _ := os.ReadDir(filepath.Join(e.home, "sandboxes"))
	if len(entries) != 0 {
		t.Errorf("a refused create left %d folders", len(entries))
	}
}
