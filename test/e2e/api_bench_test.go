package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkAPI measures the e2b SDK against paddock serve (Sandbox.create to
// the first command's output, commands.run('true')) and writes
// docs/bench/api.json:
//
//	go test ./test/e2e -run XXX -bench API -benchtime 1x
//
// Needs root, Node.js and the debian template.
func BenchmarkAPI(b *testing.B) {
	dir, _ := filepath.Abs("../e2b")
	if out, err := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--prefix", dir).CombinedOutput(); err != nil {
		b.Fatalf("npm ci: %v\n%s", err, out)
	}
	e := newEnv(b, "debian")
	key := strings.TrimSpace(e.ok("apikey", "create", "bench"))
	base, _ := e.serve(b)
	cmd := exec.Command("node", filepath.Join(dir, "bench.mjs"))
	cmd.Env = append(os.Environ(), "E2B_API_URL="+base, "E2B_SANDBOX_URL="+base, "E2B_API_KEY="+key, "PADDOCK_SHELL_TEMPLATE=debian")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("bench.mjs: %v", err)
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		b.Fatalf("bench.mjs printed %q: %v", out, err)
	}
	res["when"] = time.Now().UTC().Format(time.RFC3339)
	res["host"] = hostCPU()
	js, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile("../../docs/bench/api.json", append(js, '\n'), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s", js)
}

// hostCPU is the CPU model, for the record.
func hostCPU() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
