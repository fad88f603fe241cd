package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The workspace is a copy on the guest's own disk, kept in step with the
// host's folder both ways. These tests hold the contract:
//   - create returns after the initial copy;
//   - an exec starts after the host's changes are in the guest, and
//     returns after the guest's changes are on the host;
//   - outside an exec, a change reaches the other side within about 1 s;
//   - a file appears whole (temporary name and rename), never torn;
//   - deletes, renames, empty folders go both ways;
//   - a file changed on both sides keeps the host's version, and the
//     guest's beside it as NAME.paddock-conflict;
//   - checkpoints of a busy workspace, stop/start and reset keep it whole.

// An exec sees what the host had before it started, and when it returns
// the host has what it did: no waiting in between, round after round.
func TestWorkspaceSyncInitialCopyAndExec(t *testing.T) {
	e := newEnv(t, "tiny")
	tool := buildWsTool(t)
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	e.hostWrite("pre.txt", "before create\n", 0o644)
	e.hostWrite("deep/a/b/c.txt", "deep\n", 0o644)
	e.hostWrite("run.sh", "#!/bin/sh\necho ran\n", 0o755)
	e.hostWrite("blob", string(blob), 0o600)
	e.hostMkdir("empty")
	e.hostSymlink("deep/a", "link")
	e.create("sy")
	out := e.guestSh("sy", "cat pre.txt deep/a/b/c.txt; test -d empty && echo empty-dir; ./run.sh; test -L link && readlink link; sha256sum blob | cut -c1-64; stat -c %a blob run.sh")
	want := fmt.Sprintf("before create\ndeep\nempty-dir\nran\ndeep/a\n%x\n600\n755\n", sha256.Sum256(blob))
	if out != want {
		t.Fatalf("the first exec after create sees:\n%s\nwant:\n%s", out, want)
	}
	e.installTool("sy", tool)
	listing := e.waitTreesEqual(t, "sy", tool, 0)
	t.Logf("the copy after create:\n%s", listing)

	for i := 1; i <= 5; i++ {
		// The guest's changes are on the host when exec returns.
		e.guestSh("sy", fmt.Sprintf("echo round%d > g%d.txt; mkdir -p gd%d/x; echo %d > gd%d/x/f; rm -f h%d.txt pre.txt", i, i, i, i, i, i-1))
		if got := e.hostRead(fmt.Sprintf("g%d.txt", i)); got != fmt.Sprintf("round%d\n", i) {
			t.Errorf("round %d: right after exec the host's g%d.txt is %q", i, i, got)
		}
		if got := e.hostRead(fmt.Sprintf("gd%d/x/f", i)); got != fmt.Sprintf("%d\n", i) {
			t.Errorf("round %d: right after exec the host's gd%d/x/f is %q", i, i, got)
		}
		for _, gone := range []string{fmt.Sprintf("h%d.txt", i-1), "pre.txt"} {
			if _, err := os.Lstat(filepath.Join(e.ws, gone)); err == nil {
				t.Errorf("round %d: right after exec the host still has %s, removed in the guest", i, gone)
			}
		}
		// The host's changes are in the guest when the next exec starts.
		e.hostWrite(fmt.Sprintf("h%d.txt", i), fmt.Sprintf("host%d\n", i), 0o644)
		os.Remove(filepath.Join(e.ws, fmt.Sprintf("g%d.txt", i)))
		os.RemoveAll(filepath.Join(e.ws, fmt.Sprintf("gd%d", i)))
		out, errs, code := e.run("exec", "sy", "--", "sh", "-c", fmt.Sprintf("cat h%d.txt; test ! -e g%d.txt && test ! -e gd%d && echo gone", i, i, i))
		if want := fmt.Sprintf("host%d\ngone\n", i); out != want {
			t.Errorf("round %d: right after the host's changes the guest sees %q (exit %d %s), want %q", i, out, code, errs, want)
		}
	}
	listing = e.waitTreesEqual(t, "sy", tool, 10*time.Second)
	noTempFiles(t, "host", listing)
}

