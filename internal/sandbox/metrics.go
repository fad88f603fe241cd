package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Metrics is one sample of a running sandbox's use of its resources.
type Metrics struct {
	Time time.Time
	CPUs int
	// CPUPercent is the VM's CPU time over the sample's window, as a
	// share of its CPUs (0-100): QEMU's, seen from the host, so it counts
	// what emulating the guest costs.
	CPUPercent float64
	// Memory and disk as the guest sees them: used is total less what
	// the guest's kernel calls available; cache is its page cache.
	MemUsed, MemTotal, MemCache int64
	DiskUsed, DiskTotal         int64 // the guest's root filesystem
}

// metricsWindow is how long Metrics watches the VM's CPU time.
const metricsWindow = 250 * time.Millisecond

// Metrics samples sandbox name, which must be running.
func (m *Manager) Metrics(ctx context.Context, name string) (Metrics, error) {
	info, err := m.Inspect(name)
	if err != nil {
		return Metrics{}, err
	}
	if info.State != StateRunning || info.QEMUPid == 0 {
		return Metrics{}, fmt.Errorf("sandbox %q is %s: metrics need it running", name, info.Summary())
	}
	mt := Metrics{Time: time.Now().UTC(), CPUs: info.CPUs}
	cpu := make(chan float64, 1)
	go func() { cpu <- cpuPercent(info.QEMUPid, info.CPUs) }()
	out, _, exit, err := m.Output(ctx, name, "root", "sh", "-c", "cat /proc/meminfo; df -Pk /")
	mt.CPUPercent = <-cpu
	if err != nil {
		return mt, err
	}
	if exit.Code != 0 {
		return mt, fmt.Errorf("read the guest's memory and disk use: exit %d %s", exit.Code, exit.Error)
	}
	parseGuestUsage(out, &mt)
	return mt, nil
}

// cpuPercent is process pid's CPU time over metricsWindow, as a share of
// cpus; 0 if it cannot be read.
func cpuPercent(pid, cpus int) float64 {
	t0, ok0 := cpuTicks(pid)
	start := time.Now()
	time.Sleep(metricsWindow)
	t1, ok1 := cpuTicks(pid)
	if !ok0 || !ok1 || cpus <= 0 {
		return 0
	}
	const ticksPerSecond = 100 // USER_HZ, fixed on Linux
	used := float64(t1-t0) / ticksPerSecond
	return min(100, 100*used/time.Since(start).Seconds()/float64(cpus))
}

// cpuTicks is the user and system time of process pid, in clock ticks.
func cpuTicks(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name may hold spaces; the fields follow its ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	return utime + stime, err1 == nil && err2 == nil
}

// parseGuestUsage reads /proc/meminfo's lines and `df -Pk /`'s into mt.
func parseGuestUsage(out string, mt *Metrics) {
	var available int64
	var cached int64
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 2 && strings.HasSuffix(f[0], ":"):
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				continue
			}
			switch f[0] {
			case "MemTotal:":
				mt.MemTotal = kb << 10
			case "MemAvailable:":
				available = kb << 10
			case "Cached:":
				cached = kb << 10
			}
		case len(f) >= 6 && f[len(f)-1] == "/":
			total, err1 := strconv.ParseInt(f[1], 10, 64)
			used, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 == nil && err2 == nil {
				mt.DiskTotal, mt.DiskUsed = total<<10, used<<10
			}
		}
	}
	mt.MemUsed, mt.MemCache = mt.MemTotal-available, cached
}
