package guest

import (
	"sort"
	"sync"
	"time"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

const (
	// endedRetention is how long a keep_running process that ended while
	// nobody listened keeps its exit status and output for Attach.
	endedRetention = 10 * time.Minute
	// endedMax is how many such ended processes are kept at most; beyond
	// it the one that ended first is let go.
	endedMax = 16
)

// procTable is the agent's processes started by Exec, by id, and the open
// streams of their output, by stream id. Safe for concurrent use.
//
// Invariants: a process is present from just after it started until it has
// ended and either a stream delivered its exit status, or it was not
// keep_running, or its retention passed; changed is closed and replaced
// whenever a process is added, so waiters re-check; ended lists the
// retained ended processes, oldest first.
type procTable struct {
	mu      sync.Mutex
	byID    map[string]*managed    // guarded by mu
	streams map[string]*attachment // guarded by mu
	ended   []*managed             // guarded by mu
	changed chan struct{}          // guarded by mu
}

func (t *procTable) add(m *managed) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID == nil {
		t.byID = map[string]*managed{}
	}
	if _, dup := t.byID[m.id]; dup {
		return false
	}
	t.byID[m.id] = m
	if t.changed != nil {
		close(t.changed)
		t.changed = nil
	}
	return true
}

func (t *procTable) remove(m *managed) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID[m.id] == m {
		delete(t.byID, m.id)
	}
	for i, e := range t.ended {
		if e == m {
			t.ended = append(t.ended[:i], t.ended[i+1:]...)
			break
		}
	}
}

// retain keeps an ended keep_running process for Attach, for
// endedRetention and among the newest endedMax.
func (t *procTable) retain(m *managed) {
	t.mu.Lock()
	if t.byID[m.id] != m {
		t.mu.Unlock()
		return // its exit status was streamed already
	}
	t.ended = append(t.ended, m)
	var evict []*managed
	for len(t.ended) > endedMax {
		evict = append(evict, t.ended[0])
		t.ended = t.ended[1:]
	}
	t.mu.Unlock()
	for _, e := range evict {
		t.remove(e)
	}
	time.AfterFunc(endedRetention, func() { t.remove(m) })
}

// addStream registers a stream by its id; false if the id is in use.
func (t *procTable) addStream(a *attachment) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.streams == nil {
		t.streams = map[string]*attachment{}
	}
	if _, dup := t.streams[a.id]; dup {
		return false
	}
	t.streams[a.id] = a
	return true
}

func (t *procTable) removeStream(a *attachment) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.streams[a.id] == a {
		delete(t.streams, a.id)
	}
}

func (t *procTable) stream(id string) *attachment {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.streams[id]
}

// find returns the process sel names. An id is waited for up to wait
// (Exec and the calls addressed to it race). Among several processes with
// the pid or tag, a running one is preferred, then the newest. With
// running, an ended process is not returned.
func (t *procTable) find(sel *agentv1.ProcessSelector, wait time.Duration, running bool) *managed {
	if id := sel.GetId(); id != "" {
		m := t.waitID(id, wait)
		if m != nil && running && m.hasEnded() {
			return nil
		}
		return m
	}
	var best *managed
	for _, m := range t.all() {
		if (sel.GetTag() != "" && m.tag != sel.GetTag()) || (sel.GetTag() == "" && (sel.GetPid() == 0 || int32(m.exec.pid) != sel.GetPid())) {
			continue
		}
		ended := m.hasEnded()
		if running && ended {
			continue
		}
		if best == nil || (best.hasEnded() && !ended) || (best.hasEnded() == ended && m.started.After(best.started)) {
			best = m
		}
	}
	return best
}

// waitID returns the process with id, waiting up to wait for it to appear.
func (t *procTable) waitID(id string, wait time.Duration) *managed {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		t.mu.Lock()
		m := t.byID[id]
		if m != nil || wait <= 0 {
			t.mu.Unlock()
			return m
		}
		if t.changed == nil {
			t.changed = make(chan struct{})
		}
		ch := t.changed
		t.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.mu.Lock()
			m := t.byID[id]
			t.mu.Unlock()
			return m
		}
	}
}

// all returns the processes, oldest first.
func (t *procTable) all() []*managed {
	t.mu.Lock()
	out := make([]*managed, 0, len(t.byID))
	for _, m := range t.byID {
		out = append(out, m)
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].started.Before(out[j].started) })
	return out
}
