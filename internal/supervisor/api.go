package supervisor

import (
	"context"
	"os"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
)

// api serves the supervisor's own calls: facts about the VM and its power.
type api struct {
	supervisorv1.UnimplementedSupervisorServer
	s *sup
}

func (a *api) Info(ctx context.Context, _ *supervisorv1.InfoRequest) (*supervisorv1.InfoResponse, error) {
	state, err := a.s.monitor.Status()
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "qemu monitor: %v", err)
	}
	a.s.mu.Lock()
	if a.s.checkpointing {
		state = "checkpointing"
	}
	a.s.mu.Unlock()
	return &supervisorv1.InfoResponse{
		State:           state,
		SupervisorPid:   int32(os.Getpid()),
		QemuPid:         int32(a.s.qemu.Pid()),
		Accel:           a.s.accel,
		AgentVersion:    a.s.agentVersion(),
		Boot:            a.s.mode,
		StartedUnixNano: a.s.started.UnixNano(),
	}, nil
}

func (a *api) Stop(ctx context.Context, req *supervisorv1.StopRequest) (*supervisorv1.StopResponse, error) {
	timeout := time.Duration(req.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &supervisorv1.StopResponse{Forced: a.s.stop(timeout)}, nil
}

func (a *api) Pause(ctx context.Context, _ *supervisorv1.PauseRequest) (*supervisorv1.PauseResponse, error) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if err := a.s.busyLocked(); err != nil {
		return nil, err
	}
	if _, err := a.s.monitor.Execute("stop", nil); err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	a.s.paused = true
	return &supervisorv1.PauseResponse{}, nil
}

func (a *api) Resume(ctx context.Context, _ *supervisorv1.ResumeRequest) (*supervisorv1.ResumeResponse, error) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if err := a.s.busyLocked(); err != nil {
		return nil, err
	}
	if _, err := a.s.monitor.Execute("cont", nil); err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	a.s.paused = false
	return &supervisorv1.ResumeResponse{}, nil
}

// busyLocked refuses a call while a checkpoint saves the VM.
func (s *sup) busyLocked() error {
	if s.checkpointing {
		return status.Errorf(codes.Unavailable, "sandbox %q is being checkpointed: try again when paddock checkpoint returns", s.cfg.Name)
	}
	return nil
}

func (s *sup) agentVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}
