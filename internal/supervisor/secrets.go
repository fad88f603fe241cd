package supervisor

import (
	"context"
	"fmt"
	"slices"

	"github.com/paddock-dev/paddock/internal/secret"
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
