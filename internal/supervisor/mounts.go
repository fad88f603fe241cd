package supervisor

import (
	"context"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/store"
)

// AddMount syncs another host folder into the running guest.
func (a *api) AddMount(ctx context.Context, req *supervisorv1.AddMountRequest) (*supervisorv1.AddMountResponse, error) {
	s := a.s
	m := store.Mount{Host: req.Host, Guest: req.Guest, ReadOnly: req.ReadOnly}
	if err := s.busyForMounts(); err != nil {
		return nil, err
	}
	if err := store.CheckGuestPath(m.Guest); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := s.overlaps(m.Guest); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	f, err := s.openFolder(m, s.mountState(m.Guest), false)
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "folder %s: %v", m.Host, err)
	}
	os.Remove(f.state) // a folder added again starts afresh
	if err := s.startFolder(ctx, f); err != nil {
		f.stop(ctx, s)
		f.tree.Close()
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	s.foldersMu.Lock()
	s.folders = append(s.folders, f)
	s.foldersMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg
	cfg.Mounts = append(append([]store.Mount(nil), cfg.Mounts...), m)
	if err := store.WriteJSON(s.layout.Config(), cfg); err != nil {
		return nil, status.Errorf(codes.Internal, "record the folder: %v", err)
	}
	s.cfg.Mounts = cfg.Mounts
	return &supervisorv1.AddMountResponse{}, nil
}

// RemoveMount ends a folder's sync (after a last flush) and removes its
// copy from the guest.
func (a *api) RemoveMount(ctx context.Context, req *supervisorv1.RemoveMountRequest) (*supervisorv1.RemoveMountResponse, error) {
	s := a.s
	if err := s.busyForMounts(); err != nil {
		return nil, err
	}
	s.foldersMu.Lock()
	var f *folder
	rest := make([]*folder, 0, len(s.folders))
	for _, x := range s.folders {
		if x.guest == req.Guest && x.host != s.cfg.Workspace {
			f = x
			continue
		}
		rest = append(rest, x)
	}
	if f == nil {
		s.foldersMu.Unlock()
		return nil, status.Errorf(codes.NotFound, "no folder was added at %s", req.Guest)
	}
	s.folders = rest
	s.foldersMu.Unlock()
	f.stop(ctx, s)
	f.tree.Close()
	os.Remove(f.state)
	if err := s.removeCopy(ctx, f.guest); err != nil {
		s.log.Warn("remove a folder's copy from the guest", "folder", f.guest, "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg
	cfg.Mounts = nil
	for _, m := range s.cfg.Mounts {
		if m.Guest != req.Guest {
			cfg.Mounts = append(cfg.Mounts, m)
		}
	}
	if err := store.WriteJSON(s.layout.Config(), cfg); err != nil {
		return nil, status.Errorf(codes.Internal, "record the removal: %v", err)
	}
	s.cfg.Mounts = cfg.Mounts
	return &supervisorv1.RemoveMountResponse{}, nil
}

// removeCopy asks the guest to remove the copy at guest path g.
func (s *sup) removeCopy(ctx context.Context, g string) error {
	agent, err := s.link.agent(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := agent.Sync(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&agentv1.SyncMessage{Kind: agentv1.SyncKind_SYNC_START, Start: &agentv1.SyncStart{Path: g, Remove: true}}); err != nil {
		return err
	}
	_, err = stream.Recv() // the guest ends the stream when done
	if err != nil && !strings.Contains(err.Error(), "EOF") {
		return err
	}
	return nil
}

// busyForMounts refuses mount changes while the VM cannot take them.
func (s *sup) busyForMounts() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused {
		return status.Errorf(codes.FailedPrecondition, "sandbox %q is paused: resume it first", s.cfg.Name)
	}
	return s.busyLocked()
}

// overlaps refuses a guest path inside, or holding, a synced folder's.
func (s *sup) overlaps(g string) error {
	for _, f := range s.syncedFolders() {
		_, inside := within(f.guest, g)
		_, holds := within(g, f.guest)
		if inside || holds {
			return fmt.Errorf("%s overlaps %s, synced from %s", g, f.guest, f.host)
		}
	}
	return nil
}
