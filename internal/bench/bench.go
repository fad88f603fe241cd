// Package bench measures paddock's lifecycle on the machine it runs on, by
// running the paddock binary as a user would: cold and restored creates to
// the first exec, exec round trips, stop, rm, reset, pause/resume,
// checkpoint, fork, and the host memory (PSS) of idle sandboxes. It
// reports medians, and ratios measured in the same run.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Options configure a run.
type Options struct {
	Bin       string // the paddock binary
	Template  string
	Workspace string
	Runs      int // samples per timed operation (at least 10 for creates)
	Log       io.Writer
}

// Stat summarises samples in milliseconds.
type Stat struct {
	N      int     `json:"n"`
	Min    float64 `json:"min_ms"`
	Median float64 `json:"median_ms"`
	Max    float64 `json:"max_ms"`
}

// Result is one run's report, written as JSON.
type Result struct {
	Date     time.Time       `json:"date"`
	Host     Host            `json:"host"`
	Template string          `json:"template"`
	Ops      map[string]Stat `json:"ops"`
	// ColdOverRestore is median cold create-to-first-exec over median
	// restored create-to-first-exec, from this run.
	ColdOverRestore float64 `json:"cold_over_restore_ratio"`
	// PSSMiB is the mean proportional set size (QEMU + supervisor) per
	// idle sandbox, by number of sandboxes running, 3 s after the last
	// create.
	PSSMiB map[string]float64 `json:"pss_mib_per_sandbox"`
	// PSSMiBSettled is the same for the 10 sandboxes once the newest has
	// idled 30 s: a clone's first root-filesystem write (the workspace's
	// mount point) is committed by the guest's journal and written back
	// 5-15 s after its create, and that brings new code into QEMU's code
	// cache and buffers into QEMU; after 30 s it changes little more.
	PSSMiBSettled map[string]float64 `json:"pss_mib_per_sandbox_idle_30s"`
}

// Host describes the machine.
type Host struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	MemGiB int    `json:"mem_gib"`
	Kernel string `json:"kernel"`
	Accel  string `json:"accel"`
}

func stat(samples []time.Duration) Stat {
	s := append([]time.Duration(nil), samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	st := Stat{N: len(s)}
	if len(s) == 0 {
		return st
	}
	st.Min, st.Max = ms(s[0]), ms(s[len(s)-1])
	if len(s)%2 == 1 {
		st.Median = ms(s[len(s)/2])
	} else {
		st.Median = (ms(s[len(s)/2-1]) + ms(s[len(s)/2])) / 2
	}
	return st
}

// runner is the state of one Run: the sandboxes and checkpoints it made
// (removed at the end) and the samples taken so far, by operation.
type runner struct {
	o       Options
	seq     int
	made    []string
	ckpts   []string
	samples map[string][]time.Duration
}

func (r *runner) add(op string, d time.Duration) { r.samples[op] = append(r.samples[op], d) }

func (r *runner) logf(format string, a ...any) {
	if r.o.Log != nil {
		fmt.Fprintf(r.o.Log, format+"\n", a...)
	}
}

func (r *runner) paddock(args ...string) (string, error) {
	cmd := exec.Command(r.o.Bin, args...)
	cmd.Dir = r.o.Workspace
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("paddock %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (r *runner) timed(args ...string) (time.Duration, error) {
	t0 := time.Now()
	_, err := r.paddock(args...)
	return time.Since(t0), err
}

func (r *runner) name() string {
	r.seq++
	n := fmt.Sprintf("bench-%d-%d", os.Getpid(), r.seq)
	r.made = append(r.made, n)
	return n
}

func (r *runner) create(extra ...string) (string, error) {
	n := r.name()
	// The default 2 vCPUs: what a plain paddock create gets.
	args := append([]string{"create", "--name", n, "--template", r.o.Template, "--memory", "512M", "--workspace", r.o.Workspace}, extra...)
	_, err := r.paddock(args...)
	return n, err
}

func (r *runner) cleanup() {
	for _, n := range r.made {
		r.paddock("rm", "-f", n)
	}
	r.made = nil
}

// Run measures and returns the report. It creates and removes its own
// sandboxes (named bench-PID-N) and checkpoints.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Runs < 1 {
		o.Runs = 10
	}
	r := &runner{o: o, samples: map[string][]time.Duration{}}
	defer r.cleanup()
	defer r.removeCheckpoints()
	res := &Result{Date: time.Now().UTC(), Host: hostInfo(), Template: o.Template, Ops: map[string]Stat{}, PSSMiB: map[string]float64{}, PSSMiBSettled: map[string]float64{}}

	// Warm up: the first restore makes the template's saved VM state.
	n, err := r.create()
	if err != nil {
		return nil, err
	}
	r.paddock("rm", "-f", n)
	if err := r.createToExec(ctx, "create_restore_to_first_exec"); err != nil {
		return nil, err
	}
	if err := r.createToExec(ctx, "create_cold_to_first_exec", "--cold"); err != nil {
		return nil, err
	}
	// One running sandbox for the rest.
	if n, err = r.create(); err != nil {
		return nil, err
	}
	for _, stage := range []func(string) error{r.execRoundTrips, r.resetPauseResume, r.checkpointFork} {
		if err := stage(n); err != nil {
			return nil, err
		}
	}
	if err := r.stops(); err != nil {
		return nil, err
	}
	r.cleanup()
	idle, err := r.idleMemory(res)
	if err != nil {
		return nil, err
	}
	r.summarise(res, idle)
	return res, nil
}

