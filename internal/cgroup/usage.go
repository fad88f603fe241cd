package cgroup

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Usage is what a group uses now, read from its files.
type Usage struct {
	// CPUNanos is the CPU time its processes have used since it was made.
	CPUNanos uint64 `json:"cpu_ns"`
	// MemoryBytes is its working set: charged memory less inactive page
	// cache, which the kernel reclaims first (what docker stats shows).
	MemoryBytes uint64 `json:"memory_bytes"`
	// MemoryCharged is all memory charged to it, page cache included.
	MemoryCharged uint64 `json:"memory_charged_bytes"`
	// MemoryPeak is the highest charge seen (0 where the kernel keeps none).
	MemoryPeak uint64 `json:"memory_peak_bytes,omitempty"`
	Pids       uint64 `json:"pids"`
	// Procs are the ids of the processes in it.
	Procs []int `json:"procs,omitempty"`
}

// ReadUsage reads the use of the group rec names.
func ReadUsage(rec Record) (Usage, error) {
	if rec.Driver == DriverV1 {
		return readV1(rec)
	}
	return readV2(rec.Dir("unified"))
}

func readV1(rec Record) (Usage, error) {
	var u Usage
	mem := rec.Dir("memory")
	charged, err := readUint(filepath.Join(mem, "memory.usage_in_bytes"))
	if err != nil {
		return u, err
	}
	stat, err := readKV(filepath.Join(mem, "memory.stat"))
	if err != nil {
		return u, err
	}
	u.MemoryCharged = charged
	u.MemoryBytes = workingSet(charged, stat["total_inactive_file"])
	u.MemoryPeak, _ = readUint(filepath.Join(mem, "memory.max_usage_in_bytes"))
	if d := rec.Dir("cpuacct"); d != "" {
		u.CPUNanos, _ = readUint(filepath.Join(d, "cpuacct.usage"))
	}
	if d := rec.Dir("pids"); d != "" {
		u.Pids, _ = readUint(filepath.Join(d, "pids.current"))
	}
	u.Procs, _ = readProcs(filepath.Join(mem, "cgroup.procs"))
	return u, nil
}

func readV2(dir string) (Usage, error) {
	var u Usage
	charged, err := readUint(filepath.Join(dir, "memory.current"))
	if err != nil {
		return u, err
	}
	stat, err := readKV(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return u, err
	}
	u.MemoryCharged = charged
	u.MemoryBytes = workingSet(charged, stat["inactive_file"])
	u.MemoryPeak, _ = readUint(filepath.Join(dir, "memory.peak"))
	if cpu, err := readKV(filepath.Join(dir, "cpu.stat")); err == nil {
		u.CPUNanos = cpu["usage_usec"] * 1000
	}
	u.Pids, _ = readUint(filepath.Join(dir, "pids.current"))
	u.Procs, _ = readProcs(filepath.Join(dir, "cgroup.procs"))
	return u, nil
}

// workingSet is charged less inactive, never below zero.
func workingSet(charged, inactive uint64) uint64 {
	if inactive > charged {
		return 0
	}
	return charged - inactive
}

// readUint reads a file holding one unsigned number ("max" reads as 0).
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseUint(string(b))
}

func parseUint(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// readKV reads a flat keyed file ("key value" lines: memory.stat,
// cpu.stat).
func readKV(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseKV(string(b)), nil
}

// parseKV parses "key value" lines; lines that are not are skipped.
func parseKV(s string) map[string]uint64 {
	out := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		out[k] = n
	}
	return out
}

func readProcs(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}