// Deletes, renames (of files and of folders with files in them), a file
// that becomes a folder, and empty folders go both ways.
func TestWorkspaceSyncDeletesAndRenames(t *testing.T) {
	e := newEnv(t, "tiny")
	tool := buildWsTool(t)
	for _, f := range []string{"hd/a", "hd/sub/b", "hx/y/z", "hf", "hdel", "hover", "htarget", "htc", "hnest/keep"} {
		e.hostWrite(f, "host "+f+"\n", 0o644)
	}
	e.create("dr")
	e.installTool("dr", tool)
	e.guestSh("dr", "for f in gd/a gd/sub/b gx/y/z gf gdel gover gtarget gtc gnest/keep; do mkdir -p $(dirname $f); echo guest $f > $f; done")
	e.waitTreesEqual(t, "dr", tool, 10*time.Second)

	// The host's side, seen by the next exec.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ws := func(p string) string { return filepath.Join(e.ws, p) }
	must(os.Rename(ws("hd"), ws("hd2")))
	must(os.RemoveAll(ws("hx")))
	must(os.Rename(ws("hf"), ws("hf2")))
	must(os.Remove(ws("hdel")))
	must(os.Rename(ws("hover"), ws("htarget"))) // over an existing file
	must(os.Rename(ws("hd2"), ws("hnest/hd2"))) // a folder moved into another
	must(os.Remove(ws("htc")))
	e.hostWrite("htc/inside", "now a folder\n", 0o644)
	e.hostMkdir("hempty")
	e.hostMkdir("hempty2/deeper")
	out := e.guestSh("dr", `for p in hd hd2 hx hf hdel hover; do test -e $p && echo "still $p"; done
cat hnest/hd2/a hnest/hd2/sub/b hf2 htarget htc/inside
test -d hempty && test -d hempty2/deeper && echo empty-dirs`)
	if want := "host hd/a\nhost hd/sub/b\nhost hf\nhost hover\nnow a folder\nempty-dirs\n"; out != want {
		t.Errorf("the guest after the host's deletes and renames:\n%s\nwant:\n%s", out, want)
	}

	// The guest's side, on the host when exec returns.
	e.guestSh("dr", "mv gd gd2 && rm -r gx && mv gf gf2 && rm gdel && mv gover gtarget && mv gd2 gnest/gd2 && rm gtc && mkdir gtc && echo now a folder > gtc/inside && mkdir gempty && mkdir -p gempty2/deeper")
	for _, p := range []string{"gd", "gd2", "gx", "gf", "gdel", "gover"} {
		if _, err := os.Lstat(ws(p)); err == nil {
			t.Errorf("right after exec the host still has %s", p)
		}
	}
	for p, want := range map[string]string{"gnest/gd2/a": "guest gd/a\n", "gnest/gd2/sub/b": "guest gd/sub/b\n", "gf2": "guest gf\n", "gtarget": "guest gover\n", "gtc/inside": "now a folder\n", "gnest/keep": "guest gnest/keep\n"} {
		if got := e.hostRead(p); got != want {
			t.Errorf("right after exec the host's %s is %q, want %q", p, got, want)
		}
	}
	for _, d := range []string{"gempty", "gempty2/deeper"} {
		if st, err := os.Lstat(ws(d)); err != nil || !st.IsDir() {
			t.Errorf("the guest's empty folder %s is not a folder on the host: %v", d, err)
		}
	}
	listing := e.waitTreesEqual(t, "dr", tool, 10*time.Second)
	noTempFiles(t, "host", listing)
	t.Logf("settled:\n%s", listing)
}