// createToExec times create to the first exec's end (op), and rm, Runs
// times.
func (r *runner) createToExec(ctx context.Context, op string, extra ...string) error {
	for i := 0; i < r.o.Runs; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t0 := time.Now()
		n, err := r.create(extra...)
		if err != nil {
			return err
		}
		if _, err := r.paddock("exec", n, "--", "true"); err != nil {
			return err
		}
		r.add(op, time.Since(t0))
		d, err := r.timed("rm", "-f", n)
		if err != nil {
			return err
		}
		r.add("rm", d)
		r.logf("%s %d/%d", op, i+1, r.o.Runs)
	}
	return nil
}

// execRoundTrips times exec of true in the running sandbox n.
func (r *runner) execRoundTrips(n string) error {
	for i := 0; i < 3*r.o.Runs; i++ {
		d, err := r.timed("exec", n, "--", "true")
		if err != nil {
			return err
		}
		r.add("exec_round_trip", d)
	}
	r.logf("exec round trips done")
	return nil
}

// resetPauseResume times reset, and pause then resume, of n.
func (r *runner) resetPauseResume(n string) error {
	for i := 0; i < r.o.Runs; i++ {
		d, err := r.timed("reset", n)
		if err != nil {
			return err
		}
		r.add("reset", d)
		t0 := time.Now()
		if _, err := r.paddock("pause", n); err != nil {
			return err
		}
		if _, err := r.paddock("resume", n); err != nil {
			return err
		}
		r.add("pause_resume", time.Since(t0))
	}
	r.logf("reset, pause/resume done")
	return nil
}

// checkpointFork times a checkpoint of n, and a fork from it to its first
// exec's end.
func (r *runner) checkpointFork(n string) error {
	for i := 0; i < max(3, r.o.Runs/2); i++ {
		c := fmt.Sprintf("bench-%d-ck%d", os.Getpid(), i)
		d, err := r.timed("checkpoint", n, c)
		if err != nil {
			return err
		}
		r.ckpts = append(r.ckpts, c)
		r.add("checkpoint", d)
		f := r.name()
		t0 := time.Now()
		if _, err := r.paddock("create", "--name", f, "--from", c, "--workspace", r.o.Workspace); err != nil {
			return err
		}
		if _, err := r.paddock("exec", f, "--", "true"); err != nil {
			return err
		}
		r.add("fork_to_first_exec", time.Since(t0))
		r.paddock("rm", "-f", f)
	}
	r.logf("checkpoint, fork done")
	return nil
}

