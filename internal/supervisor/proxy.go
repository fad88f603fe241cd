package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	"github.com/paddock-dev/paddock/internal/store"
)

// agentProxy serves the guest agent's API to host clients: it fills in the
// sandbox's defaults (workspace as cwd, default user, sandbox env), refuses
// calls while the VM is paused, forwards to the guest, and writes the exec
// audit log. Calls that change the guest's identity or power stay with the
// supervisor.
type agentProxy struct {
	agentv1.UnimplementedAgentServer
	s     *sup
	audit *auditLog
	image imageDefaults // an imported image's Env, WorkingDir, User
}

func (p *agentProxy) ready() error {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	if err := p.s.busyLocked(); err != nil {
		return err
	}
	if p.s.paused {
		return status.Errorf(codes.FailedPrecondition, "sandbox %q is paused: run paddock resume %s", p.s.cfg.Name, p.s.cfg.Name)
	}
	if p.s.stopping {
		return status.Errorf(codes.Unavailable, "sandbox %q is stopping", p.s.cfg.Name)
	}
	return nil
}

func (p *agentProxy) Ping(ctx context.Context, req *agentv1.PingRequest) (*agentv1.PingResponse, error) {
	if err := p.ready(); err != nil {
		return nil, err
	}
	agent, err := p.s.link.agent(ctx)
	if err != nil {
		return nil, err
	}
	return agent.Ping(ctx, req)
}

// Exec runs a command in the guest for a host client: the sandbox's
// defaults filled in, the workspace flushed to the guest first, the
// guest's events passed on (relay), the exec written to the audit log.
func (p *agentProxy) Exec(req *agentv1.ExecRequest, stream agentv1.Agent_ExecServer) error {
	if err := p.ready(); err != nil {
		return err
	}
	if len(req.Argv) == 0 {
		return status.Error(codes.InvalidArgument, "no command given")
	}
	p.execDefaults(req)
	rec := newExecRecord(p.audit, req)
	defer rec.write()
	ctx := stream.Context()
	agent, err := p.s.link.agent(ctx)
	if err != nil {
		return rec.fail(err)
	}
	g := newGuestExec(ctx, agent, req)
	defer g.cancel()
	req.OutputWindow = outputWindow
	// What the host changed in the workspace is in the guest first, and
	// what the command changed is on the host before its exit is told.
	p.s.flushWorkspaceOut(ctx)
	gs, err := agent.Exec(g.ctx, req)
	if err != nil {
		return rec.fail(err)
	}
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
			g.abandon()
		case <-finished:
		}
	}()
	return p.relay(stream, gs, g, rec)
}

// execDefaults fills in what the request leaves to the sandbox: the
// working directory (the image's, else the workspace), the user, and the
// environment (the image's, then the sandbox's, then the request's own).
func (p *agentProxy) execDefaults(req *agentv1.ExecRequest) {
	img := p.image.get(p.s)
	if req.Cwd == "" {
		req.Cwd = p.s.cfg.Workspace
		if img != nil && img.WorkingDir != "" {
			req.Cwd = img.WorkingDir
		}
	}
	if req.User == "" {
		req.User = p.defaultUser()
	}
	env := p.s.execEnv()
	if img != nil {
		env = append(append([]string(nil), img.Env...), env...)
	}
	req.Env = append(append([]string(nil), env...), req.Env...)
}

// execRecord is an exec's line in the audit log. It is written once: when
// the exit is known, before the client hears of it (a client that saw the
// exit finds it in the log), else when the exec ends some other way. Only
// the exec's own goroutine changes it.
type execRecord struct {
	store.ExecRecord
	audit *auditLog
	start time.Time
	once  sync.Once
}

func newExecRecord(audit *auditLog, req *agentv1.ExecRequest) *execRecord {
	start := time.Now()
	return &execRecord{
		ExecRecord: store.ExecRecord{Time: start, User: req.User, Argv: req.Argv, Cwd: req.Cwd, TTY: req.Tty, ExitCode: -1},
		audit:      audit, start: start,
	}
}

func (r *execRecord) write() {
	r.once.Do(func() {
		r.DurationMS = time.Since(r.start).Milliseconds()
		r.audit.record(r.ExecRecord)
	})
}

// fail notes err as how the exec ended and returns it.
func (r *execRecord) fail(err error) error {
	r.Error = err.Error()
	return err
}

// guestExec is an exec's process as the proxy holds it in the guest. Its
// stream outlives the client's: ttrpc carries no cancel to the guest, so
// when the client goes away the exec is abandoned (killed, or released
// when it keeps running; its remaining output let go) and its stream read
// to the end.
type guestExec struct {
	agent  agentv1.TTRPCAgentClient
	req    *agentv1.ExecRequest
	ctx    context.Context // the guest stream's: the client's, without its cancel
	cancel context.CancelFunc

	abandonOnce sync.Once
}

