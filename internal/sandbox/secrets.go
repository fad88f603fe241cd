package sandbox

import (
	"context"
	"errors"
	"fmt"
	"slices"

	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
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
	found, err := m.lookupSecrets(unique, "--secret")
	for _, d := range found {
		cfg.Secrets = append(cfg.Secrets, d.Name)
	}
	return err
}

// lookupSecrets returns the store's definitions of names, and an error
// for each name it lacks; with flag set, each error names it ("--secret
// NAME: ...").
func (m *Manager) lookupSecrets(names []string, flag string) ([]secret.Definition, error) {
	found, missing, err := secret.Open(m.Home).Lookup(names)
	if err != nil {
		if flag != "" {
			err = fmt.Errorf("%s: %w", flag, err)
		}
		return nil, err
	}
	var errs []error
	for _, n := range missing {
		err := secret.NotFound(n)
		if flag != "" {
			err = fmt.Errorf("%s %s: %w", flag, n, err)
		}
		errs = append(errs, err)
	}
	return found, errors.Join(errs...)
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

// BindSecrets binds the secrets of bind to sandbox name and unbinds those
// of unbind, whether it runs or not, and returns its bound secrets after.
// Each to bind must be in the store, each to unbind bound; otherwise
// nothing changes. A running sandbox's later execs get the placeholders
// and its next requests the values; a stopped one's at its next start.
func (m *Manager) BindSecrets(ctx context.Context, name string, bind, unbind []string) ([]string, error) {
	l, err := m.existing(name)
	if err != nil {
		return nil, err
	}
	var cfg store.SandboxConfig
	if err := store.ReadJSON(l.Config(), &cfg); err != nil {
		return nil, err
	}
	if cfg.Pool != "" {
		return nil, fmt.Errorf("sandbox %q is an idle warm-pool sandbox of paddock serve: bind secrets to a sandbox once a create has claimed it", name)
	}
	if _, err := m.lookupSecrets(bind, ""); err != nil {
		return nil, err
	}
	if supervisorAlive(l) {
		c, err := m.Dial(name)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		resp, err := c.Supervisor.BindSecrets(ctx, &supervisorv1.BindSecretsRequest{Bind: bind, Unbind: unbind})
		if err != nil {
			return nil, plainStatus(err)
		}
		return resp.Secrets, nil
	}
	var names []string
	err = m.editConfig(name, l, func(cfg *store.SandboxConfig) error {
		var err error
		names, err = secret.Rebind(cfg.Secrets, bind, unbind)
		cfg.Secrets = names
		return err
	})
	return names, err
}
