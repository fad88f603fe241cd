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
	if len(names) == 0 {
		return nil
	}
	st := secret.Open(m.Home)
	var errs []error
	for _, n := range names {
		if slices.Contains(cfg.Secrets, n) {
			continue
		}
		if _, err := st.Get(n); err != nil {
			errs = append(errs, fmt.Errorf("--secret %s: %w", n, err))
			continue
		}
		cfg.Secrets = append(cfg.Secrets, n)
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
	st := secret.Open(m.Home)
	var out []BoundSecret
	for _, n := range cfg.Secrets {
		d, err := st.Get(n)
		if err != nil {
			out = append(out, BoundSecret{Name: n, Missing: true})
			continue
		}
		out = append(out, BoundSecret{Name: n, Env: d.Env, Hosts: d.Hosts()})
	}
	return out
}
