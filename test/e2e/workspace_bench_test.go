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

// workspaceProbe times `git status` (median of 5 after a warm-up, in ms)
// on each repository under the workspace, with the 9p share remounted at
// its path in each cache mode, and on a copy on the guest's own disk.
// It runs as root in the guest, from /var/tmp (the share is remounted).
const workspaceProbe = `#!/bin/bash
ws=$1; shift
t() { local s e; s=$(date +%s%N); git -C "$1" status >/dev/null 2>&1 || echo "git status failed in $1" >&2; e=$(date +%s%N); echo $(( (e-s)/1000000 )); }
med() { t "$1" >/dev/null; for i in 1 2 3 4 5; do t "$1"; done | sort -n | sed -n 3p; }
git config --global --add safe.directory '*'
cd /
rm -rf /var/tmp/copy && cp -a "$ws" /var/tmp/copy
for mode in mmap,dirsync none loose; do
  umount "$ws" && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,access=client,cache=$mode workspace "$ws" || exit 1
  for repo in "$@"; do echo "$repo 9p-cache=$mode $(med "$ws/$repo")"; done
done
for repo in "$@"; do echo "$repo guest-disk $(med /var/tmp/copy/$repo)"; done
umount "$ws" && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,access=client,cache=mmap,dirsync workspace "$ws"
`

// BenchmarkWorkspace measures git status in the workspace against the
// guest's own disk, on this repository and a generated 10,000-file one,
// and writes docs/bench/workspace.json:
//
//	go test ./test/e2e -run XXX -bench Workspace -benchtime 1x
//
// Needs root and the debian template.
func BenchmarkWorkspace(b *testing.B) {
	e := newEnv(b, "debian")
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
	os.WriteFile(filepath.Join(e.ws, "probe.sh"), []byte(workspaceProbe), 0o755)
	e.create("wsbench", "--template", "debian", "--memory", "2G", "--cpus", "2")
	e.ok("exec", "-u", "root", "-w", "/", "wsbench", "--", "cp", filepath.Join(e.ws, "probe.sh"), "/var/tmp/probe.sh")
	out, errs, code := e.run("exec", "-u", "root", "-w", "/", "wsbench", "--", "bash", "/var/tmp/probe.sh", e.ws, "paddock", "big")
	if code != 0 || errs != "" {
		b.Fatalf("probe: exit %d\n%s%s", code, out, errs)
	}
	res := map[string]any{"when": time.Now().UTC().Format(time.RFC3339), "host": hostCPU(), "template": "debian", "unit": "ms, git status, median of 5"}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			b.Fatalf("probe printed %q", l)
		}
		ms, _ := strconv.Atoi(f[2])
		res[f[0]+" "+f[1]] = ms
	}
	js, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile("../../docs/bench/workspace.json", append(js, '\n'), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s", js)
}
