package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/cgroup"
)

// groupInfo is inspect's cgroup field.
type groupInfo struct {
	Driver string            `json:"driver"`
	Paths  map[string]string `json:"paths"`
	Limits struct {
		CPUQuotaUs  int64 `json:"cpu_quota_us"`
		CPUPeriodUs int64 `json:"cpu_period_us"`
		MemoryBytes int64 `json:"memory_bytes"`
		Pids        int64 `json:"pids"`
	} `json:"limits"`
	Unlimited string `json:"unlimited"`
	Usage     *struct {
		Procs []int `json:"procs"`
	} `json:"usage"`
}

func (e *env) group(name string) groupInfo {
	e.t.Helper()
	var info struct {
		Cgroup *groupInfo `json:"cgroup"`
	}
	if err := json.Unmarshal([]byte(e.ok("inspect", name)), &info); err != nil {
		e.t.Fatal(err)
	}
	if info.Cgroup == nil {
		e.t.Fatalf("inspect %s shows no cgroup", name)
	}
	return *info.Cgroup
}

// dir is the group's folder of controller ctrl.
func (g groupInfo) dir(ctrl string) string {
	if g.Driver == cgroup.DriverV1 {
		return filepath.Join(cgroup.Root, ctrl, g.Paths[ctrl])
	}
	return filepath.Join(cgroup.Root, g.Paths["unified"])
}

