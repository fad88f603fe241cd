package guest

import (
	"context"
	"errors"
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

// WriteStdin feeds a client stream of chunks to one exec's input. Writes
// after the process closed its input are dropped, so a client racing the
// exit sees no error.
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
			if e, err = a.stdinTarget(chunk.GetId()); err != nil {
				return nil, err
			}
		}
		if err := e.writeChunk(chunk); err != nil {
			return nil, err
		}
	}
}

// WriteStdinChunk writes one chunk to an exec's input and answers once it
// is written: the supervisor sends the next chunk only then, so input to a
// process that does not read waits on the host.
func (a *Agent) WriteStdinChunk(ctx context.Context, chunk *agentv1.StdinChunk) (*agentv1.WriteStdinResponse, error) {
	e, err := a.stdinTarget(chunk.GetId())
	if err != nil {
		return nil, err
	}
	if err := e.writeChunk(chunk); err != nil {
		return nil, err
	}
	return &agentv1.WriteStdinResponse{}, nil
}

// AckOutput grants an exec more output events (ExecRequest.output_window).
// An exec that has ended is not an error: the grant raced its exit.
func (a *Agent) AckOutput(_ context.Context, req *agentv1.AckOutputRequest) (*agentv1.AckOutputResponse, error) {
	if e := a.execs.get(req.GetId(), 0); e != nil {
		e.credit.grant(req.GetEvents())
	}
	return &agentv1.AckOutputResponse{}, nil
}

// stdinTarget finds the exec a chunk is for, waiting a little for it to
// start (Exec and the input race).
func (a *Agent) stdinTarget(id string) (*execution, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "a stdin chunk must carry the exec id")
	}
	e := a.execs.get(id, stdinWait)
	if e == nil {
		return nil, status.Errorf(codes.NotFound, "no exec %q", id)
	}
	return e, nil
}

// writeChunk writes one chunk, dropping writes after the process closed
// its input.
func (e *execution) writeChunk(chunk *agentv1.StdinChunk) error {
	if err := e.writeStdin(chunk.GetData(), chunk.GetClose()); err != nil &&
		!errors.Is(err, os.ErrClosed) && !errors.Is(err, unix.EPIPE) && !errors.Is(err, unix.EIO) {
		return status.Errorf(codes.Internal, "write stdin of %q: %v", chunk.GetId(), err)
	}
	return nil
}

// Resize sets the terminal size of a tty exec.
func (a *Agent) Resize(_ context.Context, req *agentv1.ResizeRequest) (*agentv1.ResizeResponse, error) {
	e := a.execs.get(req.GetId(), stdinWait)
	if e == nil {
		return nil, status.Errorf(codes.NotFound, "no exec %q", req.GetId())
	}
	if e.pty == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "exec %q has no terminal", req.GetId())
	}
	if err := pty.Setsize(e.pty, &pty.Winsize{Rows: uint16(req.GetRows()), Cols: uint16(req.GetCols())}); err != nil {
		return nil, status.Errorf(codes.Internal, "resize %q: %v", req.GetId(), err)
	}
	return &agentv1.ResizeResponse{}, nil
}

// Signal sends a signal to the process group of an exec.
func (a *Agent) Signal(_ context.Context, req *agentv1.SignalRequest) (*agentv1.SignalResponse, error) {
	e := a.execs.get(req.GetId(), 0)
	if e == nil {
		return nil, status.Errorf(codes.NotFound, "no exec %q", req.GetId())
	}
	sig := req.GetSignal()
	if sig <= 0 || sig > 64 {
		return nil, status.Errorf(codes.InvalidArgument, "signal %d is not a Linux signal", sig)
	}
	if err := unix.Kill(-e.pid, unix.Signal(sig)); err != nil && !errors.Is(err, unix.ESRCH) {
		return nil, status.Errorf(codes.Internal, "signal %q: %v", req.GetId(), err)
	}
	return &agentv1.SignalResponse{}, nil
}
