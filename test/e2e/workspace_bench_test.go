package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// workspaceProbe times commands (in ms; a warm-up, then 5 runs) on each
// repository named after the workspace, in the synced workspace and in a
// copy on the guest's disk outside it. It prints "REPO WHERE WHAT MS" lines.
const workspaceProbe = `#!/bin/bash
ws=$1; shift
t() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || echo "failed: $*" >&2; e=$(date +%s%N); echo $(( (e-s)/1000000 )); }
git config --global --add safe.directory '*'
rm -rf /var/tmp/copy && mkdir /var/tmp/copy
for repo in "$@"; do cp -a "$ws/$repo" /var/tmp/copy/ || exit 1; done
for repo in "$@"; do
  for where in guest-workspace:$ws guest-disk:/var/tmp/copy; do
    dir=${where#*:}/$repo
    t git -C "$dir" status >/dev/null
    for i in 1 2 3 4 5; do echo "$repo ${where%%:*} git-status $(t git -C "$dir" status)"; done
    t grep -r -l --exclude-dir=.git package "$dir" >/dev/null
    for i in 1 2 3 4 5; do echo "$repo ${where%%:*} grep-r $(t grep -r -l --exclude-dir=.git package "$dir")"; done
  done
done
`

// wsRecord is one measurement: its samples and their median.
type wsRecord struct {
	What    string    `json:"what"`
	Repo    string    `json:"repo,omitempty"`
	Where   string    `json:"where"`
	Unit    string    `json:"unit"`
	Samples []float64 `json:"samples"`
	Median  float64   `json:"median"`
}

