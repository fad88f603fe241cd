package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	return p.s.guest.Ping(ctx, req)
}

func (p *agentProxy) Exec(req *agentv1.ExecRequest, stream agentv1.Agent_ExecServer) error {
	if err := p.ready(); err != nil {
		return err
	}
	if len(req.Argv) == 0 {
		return status.Error(codes.InvalidArgument, "no command given")
	}
	img := p.image.get(p.s)
	if req.Cwd == "" {
		req.Cwd = p.s.cfg.Workspace
		if img != nil && img.WorkingDir != "" {
			req.Cwd = img.WorkingDir
		}
	}
	if req.User == "" {
		req.User = p.s.cfg.User.Name
		if img != nil {
			req.User = imageUser(img.User)
		}
	}
	env := p.s.cfg.Env
	if img != nil {
		env = append(append([]string(nil), img.Env...), env...)
	}
	req.Env = append(append([]string(nil), env...), req.Env...)
	start := time.Now()
	rec := store.ExecRecord{Time: start, User: req.User, Argv: req.Argv, Cwd: req.Cwd, TTY: req.Tty, ExitCode: -1}
	defer func() {
		rec.DurationMS = time.Since(start).Milliseconds()
		p.audit.record(rec)
	}()
	gs, err := p.s.guest.Exec(stream.Context(), req)
	if err != nil {
		rec.Error = err.Error()
		return err
	}
	for {
		ev, err := gs.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			rec.Error = err.Error()
			return err
		}
		if x := ev.GetExited(); x != nil {
			rec.ExitCode, rec.Error = x.ExitCode, x.Error
		}
		if err := stream.Send(ev); err != nil {
			rec.Error = fmt.Sprintf("client went away: %v", err)
			return err
		}
	}
}

func (p *agentProxy) WriteStdin(stream agentv1.Agent_WriteStdinServer) error {
	gs, err := p.s.guest.WriteStdin(stream.Context())
	if err != nil {
		return err
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := gs.Send(chunk); err != nil {
			if _, rerr := gs.CloseAndRecv(); rerr != nil {
				return rerr
			}
			return err
		}
	}
	resp, err := gs.CloseAndRecv()
	if err != nil {
		return err
	}
	return stream.SendAndClose(resp)
}

func (p *agentProxy) Resize(ctx context.Context, req *agentv1.ResizeRequest) (*agentv1.ResizeResponse, error) {
	return p.s.guest.Resize(ctx, req)
}

func (p *agentProxy) Signal(ctx context.Context, req *agentv1.SignalRequest) (*agentv1.SignalResponse, error) {
	return p.s.guest.Signal(ctx, req)
}
