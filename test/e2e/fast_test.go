package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRestoredSandboxesGetTheirOwnIdentity(t *testing.T) {
	e := newEnv(t, "tiny")
	os.WriteFile(filepath.Join(e.ws, "shared.txt"), []byte("ws\n"), 0o644)
	e.create("ida")
	e.create("idb")
	type facts struct{ random, machineID, hostname, ws string }
	get := func(name string) facts {
		before := time.Now().Unix()
		out := e.ok("exec", name, "--", "sh", "-c", "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; cat /etc/machine-id; hostname; cat shared.txt; date +%s")
		after := time.Now().Unix()
		f := strings.Split(strings.TrimSpace(out), "\n")
		if len(f) != 5 {
			t.Fatalf("%s printed %q", name, out)
		}
		// The guest read its clock during the exec: within the host's
		// times before and after it, give or take a second of rounding.
		guest, _ := strconv.ParseInt(f[4], 10, 64)
		if guest < before-1 || guest > after+1 {
			t.Errorf("%s clock says %d, outside the host's %d..%d", name, guest, before, after)
		}
		return facts{f[0], f[1], f[2], f[3]}
	}
	a, b := get("ida"), get("idb")
	if a.random == b.random || len(a.random) != 64 {
		t.Errorf("random bytes equal or short: %q %q", a.random, b.random)
	}
	if a.machineID == b.machineID || len(a.machineID) != 32 {
		t.Errorf("machine ids %q %q", a.machineID, b.machineID)
	}
	if a.hostname != "ida" || b.hostname != "idb" {
		t.Errorf("hostnames %q %q", a.hostname, b.hostname)
	}
	if out := e.ok("exec", "idb", "--", "sh", "-c", "cat /etc/hostname; grep 127.0.1.1 /etc/hosts"); out != "idb\n127.0.1.1\tidb\n" {
		t.Errorf("idb's /etc/hostname and hosts line: %q", out)
	}
	if a.ws != "ws" || b.ws != "ws" {
		t.Errorf("workspace not mounted after restore: %q %q", a.ws, b.ws)
	}
	for _, n := range []string{"ida", "idb"} {
		if boot := e.inspect(n).Boot; boot != "restore" {
			t.Errorf("%s booted %q, want restore (saved vm state)", n, boot)
		}
	}

	// The guest clock keeps the host's pace (a TCG guest told the wrong
	// TSC rate ran 24% fast here). Each guest reading is bracketed by host
	// times, so the guest's elapsed time must lie between the shortest and
	// the longest host interval the two readings can span, however late
	// the execs run; 3% and /proc/uptime's 10 ms steps are the tolerance.
	// A clock 24% fast leaves that window while the two execs together
	// take under 1.2s.
	type reading struct {
		before, after time.Time
		uptime        float64
	}
	read := func() reading {
		r := reading{before: time.Now()}
		out := e.ok("exec", "ida", "--", "cut", "-d", " ", "-f", "1", "/proc/uptime")
		r.after = time.Now()
		v, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
		if err != nil {
			t.Fatalf("uptime %q: %v", out, err)
		}
		r.uptime = v
		return r
	}
	r0 := read()
	time.Sleep(6 * time.Second)
	r1 := read()
	guest := r1.uptime - r0.uptime
	shortest, longest := r1.before.Sub(r0.after).Seconds(), r1.after.Sub(r0.before).Seconds()
	t.Logf("guest clock advanced %.2fs while the host's advanced %.2fs to %.2fs", guest, shortest, longest)
	if guest < shortest*0.97-0.02 || guest > longest*1.03+0.02 {
		t.Errorf("the guest clock advanced %.2fs while the host's advanced %.2fs to %.2fs", guest, shortest, longest)
	}
}

func TestColdCreate(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("cold", "--cold")
	if boot := e.inspect("cold").Boot; boot != "cold" {
		t.Fatalf("boot %q, want cold", boot)
	}
	if out := e.ok("exec", "cold", "--", "hostname"); out != "cold\n" {
		t.Fatalf("hostname %q", out)
	}
	// A cold boot's console has the kernel's and the agent's boot lines.
	if console := e.ok("logs", "--kind", "console", "cold"); !strings.Contains(console, "paddock-agent: ready") {
		t.Errorf("console log lacks the agent's ready line:\n%s", tail(console, 500))
	}
}

