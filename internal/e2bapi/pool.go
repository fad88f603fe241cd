package e2bapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"

	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/warmpool"
)

// StartPool keeps spec's idle clones, made as API creates make sandboxes,
// and serves creates from them, until ctx ends; the returned func waits
// for the pool's loops to end (a boot under way is undone). Idle clones
// an earlier serve left are adopted or removed (all of them for an empty
// spec).
func (s *Server) StartPool(ctx context.Context, spec warmpool.Spec, log *slog.Logger) (wait func()) {
	s.Pool = warmpool.New(s.m, spec, log)
	s.Pool.Base = sandbox.CreateOptions{User: e2bUser}
	s.Pool.WarmUp = s.warmUp
	s.Pool.Stale = func(info sandbox.Info) string { return s.m.TrustDiffers(info.Name) }
	s.Pool.Start(ctx)
	return s.Pool.Wait
}

// createOrClaim serves a create from the warm pool when the template has
// an idle clone and the create asks for nothing a clone cannot take;
// otherwise (or when no clone could be claimed) it creates as usual.
func (s *Server) createOrClaim(ctx context.Context, o sandbox.CreateOptions) (store.SandboxConfig, error) {
	if s.Pool != nil {
		if cfg, ok := s.Pool.Claim(ctx, o); ok {
			s.log.Info("api create from the warm pool", "key", o.Owner, "sandbox", cfg.Name, "template", o.Template)
			return cfg, nil
		}
	}
	// Boots take turns: on a loaded host, many at once would each take
	// long enough to miss their own timeouts.
	select {
	case s.boots <- struct{}{}:
		defer func() { <-s.boots }()
	case <-ctx.Done():
		return store.SandboxConfig{}, ctx.Err()
	}
	return s.m.Create(ctx, o)
}

// warmUpArgv is what the SDKs run a command as: a login shell. Under TCG
// the first one in a new VM costs several times the later ones (code not
// yet translated, files not yet cached).
var warmUpArgv = []string{"/bin/bash", "-l", "-c", "true"}

// warmUp runs warmUpArgv once in a new clone, as its default user.
func (s *Server) warmUp(ctx context.Context, name string) error {
	c, err := s.m.Dial(name)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	exit, err := c.Run(ctx, &agentv1.ExecRequest{Id: "pool-warm-up", Argv: warmUpArgv}, sandbox.Streams{Stdout: io.Discard, Stderr: io.Discard}, nil)
	if err == nil && exit.Code != 0 {
		err = fmt.Errorf("%v exited %d %s", warmUpArgv, exit.Code, exit.Error)
	}
	return err
}
