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

type runner struct {
	o    Options
	seq  int
	made []string
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
	r := &runner{o: o}
	defer r.cleanup()
	res := &Result{Date: time.Now().UTC(), Host: hostInfo(), Template: o.Template, Ops: map[string]Stat{}, PSSMiB: map[string]float64{}, PSSMiBSettled: map[string]float64{}}
	logf := func(format string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", a...)
		}
	}
	samples := map[string][]time.Duration{}
	add := func(op string, d time.Duration) { samples[op] = append(samples[op], d) }

	// Warm up: the first restore makes the template's saved VM state.
	n, err := r.create()
	if err != nil {
		return nil, err
	}
	r.paddock("rm", "-f", n)

	createToExec := func(op string, extra ...string) error {
		for i := 0; i < o.Runs; i++ {
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
			add(op, time.Since(t0))
			d, err := r.timed("rm", "-f", n)
			if err != nil {
				return err
			}
			add("rm", d)
			logf("%s %d/%d", op, i+1, o.Runs)
		}
		return nil
	}
	if err := createToExec("create_restore_to_first_exec"); err != nil {
		return nil, err
	}
	if err := createToExec("create_cold_to_first_exec", "--cold"); err != nil {
		return nil, err
	}

	// One running sandbox for the rest.
	n, err = r.create()
	if err != nil {
		return nil, err
	}
	for i := 0; i < 3*o.Runs; i++ {
		d, err := r.timed("exec", n, "--", "true")
		if err != nil {
			return nil, err
		}
		add("exec_round_trip", d)
	}
	logf("exec round trips done")
	for i := 0; i < o.Runs; i++ {
		d, err := r.timed("reset", n)
		if err != nil {
			return nil, err
		}
		add("reset", d)
		t0 := time.Now()
		if _, err := r.paddock("pause", n); err != nil {
			return nil, err
		}
		if _, err := r.paddock("resume", n); err != nil {
			return nil, err
		}
		add("pause_resume", time.Since(t0))
	}
	logf("reset, pause/resume done")
	ckpts := []string{}
	defer func() {
		for _, c := range ckpts {
			r.paddock("checkpoint", "rm", c)
		}
	}()
	forkRuns := max(3, o.Runs/2)
	for i := 0; i < forkRuns; i++ {
		c := fmt.Sprintf("bench-%d-ck%d", os.Getpid(), i)
		d, err := r.timed("checkpoint", n, c)
		if err != nil {
			return nil, err
		}
		ckpts = append(ckpts, c)
		add("checkpoint", d)
		f := r.name()
		t0 := time.Now()
		if _, err := r.paddock("create", "--name", f, "--from", c, "--workspace", o.Workspace); err != nil {
			return nil, err
		}
		if _, err := r.paddock("exec", f, "--", "true"); err != nil {
			return nil, err
		}
		add("fork_to_first_exec", time.Since(t0))
		r.paddock("rm", "-f", f)
	}
	logf("checkpoint, fork done")
	for i := 0; i < max(3, o.Runs/3); i++ {
		s, err := r.create("--cold")
		if err != nil {
			return nil, err
		}
		d, err := r.timed("stop", s)
		if err != nil {
			return nil, err
		}
		add("stop", d)
		r.paddock("rm", "-f", s)
	}
	r.cleanup()

	// Memory of idle sandboxes.
	var idle []string
	meanPSS := func() (float64, error) {
		total := 0.0
		for _, s := range idle {
			pss, err := r.pss(s)
			if err != nil {
				return 0, err
			}
			total += pss
		}
		return total / float64(len(idle)), nil
	}
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
		mean, err := meanPSS()
		if err != nil {
			return nil, err
		}
		res.PSSMiB[strconv.Itoa(count)] = mean
		logf("pss with %d sandboxes: %.1f MiB each", count, mean)
	}
	time.Sleep(time.Until(last.Add(30 * time.Second)))
	mean, err := meanPSS()
	if err != nil {
		return nil, err
	}
	res.PSSMiBSettled[strconv.Itoa(len(idle))] = mean
	logf("pss with %d sandboxes, the newest idle 30 s: %.1f MiB each", len(idle), mean)

	for op, s := range samples {
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
	return res, nil
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
