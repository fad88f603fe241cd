package guest

import (
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// managed is a process of the agent's table: its output is read into a
// bounded buffer by goroutines of its own, whether or not a stream
// listens, and each attached stream sends from its own offset in it.
//
// Invariants (all under mu): while a stream is attached, output is read
// only while the buffer holds less than outputLimit bytes (the stream's
// pace, through its credit, holds the process back); while none is, the
// buffer is cut to its newest outputLimit bytes. The buffer holds no byte
// below the smallest offset of an attached stream. ended is set once, after
// the exit, when the output has been read to its end (or given up on);
// exit is set with it. changed is closed and replaced on every change.
type managed struct {
	id, tag string
	req     *agentv1.ExecRequest // argv, cwd, tty, keep_running, annotation
	user    string
	exec    *execution
	started time.Time

	mu        sync.Mutex
	out       outputBuffer
	delivered int64 // guarded by mu; the furthest offset any stream sent
	streams   map[*attachment]struct{}
	stalled   bool // guarded by mu; a reader waits for room
	ended     bool
	exit      *agentv1.Exited
	changed   chan struct{}
}

// attachment is one stream of a process's output (an Exec's or an
// Attach's), known by its id for AckOutput and Release.
type attachment struct {
	id       string
	credit   *outputCredit
	released chan struct{}
	once     sync.Once
	offset   int64 // guarded by the process's mu
}

func newAttachment(id string, window uint32) *attachment {
	return &attachment{id: id, credit: newOutputCredit(window), released: make(chan struct{})}
}

func (a *attachment) release() { a.once.Do(func() { close(a.released) }) }

func newManaged(req *agentv1.ExecRequest, user string, e *execution) *managed {
	return &managed{id: req.GetId(), tag: req.GetTag(), req: req, user: user, exec: e,
		started: time.Now(), streams: map[*attachment]struct{}{}, changed: make(chan struct{})}
}

// broadcastLocked wakes everyone waiting for a change.
func (m *managed) broadcastLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *managed) hasEnded() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ended
}

// info describes the process for ListProcesses.
func (m *managed) info() *agentv1.ProcessInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &agentv1.ProcessInfo{
		Id: m.id, Pid: int32(m.exec.pid), Tag: m.tag, Argv: m.req.GetArgv(), Cwd: m.req.GetCwd(),
		User: m.user, Tty: m.req.GetTty(), KeepRunning: m.req.GetKeepRunning(),
		Annotation: m.req.GetAnnotation(), Exited: m.exit,
		Buffered: uint64(m.out.end - m.delivered), Streams: uint32(len(m.streams)),
	}
}

// run reads the process's output into the buffer until the process has
// exited and its output reached its end, or drainAfterExit after the exit
// (a background child may keep the output open), then records the exit
// status and calls ended. Time a reader waits for a stream to catch up
// does not count towards drainAfterExit.
func (m *managed) run(p *process, ended func()) {
	readers := make(chan struct{}, len(p.readers))
	for _, r := range p.readers {
		go func() {
			m.read(r, r == p.stderr)
			readers <- struct{}{}
		}()
	}
	ws := <-p.exit
	m.exec.closeStdin()
	drain := time.NewTimer(drainAfterExit)
	defer drain.Stop()
	for open := len(p.readers); open > 0; {
		select {
		case <-readers:
			open--
			continue
		case <-drain.C:
			m.mu.Lock()
			stalled := m.stalled
			m.mu.Unlock()
			if stalled {
				drain.Reset(drainAfterExit)
				continue
			}
		}
		break
	}
	m.finish(exitEvent(ws))
	p.closeAll() // readers still blocked in a read end there
	ended()
}

// exitEvent turns a wait status into Exited.
func exitEvent(ws unix.WaitStatus) *agentv1.Exited {
	ev := &agentv1.Exited{}
	if ws.Signaled() {
		ev.Signal = int32(ws.Signal())
		ev.ExitCode = 128 + ev.Signal
	} else {
		ev.ExitCode = int32(ws.ExitStatus())
	}
	return ev
}