// BenchmarkWorkspace measures the synchronised workspace, in one run, on
// this repository (a git clone) and a generated 10,000-file one:
// git status and grep -r on the host, in the guest's synced workspace and
// in a copy on the guest's disk outside it; the sync latency each way
// (an edit outside any exec, until the other side sees it); and the
// initial copy of the 10,000-file repository (create with it as the
// workspace, until the first exec has run). It writes
// docs/bench/workspace.json:
//
//	go test ./test/e2e -run XXX -bench Workspace -benchtime 1x
//
// Needs root and the debian template.
func BenchmarkWorkspace(b *testing.B) {
	e := newEnv(b, "debian")
	w := &wsBench{b: b, e: e}
	big := w.repos()
	w.initialCopy(big)
	w.hostTools()
	// In the guest: the synced workspace and a copy outside it.
	w.create("wsbench", e.ws)
	e.installTool("wsbench", buildWsTool(b))
	w.guestProbe()
	w.unpackAndRemove()

	// The sync latency, both ways, outside any exec.
	g2h, h2g := e.syncLatency("wsbench", 11)
	w.add("sync latency, a guest edit until the host sees it", "", "guest->host", "ms", g2h)
	w.add("sync latency, a host edit until the guest sees it", "", "host->guest", "ms", h2g)

	res := map[string]any{
		"when":         time.Now().UTC().Format(time.RFC3339),
		"host":         hostCPU(),
		"template":     "debian, 2 cpus, 2G",
		"repositories": map[string]string{"paddock": "a git clone of this repository", "big": "generated: 10,000 files in 200 folders, one commit"},
		"measurements": w.recs,
	}
	js, _ := json.MarshalIndent(res, "", "  ")
	os.MkdirAll("../../docs/bench", 0o755)
	if err := os.WriteFile("../../docs/bench/workspace.json", append(js, '\n'), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, r := range w.recs {
		b.Logf("%-55s %-8s %-16s median %8.1f %s", r.What, r.Repo, r.Where, r.Median, r.Unit)
	}
	for b.Loop() {
	}
}

// wsBench is BenchmarkWorkspace's state: its paddock and the measurements
// so far.
type wsBench struct {
	b    *testing.B
	e    *env
	recs []wsRecord
}

func (w *wsBench) add(what, repo, where, unit string, v []float64) {
	w.recs = append(w.recs, wsRecord{what, repo, where, unit, v, median(v)})
}

func (w *wsBench) create(name, ws string) {
	w.e.ok("create", "--name", name, "--template", "debian", "--memory", "2G", "--cpus", "2", "--workspace", ws)
}

// repos puts into the workspace a git clone of this repository
// (paddock) and a generated one of 10,000 files (big), owned by the
// workspace's owner; it returns big's folder.
func (w *wsBench) repos() string {
	b, e := w.b, w.e
	repo, _ := filepath.Abs("../..")
	git := func(dir string, args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@b", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@b")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	git(e.ws, "clone", "-q", repo, "paddock")
	big := filepath.Join(e.ws, "big")
	for d := range 100 {
		os.MkdirAll(filepath.Join(big, fmt.Sprintf("pkg%d/sub", d)), 0o755)
		for f := range 50 {
			os.WriteFile(filepath.Join(big, fmt.Sprintf("pkg%d/f%d.go", d, f)), []byte(fmt.Sprintf("package p%d\n%s\n", d, strings.Repeat("x", 200))), 0o644)
			os.WriteFile(filepath.Join(big, fmt.Sprintf("pkg%d/sub/g%d.txt", d, f)), []byte(strings.Repeat("y", 100)+"\n"), 0o644)
		}
	}
	git(big, "init", "-q")
	git(big, "add", "-A")
	git(big, "commit", "-qm", "generated")
	// The workspace is its owner's (newEnv gives it uid 1000 as root).
	if out, err := exec.Command("chown", "-R", "--reference", e.ws, e.ws).CombinedOutput(); err != nil {
		b.Fatalf("chown: %v: %s", err, out)
	}
	return big
}

// initialCopy times creates on big until the first exec has run.
func (w *wsBench) initialCopy(big string) {
	b, e := w.b, w.e
	// The saved VM is made first, on an empty folder, so each create
	// only restores it and copies.
	empty := b.TempDir()
	os.Chmod(empty, 0o755)
	w.create("wswarm", empty)
	e.ok("rm", "-f", "wswarm")
	var copyMs, createMs []float64
	for i := range 3 {
		name := fmt.Sprintf("wscopy%d", i)
		t0 := time.Now()
		w.create(name, big)
		t1 := time.Now()
		e.ok("exec", name, "--", "true")
		createMs = append(createMs, float64(t1.Sub(t0).Milliseconds()))
		copyMs = append(copyMs, float64(time.Since(t0).Milliseconds()))
		e.ok("rm", "-f", name)
	}
	w.add("create until the first exec has run (initial copy)", "big", "guest-workspace", "ms", copyMs)
	w.add("create returns (initial copy)", "big", "guest-workspace", "ms", createMs)
}

// hostTools times git status and grep -r on the host.
func (w *wsBench) hostTools() {
	b, e := w.b, w.e
	for _, r := range []string{"paddock", "big"} {
		dir := filepath.Join(e.ws, r)
		for _, c := range []struct {
			what string
			argv []string
		}{
			{"git-status", []string{"git", "-c", "safe.directory=*", "-C", dir, "status"}},
			{"grep-r", []string{"grep", "-r", "-l", "--exclude-dir=.git", "package", dir}},
		} {
			var v []float64
			for i := range 6 {
				t0 := time.Now()
				if out, err := exec.Command(c.argv[0], c.argv[1:]...).CombinedOutput(); err != nil {
					b.Fatalf("%v: %v: %s", c.argv, err, tail(string(out), 500))
				}
				if i > 0 {
					v = append(v, float64(time.Since(t0).Microseconds())/1000)
				}
			}
			w.add(c.what, r, "host", "ms", v)
		}
	}
}

// guestProbe runs workspaceProbe in wsbench: the synced workspace and a
// copy outside it.
func (w *wsBench) guestProbe() {
	b, e := w.b, w.e
	out, errs, code := e.runIn(workspaceProbe, "exec", "-i", "-u", "root", "-w", "/", "wsbench", "--", "sh", "-c", "cat > /var/tmp/probe.sh")
	if code != 0 {
		b.Fatalf("copy the probe: exit %d %s%s", code, out, errs)
	}
	out, errs, code = e.run("exec", "-u", "root", "-w", "/", "wsbench", "--", "bash", "/var/tmp/probe.sh", e.ws, "paddock", "big")
	if code != 0 || errs != "" {
		b.Fatalf("probe: exit %d\n%s%s", code, out, errs)
	}
	samples := map[[3]string][]float64{}
	var order [][3]string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 4 {
			b.Fatalf("probe printed %q", l)
		}
		ms, _ := strconv.ParseFloat(f[3], 64)
		k := [3]string{f[2], f[0], f[1]}
		if samples[k] == nil {
			order = append(order, k)
		}
		samples[k] = append(samples[k], ms)
	}
	for _, k := range order {
		w.add(k[0], k[1], k[2], "ms", samples[k])
	}
}

// unpackAndRemove times a write-heavy step, as npm ci is: unpack the
// 10,000-file repository (40 MB) into the workspace and into the guest's
// disk, timed around the exec, which returns once the workspace's new
// files are on the host; then remove it again (also synced).
func (w *wsBench) unpackAndRemove() {
	e := w.e
	e.ok("exec", "-u", "root", "-w", "/", "wsbench", "--", "tar", "-cf", "/var/tmp/big.tar", "-C", e.ws, "big")
	for _, where := range []struct{ name, dir string }{{"guest-workspace", e.ws}, {"guest-disk", "/var/tmp"}} {
		var unpack, remove []float64
		for i := range 3 {
			dir := fmt.Sprintf("%s/unpack%d", where.dir, i)
			t0 := time.Now()
			e.ok("exec", "wsbench", "--", "sh", "-c", "mkdir "+dir+" && tar -xf /var/tmp/big.tar -C "+dir)
			unpack = append(unpack, float64(time.Since(t0).Milliseconds()))
			t0 = time.Now()
			e.ok("exec", "wsbench", "--", "rm", "-rf", dir)
			remove = append(remove, float64(time.Since(t0).Milliseconds()))
		}
		w.add("unpack 10,000 files (tar -x), until the exec returns", "big", where.name, "ms", unpack)
		w.add("remove them (rm -rf), until the exec returns", "big", where.name, "ms", remove)
	}
}
