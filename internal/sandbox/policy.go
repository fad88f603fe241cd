package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"

	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/store"
)

func defaultPolicy(p *netpolicy.Policy) netpolicy.Policy {
	if p == nil {
		return netpolicy.Policy{Preset: netpolicy.DefaultPreset}
	}
	return *p
}

// validatePolicy checks a create's network policy.
func validatePolicy(p *netpolicy.Policy) error {
	if _, err := netpolicy.Compile(defaultPolicy(p)); err != nil {
		return fmt.Errorf("network policy: %w", err)
	}
	return nil
}

// writePolicy saves a new sandbox's network policy (policy.yaml).
func writePolicy(l store.Layout, p *netpolicy.Policy) error {
	return store.WriteFileAtomic(l.Policy(), defaultPolicy(p).Marshal(), 0o600)
}

// ReadPolicy returns a sandbox's saved network policy: the one in force
// while it runs (the supervisor rewrites the file on every change).
func (m *Manager) ReadPolicy(name string) (netpolicy.Policy, error) {
	l, err := m.existing(name)
	if err != nil {
		return netpolicy.Policy{}, err
	}
	b, err := os.ReadFile(l.Policy())
	if errors.Is(err, os.ErrNotExist) {
		return netpolicy.Policy{}, fmt.Errorf("sandbox %q has no network policy (%s is missing): its network is closed; set one with paddock policy set %s", name, l.Policy(), name)
	}
	if err != nil {
		return netpolicy.Policy{}, err
	}
	return netpolicy.Parse(b)
}

// WritePolicy replaces a stopped sandbox's policy (a running one's changes
// go through its supervisor).
func (m *Manager) WritePolicy(name string, p netpolicy.Policy) error {
	l, err := m.existing(name)
	if err != nil {
		return err
	}
	if _, err := netpolicy.Compile(p); err != nil {
		return err
	}
	lock, err := store.LockFile(l.Lock(), false)
	if err != nil {
		return fmt.Errorf("sandbox %q is busy (another paddock command holds it): try again", name)
	}
	defer lock.Unlock()
	if supervisorAlive(l) {
		return fmt.Errorf("sandbox %q started meanwhile: try again", name)
	}
	return store.WriteFileAtomic(l.Policy(), p.Marshal(), 0o600)
}

// SetPolicy replaces sandbox name's network policy: live through its
// supervisor when it runs (new connections obey at once), else in its
// policy file for its next start.
func (m *Manager) SetPolicy(ctx context.Context, name string, p netpolicy.Policy) error {
	if !m.Running(name) {
		return m.WritePolicy(name, p)
	}
	c, err := m.Dial(name)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Supervisor.SetPolicy(ctx, &supervisorv1.SetPolicyRequest{Yaml: string(p.Marshal())})
	return err
}

// Running reports whether the sandbox's supervisor is alive.
func (m *Manager) Running(name string) bool {
	l, err := m.existing(name)
	return err == nil && supervisorAlive(l)
}

// AddPolicyRules adds allow (or deny) rules to sandbox name's network
// policy: live through its supervisor when it runs, else in its policy
// file. Every rule is checked before any is added.
func (m *Manager) AddPolicyRules(ctx context.Context, name string, allow bool, rules []string) error {
	var errs []error
	for _, r := range rules {
		if _, err := netpolicy.ParseRule(r); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if !m.Running(name) {
		p, err := m.ReadPolicy(name)
		if err != nil {
			return err
		}
		for _, r := range rules {
			p.AddRule(allow, r)
		}
		return m.WritePolicy(name, p)
	}
	c, err := m.Dial(name)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, r := range rules {
		if _, err := c.Supervisor.AddPolicyRule(ctx, &supervisorv1.AddPolicyRuleRequest{Allow: allow, Rule: r}); err != nil {
			return fmt.Errorf("rule %s: %w", r, plainStatus(err))
		}
	}
	return nil
}
