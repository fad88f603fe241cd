package supervisor

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/store"
)

// A sandbox with a deadline (create --ttl, the API's timeout) is removed by
// its own supervisor when the deadline passes, whether or not anything else
// (paddock serve) runs.

// watchDeadline waits for the deadline, taking moves from SetDeadline, and
// removes the sandbox when it passes. It returns when QEMU exits.
func (s *sup) watchDeadline() {
	for {
		s.mu.Lock()
		d, moved := s.cfg.Deadline, s.deadlineMoved
		s.mu.Unlock()
		var fire <-chan time.Time
		t := time.NewTimer(time.Hour)
		if d != nil {
			t.Reset(time.Until(*d))
			fire = t.C
		}
		select {
		case <-fire:
			if s.cfg.AutoPause {
				s.log.Info("deadline passed, pausing the sandbox", "deadline", d.Format(time.RFC3339))
				if err := s.pauseAtDeadline(); err != nil {
					s.log.Error("cannot pause the sandbox at its deadline, removing it", "err", err)
					s.removeSelf()
					return
				}
				continue
			}
			s.log.Info("deadline passed, removing the sandbox", "deadline", d.Format(time.RFC3339))
			s.removeSelf()
			return
		case <-moved:
			t.Stop()
		case <-s.qemu.Done():
			t.Stop()
			return
		}
	}
}

// pauseAtDeadline pauses the VM and clears the deadline that did it; a
// checkpoint under way is waited for.
func (s *sup) pauseAtDeadline() error {
	for {
		s.mu.Lock()
		if s.busyLocked() == nil {
			break
		}
		s.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
	defer s.mu.Unlock()
	if !s.paused {
		if _, err := s.monitor.Execute("stop", nil); err != nil {
			return err
		}
		s.paused = true
	}
	cfg := s.cfg
	cfg.Deadline = nil
	if err := store.WriteJSON(s.layout.Config(), cfg); err != nil {
		return err
	}
	s.cfg.Deadline = nil
	return nil
}

// removeSelf starts "paddock rm -f NAME", detached: it stops this
// supervisor and deletes the sandbox, as a user's rm would.
func (s *sup) removeSelf() {
	exe, err := os.Executable()
	if err != nil {
		s.log.Error("cannot remove the sandbox at its deadline", "err", err)
		return
	}
	cmd := exec.Command(exe, "rm", "-f", s.cfg.Name)
	cmd.Env = append(os.Environ(), "PADDOCK_HOME="+string(s.opts.Home))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		s.log.Error("cannot remove the sandbox at its deadline", "err", err)
		return
	}
	cmd.Process.Release()
}

func (a *api) SetDeadline(ctx context.Context, req *supervisorv1.SetDeadlineRequest) (*supervisorv1.SetDeadlineResponse, error) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg
	if req.UnixNano == 0 {
		cfg.Deadline = nil
	} else {
		d := time.Unix(0, req.UnixNano).UTC()
		cfg.Deadline = &d
	}
	if err := store.WriteJSON(s.layout.Config(), cfg); err != nil {
		return nil, status.Errorf(codes.Internal, "record the deadline: %v", err)
	}
	s.cfg.Deadline = cfg.Deadline
	close(s.deadlineMoved)
	s.deadlineMoved = make(chan struct{})
	return &supervisorv1.SetDeadlineResponse{}, nil
}
