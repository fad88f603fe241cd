package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/vm/qemu"
)

// Checkpoint saves memory, device state and disk of the running VM as
// checkpoint req.Name, whose folder the supervisor makes and fills. The
// steps: the workspace sync is flushed and ended (no host session may be
// open when the VM is saved), and its record kept with the checkpoint;
// the guest syncs its file systems; QEMU stops and streams its whole
// state, RAM included; the disk overlay (with the workspace's copy) is
// copied while the VM is stopped; the VM continues and the sync starts
// again; checkpoint.json, written last, makes the checkpoint usable.
// Exec calls are refused while this runs.
func (a *api) Checkpoint(ctx context.Context, req *supervisorv1.CheckpointRequest) (_ *supervisorv1.CheckpointResponse, err error) {
	s := a.s
	t0 := time.Now()
	if err := store.ValidateName(req.Name); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "checkpoint %v", err)
	}
	// Finish even if the caller goes away: a half-done save must still
	// end with the VM running and its workspace synced again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	if err := s.beginCheckpoint(); err != nil {
		return nil, err
	}
	defer s.endCheckpoint()
	ck, err := s.makeCheckpointDir(req.Name)
	if err != nil {
		return nil, err
	}
	// A checkpoint that failed leaves nothing of itself behind.
	defer func() {
		if err != nil {
			os.RemoveAll(ck.Dir)
		}
	}()
	meta, err := s.checkpointMeta(req.Name)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "checkpoint: %v", err)
	}
	if err := s.checkpointVM(ctx, ck); err != nil {
		return nil, err
	}
	st, err := os.Stat(ck.Memory())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "checkpoint: %v", err)
	}
	meta.MemoryBytes = st.Size()
	if err := store.WriteJSON(ck.Meta(), meta); err != nil {
		return nil, status.Errorf(codes.Internal, "checkpoint: %v", err)
	}
	return &supervisorv1.CheckpointResponse{MemoryBytes: st.Size(), DurationMs: time.Since(t0).Milliseconds()}, nil
}

// makeCheckpointDir makes the folder of checkpoint name, which must not
// exist.
func (s *sup) makeCheckpointDir(name string) (store.CheckpointLayout, error) {
	ck := s.opts.Home.Checkpoint(name)
	if err := os.MkdirAll(s.opts.Home.CheckpointsDir(), 0o700); err != nil {
		return ck, status.Errorf(codes.Internal, "checkpoint: %v", err)
	}
	if err := os.Mkdir(ck.Dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return ck, status.Errorf(codes.AlreadyExists, "checkpoint %q already exists", name)
		}
		return ck, status.Errorf(codes.Internal, "checkpoint: %v", err)
	}
	return ck, nil
}

// checkpointMeta is what a checkpoint records of its sandbox: its
// settings and network policy as they are now (mount add and the policy
// verbs change them while it runs).
func (s *sup) checkpointMeta(name string) (store.CheckpointMeta, error) {
	meta := store.CheckpointMeta{Name: name, Sandbox: s.cfg.Name, Created: time.Now().UTC()}
	if err := store.ReadJSON(s.layout.Config(), &meta.Config); err != nil {
		return meta, err
	}
	if b, err := os.ReadFile(s.layout.Policy()); err == nil {
		meta.Policy = string(b)
	}
	return meta, nil
}

// checkpointVM saves the VM's state and disk into ck; whatever happens,
// the VM runs on and its workspace sync starts again.
func (s *sup) checkpointVM(ctx context.Context, ck store.CheckpointLayout) error {
	agent, err := s.link.agent(ctx)
	if err != nil {
		return err
	}
	s.stopSync(ctx)
	defer func() {
		if err := s.startSync(ctx); err != nil {
			s.log.Warn("workspace sync after checkpoint", "err", err)
		}
	}()
	if err := copySyncState(s.layout.SyncState(), ck.SyncState()); err != nil {
		return status.Errorf(codes.Internal, "checkpoint: %v", err)
	}
	if _, err := agent.Quiesce(ctx, &agentv1.QuiesceRequest{}); err != nil {
		return err
	}
	saveErr := s.saveCheckpoint(ctx, ck)
	// Whatever happened, the sandbox runs on.
	if _, err := s.monitor.Execute("cont", nil); err != nil {
		return status.Errorf(codes.Internal, "continue after checkpoint: %v", err)
	}
	if err := s.configure(ctx); err != nil {
		return status.Errorf(codes.Internal, "configure the guest after checkpoint: %v", err)
	}
	if saveErr != nil {
		return status.Errorf(codes.Internal, "checkpoint: %v; the sandbox runs on, and nothing of the checkpoint was kept", saveErr)
	}
	return nil
}

// beginCheckpoint puts the sandbox in its checkpointing state, in which
// execs, pause and resume are refused; a paused sandbox, or one already
// being checkpointed, is refused.
func (s *sup) beginCheckpoint() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.busyLocked(); err != nil {
		return err
	}
	if s.paused {
		return status.Errorf(codes.FailedPrecondition, "sandbox %q is paused: resume it before a checkpoint", s.cfg.Name)
	}
	s.checkpointing = true
	return nil
}

func (s *sup) endCheckpoint() {
	s.mu.Lock()
	s.checkpointing = false
	s.mu.Unlock()
}

// saveCheckpoint ends the host session, has QEMU stop and stream its
// whole state to ck, and copies the disk pair while the VM is stopped.
// The VM stays stopped.
func (s *sup) saveCheckpoint(ctx context.Context, ck store.CheckpointLayout) error {
	if err := detach(ctx, s.link, s.console); err != nil {
		return err
	}
	if err := s.monitor.SetIgnoreShared(false); err != nil {
		return err
	}
	if err := s.monitor.Save(ctx, ck.Memory()); err != nil {
		return err
	}
	if err := store.WriteJSON(ck.Machine(), s.machine()); err != nil {
		return err
	}
	return copyDiskPair(s.layout.Dir, ck.Dir)
}

// restoreCheckpoint loads a checkpoint's full state (RAM included) into a
// QEMU started with Incoming and lets it run.
func (s *sup) restoreCheckpoint(ctx context.Context, ck store.CheckpointLayout) error {
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if _, err := os.Stat(ck.Meta()); err != nil {
		return fmt.Errorf("checkpoint is incomplete or missing: %w", err)
	}
	var m machine
	if err := store.ReadJSON(ck.Machine(), &m); err != nil || m != s.machine() {
		return fmt.Errorf("the checkpoint was saved from another virtual machine (QEMU %q, CPU %q, devices %d) than this one (QEMU %q, CPU %q, devices %d), so it cannot be loaded: take a new checkpoint",
			m.QEMU, m.CPU, m.Devices, s.machine().QEMU, s.machine().CPU, s.machine().Devices)
	}
	if err := s.monitor.SetIgnoreShared(false); err != nil {
		return err
	}
	if err := s.monitor.Restore(ctx, ck.Memory()); err != nil {
		return err
	}
	_, err := s.monitor.Execute("cont", nil)
	return err
}

// machine identifies the virtual machine a checkpoint's state fits.
type machine struct {
	QEMU    string `json:"qemu"`
	CPU     string `json:"cpu"`
	Devices int    `json:"devices"` // stateFormat: the device set and its options
}

func (s *sup) machine() machine {
	return machine{QEMU: qemuVersion(), CPU: qemu.CPUModel(s.accel), Devices: stateFormat}
}
