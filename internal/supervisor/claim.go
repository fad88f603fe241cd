package supervisor

import (
	"context"
	"maps"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/store"
)

// An idle warm-pool sandbox (paddock serve --warm) was restored and
// configured like any other: its hostname is its name, and its machine id
// and entropy were fresh at its own restore. A claim gives it an owner and
// the caller's settings without touching the guest: the environment is
// the supervisor's, added to every exec, and the policy is the network's.

// Claim makes an idle pool sandbox the caller's (see the proto).
func (a *api) Claim(ctx context.Context, req *supervisorv1.ClaimRequest) (*supervisorv1.ClaimResponse, error) {
	s := a.s
	p, err := netpolicy.Parse([]byte(req.PolicyYaml))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "network policy: %v", err)
	}
	if _, err := netpolicy.Compile(p); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "network policy: %v", err)
	}
	if err := s.claimConfig(req); err != nil {
		return nil, err
	}
	sn := s.net
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if _, err := sn.setPolicyLocked(p); err != nil {
		return nil, err
	}
	s.log.Info("claimed from the warm pool", "owner", req.Owner, "env", len(req.Env), "preset", p.Preset)
	return &supervisorv1.ClaimResponse{}, nil
}

// claimConfig checks that the sandbox is an idle pool member and records
// the claim's settings in its config, in force for the next exec.
func (s *sup) claimConfig(req *supervisorv1.ClaimRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Pool == "" {
		return status.Errorf(codes.FailedPrecondition, "sandbox %q is not an idle warm-pool sandbox (claimed already?)", s.cfg.Name)
	}
	if err := s.busyLocked(); err != nil {
		return err
	}
	cfg := s.cfg
	cfg.Pool = ""
	cfg.Owner, cfg.AccessToken = req.Owner, req.AccessToken
	cfg.Metadata = maps.Clone(req.Metadata)
	cfg.Env = slices.Clone(req.Env)
	cfg.Deadline = nil
	if req.DeadlineUnixNano != 0 {
		d := time.Unix(0, req.DeadlineUnixNano).UTC()
		cfg.Deadline = &d
	}
	if err := store.WriteJSON(s.layout.Config(), cfg); err != nil {
		return status.Errorf(codes.Internal, "record the claim: %v", err)
	}
	// Only the fields a claim changes are written: the others are read
	// without mu.
	s.cfg.Pool, s.cfg.Owner, s.cfg.AccessToken = cfg.Pool, cfg.Owner, cfg.AccessToken
	s.cfg.Metadata, s.cfg.Env, s.cfg.Deadline = cfg.Metadata, cfg.Env, cfg.Deadline
	close(s.deadlineMoved)
	s.deadlineMoved = make(chan struct{})
	return nil
}

// execEnv is the sandbox's environment for an exec (a claim replaces it):
// the bound secrets' placeholders, then the sandbox's own variables.
func (s *sup) execEnv() []string {
	env := s.secrets.env()
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(env, s.cfg.Env...)
}
