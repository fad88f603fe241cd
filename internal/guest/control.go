package guest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// stdinWait is how long WriteStdin waits for its exec to start.
const stdinWait = 2 * time.Second

// WriteStdin feeds a client stream of chunks to one process's input, named
// by the first chunk. Writes after the process closed its input are
// dropped, so a client racing the exit sees no error.
func (a *Agent) WriteStdin(ctx context.Context, stream agentv1.TTRPCAgent_WriteStdinServer) (*agentv1.WriteStdinResponse, error) {
	var e *execution
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return &agentv1.WriteStdinResponse{}, nil
		}
		if err != nil {
			return nil, err
		}
		if e == nil {
			if e, err = a.stdinTarget(chunk); err != nil {
				return nil, err
			}
		}
		if err := e.writeChunk(chunk); err != nil {
			return nil, err
		}
	}
}

// WriteStdinChunk writes one chunk to a process's input and answers once
// it is written: the supervisor sends the next chunk only then, so input
// to a process that does not read waits on the host.
func (a *Agent) WriteStdinChunk(ctx context.Context, chunk *agentv1.StdinChunk) (*agentv1.WriteStdinResponse, error) {
	e, err := a.stdinTarget(chunk)
	if err != nil {
		return nil, err
	}
	if err := e.writeChunk(chunk); err != nil {
		return nil, err
	}
	return &agentv1.WriteStdinResponse{}, nil
}

// AckOutput grants a stream more output events (ExecRequest.output_window).
// A stream that has ended is not an error: the grant raced its end.
func (a *Agent) AckOutput(_ context.Context, req *agentv1.AckOutputRequest) (*agentv1.AckOutputResponse, error) {
	if s := a.procs.stream(req.GetId()); s != nil {
		s.credit.grant(req.GetEvents())
	} else if f, ok := a.files.get(req.GetId()); ok {
		f.credit.grant(req.GetEvents())
	}
	return &agentv1.AckOutputResponse{}, nil
}

// selector is the process a call names: by the exec id when given, else by
// its selector.
func selector(id string, sel *agentv1.ProcessSelector) (*agentv1.ProcessSelector, error) {
	if id != "" {
		return &agentv1.ProcessSelector{Selector: &agentv1.ProcessSelector_Id{Id: id}}, nil
	}
	if sel.GetId() == "" && sel.GetPid() == 0 && sel.GetTag() == "" {
		return nil, status.Error(codes.InvalidArgument, "the call must name a process: an exec id, a pid or a tag")
	}
	return sel, nil
}

// describe names a selector in messages.
func describe(sel *agentv1.ProcessSelector) string {
	switch {
	case sel.GetId() != "":
		return fmt.Sprintf("exec %q", sel.GetId())
	case sel.GetTag() != "":
		return fmt.Sprintf("process tagged %q", sel.GetTag())
	}
	return fmt.Sprintf("process %d", sel.GetPid())
}

// running finds the running process a call names, waiting a little for an
// exec id to appear (Exec and the calls addressed to it race).
func (a *Agent) running(id string, sel *agentv1.ProcessSelector, wait time.Duration) (*managed, error) {
	sel, err := selector(id, sel)
	if err != nil {
		return nil, err
	}
	m := a.procs.find(sel, wait, true)
	if m == nil {
		return nil, status.Errorf(codes.NotFound, "no running %s", describe(sel))
	}
	return m, nil
}

// stdinTarget finds the process a chunk is for.
func (a *Agent) stdinTarget(chunk *agentv1.StdinChunk) (*execution, error) {
	m, err := a.running(chunk.GetId(), chunk.GetProcess(), stdinWait)
	if err != nil {
		return nil, err
	}
	return m.exec, nil
}

// writeChunk writes one chunk, dropping writes after the process closed
// its input.
func (e *execution) writeChunk(chunk *agentv1.StdinChunk) error {
	if err := e.writeStdin(chunk.GetData(), chunk.GetClose()); err != nil &&
		!errors.Is(err, os.ErrClosed) && !errors.Is(err, unix.EPIPE) && !errors.Is(err, unix.EIO) {
		return status.Errorf(codes.Internal, "write stdin of process %d: %v", e.pid, err)
	}
	return nil
}

// Resize sets the terminal size of a tty process.
func (a *Agent) Resize(_ context.Context, req *agentv1.ResizeRequest) (*agentv1.ResizeResponse, error) {
	m, err := a.running(req.GetId(), req.GetProcess(), stdinWait)
	if err != nil {
		return nil, err
	}
	if m.exec.pty == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "process %d has no terminal", m.exec.pid)
	}
	if err := pty.Setsize(m.exec.pty, &pty.Winsize{Rows: uint16(req.GetRows()), Cols: uint16(req.GetCols())}); err != nil {
		return nil, status.Errorf(codes.Internal, "resize process %d: %v", m.exec.pid, err)
	}
	return &agentv1.ResizeResponse{}, nil
}

// Signal sends a signal to the process group of a running process.
func (a *Agent) Signal(_ context.Context, req *agentv1.SignalRequest) (*agentv1.SignalResponse, error) {
	m, err := a.running(req.GetId(), req.GetProcess(), 0)
	if err != nil {
		return nil, err
	}
	sig := req.GetSignal()
	if sig <= 0 || sig > 64 {
		return nil, status.Errorf(codes.InvalidArgument, "signal %d is not a Linux signal", sig)
	}
	if err := unix.Kill(-m.exec.pid, unix.Signal(sig)); err != nil && !errors.Is(err, unix.ESRCH) {
		return nil, status.Errorf(codes.Internal, "signal process %d: %v", m.exec.pid, err)
	}
	return &agentv1.SignalResponse{}, nil
}

// Attach streams a process of the table (see the proto).
func (a *Agent) Attach(ctx context.Context, req *agentv1.AttachRequest, stream agentv1.TTRPCAgent_AttachServer) error {
	if req.GetId() == "" {
		return status.Error(codes.InvalidArgument, "attach needs a stream id")
	}
	sel, err := selector("", req.GetProcess())
	if err != nil {
		return err
	}
	m := a.procs.find(sel, 0, false)
	if m == nil {
		return status.Errorf(codes.NotFound, "no %s", describe(sel))
	}
	att := newAttachment(req.GetId(), req.GetOutputWindow())
	if !a.procs.addStream(att) {
		return status.Errorf(codes.AlreadyExists, "stream id %q is in use", req.GetId())
	}
	m.attach(att)
	return a.serveStream(m, att, stream, ctx.Done())
}

// Release ends a stream without its exit status (see the proto). A stream
// that has ended already is not an error.
func (a *Agent) Release(_ context.Context, req *agentv1.ReleaseRequest) (*agentv1.ReleaseResponse, error) {
	if s := a.procs.stream(req.GetId()); s != nil {
		s.release()
	} else if f, ok := a.files.get(req.GetId()); ok {
		f.cancel()
	}
	return &agentv1.ReleaseResponse{}, nil
}

// ListProcesses returns the processes of the table, oldest first.
func (a *Agent) ListProcesses(context.Context, *agentv1.ListProcessesRequest) (*agentv1.ListProcessesResponse, error) {
	resp := &agentv1.ListProcessesResponse{}
	for _, m := range a.procs.all() {
		resp.Processes = append(resp.Processes, m.info())
	}
	return resp, nil
}
