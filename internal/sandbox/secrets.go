package sandbox

import (
	"errors"
	"fmt"
	"slices"

	"github.com/paddock-dev/paddock/internal/secret"
	"github.com/paddock-dev/paddock/internal/store"
)

// validateSecrets checks that every name is a secret in the store and
// binds them to cfg, each once, in the order given.
func (m *Manager) validateSecrets(names []string, cfg *store.SandboxConfig) error {
	var unique []string
	for _, n := range names {
		if !slices.Contains(unique, n) {
			unique = append(unique, n)
		}
	}
	found, missing, err := secret.Open(m.Home).Lookup(unique)
	if err != nil {
		return fmt.Errorf("--secret: %w", err)
	}
	var errs []error
	for _, n := range missing {
		errs = append(errs, fmt.Errorf("--secret %s: %w", n, secret.NotFound(n)))
	}
	for _, d := range found {
		cfg.Secrets = append(cfg.Secrets, d.Name)
	}
	return errors.Join(errs...)
}

// BoundSecret is a secret bound to a sandbox as inspect and policy show
// list it: never its value.
type BoundSecret struct {
	Name  string   `json:"name"`
	Env   string   `json:"env,omitempty"`
	Hosts []string `json:"hosts,omitempty"`
	// Missing says the secret was removed from the store after it was
	// bound: the guest's variable is gone and nothing is injected.
	Missing bool `json:"missing,omitempty"`
}

// BoundSecrets describes the secrets bound to cfg as the store has them
// now.
func (m *Manager) BoundSecrets(cfg store.SandboxConfig) []BoundSecret {
	found, _, _ := secret.Open(m.Home).Lookup(cfg.Secrets)
	var out []BoundSecret
	for _, n := range cfg.Secrets {
		i := slices.IndexFunc(found, func(d secret.Definition) bool { return d.Name == n })
		if i < 0 {
			out = append(out, BoundSecret{Name: n, Missing: true})
			continue
		}
		out = append(out, BoundSecret{Name: n, Env: found[i].Env, Hosts: found[i].Hosts()})
	}
	return out
}
