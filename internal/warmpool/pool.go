// Package warmpool keeps idle, restored sandboxes per template for paddock
// serve (--warm TEMPLATE=N). An API create claims one instead of booting,
// and a replacement is booted in the background.
//
// Pool members are ordinary sandboxes marked in their config
// (store.SandboxConfig.Pool): paddock ls shows them, paddock rm removes
// them, and a serve that starts adopts the running ones it wants and
// removes the rest. A claim goes through the member's supervisor, which
// refuses a second claim, so two creates never get the same clone even
// across processes.
package warmpool

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/store"
)

// Sandboxes is what the pool needs of sandbox.Manager.
type Sandboxes interface {
	Create(ctx context.Context, o sandbox.CreateOptions) (store.SandboxConfig, error)
	Claim(ctx context.Context, name string, o sandbox.ClaimOptions) (store.SandboxConfig, error)
	List() ([]sandbox.Info, error)
	Inspect(name string) (sandbox.Info, error)
	Remove(ctx context.Context, name string, force bool) error
}

// Pool keeps Spec's idle clones. Its methods are safe for concurrent use.
type Pool struct {
	sb   Sandboxes
	want Spec
	log  *slog.Logger
	// Base is what every clone is created with besides its template, the
	// pool mark, no workspace and a closed network (the API's user, say).
	// Set before Start.
	Base sandbox.CreateOptions
	// Settle is how long a refill waits after a claim before it boots the
	// replacement, leaving the host's CPU to the claimed sandbox's first
	// commands. Set before Start.
	Settle time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed boot, doubled
	// each time it fails again. Set before Start.
	MinBackoff, MaxBackoff time.Duration
	// Check is how often idle members are checked to be still running.
	Check time.Duration
	// WarmUp, when set, runs in each new clone before it is offered (what
	// a client's first command runs, so its code and files are warm); a
	// failure is logged and the clone offered anyway. Set before Start.
	WarmUp func(ctx context.Context, name string) error
	// Stale, when set, says why a running member an earlier serve left
	// cannot serve this one's creates ("" when it can): made with other
	// CAs, say. Start removes such members. Set before Start.
	Stale func(info sandbox.Info) string

	wake map[string]chan struct{} // per template, buffered 1; fixed after New
	wg   sync.WaitGroup

	mu   sync.Mutex
	idle map[string][]string // template -> idle members, oldest first
}

// New returns a pool over sb keeping want; nothing runs until Start.
func New(sb Sandboxes, want Spec, log *slog.Logger) *Pool {
	p := &Pool{
		sb: sb, want: want, log: log,
		Settle: 500 * time.Millisecond, MinBackoff: time.Second, MaxBackoff: time.Minute, Check: 30 * time.Second,
		wake: map[string]chan struct{}{}, idle: map[string][]string{},
	}
	for t := range want {
		p.wake[t] = make(chan struct{}, 1)
	}
	return p
}

// Has reports whether the pool keeps clones of template.
func (p *Pool) Has(template string) bool { return p.want[template] > 0 }

// Idle returns template's idle members, oldest first.
func (p *Pool) Idle(template string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.idle[template]...)
}

// Start adopts the running pool members left by an earlier serve, up to
// the wanted number per template, removes the others (surplus, templates
// no longer wanted, stopped or broken ones), and starts one refill loop
// per template, which runs until ctx ends (Wait waits for them).
func (p *Pool) Start(ctx context.Context) {
	p.adopt(ctx)
	for t := range p.want {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.refill(ctx, t)
		}()
	}
}

// Wait returns when the refill loops have ended (their context ended) and
// a boot they had under way has been undone.
func (p *Pool) Wait() { p.wg.Wait() }

func (p *Pool) adopt(ctx context.Context) {
	all, err := p.sb.List()
	if err != nil {
		p.log.Warn("warm pool: cannot list sandboxes to adopt", "err", err)
		return
	}
	keep, drop := adoption(all, p.want, p.stale)
	p.mu.Lock()
	for t, names := range keep {
		p.idle[t] = names
	}
	p.mu.Unlock()
	for t, names := range keep {
		p.log.Info("warm pool: adopted idle sandboxes of an earlier serve", "template", t, "sandboxes", names)
	}
	for _, name := range drop {
		p.remove(ctx, name, "an idle pool sandbox this serve's --warm does not want, or not running")
	}
}

// stale is p.Stale's reason, logged, or "" when p has none.
func (p *Pool) stale(info sandbox.Info) string {
	if p.Stale == nil {
		return ""
	}
	why := p.Stale(info)
	if why != "" {
		p.log.Info("warm pool: an idle sandbox of an earlier serve does not fit this one", "sandbox", info.Name, "why", why)
	}
	return why
}

