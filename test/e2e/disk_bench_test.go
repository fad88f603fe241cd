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
	"strings"
	"testing"
	"time"
)

// BenchmarkDiskCreate measures what --disk costs a create: restored tiny
// sandboxes made alternately with --disk 1G and without, in one run, and
// the two steps it adds (the supervisor's QMP block_resize, "grow disk",
// and the guest's online ext4 grow, the end of Configure's chain that
// holds it). It writes docs/bench/disk.json:
//
//	go test ./test/e2e -run XXX -bench DiskCreate -benchtime 1x
func BenchmarkDiskCreate(b *testing.B) {
	e := newEnv(b, "tiny")
	const rounds = 10
	e.create("warm") // makes the saved state, outside the measurement
	e.ok("rm", "-f", "warm")
	times := map[string][]float64{}
	steps := map[string][]float64{}
	growRe := regexp.MustCompile(`step="grow disk".* duration=([0-9.]+[µmn]?s)`)
	configRe := regexp.MustCompile(`step="configure guest".* duration=([0-9.]+[µmn]?s)`)
	for i := range rounds {
		for _, mode := range []string{"disk", "none"} {
			name := fmt.Sprintf("b%d-%s", i, mode)
			args := []string{"create", "--name", name, "--template", "tiny", "--memory", "512M", "--cpus", "1", "--workspace", e.ws}
			if mode == "disk" {
				args = append(args, "--disk", "1G")
			}
			cmd := exec.Command(e.bin, args...)
			cmd.Env = append(os.Environ(), "PADDOCK_HOME="+e.home)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			t0 := time.Now()
			if err := cmd.Run(); err != nil {
				b.Fatalf("create %s: %v: %s", name, err, errb.String())
			}
			times[mode] = append(times[mode], time.Since(t0).Seconds()*1000)
			log, _ := os.ReadFile(filepath.Join(e.home, "sandboxes", name, "supervisor.log"))
			for step, re := range map[string]*regexp.Regexp{"grow_disk": growRe, "configure": configRe} {
				if m := re.FindSubmatch(log); m != nil {
					if d, err := time.ParseDuration(string(m[1])); err == nil {
						steps[step+"_"+mode] = append(steps[step+"_"+mode], d.Seconds()*1000)
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
	p50 := map[string]float64{}
	for k, v := range steps {
		p50[k] = median(v)
	}
	res := map[string]any{
		"when":          time.Now().UTC().Format(time.RFC3339),
		"host":          fmt.Sprintf("%d cores, %s, %s", runtime.NumCPU(), runtime.GOARCH, cpu),
		"rounds":        rounds,
		"create_ms":     times,
		"steps_ms":      steps,
		"create_p50_ms": map[string]float64{"disk": median(times["disk"]), "none": median(times["none"])},
		"steps_p50_ms":  p50,
	}
	j, _ := json.MarshalIndent(res, "", "  ")
	os.MkdirAll("../../docs/bench", 0o755)
	os.WriteFile("../../docs/bench/disk.json", append(j, '\n'), 0o644)
	b.Logf("create p50: %.0f ms with --disk 1G, %.0f ms without; steps p50 %v", median(times["disk"]), median(times["none"]), p50)
	for b.Loop() {
	}
}