func TestResetRestoresRootAndKeepsWorkspace(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("rst")
	e.ok("exec", "-u", "root", "rst", "--", "sh", "-c", "echo x > /root/scratch; echo kept > "+filepath.Join(e.ws, "kept.txt"))
	e.ok("reset", "rst")
	if _, _, code := e.run("exec", "rst", "--", "test", "-e", "/root/scratch"); code == 0 {
		t.Fatal("root-fs file survived reset")
	}
	if out := e.ok("exec", "rst", "--", "cat", "kept.txt"); out != "kept\n" {
		t.Fatalf("workspace file after reset: %q", out)
	}
	if info := e.inspect("rst"); info.State != "running" || info.Boot != "restore" {
		t.Fatalf("after reset: %+v", info)
	}
}

// counter starts a background loop in the guest that writes an increasing
// number to /tmp/count every 100 ms, outside the workspace. Each number
// replaces the file by rename, so a reader never sees it empty.
const counter = `cd /; echo 0 > /tmp/count; sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done' >/dev/null 2>&1 &`

func readCount(t *testing.T, e *env, name string) int {
	t.Helper()
	out := e.ok("exec", name, "--", "cat", "/tmp/count")
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("count %q", out)
	}
	return n
}

func waitCountGrows(t *testing.T, e *env, name string) {
	t.Helper()
	first := readCount(t, e, name)
	waitFor(t, name+"'s counter to count", 10*time.Second, func() bool { return readCount(t, e, name) > first })
}

func TestPauseBlocksExecAndResumeContinues(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("pz")
	e.ok("exec", "pz", "--", "sh", "-c", counter)
	waitCountGrows(t, e, "pz")
	e.ok("pause", "pz")
	if st := e.inspect("pz").State; st != "paused" {
		t.Fatalf("status %q after pause", st)
	}
	start := time.Now()
	_, errs, code := e.run("exec", "pz", "--", "true")
	if code == 0 || !strings.Contains(errs, "paused") {
		t.Fatalf("exec on a paused sandbox: code %d stderr %q", code, errs)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("exec on a paused sandbox took %s to fail", d)
	}
	e.ok("resume", "pz")
	waitCountGrows(t, e, "pz")
}

