package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/paddock-dev/paddock/internal/sandbox"
)

// backlog is how many of a log's last lines a page starts with.
const backlog = 1000

// logBuffer gathers the lines TailLog reads until the stream sends them,
// keeping the last backlog and counting the ones it drops.
type logBuffer struct {
	mu      sync.Mutex
	lines   [][]byte // guarded by mu
	dropped int      // guarded by mu
}

func (b *logBuffer) add(line []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, bytes.TrimRight(line, "\r\n"))
	if len(b.lines) > backlog {
		b.dropped += len(b.lines) - backlog
		b.lines = b.lines[len(b.lines)-backlog:]
	}
}

func (b *logBuffer) take() ([][]byte, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines, dropped := b.lines, b.dropped
	b.lines, b.dropped = nil, 0
	return lines, dropped
}

// logs streams one of a sandbox's logs as server-sent events, its last
// lines first and then what is appended: for net and exec each event is a
// record (a JSON object), for console a JSON string of one line of the
// guest's console. An event "dropped" says how many lines were skipped.
func (d *Dashboard) logs(w http.ResponseWriter, r *http.Request, c caller) {
	info, ok := d.visible(w, r, c)
	if !ok {
		return
	}
	kind := sandbox.LogKind(r.PathValue("kind"))
	if kind != sandbox.NetLog && kind != sandbox.ExecLog && kind != sandbox.ConsoleLog {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no log %q: use net, exec or console", kind))
		return
	}
	files, err := d.m.LogFiles(info.Name, kind)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming is not supported here")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()

	ctx, cancel := d.streamContext(r)
	defer cancel()
	var buf logBuffer
	go sandbox.TailLog(ctx, files, true, buf.add)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	keepAlive := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		lines, dropped := buf.take()
		if dropped > 0 {
			fmt.Fprintf(w, "event: dropped\ndata: %d\n\n", dropped)
		}
		for _, line := range lines {
			writeEvent(w, kind, line)
		}
		if len(lines) > 0 || dropped > 0 || time.Since(keepAlive) > 15*time.Second {
			if len(lines) == 0 && dropped == 0 {
				fmt.Fprint(w, ": keep-alive\n\n")
			}
			keepAlive = time.Now()
			flusher.Flush()
		}
	}
}

// writeEvent writes one line as an event's data: a record as it is (when
// it is one JSON object), anything else as a JSON string.
func writeEvent(w http.ResponseWriter, kind sandbox.LogKind, line []byte) {
	if kind != sandbox.ConsoleLog && json.Valid(line) && bytes.HasPrefix(line, []byte("{")) {
		fmt.Fprintf(w, "data: %s\n\n", line)
		return
	}
	b, _ := json.Marshal(string(line))
	fmt.Fprintf(w, "data: %s\n\n", b)
}
