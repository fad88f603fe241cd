package dashboard

import (
	"net/http"
	"sync"
	"time"

	"github.com/paddock-dev/paddock/internal/sandbox"
)

// The chart's data: while someone watches the dashboard, a sampler
// measures every running sandbox's use of the host (sandbox.Sampler: its
// cgroup, or its processes) every sampleEvery, and keeps historyLength of
// samples per sandbox.
const (
	sampleEvery   = 2 * time.Second
	historyLength = 10 * time.Minute
	// idleAfter is how long the sampler runs after the last look.
	idleAfter = 2 * time.Minute
)

// point is one sample of a sandbox's use of the host.
type point struct {
	Time        time.Time `json:"t"`
	CPUPercent  float64   `json:"cpu"` // 100 is one host core
	MemoryBytes uint64    `json:"mem"` // working set
	MemoryLimit int64     `json:"mem_limit,omitempty"`
}

// history holds the samples. Invariants: points[name] is oldest first and
// spans at most historyLength; running is true while a sampler goroutine
// runs, which exits once lastLook is idleAfter old.
type history struct {
	m        *sandbox.Manager
	mu       sync.Mutex
	points   map[string][]point // guarded by mu
	lastLook time.Time          // guarded by mu
	running  bool               // guarded by mu
}

func newHistory(m *sandbox.Manager) *history {
	return &history{m: m, points: map[string][]point{}}
}

// watch notes a look at the dashboard and starts the sampler if it is not
// running.
func (h *history) watch() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastLook = time.Now()
	if !h.running {
		h.running = true
		go h.sample()
	}
}

func (h *history) sample() {
	s := h.m.NewSampler()
	for {
		stats, _ := s.Sample(nil)
		now := time.Now()
		h.mu.Lock()
		seen := map[string]bool{}
		for _, st := range stats {
			seen[st.Name] = true
			p := point{Time: now.UTC(), CPUPercent: st.CPUPercent, MemoryBytes: st.MemoryBytes, MemoryLimit: st.MemoryLimitBytes}
			pts := append(h.points[st.Name], p)
			for len(pts) > 0 && now.Sub(pts[0].Time) > historyLength {
				pts = pts[1:]
			}
			h.points[st.Name] = pts
		}
		for name, pts := range h.points {
			if !seen[name] && (len(pts) == 0 || now.Sub(pts[len(pts)-1].Time) > historyLength) {
				delete(h.points, name)
			}
		}
		if now.Sub(h.lastLook) > idleAfter {
			h.running = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		time.Sleep(sampleEvery)
	}
}

// latest is the newest sample of sandbox name, if there is a recent one.
func (h *history) latest(name string) (point, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pts := h.points[name]
	if len(pts) == 0 || time.Since(pts[len(pts)-1].Time) > 3*sampleEvery {
		return point{}, false
	}
	return pts[len(pts)-1], true
}

// of returns a copy of sandbox name's samples, oldest first.
func (h *history) of(name string) []point {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]point{}, h.points[name]...)
}

func (d *Dashboard) stats(w http.ResponseWriter, r *http.Request, c caller) {
	info, ok := d.visible(w, r, c)
	if !ok {
		return
	}
	d.history.watch()
	writeJSON(w, http.StatusOK, map[string]any{"every_s": sampleEvery.Seconds(), "points": d.history.of(info.Name)})
}
