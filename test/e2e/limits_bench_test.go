package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkLimitsCreate measures what the host cgroup costs a create:
// restored tiny sandboxes made alternately with and without it
// (PADDOCK_CGROUP=off), in one run, and the supervisor's own time to make
// and join the group. It writes docs/bench/limits.json:
//
//	go test ./test/e2e -run XXX -bench LimitsCreate -benchtime 1x
func BenchmarkLimitsCreate(b *testing.B) {
	e := newEnv(b, "tiny")
	const rounds = 10
	e.create("warm") // makes the saved state, outside the measurement
	e.ok("rm", "-f", "warm")
	times := map[string][]float64{}
	var joins []float64
	joinRe := regexp.MustCompile(`msg="host cgroup".* duration=([0-9.]+[µmn]?s)`)
	for i := range rounds {
		for _, mode := range []string{"cgroup", "off"} {
			name := fmt.Sprintf("b%d-%s", i, mode)
			cmd := exec.Command(e.bin, "create", "--name", name, "--template", "tiny", "--memory", "512M", "--cpus", "1", "--workspace", e.ws)
			cmd.Env = append(os.Environ(), "PADDOCK_HOME="+e.home)
			if mode == "off" {
				cmd.Env = append(cmd.Env, "PADDOCK_CGROUP=off")
			}
			var errb bytes.Buffer
			cmd.Stderr = &errb
			t0 := time.Now()
			if err := cmd.Run(); err != nil {
				b.Fatalf("create %s: %v: %s", name, err, errb.String())
			}
			times[mode] = append(times[mode], time.Since(t0).Seconds()*1000)
			if mode == "cgroup" {
				log, _ := os.ReadFile(filepath.Join(e.home, "sandboxes", name, "supervisor.log"))
				if m := joinRe.FindSubmatch(log); m != nil {
					if d, err := time.ParseDuration(string(m[1])); err == nil {
						joins = append(joins, d.Seconds()*1000)
					}
				}
			}
			e.ok("rm", "-f", name)
		}
	}
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.*)$`).FindSubmatch(b); m != nil {
			cpu = strings.TrimSpace(string(m[1]))
		}
	}
	res := map[string]any{
		"when":            time.Now().UTC().Format(time.RFC3339),
		"host":            fmt.Sprintf("%d cores, %s, %s", runtime.NumCPU(), runtime.GOARCH, cpu),
		"rounds":          rounds,
		"create_ms":       times,
		"join_ms":         joins,
		"create_p50_ms":   map[string]float64{"cgroup": median(times["cgroup"]), "off": median(times["off"])},
		"join_p50_ms":     median(joins),
		"join_max_ms":     slices.Max(append(joins, 0)),
		"what_join_means": "the supervisor's cgroup.Join: make the group in cpu, cpuacct, memory, pids, write the limits, move itself in",
	}
	j, _ := json.MarshalIndent(res, "", "  ")
	os.MkdirAll("../../docs/bench", 0o755)
	os.WriteFile("../../docs/bench/limits.json", append(j, '\n'), 0o644)
	b.Logf("create p50: %.0f ms with the group, %.0f ms without; join p50 %.2f ms", median(times["cgroup"]), median(times["off"]), median(joins))
	for b.Loop() {
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
