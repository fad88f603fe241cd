package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

// Stat is one sample of a running sandbox's use of the host (paddock
// stats), measured from the host: its cgroup, its disk overlay, its
// network log.
type Stat struct {
	Name string `json:"name"`
	// CPUPercent is the host CPU time of its supervisor and QEMU over the
	// window since the previous sample: 100 is one core.
	CPUPercent float64 `json:"cpu_percent"`
	// CPULimit is the group's quota in cores (0: no group).
	CPULimit float64 `json:"cpu_limit"`
	// MemoryBytes is the group's working set (charged memory less
	// inactive page cache); without a group, the processes' RSS.
	MemoryBytes      uint64  `json:"memory_bytes"`
	MemoryLimitBytes int64   `json:"memory_limit_bytes"` // 0: no group
	MemoryPercent    float64 `json:"memory_percent"`     // of the limit
	// DiskBytes is host space used by the sandbox's own disk overlay.
	DiskBytes int64 `json:"disk_bytes"`
	// NetSentBytes and NetReceivedBytes are the bytes of its connections
	// that have closed (guest to destination, and back), from net.jsonl.
	NetSentBytes     int64  `json:"net_sent_bytes"`
	NetReceivedBytes int64  `json:"net_received_bytes"`
	Pids             uint64 `json:"pids"`
	// Unlimited says why it runs without a host cgroup.
	Unlimited string `json:"unlimited,omitempty"`
}

// Sampler takes successive samples of sandboxes' use; CPU is the change
// between two samples. Not safe for concurrent use.
type Sampler struct {
	m    *Manager
	prev map[string]cpuMark
	net  map[string]*netCount
}

type cpuMark struct {
	at    time.Time
	nanos uint64
}

// NewSampler returns a Sampler whose first sample's CPU is measured from now.
func (m *Manager) NewSampler() *Sampler {
	return &Sampler{m: m, prev: map[string]cpuMark{}, net: map[string]*netCount{}}
}

// Sample measures the named sandboxes, or every running one when names
// is empty. A named sandbox that is not running is an error.
func (s *Sampler) Sample(names []string) ([]Stat, error) {
	var infos []Info
	if len(names) == 0 {
		all, err := s.m.List()
		if err != nil {
			return nil, err
		}
		for _, in := range all {
			if in.State == StateRunning || in.State == StatePaused {
				infos = append(infos, in)
			}
		}
	}
	for _, n := range names {
		in, err := s.m.Inspect(n)
		if err != nil {
			return nil, err
		}
		if in.State != StateRunning && in.State != StatePaused {
			return nil, fmt.Errorf("sandbox %q is %s: stats need it running (paddock start %s)", n, in.Summary(), n)
		}
		infos = append(infos, in)
	}
	out := make([]Stat, 0, len(infos))
	for _, in := range infos {
		out = append(out, s.one(in))
	}
	return out, nil
}

func (s *Sampler) one(in Info) Stat {
	st := Stat{Name: in.Name, DiskBytes: in.DiskBytes}
	now := time.Now()
	var nanos uint64
	g := in.Cgroup
	switch {
	case g != nil && g.Usage != nil:
		nanos = g.Usage.CPUNanos
		st.CPULimit, st.MemoryLimitBytes = g.Limits.CPUs(), g.Limits.MemoryBytes
		st.MemoryBytes, st.Pids = g.Usage.MemoryBytes, g.Usage.Pids
		if st.MemoryLimitBytes > 0 {
			st.MemoryPercent = 100 * float64(st.MemoryBytes) / float64(st.MemoryLimitBytes)
		}
	default:
		if g != nil {
			st.Unlimited = g.Unlimited
		}
		for _, pid := range []int{in.SupervisorPid, in.QEMUPid} {
			t, rss, threads := procUse(pid)
			nanos += t
			st.MemoryBytes += rss
			st.Pids += threads
		}
	}
	if p, ok := s.prev[in.Name]; ok && nanos >= p.nanos {
		st.CPUPercent = 100 * float64(nanos-p.nanos) / float64(now.Sub(p.at).Nanoseconds())
	}
	s.prev[in.Name] = cpuMark{at: now, nanos: nanos}
	nc := s.net[in.Name]
	if nc == nil {
		nc = &netCount{files: map[uint64]*netFile{}}
		s.net[in.Name] = nc
	}
	l := s.m.Home.Sandbox(in.Name)
	st.NetSentBytes, st.NetReceivedBytes = nc.read(l.NetLog()+".1", l.NetLog())
	return st
}

// procUse is process pid's CPU time, resident memory and threads.
func procUse(pid int) (nanos, rss, threads uint64) {
	if pid <= 0 {
		return 0, 0, 0
	}
	if t, ok := cpuTicks(pid); ok {
		nanos = uint64(t) * uint64(time.Second/100) // USER_HZ
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nanos, 0, 0
	}
	kv := parseStatus(string(b))
	return nanos, kv["VmRSS"] << 10, kv["Threads"]
}

// parseStatus reads /proc/PID/status's numeric fields ("VmRSS: 123 kB").
func parseStatus(s string) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range bytes.Split([]byte(s), []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var n uint64
		if _, err := fmt.Sscan(string(v), &n); err == nil {
			out[string(k)] = n
		}
	}
	return out
}

// netCount sums the byte counts of a sandbox's network log and its
// rotated predecessor, reading only what was appended since the last
// call. Files are told apart by inode, so a rotation (the log renamed to
// .1) is not counted twice.
type netCount struct{ files map[uint64]*netFile }

type netFile struct {
	off            int64
	sent, received int64
}

func (c *netCount) read(paths ...string) (sent, received int64) {
	seen := map[uint64]bool{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Fstat(int(f.Fd()), &st) == nil {
			nf := c.files[st.Ino]
			if nf == nil {
				nf = &netFile{}
				c.files[st.Ino] = nf
			}
			if st.Size < nf.off {
				*nf = netFile{} // truncated: start over
			}
			if _, err := f.Seek(nf.off, io.SeekStart); err == nil {
				if data, err := io.ReadAll(f); err == nil {
					s, r, n := sumCloses(data)
					nf.sent += s
					nf.received += r
					nf.off += int64(n)
				}
			}
			seen[st.Ino] = true
			sent += nf.sent
			received += nf.received
		}
		f.Close()
	}
	for ino := range c.files {
		if !seen[ino] {
			delete(c.files, ino)
		}
	}
	return sent, received
}

// sumCloses adds the byte counts of the "close" records among the
// complete lines of data and returns how many bytes those lines take.
func sumCloses(data []byte) (sent, received int64, consumed int) {
	for {
		i := bytes.IndexByte(data[consumed:], '\n')
		if i < 0 {
			return sent, received, consumed
		}
		line := data[consumed : consumed+i]
		consumed += i + 1
		if !bytes.Contains(line, []byte(`"close"`)) {
			continue
		}
		var r netpolicy.Record
		if json.Unmarshal(line, &r) == nil && r.Event == "close" {
			sent += r.Sent
			received += r.Received
		}
	}
}