// cpuNanos is the group's CPU time so far.
func (g groupInfo) cpuNanos(t *testing.T) int64 {
	t.Helper()
	if g.Driver == cgroup.DriverV1 {
		b, err := os.ReadFile(filepath.Join(g.dir("cpuacct"), "cpuacct.usage"))
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	b, err := os.ReadFile(filepath.Join(g.dir("cpu"), "cpu.stat"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n * 1000
		}
	}
	t.Fatal("cpu.stat has no usage_usec")
	return 0
}

// TestLimitsGroup: a sandbox's supervisor and QEMU run in a host cgroup
// with a CPU quota of --cpus cores, memory of guest RAM plus the stated
// overhead and a pids limit; a busy guest stays within one core; stats
// reports it; rm removes the group.
func TestLimitsGroup(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("lim") // --cpus 1 --memory 512M
	g := e.group("lim")
	if g.Unlimited != "" || g.Driver == "" {
		t.Fatalf("no cgroup: %q", g.Unlimited)
	}
	if g.Limits.CPUQuotaUs != g.Limits.CPUPeriodUs || g.Limits.CPUPeriodUs == 0 {
		t.Errorf("cpu quota %d per %d us, want one core", g.Limits.CPUQuotaUs, g.Limits.CPUPeriodUs)
	}
	wantMem := int64(512<<20) + cgroup.MemoryOverhead
	if g.Limits.MemoryBytes != wantMem {
		t.Errorf("memory limit %d, want %d (RAM + overhead)", g.Limits.MemoryBytes, wantMem)
	}
	// What the kernel holds, not only what paddock recorded.
	limitFile := "memory.limit_in_bytes"
	if g.Driver != cgroup.DriverV1 {
		limitFile = "memory.max"
	}
	if b, err := os.ReadFile(filepath.Join(g.dir("memory"), limitFile)); err != nil || strings.TrimSpace(string(b)) != strconv.FormatInt(wantMem, 10) {
		t.Errorf("%s = %q (%v), want %d", limitFile, b, err, wantMem)
	}
	info := e.inspect("lim")
	procs, err := os.ReadFile(filepath.Join(g.dir("memory"), "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{info.QEMUPid, info.SupervisorPid} {
		if !strings.Contains("\n"+string(procs), "\n"+strconv.Itoa(pid)+"\n") {
			t.Errorf("pid %d is not in %s/cgroup.procs: %q", pid, g.dir("memory"), procs)
		}
	}

	// Two busy loops on the guest's one vCPU: the host group stays at one
	// core or below.
	e.ok("exec", "lim", "--", "sh", "-c", "(while :; do :; done) & (while :; do :; done) & sleep 1")
	c0, t0 := g.cpuNanos(t), time.Now()
	time.Sleep(5 * time.Second)
	c1, t1 := g.cpuNanos(t), time.Now()
	ratio := float64(c1-c0) / float64(t1.Sub(t0).Nanoseconds())
	t.Logf("host group CPU over 5 s: %.3f cores", ratio)
	if ratio > 1.05 {
		t.Errorf("the group used %.3f cores, over its one-core quota", ratio)
	}
	if ratio < 0.15 { // a shared, loaded host still gives a busy guest this much
		t.Errorf("the group used %.3f cores: the busy loop did not run", ratio)
	}

	checkStats(t, e, wantMem)

	e.ok("rm", "-f", "lim")
	for _, c := range []string{"cpu", "memory", "pids"} {
		if _, err := os.Stat(g.dir(c)); !os.IsNotExist(err) {
			t.Errorf("%s still exists after rm (%v)", g.dir(c), err)
		}
	}
}

// checkStats: stats --json of the busy one-core sandbox lim gives its
// limits and plausible use.
func checkStats(t *testing.T, e *env, wantMem int64) {
	out := e.ok("stats", "--no-stream", "--json", "lim")
	var st struct {
		Name             string  `json:"name"`
		CPUPercent       float64 `json:"cpu_percent"`
		CPULimit         float64 `json:"cpu_limit"`
		MemoryBytes      int64   `json:"memory_bytes"`
		MemoryLimitBytes int64   `json:"memory_limit_bytes"`
		DiskBytes        int64   `json:"disk_bytes"`
		Pids             int64   `json:"pids"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &st); err != nil {
		t.Fatalf("stats --json: %v: %q", err, out)
	}
	t.Logf("stats: %+v", st)
	if st.Name != "lim" || st.CPULimit != 1 || st.MemoryLimitBytes != wantMem {
		t.Errorf("stats names %q, cpu limit %g, memory limit %d", st.Name, st.CPULimit, st.MemoryLimitBytes)
	}
	if st.CPUPercent < 15 || st.CPUPercent > 110 {
		t.Errorf("stats cpu %.1f%% for a busy one-core sandbox", st.CPUPercent)
	}
	if st.MemoryBytes < 20<<20 || st.MemoryBytes > wantMem {
		t.Errorf("stats memory %d bytes, want between 20 MiB and the limit", st.MemoryBytes)
	}
	if st.DiskBytes <= 0 || st.Pids < 2 || st.Pids > cgroup.PidsMax {
		t.Errorf("stats disk %d bytes, %d pids", st.DiskBytes, st.Pids)
	}
}

// TestLimitsCrashedGroup: a supervisor killed outright leaves its group;
// the next start makes it afresh and rm removes it.
func TestLimitsCrashedGroup(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("crash")
	g := e.group("crash")
	info := e.inspect("crash")
	for _, pid := range []int{info.SupervisorPid, info.QEMUPid} {
		p, _ := os.FindProcess(pid)
		p.Kill()
	}
	waitFor(t, "the killed supervisor to exit", 10*time.Second, func() bool { return !processAlive(info.SupervisorPid) })
	if _, err := os.Stat(g.dir("memory")); err != nil {
		t.Fatalf("the killed run's group is gone already (%v): nothing to test", err)
	}
	e.ok("start", "crash")
	g2 := e.group("crash")
	if g2.dir("memory") != g.dir("memory") || g2.Usage == nil || len(g2.Usage.Procs) < 2 {
		t.Errorf("after start: group %s, usage %+v", g2.dir("memory"), g2.Usage)
	}
	e.ok("rm", "-f", "crash")
	if _, err := os.Stat(g.dir("memory")); !os.IsNotExist(err) {
		t.Errorf("%s still exists after rm (%v)", g.dir("memory"), err)
	}
}

// A guest that writes and reads back more than its host group's memory
// limit (its page cache, and QEMU's writes through the host's page cache,
// both balloon) stays within the limit: the kernel reclaims, nothing is
// killed, and the sandbox answers afterwards.
func TestLimitsPageCacheBalloon(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("cache", "--memory", "256M", "--disk", "2G")
	g := e.group("cache")
	qemu := e.inspect("cache").QEMUPid
	e.ok("exec", "-u", "root", "cache", "--", "sh", "-c",
		"dd if=/dev/zero of=/big bs=1M count=1200 2>/dev/null && cat /big /big > /dev/null && rm /big")
	if e.inspect("cache").QEMUPid != qemu {
		t.Fatal("QEMU was replaced (killed?) while the guest filled its page cache")
	}
	if out := e.sh("cache", "echo alive"); out != "alive\n" {
		t.Fatalf("the sandbox after the balloon: %q", out)
	}
	peakFile, limit := "memory.max_usage_in_bytes", g.Limits.MemoryBytes
	if g.Driver != cgroup.DriverV1 {
		peakFile = "memory.peak"
	}
	b, err := os.ReadFile(filepath.Join(g.dir("memory"), peakFile))
	if err != nil {
		t.Fatal(err)
	}
	peak, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	t.Logf("group memory peak %d MiB, limit %d MiB", peak>>20, limit>>20)
	if peak > limit {
		t.Errorf("group memory peak %d over its limit %d", peak, limit)
	}
	if g.Driver == cgroup.DriverV1 {
		oom, _ := os.ReadFile(filepath.Join(g.dir("memory"), "memory.oom_control"))
		if regexp.MustCompile(`oom_kill [1-9]`).Match(oom) {
			t.Errorf("the kernel killed in the group: %s", oom)
		}
	}
}