func (m *managed) finish(exit *agentv1.Exited) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ended, m.exit = true, exit
	m.broadcastLocked()
}

// read copies r into the buffer until it fails (EOF; a terminal's EIO when
// all its slave ends are closed; the file closed by run).
func (m *managed) read(r *os.File, stderr bool) {
	buf := make([]byte, outputChunk)
	for m.waitForRoom() {
		n, err := r.Read(buf)
		if n > 0 {
			m.appendOutput(buf[:n], stderr)
		}
		if err != nil {
			return
		}
	}
}

// waitForRoom blocks while a stream is attached and the buffer is full,
// and reports whether reading should go on.
func (m *managed) waitForRoom() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for !m.ended && len(m.streams) > 0 && m.out.size() >= outputLimit {
		m.stalled = true
		ch := m.changed
		m.mu.Unlock()
		<-ch
		m.mu.Lock()
	}
	m.stalled = false
	return !m.ended
}

func (m *managed) appendOutput(data []byte, stderr bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended {
		return
	}
	m.out.append(data, stderr)
	if len(m.streams) == 0 {
		m.out.dropOldest(outputLimit)
	}
	m.broadcastLocked()
}

// attach adds a stream that starts at the first byte no stream has sent
// (or, if later bytes were sent, at the oldest byte kept).
func (m *managed) attach(a *attachment) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a.offset = min(m.delivered, m.out.base)
	m.streams[a] = struct{}{}
	m.broadcastLocked()
}

// detach removes a stream and lets go of the bytes no attached stream
// needs any more.
func (m *managed) detach(a *attachment) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.streams, a)
	m.trimLocked()
	m.broadcastLocked()
}

// trimLocked drops what every attached stream has sent; with none
// attached, the buffer is cut to outputLimit instead.
func (m *managed) trimLocked() {
	if len(m.streams) == 0 {
		m.out.dropOldest(outputLimit)
		return
	}
	low := m.out.end
	for s := range m.streams {
		low = min(low, s.offset)
	}
	m.out.trim(low)
}

// streamResult is how a stream ended.
type streamResult int

const (
	streamExited   streamResult = iota // the Exited event was sent
	streamReleased                     // Release, or the host went away
	streamBroken                       // a send failed
)

// stream sends a's share of the output: a Dropped count when bytes it
// never saw were let go, output as its credit allows, then Exited. It
// returns when it sent Exited, a was released, gone closed or a send
// failed.
func (m *managed) stream(send eventSender, a *attachment, gone <-chan struct{}) streamResult {
	for {
		select {
		case <-a.released:
			return streamReleased
		case <-gone:
			return streamReleased
		default:
		}
		m.mu.Lock()
		var ev *agentv1.ExecEvent
		switch {
		case a.offset < m.out.base:
			ev = &agentv1.ExecEvent{Event: &agentv1.ExecEvent_Dropped{Dropped: uint64(m.out.base - a.offset)}}
			a.offset = m.out.base
		case a.offset < m.out.end && a.credit.available():
			data, stderr, next := m.out.read(a.offset, outputChunk)
			ev = outputEvent(output{data: data, stderr: stderr})
			a.offset = next
			m.delivered = max(m.delivered, next)
			a.credit.spend()
			m.trimLocked()
			m.broadcastLocked()
		case a.offset >= m.out.end && m.ended:
			ev = &agentv1.ExecEvent{Event: &agentv1.ExecEvent_Exited{Exited: m.exit}}
		}
		ch := m.changed
		m.mu.Unlock()
		if ev != nil {
			if err := send.Send(ev); err != nil {
				return streamBroken
			}
			if ev.GetExited() != nil {
				return streamExited
			}
			continue
		}
		select {
		case <-ch:
		case <-a.credit.more:
		case <-a.released:
			return streamReleased
		case <-gone:
			return streamReleased
		}
	}
}