func newGuestExec(ctx context.Context, agent agentv1.TTRPCAgentClient, req *agentv1.ExecRequest) *guestExec {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &guestExec{agent: agent, req: req, ctx: gctx, cancel: cancel}
}

// kill ends the process, or for one that outlives its client only its
// stream.
func (g *guestExec) kill() {
	actx, cancel := context.WithTimeout(g.ctx, abandonTimeout)
	defer cancel()
	if g.req.KeepRunning {
		g.agent.Release(actx, &agentv1.ReleaseRequest{Id: g.req.Id})
		return
	}
	g.agent.Signal(actx, &agentv1.SignalRequest{Id: g.req.Id, Signal: int32(syscall.SIGKILL)})
}

// abandon kills the process and lets its remaining output go, once; the
// guest stream is dropped if it has not ended within abandonTimeout.
func (g *guestExec) abandon() {
	g.abandonOnce.Do(func() {
		time.AfterFunc(abandonTimeout, g.cancel)
		go func() {
			g.kill()
			actx, cancel := context.WithTimeout(g.ctx, abandonTimeout)
			defer cancel()
			g.agent.AckOutput(actx, &agentv1.AckOutputRequest{Id: g.req.Id, Events: 1 << 30})
		}()
	})
}

// relay passes the guest's events on to the client, acknowledging the
// output the client took, until the guest stream ends; once the client
// has gone it abandons the exec and reads the stream to its end.
func (p *agentProxy) relay(stream agentv1.Agent_ExecServer, gs agentv1.TTRPCAgent_ExecClient, g *guestExec, rec *execRecord) error {
	ctx := stream.Context()
	var clientErr error
	passed := uint32(0) // output events passed on and not yet acknowledged
	for {
		ev, err := gs.Recv()
		if errors.Is(err, io.EOF) {
			return clientErr
		}
		if err != nil {
			return rec.fail(err)
		}
		if x := ev.GetExited(); x != nil {
			p.s.flushWorkspace(g.ctx)
			rec.ExitCode, rec.Error = x.ExitCode, x.Error
			rec.write()
		}
		if clientErr != nil || ctx.Err() != nil {
			g.abandon()
			if ev.GetStarted() != nil {
				// Started after the client left: the kill may have
				// come before the process existed.
				go g.kill()
			}
			continue
		}
		if err := stream.Send(ev); err != nil {
			rec.Error = fmt.Sprintf("client went away: %v", err)
			clientErr = err
			g.abandon()
			continue
		}
		if ev.GetStdout() != nil || ev.GetStderr() != nil {
			if passed++; passed == outputWindow/2 {
				if _, err := g.agent.AckOutput(g.ctx, &agentv1.AckOutputRequest{Id: g.req.Id, Events: passed}); err != nil {
					return rec.fail(err)
				}
				passed = 0
			}
		}
	}
}

// abandonTimeout bounds how long an exec whose client went away may take
// to end in the guest before its stream is dropped.
const abandonTimeout = 10 * time.Second

// outputWindow is how many output events the guest may send ahead of
// the client: ttrpc closes a stream whose reader stalls for a second with
// 64 messages queued, so the agent waits for AckOutput instead.
const outputWindow = 32

// WriteStdin passes the client's chunks on one at a time, each once the
// previous one is written, so input to a process that is not reading
// waits here (and, through gRPC's flow control, in the client).
func (p *agentProxy) WriteStdin(stream agentv1.Agent_WriteStdinServer) error {
	ctx := stream.Context()
	agent, err := p.s.link.agent(ctx)
	if err != nil {
		return err
	}
	var first *agentv1.StdinChunk // names the process for the chunks after it
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&agentv1.WriteStdinResponse{})
		}
		if err != nil {
			return err
		}
		if first == nil {
			first = chunk
		}
		chunk.Id, chunk.Process = first.Id, first.Process
		if _, err := agent.WriteStdinChunk(ctx, chunk); err != nil {
			return err
		}
	}
}

func (p *agentProxy) Resize(ctx context.Context, req *agentv1.ResizeRequest) (*agentv1.ResizeResponse, error) {
	agent, err := p.s.link.agent(ctx)
	if err != nil {
		return nil, err
	}
	return agent.Resize(ctx, req)
}

func (p *agentProxy) Signal(ctx context.Context, req *agentv1.SignalRequest) (*agentv1.SignalResponse, error) {
	agent, err := p.s.link.agent(ctx)
	if err != nil {
		return nil, err
	}
	return agent.Signal(ctx, req)
}
