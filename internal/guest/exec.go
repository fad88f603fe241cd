package guest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

const (
	// outputChunk is the largest stdout/stderr event.
	outputChunk = 32 << 10
	// drainAfterExit bounds how long output is read after the process
	// exited: a background child that keeps the pipe open must not hang
	// the exec.
	drainAfterExit = 250 * time.Millisecond
)

// execution is a started process's pid and input, reached by id, pid or
// tag for WriteStdin, Resize and Signal.
type execution struct {
	pid int // also the process group id: every exec runs in its own session
	pty *os.File

	stdinMu sync.Mutex
	stdin   *os.File // guarded by stdinMu; nil when closed or absent
}

// writeStdin writes data to the process's input, then closes it if close.
func (e *execution) writeStdin(data []byte, close bool) error {
	e.stdinMu.Lock()
	defer e.stdinMu.Unlock()
	if e.stdin == nil {
		return os.ErrClosed
	}
	if len(data) > 0 {
		if _, err := e.stdin.Write(data); err != nil {
			return err
		}
	}
	if close {
		if e.stdin == e.pty {
			// A terminal has no end of file; ^D at the start of a line is it.
			_, err := e.stdin.Write([]byte{4})
			e.stdin = nil
			return err
		}
		err := e.stdin.Close()
		e.stdin = nil
		return err
	}
	return nil
}

func (e *execution) closeStdin() {
	e.stdinMu.Lock()
	defer e.stdinMu.Unlock()
	if e.stdin != nil && e.stdin != e.pty {
		e.stdin.Close()
	}
	e.stdin = nil
}

// output is a run of bytes from a process's stdout, stderr or terminal.
type output struct {
	data   []byte
	stderr bool
}

// Exec starts a process and streams its events: Started, output, Exited.
func (a *Agent) Exec(ctx context.Context, req *agentv1.ExecRequest, stream agentv1.TTRPCAgent_ExecServer) error {
	if req.GetId() == "" || len(req.GetArgv()) == 0 {
		return status.Error(codes.InvalidArgument, "exec needs an id and a non-empty argv")
	}
	exited := func(code int32, msg string) error {
		return stream.Send(&agentv1.ExecEvent{Event: &agentv1.ExecEvent_Exited{Exited: &agentv1.Exited{ExitCode: code, Error: msg}}})
	}
	id, err := a.execIdentity(req.GetUser())
	if err != nil {
		return exited(126, err.Error())
	}
	// The trust variables (trust.go) first: the request's own win.
	env := BuildEnv(id, req.GetTty(), append(slices.Clone(a.execTrustEnv()), req.GetEnv()...))
	cwd := req.GetCwd()
	if cwd == "" {
		cwd = id.Home
	}
	if fi, err := os.Stat(cwd); err != nil || !fi.IsDir() {
		return exited(126, fmt.Sprintf("cwd %s does not exist", cwd))
	}
	argv := req.GetArgv()
	path, err := lookPath(argv[0], envValue(env, "PATH"), cwd)
	if argv[0] == FilesVerb {
		path, err = "/proc/self/exe", nil // the agent's file tool (files.go)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return exited(127, argv[0]+": command not found")
	case err != nil:
		return exited(126, argv[0]+": "+err.Error())
	}

	p, err := a.startProcess(req, id, path, env, cwd)
	if err != nil {
		return exited(startErrorCode(err), fmt.Sprintf("%s: %v", argv[0], err))
	}
	m := newManaged(req, id.Name, p.exec)
	att := newAttachment(req.GetId(), req.GetOutputWindow())
	if !a.procs.add(m) || !a.procs.addStream(att) {
		a.procs.remove(m)
		unix.Kill(-p.exec.pid, unix.SIGKILL)
		<-p.exit
		p.closeAll()
		return status.Errorf(codes.AlreadyExists, "exec id %q is in use", req.GetId())
	}
	// Attached before the output is read, so none of it is dropped.
	m.attach(att)
	go m.run(p, func() { a.processEnded(m) })
	// Debug: the host keeps the exec audit log; a console line per exec
	// costs a millisecond of emulated serial port under TCG.
	a.Log.Debug("exec", "id", req.GetId(), "pid", p.exec.pid, "argv", argv, "user", id.Name, "tty", req.GetTty(), "keep_running", req.GetKeepRunning())
	return a.serveStream(m, att, stream, ctx.Done())
}

// serveStream sends a process's events to one stream, Started first, and
// reports how it ended: a stream that delivered the exit status claims the
// process (it leaves the table); one that broke or was released leaves
// the process running, or kills it if it was not started keep_running.
func (a *Agent) serveStream(m *managed, att *attachment, stream eventSender, gone <-chan struct{}) error {
	defer a.procs.removeStream(att)
	defer m.detach(att)
	res := streamBroken
	if err := stream.Send(&agentv1.ExecEvent{Event: &agentv1.ExecEvent_Started{Started: &agentv1.Started{Pid: int32(m.exec.pid), Tty: m.req.GetTty()}}}); err == nil {
		res = m.stream(stream, att, gone)
	}
	switch {
	case res == streamExited:
		a.procs.remove(m)
	case !m.req.GetKeepRunning():
		unix.Kill(-m.exec.pid, unix.SIGKILL)
	}
	return nil
}

