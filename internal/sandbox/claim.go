package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/store"
)

// ClaimOptions are what a claim of an idle warm-pool sandbox gives it: the
// settings of an API create that a running clone can take.
type ClaimOptions struct {
	Env         []string
	TTL         time.Duration // counted from the claim; 0: none
	Metadata    map[string]string
	Owner       string
	AccessToken string
	Policy      *netpolicy.Policy // nil: the default preset
}

// Claimable reports whether a create with options o can be served by
// claiming an idle warm-pool sandbox made with options clone: o has no
// workspace, name, checkpoint or secrets and asks for the clone's template, size,
// accelerator, memory sharing and user; the rest a claim applies.
func Claimable(o, clone CreateOptions) bool {
	return o.NoWorkspace && o.From == "" && o.Name == "" && o.Pool == "" && !o.AutoPause && len(o.Secrets) == 0 && o.Template == clone.Template &&
		o.CPUs == clone.CPUs && o.Memory == clone.Memory && o.Accel == clone.Accel && o.Cold == clone.Cold &&
		o.NoShareMemory == clone.NoShareMemory && o.User == clone.User
}

// ClaimOptionsOf is the part of a create's options a claim applies.
func ClaimOptionsOf(o CreateOptions) ClaimOptions {
	return ClaimOptions{Env: o.Env, TTL: o.TTL, Metadata: o.Metadata, Owner: o.Owner, AccessToken: o.AccessToken, Policy: o.Policy}
}

// Claim makes the idle warm-pool sandbox name the caller's, live, through
// its supervisor, and returns its config as claimed. It fails, changing
// nothing, when the sandbox is not an idle pool member (another claim won).
func (m *Manager) Claim(ctx context.Context, name string, o ClaimOptions) (store.SandboxConfig, error) {
	var errs []error
	for _, e := range o.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("invalid env %q: use KEY=VALUE", e))
		}
	}
	if o.TTL < 0 || o.TTL > maxTTL {
		errs = append(errs, fmt.Errorf("invalid ttl %s: between 1s and %s, or none", o.TTL, maxTTL))
	}
	errs = append(errs, validatePolicy(o.Policy))
	if err := errors.Join(errs...); err != nil {
		return store.SandboxConfig{}, err
	}
	c, err := m.Dial(name)
	if err != nil {
		return store.SandboxConfig{}, err
	}
	defer c.Close()
	req := &supervisorv1.ClaimRequest{
		Owner: o.Owner, Metadata: o.Metadata, AccessToken: o.AccessToken, Env: o.Env,
		PolicyYaml: string(defaultPolicy(o.Policy).Marshal()),
	}
	if o.TTL > 0 {
		req.DeadlineUnixNano = time.Now().Add(o.TTL).UnixNano()
	}
	if _, err := c.Supervisor.Claim(ctx, req); err != nil {
		return store.SandboxConfig{}, fmt.Errorf("claim %q: %w", name, err)
	}
	var cfg store.SandboxConfig
	if err := store.ReadJSON(m.Home.Sandbox(name).Config(), &cfg); err != nil {
		return cfg, fmt.Errorf("claim %q: %w", name, err)
	}
	return cfg, nil
}