// adoption splits the pool members in all into those to keep as idle
// (running, of a wanted template, up to its number, not stale) and those
// to remove.
func adoption(all []sandbox.Info, want Spec, stale func(sandbox.Info) string) (keep map[string][]string, drop []string) {
	keep = map[string][]string{}
	for _, info := range all {
		if info.Pool == "" {
			continue
		}
		if info.State == sandbox.StateRunning && len(keep[info.Pool]) < want[info.Pool] && stale(info) == "" {
			keep[info.Pool] = append(keep[info.Pool], info.Name)
			continue
		}
		drop = append(drop, info.Name)
	}
	return keep, drop
}

// take removes and returns template's oldest idle member, and wakes its
// refill loop.
func (p *Pool) take(template string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := p.idle[template]
	if len(names) == 0 {
		return "", false
	}
	p.idle[template] = names[1:]
	select {
	case p.wake[template] <- struct{}{}:
	default:
	}
	return names[0], true
}

// cloneOptions are the options a clone of template is created with.
func (p *Pool) cloneOptions(template string) sandbox.CreateOptions {
	o := p.Base
	o.Template, o.Pool, o.NoWorkspace, o.Workspace = template, template, true, ""
	o.Policy = &netpolicy.Policy{Preset: netpolicy.DenyAll}
	return o
}

// Claim serves a create with options o from an idle clone, when its
// template has a pool and o asks for nothing a clone lacks
// (sandbox.Claimable). It returns false when it cannot: the caller then
// creates a sandbox as usual. A member whose claim fails is removed
// (unless another claim won it) and the next is tried.
func (p *Pool) Claim(ctx context.Context, o sandbox.CreateOptions) (store.SandboxConfig, bool) {
	if !p.Has(o.Template) || !sandbox.Claimable(o, p.cloneOptions(o.Template)) {
		return store.SandboxConfig{}, false
	}
	return p.claim(ctx, o.Template, sandbox.ClaimOptionsOf(o))
}

func (p *Pool) claim(ctx context.Context, template string, o sandbox.ClaimOptions) (store.SandboxConfig, bool) {
	for {
		name, ok := p.take(template)
		if !ok {
			return store.SandboxConfig{}, false
		}
		cfg, err := p.sb.Claim(ctx, name, o)
		if err == nil {
			return cfg, true
		}
		if ctx.Err() != nil {
			return store.SandboxConfig{}, false
		}
		p.log.Warn("warm pool: claim failed, trying the next", "sandbox", name, "err", err)
		if info, ierr := p.sb.Inspect(name); ierr == nil && (info.Pool != "" || info.AccessToken == o.AccessToken) {
			go p.remove(context.WithoutCancel(ctx), name, "its claim failed")
		}
	}
}

// refill keeps template's idle members at the wanted number until ctx
// ends: one boot at a time, retried with backoff, and a check now and then
// that the idle ones still run.
func (p *Pool) refill(ctx context.Context, template string) {
	backoff := p.MinBackoff
	check := time.NewTicker(p.Check)
	defer check.Stop()
	claimed := false
	for {
		if len(p.Idle(template)) >= p.want[template] {
			select {
			case <-ctx.Done():
				return
			case <-p.wake[template]:
				claimed = true
			case <-check.C:
				p.check(ctx, template)
			}
			continue
		}
		if claimed && !sleep(ctx, p.Settle) {
			return
		}
		claimed = false
		start := time.Now()
		cfg, err := p.sb.Create(ctx, p.cloneOptions(template))
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			p.log.Warn("warm pool: boot failed, retrying", "template", template, "in", backoff, "err", err)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, p.MaxBackoff)
			continue
		}
		backoff = p.MinBackoff
		if p.WarmUp != nil {
			if err := p.WarmUp(ctx, cfg.Name); err != nil && ctx.Err() == nil {
				p.log.Info("warm pool: warm-up failed; the sandbox is offered as it is", "sandbox", cfg.Name, "err", err)
			}
		}
		p.mu.Lock()
		p.idle[template] = append(p.idle[template], cfg.Name)
		p.mu.Unlock()
		p.log.Info("warm pool: idle sandbox ready", "template", template, "sandbox", cfg.Name, "took", time.Since(start).Round(time.Millisecond))
	}
}

// check drops idle members of template that no longer run as idle pool
// members (removed by hand, crashed), removing what is left of them.
func (p *Pool) check(ctx context.Context, template string) {
	for _, name := range p.Idle(template) {
		info, err := p.sb.Inspect(name)
		if err == nil && info.Pool != "" && info.State == sandbox.StateRunning {
			continue
		}
		p.mu.Lock()
		p.idle[template] = without(p.idle[template], name)
		p.mu.Unlock()
		if err == nil && info.Pool != "" {
			p.remove(ctx, name, "an idle pool sandbox that is "+info.Summary())
		}
	}
}

func (p *Pool) remove(ctx context.Context, name, why string) {
	if err := p.sb.Remove(ctx, name, true); err != nil {
		p.log.Warn("warm pool: remove failed", "sandbox", name, "why", why, "err", err)
		return
	}
	p.log.Info("warm pool: removed", "sandbox", name, "why", why)
}

func without(names []string, name string) []string {
	out := names[:0:0]
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

// sleep waits d or until ctx ends, reporting whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