// Outside an exec (a host editor, a guest background process), a change
// reaches the other side within about a second: the median of 7 edits
// each way is at most 1 s, and none takes more than 10 s.
func TestWorkspaceSyncLatency(t *testing.T) {
	e := newEnv(t, "tiny")
	tool := buildWsTool(t)
	e.create("lat")
	e.installTool("lat", tool)
	g2h, h2g := e.syncLatency("lat", 7)
	for dir, v := range map[string][]float64{"guest->host": g2h, "host->guest": h2g} {
		t.Logf("%s: median %.0f ms, max %.0f ms", dir, median(v), slices.Max(v))
		if median(v) > 1000 {
			t.Errorf("%s: median latency %.0f ms, want <= 1 s", dir, median(v))
		}
		if slices.Max(v) > 10000 {
			t.Errorf("%s: an edit took %.0f ms, want <= 10 s", dir, slices.Max(v))
		}
	}
}

// syncLatency makes n edits each way in the workspace of sandbox name
// (with wstool installed), outside any exec: the guest's tool writes g.txt
// in the background, the host answers each by writing h.txt (in place,
// then as an editor saves: a new file renamed over the old), and each side
// polls for the other's. It returns the latencies in ms. The guest's
// times are on its own clock: the offset to the host's is bounded by each
// round trip (the guest cannot see the host's edit before it was made,
// nor write its own after the host saw it) and taken as the middle of
// those bounds.
func (e *env) syncLatency(name string, n int) (g2h, h2g []float64) {
	t := e.t
	t.Helper()
	e.hostWrite("h.txt", "0\n", 0o644)
	e.ok("exec", name, "--", "sh", "-c", fmt.Sprintf("%s lat %s %d > /tmp/lat.out 2>&1 &", guestToolPath, e.ws, n))
	var guestWrote, hostSaw, hostWrote []int64
	for i := 1; i <= n; i++ {
		prefix := fmt.Sprintf("%d ", i)
		deadline := time.Now().Add(10 * time.Second)
		var g string
		for g = e.hostRead("g.txt"); !strings.HasPrefix(g, prefix); g = e.hostRead("g.txt") {
			if time.Now().After(deadline) {
				t.Fatalf("edit %d: the guest's g.txt did not reach the host within 10 s (host has %q)", i, g)
			}
			time.Sleep(2 * time.Millisecond)
		}
		saw := time.Now().UnixNano()
		ns, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(g, prefix)), 10, 64)
		if err != nil {
			t.Fatalf("g.txt %q", g)
		}
		guestWrote, hostSaw = append(guestWrote, ns), append(hostSaw, saw)
		if i%2 == 1 {
			e.hostWrite("h.txt", fmt.Sprintf("%d\n", i), 0o644)
		} else {
			e.hostWrite(".h.txt.swp", fmt.Sprintf("%d\n", i), 0o644)
			if err := os.Rename(filepath.Join(e.ws, ".h.txt.swp"), filepath.Join(e.ws, "h.txt")); err != nil {
				t.Fatal(err)
			}
		}
		hostWrote = append(hostWrote, time.Now().UnixNano())
	}
	var guestSaw []int64
	for deadline := time.Now().Add(15 * time.Second); len(guestSaw) < n; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the guest saw %d of the host's %d edits", len(guestSaw), n)
		}
		out := e.ok("exec", name, "--", "cat", "/tmp/lat.out")
		guestSaw = guestSaw[:0]
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) == 2 && f[1] == "timeout" {
				t.Fatalf("the host's edit %s did not reach the guest within 30 s", f[0])
			}
			if len(f) == 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				guestSaw = append(guestSaw, v)
			}
		}
	}
	// off = guest clock - host clock, within [lo, hi].
	lo, hi := int64(-1<<62), int64(1<<62)
	for i := range n {
		lo = max(lo, guestWrote[i]-hostSaw[i])
		hi = min(hi, guestSaw[i]-hostWrote[i])
	}
	off := lo/2 + hi/2
	if lo > hi {
		t.Logf("the clock bounds cross (lo %d > hi %d ns): the guest clock moved; using their middle", lo, hi)
	}
	t.Logf("guest clock - host clock: %.1f ms, +-%.1f ms", float64(off)/1e6, float64(hi-lo)/2e6)
	for i := range n {
		a := float64(hostSaw[i]-(guestWrote[i]-off)) / 1e6
		b := float64((guestSaw[i]-off)-hostWrote[i]) / 1e6
		rt := float64(hostSaw[i]-guestWrote[i]+guestSaw[i]-hostWrote[i]) / 1e6
		g2h, h2g = append(g2h, a), append(h2g, b)
		t.Logf("edit %d: guest->host %.0f ms, host->guest %.0f ms (both: %.0f ms, clock-free)", i+1, a, b, rt)
	}
	return g2h, h2g
}