// stops times stop of freshly cold-booted sandboxes.
func (r *runner) stops() error {
	for i := 0; i < max(3, r.o.Runs/3); i++ {
		s, err := r.create("--cold")
		if err != nil {
			return err
		}
		d, err := r.timed("stop", s)
		if err != nil {
			return err
		}
		r.add("stop", d)
		r.paddock("rm", "-f", s)
	}
	return nil
}

// idleMemory records the mean PSS of 1, 5 and 10 idle sandboxes, 3 s after
// the last create and once the newest has idled 30 s, and returns them.
func (r *runner) idleMemory(res *Result) ([]string, error) {
	var idle []string
	var last time.Time
	for _, count := range []int{1, 5, 10} {
		for len(idle) < count {
			s, err := r.create()
			if err != nil {
				return nil, err
			}
			idle = append(idle, s)
		}
		last = time.Now()
		time.Sleep(3 * time.Second) // let them settle
		mean, err := r.meanPSS(idle)
		if err != nil {
			return nil, err
		}
		res.PSSMiB[strconv.Itoa(count)] = mean
		r.logf("pss with %d sandboxes: %.1f MiB each", count, mean)
	}
	time.Sleep(time.Until(last.Add(30 * time.Second)))
	mean, err := r.meanPSS(idle)
	if err != nil {
		return nil, err
	}
	res.PSSMiBSettled[strconv.Itoa(len(idle))] = mean
	r.logf("pss with %d sandboxes, the newest idle 30 s: %.1f MiB each", len(idle), mean)
	return idle, nil
}

func (r *runner) meanPSS(sandboxes []string) (float64, error) {
	total := 0.0
	for _, s := range sandboxes {
		pss, err := r.pss(s)
		if err != nil {
			return 0, err
		}
		total += pss
	}
	return total / float64(len(sandboxes)), nil
}

// summarise turns the samples into the report's statistics and ratio, and
// records the accelerator a sandbox ran with.
func (r *runner) summarise(res *Result, idle []string) {
	for op, s := range r.samples {
		res.Ops[op] = stat(s)
	}
	if c, w := res.Ops["create_cold_to_first_exec"], res.Ops["create_restore_to_first_exec"]; w.Median > 0 {
		res.ColdOverRestore = c.Median / w.Median
	}
	if out, err := r.paddock("inspect", idle[0]); err == nil {
		var info struct{ Accel string }
		json.Unmarshal([]byte(out), &info)
		res.Host.Accel = info.Accel
	}
}

// removeCheckpoints removes the checkpoints the run made.
func (r *runner) removeCheckpoints() {
	for _, c := range r.ckpts {
		r.paddock("checkpoint", "rm", c)
	}
}

// pss is the proportional set size of a sandbox's QEMU and supervisor.
func (r *runner) pss(name string) (float64, error) {
	out, err := r.paddock("inspect", name)
	if err != nil {
		return 0, err
	}
	var info struct {
		QEMUPid       int `json:"qemu_pid"`
		SupervisorPid int `json:"supervisor_pid"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return 0, err
	}
	total := 0.0
	for _, pid := range []int{info.QEMUPid, info.SupervisorPid} {
		mib, err := ProcessPSS(pid)
		if err != nil {
			return 0, err
		}
		total += mib
	}
	return total, nil
}

// ProcessPSS is a process's proportional set size in MiB.
func ProcessPSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return 0, fmt.Errorf("smaps_rollup of %d: %w", pid, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("smaps_rollup of %d has no Pss line", pid)
}

func hostInfo() Host {
	h := Host{Cores: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		h.MemGiB = (kb + 512*1024) / (1024 * 1024)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	return h
}

// Write writes res as indented JSON to path.
func Write(path string, res *Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