// processEnded is called once a process has ended: one that was not
// keep_running leaves the table, the others wait there for a stream to
// collect their exit status, for a bounded time.
func (a *Agent) processEnded(m *managed) {
	if !m.req.GetKeepRunning() {
		a.procs.remove(m)
		return
	}
	a.procs.retain(m)
}

// execIdentity resolves the user of an exec: the request's, else the one
// Configure set, else agent, else root.
func (a *Agent) execIdentity(user string) (Identity, error) {
	if user == "" {
		a.mu.Lock()
		user = a.defaultUser
		a.mu.Unlock()
	}
	if user == "" {
		user = "root"
		if a.Users.Exists("agent") {
			user = "agent"
		}
	}
	return a.Users.Lookup(user)
}

// startErrorCode maps an execve failure to a shell's exit code.
func startErrorCode(err error) int32 {
	if errors.Is(err, unix.ENOENT) {
		return 127
	}
	return 126
}

// process is a started exec: the execution plus the parent's ends of its
// pipes and its exit channel.
type process struct {
	exec    *execution
	exit    <-chan unix.WaitStatus
	proc    *os.Process
	readers []*os.File // stdout, stderr or the terminal
	stderr  *os.File   // one of readers, for tagging
}

func (p *process) closeAll() {
	p.exec.closeStdin()
	for _, r := range p.readers {
		r.Close()
	}
	p.proc.Release()
}

// startProcess sets up stdio (a PTY, or pipes) and starts the process
// through the reaper, in its own session, as the user.
func (a *Agent) startProcess(req *agentv1.ExecRequest, id Identity, path string, env []string, cwd string) (*process, error) {
	sys := &syscall.SysProcAttr{Setsid: true}
	// Switching users needs root; on a test host the agent runs as itself.
	if os.Geteuid() == 0 {
		sys.Credential = &syscall.Credential{Uid: id.UID, Gid: id.GID, Groups: id.Groups}
	} else if id.UID != uint32(os.Geteuid()) {
		return nil, fmt.Errorf("run as uid %d: the agent is not root", id.UID)
	}
	var childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	p := &process{exec: &execution{}}
	fail := func(err error) (*process, error) {
		for _, f := range p.readers {
			f.Close()
		}
		p.exec.closeStdin()
		return nil, err
	}
	var files []*os.File
	if req.GetTty() {
		master, tty, err := pty.Open()
		if err != nil {
			return nil, fmt.Errorf("allocate a terminal: %w", err)
		}
		childEnds = append(childEnds, tty)
		p.readers = []*os.File{master}
		p.exec.pty = master
		p.exec.stdin = master
		if rows, cols := req.GetRows(), req.GetCols(); rows > 0 && cols > 0 {
			if err := pty.Setsize(master, &pty.Winsize{Rows: uint16(rows), Cols: uint16(cols)}); err != nil {
				return fail(fmt.Errorf("set terminal size: %w", err))
			}
		}
		files = []*os.File{tty, tty, tty}
		sys.Setctty = true
		sys.Ctty = 0
	} else {
		var stdin *os.File
		if req.GetStdin() {
			r, w, err := os.Pipe()
			if err != nil {
				return fail(err)
			}
			childEnds = append(childEnds, r)
			p.exec.stdin = w
			stdin = r
		} else {
			null, err := os.Open(os.DevNull)
			if err != nil {
				return fail(err)
			}
			childEnds = append(childEnds, null)
			stdin = null
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		childEnds = append(childEnds, outW)
		p.readers = append(p.readers, outR)
		errR, errW, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		childEnds = append(childEnds, errW)
		p.readers = append(p.readers, errR)
		p.stderr = errR
		files = []*os.File{stdin, outW, errW}
	}
	proc, exit, err := a.Reaper.Start(path, req.GetArgv(), &os.ProcAttr{Dir: cwd, Env: env, Files: files, Sys: sys})
	if err != nil {
		return fail(err)
	}
	p.proc, p.exit, p.exec.pid = proc, exit, proc.Pid
	return p, nil
}

// eventSender is the part of an Exec or Attach stream that a stream of
// output needs.
type eventSender interface {
	Send(*agentv1.ExecEvent) error
}

// outputCredit is how many output events an exec may still send before
// the host grants more (AckOutput). Unlimited when the request set no
// window.
//
// Invariant: more holds a token whenever n grew since the pump last looked.
type outputCredit struct {
	limited bool
	mu      sync.Mutex
	n       int64 // guarded by mu
	more    chan struct{}
}

func newOutputCredit(window uint32) *outputCredit {
	return &outputCredit{limited: window > 0, n: int64(window), more: make(chan struct{}, 1)}
}

// available reports whether one more event may be sent.
func (c *outputCredit) available() bool {
	if !c.limited {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n > 0
}

func (c *outputCredit) spend() {
	c.mu.Lock()
	c.n--
	c.mu.Unlock()
}

func (c *outputCredit) grant(k uint32) {
	c.mu.Lock()
	c.n += int64(k)
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

func outputEvent(o output) *agentv1.ExecEvent {
	if o.stderr {
		return &agentv1.ExecEvent{Event: &agentv1.ExecEvent_Stderr{Stderr: o.data}}
	}
	return &agentv1.ExecEvent{Event: &agentv1.ExecEvent_Stdout{Stdout: o.data}}
}