func TestCheckpointAndFork(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("orig", "--policy", "deny-all", "--allow-host", "example.org")
	e.ok("exec", "-u", "root", "orig", "--", "sh", "-c", "echo saved > /root/file; "+counter)
	waitCountGrows(t, e, "orig")

	e.ok("checkpoint", "orig", "ck1")
	if ls := e.ok("checkpoint", "ls"); !regexp.MustCompile(`(?m)^ck1\s+orig\s+tiny\s.*\sready$`).MatchString(ls) {
		t.Fatalf("checkpoint ls:\n%s", ls)
	}
	// A name taken is refused and the checkpoint that has it is kept; a
	// folder without checkpoint.json (a save killed midway) is listed as
	// incomplete, with what to do.
	if _, errs, code := e.run("checkpoint", "orig", "ck1"); code == 0 || !strings.Contains(errs, `checkpoint "ck1" already exists`) {
		t.Fatalf("a second checkpoint ck1: exit %d, %s", code, errs)
	}
	if err := os.Mkdir(filepath.Join(e.home, "checkpoints", "half"), 0o700); err != nil {
		t.Fatal(err)
	}
	var cks []struct{ Name, State, Reason string }
	if err := json.Unmarshal([]byte(e.ok("checkpoint", "ls", "--json")), &cks); err != nil || len(cks) != 2 ||
		cks[0].Name != "ck1" || cks[0].State != "ready" || cks[1].State != "incomplete" || !strings.Contains(cks[1].Reason, "paddock checkpoint rm half") {
		t.Fatalf("checkpoint ls --json: %+v %v", cks, err)
	}
	e.ok("checkpoint", "rm", "half")
	// The original keeps running, workspace included.
	waitCountGrows(t, e, "orig")
	if _, _, code := e.run("exec", "orig", "--", "ls", e.ws); code != 0 {
		t.Fatal("workspace not mounted again after the checkpoint")
	}

	e.ok("create", "--name", "fork", "--from", "ck1", "--workspace", e.ws)
	if console := e.ok("logs", "fork"); !strings.Contains(console, "restored from checkpoint ck1") {
		t.Errorf("fork's console log does not say where it came from:\n%s", tail(console, 500))
	}
	if out := e.ok("exec", "-u", "root", "fork", "--", "cat", "/root/file"); out != "saved\n" {
		t.Fatalf("fork's /root/file: %q", out)
	}
	waitCountGrows(t, e, "fork")
	if out := e.ok("exec", "fork", "--", "hostname"); out != "fork\n" {
		t.Fatalf("fork hostname %q", out)
	}
	if pol := e.ok("policy", "show", "fork"); !strings.Contains(pol, "deny-all") || !strings.Contains(pol, "example.org") {
		t.Fatalf("the fork does not keep its checkpoint's network policy:\n%s", pol)
	}
	// Independent from here on.
	e.ok("exec", "-u", "root", "fork", "--", "sh", "-c", "echo fork-only > /root/other")
	if _, _, code := e.run("exec", "orig", "--", "test", "-e", "/root/other"); code == 0 {
		t.Fatal("a file written in the fork appeared in the original")
	}
	e.ok("rm", "-f", "orig")
	waitCountGrows(t, e, "fork")

	// A checkpoint saved from another virtual machine (here: another CPU
	// model) is refused, and the refused fork leaves nothing.
	machine := filepath.Join(e.home, "checkpoints", "ck1", "machine.json")
	b, err := os.ReadFile(machine)
	if err != nil {
		t.Fatalf("the checkpoint has no machine record: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m["cpu"] == "" || m["qemu"] == "" || m["devices"] == nil {
		t.Fatalf("machine record %s: %v", b, err)
	}
	m["cpu"] = "max"
	b, _ = json.Marshal(m)
	os.WriteFile(machine, b, 0o644)
	_, errs, code := e.run("create", "--name", "fork2", "--from", "ck1", "--workspace", e.ws)
	if code == 0 || !strings.Contains(errs, "another virtual machine") {
		t.Fatalf("fork from a checkpoint of another CPU model: code %d stderr %q", code, errs)
	}
	if ls := e.ok("ls"); strings.Contains(ls, "fork2") {
		t.Fatalf("a refused fork left a sandbox:\n%s", ls)
	}
	e.ok("checkpoint", "rm", "ck1")
	if ls := e.ok("checkpoint", "ls", "--json"); strings.TrimSpace(ls) != "[]" {
		t.Fatalf("checkpoint ls after rm: %s", ls)
	}
}

func TestTemplateSaveThenCreate(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("src")
	e.ok("exec", "-u", "root", "src", "--", "sh", "-c", "echo from-src > /root/saved")
	name := "saved-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { e.run("template", "rm", name) })
	if out := e.ok("template", "save", "src", name); strings.TrimSpace(out) != name {
		t.Fatalf("template save printed %q", out)
	}
	if ls := e.ok("template", "ls"); !strings.Contains(ls, name) {
		t.Fatalf("template ls lacks %s:\n%s", name, ls)
	}
	// The source keeps running after the save.
	if out := e.ok("exec", "src", "--", "hostname"); out != "src\n" {
		t.Fatalf("source after save: %q", out)
	}
	e.ok("create", "--name", "child", "--template", name, "--memory", "512M", "--cpus", "1", "--workspace", e.ws)
	if out := e.ok("exec", "-u", "root", "child", "--", "cat", "/root/saved"); out != "from-src\n" {
		t.Fatalf("sandbox from the saved template reads %q", out)
	}
	// The identity files are the sandbox's own (bound from /run), so the
	// saved root filesystem does not carry src's.
	srcID := e.ok("exec", "src", "--", "cat", "/etc/machine-id")
	out := e.ok("exec", "-u", "root", "child", "--", "sh", "-c", "cat /etc/hostname; umount /etc/hostname /etc/machine-id /etc/hosts && cat /etc/hostname /etc/machine-id /etc/hosts")
	if !strings.HasPrefix(out, "child\n") || strings.Contains(out[len("child\n"):], "src") || strings.Contains(out, strings.TrimSpace(srcID)) {
		t.Errorf("child's identity files, then the saved disk's under them:\n%s(src's machine id %s)", out, srcID)
	}
	if _, errs, code := e.run("template", "save", "src", name); code == 0 || !strings.Contains(errs, "already exists") {
		t.Fatalf("saving over an existing template: code %d %q", code, errs)
	}
	if _, errs, code := e.run("template", "save", "src", "tiny"); code == 0 || !strings.Contains(errs, "built-in") {
		t.Fatalf("saving over a recipe's name: code %d %q", code, errs)
	}
}

func TestCorruptSavedStateFallsBackToColdBoot(t *testing.T) {
	e := newEnvPrivateStates(t, "tiny")
	e.create("maker")
	e.ok("rm", "-f", "maker")
	states, _ := filepath.Glob(filepath.Join(e.home, "cache", "states", "tiny-*", "dev.state"))
	if len(states) != 1 {
		t.Fatalf("want one saved state, found %q", states)
	}
	if err := os.WriteFile(states[0], []byte("not a migration stream"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.create("after")
	if boot := e.inspect("after").Boot; boot != "cold" {
		t.Fatalf("boot %q after a corrupt state, want cold", boot)
	}
	if out := e.ok("exec", "after", "--", "hostname"); out != "after\n" {
		t.Fatalf("hostname %q", out)
	}
	if log := e.ok("logs", "--kind", "supervisor", "after"); !strings.Contains(log, "falling back to a cold boot") {
		t.Fatalf("no warning in the supervisor log:\n%s", log)
	}
}

func TestNoShareMemoryUsesAPrivateCopy(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("priv", "--no-share-memory")
	e.create("shared")
	maps := func(name string) string {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(e.inspect(name).QEMUPid) + "/maps")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// QEMU maps files by the paths of its own mounts (/proc/self/fd/N/...),
	// so the saved states' RAM files are told by their inode numbers.
	states, _ := filepath.Glob(filepath.Join(e.home, "cache", "states", "tiny-*", "ram"))
	stateInodes := map[string]bool{}
	for _, p := range states {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			stateInodes[strconv.FormatUint(st.Ino, 10)] = true
		}
	}
	mapsState := func(m string) bool {
		for _, l := range strings.Split(m, "\n") {
			if f := strings.Fields(l); len(f) >= 6 && stateInodes[f[4]] {
				return true
			}
		}
		return false
	}
	if m := maps("priv"); !strings.Contains(m, "ram.private") || mapsState(m) {
		t.Errorf("--no-share-memory sandbox maps:\n%s", grepLines(m, "ram"))
	}
	if m := maps("shared"); !mapsState(m) {
		t.Errorf("default sandbox does not map the template's RAM file (inodes %v):\n%s", stateInodes, grepLines(m, "ram"))
	}
	if out := e.ok("exec", "priv", "--", "hostname"); out != "priv\n" {
		t.Fatalf("hostname %q", out)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestRebuiltTemplateIsRefusedUntilReset(t *testing.T) {
	e := newEnvPrivateTemplates(t, "tiny")
	e.create("old")
	e.ok("exec", "-u", "root", "old", "--", "sh", "-c", "echo before > /root/mark")
	e.ok("stop", "old")
	e.ok("template", "build", "--force", "tiny")
	_, errs, code := e.run("start", "old")
	if code == 0 || !strings.Contains(errs, "rebuilt") || !strings.Contains(errs, "paddock reset old") {
		t.Fatalf("start on a rebuilt template: code %d stderr %q", code, errs)
	}
	e.ok("reset", "old")
	if _, _, code := e.run("exec", "old", "--", "test", "-e", "/root/mark"); code == 0 {
		t.Fatal("root-fs file survived the reset onto the rebuilt template")
	}
	if out := e.ok("exec", "old", "--", "hostname"); out != "old\n" {
		t.Fatalf("hostname %q", out)
	}
}
