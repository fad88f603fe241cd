package e2bapi

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paddock-dev/paddock/internal/sandbox"
)

// A sandbox's logs are its commands (the exec audit log) and its network
// decisions (the policy log), as E2B's structured log entries; its
// metrics are one sample taken when asked.

// logEntry is E2B's SandboxLogEntry.
type logEntry struct {
	Timestamp time.Time         `json:"timestamp"`
	Level     string            `json:"level"`
	Message   string            `json:"message"`
	Fields    map[string]string `json:"fields"`
}

// logLine is E2B's SandboxLog (the v1 logs' plain lines).
type logLine struct {
	Timestamp time.Time `json:"timestamp"`
	Line      string    `json:"line"`
}

var logLevels = []string{"debug", "info", "warn", "error"}

// logQuery is what a logs request selects.
type logQuery struct {
	from     *time.Time // the cursor: entries at or after (forward) or before (backward) it
	limit    int
	backward bool
	level    int // index in logLevels
	search   string
}

// parseLogQuery reads v2's cursor, limit, direction, level and search, or
// v1's start and limit.
func parseLogQuery(r *http.Request) (logQuery, error) {
	q := r.URL.Query()
	lq := logQuery{limit: 1000}
	cursor := q.Get("cursor")
	if cursor == "" {
		cursor = q.Get("start")
	}
	if cursor != "" {
		ms, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || ms < 0 {
			return lq, fmt.Errorf("invalid cursor %q: a time in milliseconds since the epoch", cursor)
		}
		t := time.UnixMilli(ms)
		lq.from = &t
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 || n > 1000 {
			return lq, fmt.Errorf("invalid limit %q: 0 to 1000", l)
		}
		lq.limit = n
	}
	switch d := q.Get("direction"); d {
	case "", "forward":
	case "backward":
		lq.backward = true
	default:
		return lq, fmt.Errorf("invalid direction %q: forward or backward", d)
	}
	if l := q.Get("level"); l != "" {
		lq.level = slices.Index(logLevels, l)
		if lq.level < 0 {
			return lq, fmt.Errorf("invalid level %q: debug, info, warn or error", l)
		}
	}
	lq.search = q.Get("search")
	return lq, nil
}

// pick returns the events q selects, in its direction.
func (q logQuery) pick(events []sandbox.Event) []logEntry {
	if q.backward {
		slices.Reverse(events)
	}
	out := []logEntry{}
	for _, e := range events {
		if len(out) >= q.limit {
			break
		}
		if q.from != nil && ((!q.backward && e.Time.Before(*q.from)) || (q.backward && e.Time.After(*q.from))) {
			continue
		}
		if slices.Index(logLevels, e.Level) < q.level || !strings.Contains(e.Message, q.search) {
			continue
		}
		out = append(out, logEntry{Timestamp: e.Time, Level: e.Level, Message: e.Message, Fields: e.Fields})
	}
	return out
}

// events answers a logs request with the sandbox's selected entries.
func (s *Server) events(w http.ResponseWriter, r *http.Request, key string) ([]logEntry, bool) {
	info, ok := s.owned(w, r, key)
	if !ok {
		return nil, false
	}
	q, err := parseLogQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	events, err := s.m.Events(info.Name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return nil, false
	}
	return q.pick(events), true
}

func (s *Server) logsV2(w http.ResponseWriter, r *http.Request, key string) {
	if entries, ok := s.events(w, r, key); ok {
		writeJSON(w, http.StatusOK, map[string]any{"logs": entries})
	}
}

func (s *Server) logsV1(w http.ResponseWriter, r *http.Request, key string) {
	entries, ok := s.events(w, r, key)
	if !ok {
		return
	}
	lines := make([]logLine, len(entries))
	for i, e := range entries {
		lines[i] = logLine{Timestamp: e.Timestamp, Line: e.Message}
	}
	writeJSON(w, http.StatusOK, map[string]any{"logs": lines, "logEntries": entries})
}

// metric is E2B's SandboxMetric.
type metric struct {
	Timestamp     time.Time `json:"timestamp"`
	TimestampUnix int64     `json:"timestampUnix"`
	CPUCount      int       `json:"cpuCount"`
	CPUUsedPct    float64   `json:"cpuUsedPct"`
	MemUsed       int64     `json:"memUsed"`
	MemTotal      int64     `json:"memTotal"`
	MemCache      int64     `json:"memCache"`
	DiskUsed      int64     `json:"diskUsed"`
	DiskTotal     int64     `json:"diskTotal"`
}

func toMetric(m sandbox.Metrics) metric {
	return metric{
		Timestamp: m.Time, TimestampUnix: m.Time.Unix(), CPUCount: m.CPUs, CPUUsedPct: m.CPUPercent,
		MemUsed: m.MemUsed, MemTotal: m.MemTotal, MemCache: m.MemCache, DiskUsed: m.DiskUsed, DiskTotal: m.DiskTotal,
	}
}

// metrics answers one sample, taken now: paddock keeps no history, so a
// sandbox that is not running has none.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request, key string) {
	info, ok := s.owned(w, r, key)
	if !ok {
		return
	}
	if info.State != sandbox.StateRunning {
		writeJSON(w, http.StatusOK, []metric{})
		return
	}
	mt, err := s.m.Metrics(r.Context(), info.Name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "metrics: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, []metric{toMetric(mt)})
}

// metricsOf answers GET /sandboxes/metrics: the latest sample of each
// named sandbox of the key that runs.
func (s *Server) metricsOf(w http.ResponseWriter, r *http.Request, key string) {
	ids := strings.Split(r.URL.Query().Get("sandbox_ids"), ",")
	if len(ids) == 0 || ids[0] == "" || len(ids) > 100 {
		writeError(w, http.StatusBadRequest, "sandbox_ids: 1 to 100 sandbox IDs, comma-separated")
		return
	}
	out := map[string]metric{}
	for _, id := range ids {
		info, err := s.m.Inspect(id)
		if err != nil || info.Owner != key || info.State != sandbox.StateRunning {
			continue
		}
		if mt, err := s.m.Metrics(r.Context(), id); err == nil {
			out[id] = toMetric(mt)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sandboxes": out})
}
