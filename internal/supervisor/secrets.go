package supervisor

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/secret"
	"github.com/paddock-dev/paddock/internal/store"
)

// boundSecrets is the host side of a sandbox's bound secrets: what the
// forwarder's injector asks (internal/inject) and the placeholders every
// exec gets. Each call reads the store again, so a secret set or removed
// on the host counts at the next request or exec; values are never kept
// here.
type boundSecrets struct {
	s     *sup
	store *secret.Store
}

func newBoundSecrets(s *sup) *boundSecrets {
	return &boundSecrets{s: s, store: secret.Open(s.opts.Home)}
}

// names are the sandbox's bound secrets (a claim may set them).
func (b *boundSecrets) names() []string {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return slices.Clone(b.s.cfg.Secrets)
}

// Bound returns the definitions of the bound secrets that the store still
// has; one removed since is skipped.
func (b *boundSecrets) Bound() ([]secret.Definition, error) {
	defs, _, err := b.store.Lookup(b.names())
	return defs, err
}

// Value returns the value of bound secret name.
func (b *boundSecrets) Value(ctx context.Context, name string) (string, error) {
	if !slices.Contains(b.names(), name) {
		return "", fmt.Errorf("secret %q is not bound to this sandbox", name)
	}
	return b.store.Value(ctx, name)
}

// env is VAR=PLACEHOLDER for each bound secret, for every exec.
func (b *boundSecrets) env() []string {
	defs, _ := b.Bound()
	env := make([]string, 0, len(defs))
	for _, d := range defs {
		env = append(env, d.Env+"="+d.Placeholder)
	}
	return env
}

// BindSecrets changes the bound list and records it (see the proto). An
// unbind of a name that is not bound changes nothing and fails.
func (a *api) BindSecrets(ctx context.Context, req *supervisorv1.BindSecretsRequest) (*supervisorv1.BindSecretsResponse, error) {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	names, err := secret.Rebind(s.cfg.Secrets, req.Bind, req.Unbind)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	cfg := s.cfg
	cfg.Secrets = names
	if err := store.WriteJSON(s.layout.Config(), cfg); err != nil {
		return nil, status.Errorf(codes.Internal, "record the bound secrets: %v", err)
	}
	s.cfg.Secrets = names
	if s.net != nil {
		s.net.proxy.Rebound()
	}
	s.log.Info("secrets bound", "bind", req.Bind, "unbind", req.Unbind, "secrets", names)
	return &supervisorv1.BindSecretsResponse{Secrets: names}, nil
}
