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
// the first command's output, without and with a warm pool,
// commands.run('true'), a 1 MiB write and read, a 100 MiB download, 50
// creates and runs at once) and writes
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
	// The concurrent creates need room above the per-key caps.
	base, stop := e.serve(b, "--max-sandboxes", "60", "--rate", "0")
	res := runBench(b, e, dir, base, key, false)
	stop()
	// The same again with a warm pool: creates claim an idle clone.
	base, _ = e.serve(b, "--warm", "debian=1")
	for k, v := range runBench(b, e, dir, base, key, true) {
		res[k] = v
	}
	res["when"] = time.Now().UTC().Format(time.RFC3339)
	res["host"] = hostCPU()
	js, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile("../../docs/bench/api.json", append(js, '\n'), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s", js)
}

// runBench runs bench.mjs against serve at base and returns its figures.
func runBench(b *testing.B, e *env, dir, base, key string, warm bool) map[string]any {
	cmd := exec.Command("node", filepath.Join(dir, "bench.mjs"))
	cmd.Env = append(os.Environ(), "E2B_API_URL="+base, "E2B_SANDBOX_URL="+base, "E2B_API_KEY="+key, "PADDOCK_SHELL_TEMPLATE=debian",
		"PADDOCK_BIN="+e.bin, "PADDOCK_HOME="+e.home)
	if warm {
		cmd.Env = append(cmd.Env, "PADDOCK_BENCH_WARM=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("bench.mjs: %v", err)
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		b.Fatalf("bench.mjs printed %q: %v", out, err)
	}
	return res
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
