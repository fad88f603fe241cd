package e2bapi

import (
	"fmt"
	"net/http"
	"sync"

	"golang.org/x/time/rate"
)

// Limits are what one key may use; zero values mean no limit.
type Limits struct {
	// Sandboxes caps a key's running and paused sandboxes.
	Sandboxes int
	// Rate caps a key's requests per second, with bursts of Burst.
	Rate  float64
	Burst int
}

// limiters holds one rate limiter per key.
type limiters struct {
	mu sync.Mutex // guards by
	by map[string]*rate.Limiter
}

func (l *limiters) allow(key string, lim Limits) bool {
	if lim.Rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = map[string]*rate.Limiter{}
	}
	r := l.by[key]
	if r == nil {
		r = rate.NewLimiter(rate.Limit(lim.Rate), max(lim.Burst, 1))
		l.by[key] = r
	}
	return r.Allow()
}

// tooMany answers 429 for key's request rate.
func tooMany(w http.ResponseWriter, key string, lim Limits) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusTooManyRequests, fmt.Sprintf("key %q is over %g requests a second: slow down", key, lim.Rate))
}

// atSandboxCap reports whether key already has its cap of sandboxes.
func (s *Server) atSandboxCap(key string) (int, bool) {
	if s.Limits.Sandboxes <= 0 {
		return 0, false
	}
	all, err := s.m.List()
	if err != nil {
		return 0, false
	}
	n := 0
	for _, info := range all {
		if info.Owner == key {
			n++
		}
	}
	return n, n >= s.Limits.Sandboxes
}
