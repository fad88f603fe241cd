package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mount add, ls and rm on a running sandbox, create --mount, and a folder
// added to a stopped sandbox: a read-only folder cannot be changed in the
// guest but follows the host, a read-write one goes both ways, and rm
// takes the copy out of the guest after its last changes reached the host.
func TestMountAddRemove(t *testing.T) {
	e := newEnv(t, "tiny")
	atCreate := mountDir(t, map[string]string{"lib.txt": "lib\n"})
	e.create("mt", "--mount", atCreate+":/opt/lib")
	if out := e.ok("exec", "mt", "--", "sh", "-c", "cat /opt/lib/lib.txt; echo x > /opt/lib/new 2>/dev/null || echo read-only"); out != "lib\nread-only\n" {
		t.Fatalf("a --mount folder in the guest: %q", out)
	}
	ro, rw := mountAdd(t, e)
	ls := e.ok("mount", "ls", "mt")
	for _, want := range []string{e.ws + "  ", atCreate, "/opt/lib", ro, "/srv/data", rw} {
		if !strings.Contains(ls, want) {
			t.Errorf("mount ls lacks %q:\n%s", want, ls)
		}
	}
	mountAddRefused(t, e, ro, ls)
	mountRm(t, e, rw)

	// A stopped sandbox takes the folder at its next start.
	e.ok("stop", "mt")
	later := mountDir(t, map[string]string{"later.txt": "later\n"})
	e.ok("mount", "add", "mt", later+":/srv/later")
	e.ok("start", "mt")
	if out := e.ok("exec", "mt", "--", "cat", "/srv/later/later.txt", "/opt/lib/lib.txt"); out != "later\nlib\n" {
		t.Errorf("folders after a start: %q", out)
	}
	for _, dir := range []string{atCreate, ro, rw, later} {
		checkWorkspaceClean(t, dir, 0)
	}
}

// mountDir is a new host folder holding files (name: content).
func mountDir(t *testing.T, files map[string]string) string {
	dir, err := os.MkdirTemp("", "pdmnt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// mountAdd adds to the running mt a read-only folder at /srv/data, which
// follows the host, and a read-write one at its host path, which goes both
// ways; it returns their host folders.
func mountAdd(t *testing.T, e *env) (ro, rw string) {
	ro = mountDir(t, map[string]string{"data.txt": "v1\n"})
	if out := e.ok("mount", "add", "mt", ro+":/srv/data"); !strings.Contains(out, "/srv/data (ro)") {
		t.Errorf("mount add printed %q", out)
	}
	if out := e.ok("exec", "mt", "--", "sh", "-c", "cat /srv/data/data.txt; touch /srv/data/x 2>/dev/null || echo read-only"); out != "v1\nread-only\n" {
		t.Fatalf("a read-only folder in the guest: %q", out)
	}
	os.WriteFile(filepath.Join(ro, "data.txt"), []byte("v2\n"), 0o644)
	if out := e.ok("exec", "mt", "--", "cat", "/srv/data/data.txt"); out != "v2\n" {
		t.Errorf("a host change of a read-only folder: the guest reads %q", out)
	}

	rw = mountDir(t, map[string]string{"notes.txt": "host\n"})
	e.ok("mount", "add", "mt", rw+":rw")
	if out := e.ok("exec", "mt", "--", "sh", "-c", "cat "+rw+"/notes.txt; echo guest > "+rw+"/from-guest"); out != "host\n" {
		t.Errorf("a read-write folder at the host's path: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(rw, "from-guest")); err != nil || string(b) != "guest\n" {
		t.Errorf("the guest's write to a read-write folder on the host: %q %v", b, err)
	}
	return ro, rw
}

// mountAddRefused: a system folder, a path overlapping a synced one, a
// folder that is not there are refused, and mount ls still prints ls.
func mountAddRefused(t *testing.T, e *env, ro, ls string) {
	for _, c := range []struct{ spec, want string }{
		{ro + ":/etc", "system folder"},
		{ro + ":" + e.ws + "/sub", "overlaps"},
		{"/nonexistent-pd:/x", "does not exist"},
	} {
		if _, errs, code := e.run("mount", "add", "mt", c.spec); code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("mount add %s: exit %d %q, want an error saying %q", c.spec, code, errs, c.want)
		}
	}
	if ls2 := e.ok("mount", "ls", "mt"); ls2 != ls {
		t.Errorf("a refused mount add changed the list:\n%s", ls2)
	}
}

// mountRm: the guest's last change to rw reaches the host, then the copies
// of rw and /srv/data leave the guest.
func mountRm(t *testing.T, e *env, rw string) {
	e.ok("exec", "mt", "--", "sh", "-c", "(sleep 0.2; echo late > "+rw+"/late) >/dev/null 2>&1 &")
	time.Sleep(time.Second)
	e.ok("mount", "rm", "mt", rw)
	if b, _ := os.ReadFile(filepath.Join(rw, "late")); string(b) != "late\n" {
		t.Errorf("the guest's last write before mount rm: host has %q", b)
	}
	e.ok("mount", "rm", "mt", "/srv/data")
	if out := e.ok("exec", "mt", "--", "sh", "-c", "test -e "+rw+" && echo rw-there; test -e /srv/data && echo ro-there; grep -c /srv/data /proc/mounts || true"); out != "0\n" {
		t.Errorf("after mount rm the guest still has the copies (ls lines, mounts): %q", out)
	}
	if _, errs, code := e.run("mount", "rm", "mt", "/srv/data"); code == 0 || !strings.Contains(errs, "no folder") {
		t.Errorf("mount rm of a folder not there: exit %d %q", code, errs)
	}
}
