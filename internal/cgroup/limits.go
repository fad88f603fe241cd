package cgroup

// Period is the CFS period of every group's CPU quota, in microseconds
// (the kernel's default).
const Period = 100_000

// MemoryOverhead is what a group may hold beyond the guest's RAM: QEMU's
// own memory under TCG (its code buffer, capped at 128 MiB with
// tb-size=128, device state, I/O buffers, glibc), the supervisor's (Go
// heap, the gVisor netstack), and page cache charged to the group (disk
// overlay writes, the kernel image of a cold boot). Measured peak under TCG
// on a busy 256 MiB sandbox: docs/ARCHITECTURE.md, "Host limits".
const MemoryOverhead = 320 << 20

// PidsMax caps the group's tasks (threads count): QEMU's vCPU, I/O and
// worker threads, the supervisor's threads, and the short-lived helpers it
// runs (qemu-img), with room to spare. QEMU itself may not fork
// (-sandbox spawn=deny); the guest's processes are not host tasks.
const PidsMax = 1024

// Limits are the bounds of one sandbox's group.
type Limits struct {
	// CPUQuotaUs is the CPU time the group may use per CPUPeriodUs, in
	// microseconds: cpus whole cores.
	CPUQuotaUs  int64  `json:"cpu_quota_us,omitempty"`
	CPUPeriodUs uint64 `json:"cpu_period_us,omitempty"`
	// MemoryBytes is the guest's RAM plus MemoryOverhead.
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	Pids        int64 `json:"pids,omitempty"`
}

// For is the limits of a sandbox with cpus vCPUs and guestRAM bytes of RAM.
// A cpus below one is taken as one.
func For(cpus int, guestRAM int64) Limits {
	cpus = max(cpus, 1)
	return Limits{
		CPUQuotaUs:  int64(cpus) * Period,
		CPUPeriodUs: Period,
		MemoryBytes: guestRAM + MemoryOverhead,
		Pids:        PidsMax,
	}
}

// CPUs is the quota as a number of cores.
func (l Limits) CPUs() float64 {
	if l.CPUPeriodUs == 0 {
		return 0
	}
	return float64(l.CPUQuotaUs) / float64(l.CPUPeriodUs)
}