// A file appears on the other side whole: a 50 MiB file written slowly on
// the host is, each time a guest reader finds it, the final file; and the
// other way round. No temporary file is left.
func TestWorkspaceSyncAtomicWrites(t *testing.T) {
	e := newEnv(t, "tiny")
	tool := buildWsTool(t)
	e.create("big")
	e.installTool("big", tool)
	big := filepath.Join(e.ws, "big")
	e.ok("exec", "big", "--", "sh", "-c", fmt.Sprintf("%s watchsum %s /tmp/stop > /tmp/obs 2>&1 &", guestToolPath, big))
	hostToGuestWhole(t, e, big)
	os.Remove(big)
	guestToHostWhole(t, e)
	listing := e.waitTreesEqual(t, "big", tool, time.Minute)
	noTempFiles(t, "host and guest", listing)
}

// atomicSize is the size of the files TestWorkspaceSyncAtomicWrites writes.
const atomicSize = 50 << 20

// hostToGuestWhole writes big slowly on the host while a guest reader
// (started on it) records what it finds: the whole file or nothing.
func hostToGuestWhole(t *testing.T, e *env, big string) {
	const size = atomicSize
	data := make([]byte, size)
	rand.Read(data)
	final := fmt.Sprintf("%d %x", size, sha256.Sum256(data))
	f, err := os.OpenFile(big, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := e.wsOwner()
	f.Chown(uid, gid)
	start := time.Now()
	for off := 0; off < size; off += 1 << 20 {
		if _, err := f.Write(data[off : off+1<<20]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("host wrote 50 MiB in %s", time.Since(start).Round(time.Millisecond))
	var obs string
	waitFor(t, "the guest to read the whole file", 3*time.Minute, func() bool {
		obs = e.ok("exec", "big", "--", "cat", "/tmp/obs")
		return strings.Contains(obs, final)
	})
	t.Logf("the whole file in the guest %s after the host closed it", time.Since(start).Round(time.Millisecond))
	e.ok("exec", "big", "--", "touch", "/tmp/stop")
	waitFor(t, "the guest reader to stop", time.Minute, func() bool {
		obs = e.ok("exec", "big", "--", "cat", "/tmp/obs")
		return strings.Contains(obs, "reads ")
	})
	t.Logf("the guest's observations:\n%s", obs)
	for _, l := range strings.Split(strings.TrimSpace(obs), "\n") {
		if l != "absent" && l != final && !strings.HasPrefix(l, "reads ") {
			t.Errorf("the guest read %q, want the whole file (%s) or none", l, final)
		}
	}
}

// guestToHostWhole writes big2 in the guest while the host reads whatever
// it finds: the whole file, or a first part sent while the writer still
// had it open, at most once every 5 s.
func guestToHostWhole(t *testing.T, e *env) {
	const size = atomicSize
	e.guestSh("big", "dd if=/dev/urandom of=/tmp/src bs=1M count=50 2>/dev/null")
	big2 := filepath.Join(e.ws, "big2")
	observed, stopWatch := watchHostFile(big2)
	wrote := time.Now()
	out := e.guestSh("big", "cat /tmp/src > big2 && sha256sum big2 | cut -c1-64 && rm /tmp/src")
	took := time.Since(wrote)
	stopWatch()
	gsum := strings.TrimSpace(out)
	final2, err := os.ReadFile(big2)
	if err != nil {
		t.Fatalf("right after exec the host has no big2: %v", err)
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(final2)); got != gsum || len(final2) != size {
		t.Fatalf("right after exec the host's big2: %d bytes, sha256 %s; the guest's %s", len(final2), got, gsum)
	}
	checkHostVersions(t, observed, final2, gsum, took)
}

// seenFile is one version of a file the host read: its size and sha256.
type seenFile struct {
	size int64
	sum  string
}

// watchHostFile reads path on the host every 5 ms and records each
// different version it finds, until stop is called.
func watchHostFile(path string) (observed *[]seenFile, stop func()) {
	var (
		mu      sync.Mutex
		seen    []seenFile
		quit    = make(chan struct{})
		stopped = make(chan struct{})
	)
	go func() {
		defer close(stopped)
		last := seenFile{-1, ""}
		for {
			select {
			case <-quit:
				return
			default:
			}
			if f, err := os.Open(path); err == nil {
				h := sha256.New()
				n, _ := io.Copy(h, f)
				f.Close()
				s := seenFile{n, fmt.Sprintf("%x", h.Sum(nil))}
				if s != last {
					mu.Lock()
					seen = append(seen, s)
					mu.Unlock()
					last = s
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return &seen, func() { close(quit); <-stopped }
}

// checkHostVersions checks the versions of big2 the host saw while the
// guest wrote it (in took) against the final file.
func checkHostVersions(t *testing.T, observedp *[]seenFile, final2 []byte, gsum string, took time.Duration) {
	const size = atomicSize
	observed := *observedp
	// A version sent while a writer still had the file open (the empty
	// file the shell made before cat wrote, or one held 5 s) is a first
	// part of the final file; anything else was torn.
	parts := 0
	for _, s := range observed {
		switch {
		case s.size == size && s.sum == gsum, s.size == 0:
		case s.size < size && fmt.Sprintf("%x", sha256.Sum256(final2[:s.size])) == s.sum:
			parts++
		default:
			t.Errorf("the host read big2 as %d bytes, sha256 %s: neither the guest's file (%s) nor a first part of it", s.size, s.sum, gsum)
		}
	}
	// A file written in place on the host would show many; a file held
	// back while it changes is sent at most once every 5 s.
	if allowed := 1 + int(took/(5*time.Second)); parts > allowed {
		t.Errorf("the host saw %d first parts of big2 while the guest wrote it (in %s), want at most %d: is the file written in place?", parts, took.Round(time.Millisecond), allowed)
	} else if parts > 0 {
		t.Logf("the host saw %d first parts of big2 before the whole", parts)
	}
	t.Logf("the host saw %d versions of big2", len(observed))
}

// A file changed on both sides before either change was synced keeps the
// host's version; the guest's is kept beside it as NAME.paddock-conflict
// (-2, -3 ...), on both sides, and no appended line is lost.
func TestWorkspaceSyncConflict(t *testing.T) {
	e := newEnv(t, "tiny")
	tool := buildWsTool(t)
	e.hostWrite("F", "start\n", 0o644)
	e.create("cf")
	e.installTool("cf", tool)
	// A file that keeps changing is held back until quiet (or 5 s): the
	// guest's appends (from 1 s after this exec to 4 s) stay unsynced
	// while the host writes its own, half way through them. They start
	// after the exec has returned, so its end does not wait for them.
	e.guestSh("cf", fmt.Sprintf("rm -f /tmp/append.done; (sleep 1; exec %s append F 15 3000 /tmp/append.done) >/dev/null 2>&1 &", guestToolPath))
	time.Sleep(2500 * time.Millisecond) // the middle of the appends: a moment, not a condition
	e.hostWrite("F", "HOST\n", 0o644)
	var count int
	waitFor(t, "the guest's appender to end", 30*time.Second, func() bool {
		out, _, code := e.run("exec", "cf", "--", "cat", "/tmp/append.done")
		if code != 0 {
			return false
		}
		count, _ = strconv.Atoi(strings.TrimSpace(out))
		return true
	})
	listing := e.waitTreesEqual(t, "cf", tool, 30*time.Second)
	t.Logf("settled:\n%s", listing)
	noTempFiles(t, "host and guest", listing)
	if f := e.hostRead("F"); !strings.HasPrefix(f, "HOST\n") {
		t.Errorf("F on the host is %q, want the host's version (HOST...)", tail(f, 200))
	}
	conflicts, _ := filepath.Glob(filepath.Join(e.ws, "F.paddock-conflict*"))
	if len(conflicts) == 0 {
		t.Fatalf("no F.paddock-conflict* beside F: the guest's version is lost")
	}
	lines := map[string]bool{}
	guestInConflict := false
	for _, p := range append(conflicts, filepath.Join(e.ws, "F")) {
		b, _ := os.ReadFile(p)
		for _, l := range strings.Split(string(b), "\n") {
			lines[l] = true
			if strings.HasPrefix(l, "G") && p != filepath.Join(e.ws, "F") {
				guestInConflict = true
			}
		}
		t.Logf("%s: %d bytes, starts %q", filepath.Base(p), len(b), string(b[:min(len(b), 40)]))
	}
	if !guestInConflict {
		t.Errorf("no conflict file holds the guest's appended lines")
	}
	var lost []string
	for i := 1; i <= count; i++ {
		if !lines[fmt.Sprintf("G%d", i)] {
			lost = append(lost, fmt.Sprintf("G%d", i))
		}
	}
	if len(lost) > 0 {
		t.Errorf("of the guest's %d appended lines, %d are in neither F nor a conflict file: %v", count, len(lost), lost)
	}
}

// A checkpoint of a sandbox with a process in the workspace (its current
// folder, a file open there) succeeds; a fork from it, without a
// workspace, has the workspace's folder on its disk as it was at the
// checkpoint, and the process; the original goes on syncing.
func TestWorkspaceSyncCheckpointBusy(t *testing.T) {
	e := newEnv(t, "tiny")
	e.hostWrite("marker", "at-checkpoint\n", 0o644)
	e.hostWrite("held", "open\n", 0o644)
	e.create("busy")
	e.guestSh("busy", "sh -c 'exec 3<held; exec sleep 600' >/dev/null 2>&1 &")
	pid := strings.TrimSpace(e.guestSh("busy", "pidof sleep"))
	if out := e.ok("exec", "-u", "root", "busy", "--", "sh", "-c", "readlink /proc/"+pid+"/cwd; readlink /proc/"+pid+"/fd/3"); out != e.ws+"\n"+e.ws+"/held\n" {
		t.Fatalf("the background process's folder and open file: %q", out)
	}
	e.ok("checkpoint", "busy", "ck")
	// The original goes on, both ways.
	e.hostWrite("marker", "after\n", 0o644)
	if out := e.guestSh("busy", "cat marker; echo from-guest > after-ck"); out != "after\n" {
		t.Errorf("the original after the checkpoint reads marker %q", out)
	}
	if got := e.hostRead("after-ck"); got != "from-guest\n" {
		t.Errorf("the original's write after the checkpoint: host has %q", got)
	}
	// create's default workspace is the current folder: the fork is made
	// from another one, so the original's folder is only on its disk.
	other, err := os.MkdirTemp("", "pdwo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(other) })
	os.Chmod(other, 0o755)
	uid, gid := e.wsOwner()
	os.Chown(other, uid, gid)
	elsewhere := *e
	elsewhere.ws = other
	elsewhere.ok("create", "--name", "fork", "--from", "ck")
	out := e.ok("exec", "-u", "root", "-w", "/", "fork", "--", "sh", "-c", "cat "+e.ws+"/marker; pidof sleep; readlink /proc/"+pid+"/cwd")
	if want := "at-checkpoint\n" + pid + "\n" + e.ws + "\n"; out != want {
		t.Errorf("the fork reads %q, want %q (marker as at the checkpoint, the process in the workspace)", out, want)
	}
	// The fork's copy is its own: nothing of it reaches the host.
	e.ok("exec", "-u", "root", "-w", "/", "fork", "--", "sh", "-c", "echo fork > "+e.ws+"/fork-only; echo changed > "+e.ws+"/marker")
	time.Sleep(2 * time.Second)
	if _, err := os.Lstat(filepath.Join(e.ws, "fork-only")); err == nil {
		t.Error("a file the fork wrote appeared in the host's workspace")
	}
	if got := e.hostRead("marker"); got != "after\n" {
		t.Errorf("the host's marker is %q after the fork wrote its own", got)
	}
}

// Stop and start, reset, ls and rm keep the workspace whole: changes made
// on the host while stopped reach the guest, a reset guest gets the whole
// copy back from the host (and the host loses nothing), rm leaves the
// host's folder as it was.
func TestWorkspaceSyncStopStartReset(t *testing.T) {
	e := newEnv(t, "tiny")
	tool := buildWsTool(t)
	e.hostWrite("mod.txt", "v1\n", 0o644)
	e.hostWrite("del.txt", "doomed\n", 0o644)
	e.hostWrite("dir/keep.txt", "kept\n", 0o644)
	e.create("ssr")
	e.guestSh("ssr", "echo guest > guest.txt; mkdir -p gdir/sub")
	if ls := e.ok("ls"); !strings.Contains(ls, e.ws) {
		t.Errorf("ls does not show the workspace %s:\n%s", e.ws, ls)
	}
	e.ok("stop", "ssr")
	e.hostWrite("mod.txt", "v2\n", 0o644)
	os.Remove(filepath.Join(e.ws, "del.txt"))
	e.hostWrite("new.txt", "while stopped\n", 0o644)
	e.ok("start", "ssr")
	out := e.guestSh("ssr", "cat mod.txt new.txt guest.txt dir/keep.txt; test -e del.txt && echo del.txt-still-there; test -d gdir/sub && echo gdir")
	if want := "v2\nwhile stopped\nguest\nkept\ngdir\n"; out != want {
		t.Errorf("after stop, host edits, start, the guest reads:\n%s\nwant:\n%s", out, want)
	}
	e.installTool("ssr", tool)
	before := e.waitTreesEqual(t, "ssr", tool, 10*time.Second)

	// Reset: the guest's disk is the template's again; the copy comes
	// back whole from the host, which keeps everything.
	e.ok("reset", "ssr")
	e.installTool("ssr", tool)
	after := e.waitTreesEqual(t, "ssr", tool, 30*time.Second)
	if after != before {
		t.Errorf("the workspace changed across a reset:\n%s", treeDiff(before, after))
	}
	if out := e.guestSh("ssr", "cat mod.txt guest.txt; echo after-reset > ar.txt"); out != "v2\nguest\n" {
		t.Errorf("after reset the guest reads %q", out)
	}
	if got := e.hostRead("ar.txt"); got != "after-reset\n" {
		t.Errorf("a write after the reset: host has %q", got)
	}

	// rm leaves the host's folder as it was.
	before = hostTree(t, tool, e.ws)
	e.ok("rm", "-f", "ssr")
	if after := hostTree(t, tool, e.ws); after != before {
		t.Errorf("rm changed the host's workspace:\n%s", treeDiff(before, after))
	}
	if ls := e.ok("ls", "--json"); strings.Contains(ls, "ssr") {
		t.Errorf("ls after rm: %s", ls)
	}
}
