package warmpool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/store"
)

// fakeSandboxes keeps sandboxes in a map; a claim succeeds once per
// member, as the supervisor's does.
type fakeSandboxes struct {
	mu       sync.Mutex
	boxes    map[string]*sandbox.Info
	n        int
	failBoot int // boots to fail before one succeeds
	boots    int
	removed  []string
}

func newFake() *fakeSandboxes { return &fakeSandboxes{boxes: map[string]*sandbox.Info{}} }

func (f *fakeSandboxes) add(name, pool string, state sandbox.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.boxes[name] = &sandbox.Info{Name: name, Pool: pool, State: state, Template: pool}
}

func (f *fakeSandboxes) Create(ctx context.Context, o sandbox.CreateOptions) (store.SandboxConfig, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.boots++
	if f.failBoot > 0 {
		f.failBoot--
		return store.SandboxConfig{}, errors.New("boot failed")
	}
	f.n++
	name := fmt.Sprintf("%s-%d", o.Template, f.n)
	f.boxes[name] = &sandbox.Info{Name: name, Pool: o.Pool, State: sandbox.StateRunning, Template: o.Template}
	return store.SandboxConfig{Name: name, Pool: o.Pool}, nil
}

func (f *fakeSandboxes) Claim(ctx context.Context, name string, o sandbox.ClaimOptions) (store.SandboxConfig, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.boxes[name]
	if b == nil || b.Pool == "" || b.State != sandbox.StateRunning {
		return store.SandboxConfig{}, fmt.Errorf("sandbox %q is not an idle warm-pool sandbox", name)
	}
	b.Pool, b.Owner, b.AccessToken = "", o.Owner, o.AccessToken
	return store.SandboxConfig{Name: name, Owner: o.Owner, AccessToken: o.AccessToken}, nil
}

func (f *fakeSandboxes) List() ([]sandbox.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sandbox.Info
	for _, b := range f.boxes {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b sandbox.Info) int { return cmpName(a.Name, b.Name) })
	return out, nil
}

func cmpName(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (f *fakeSandboxes) Inspect(name string) (sandbox.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b := f.boxes[name]; b != nil {
		return *b, nil
	}
	return sandbox.Info{}, fmt.Errorf("no such sandbox %q", name)
}

func (f *fakeSandboxes) Remove(ctx context.Context, name string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.boxes, name)
	f.removed = append(f.removed, name)
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestAdoption(t *testing.T) {
	all := []sandbox.Info{
		{Name: "a", Pool: "tiny", State: sandbox.StateRunning},
		{Name: "b", Pool: "tiny", State: sandbox.StateRunning},
		{Name: "c", Pool: "tiny", State: sandbox.StateRunning},   // surplus
		{Name: "d", Pool: "tiny", State: sandbox.StateStopped},   // not running
		{Name: "e", Pool: "debian", State: sandbox.StateRunning}, // not wanted
		{Name: "f", State: sandbox.StateRunning},                 // not a pool member
		{Name: "g", Pool: "big", State: sandbox.StateRunning},
		{Name: "h", Pool: "big", State: sandbox.StateRunning}, // stale
		{Name: "i", Pool: "big", State: sandbox.StateRunning},
	}
	stale := func(info sandbox.Info) string {
		if info.Name == "h" {
			return "other CAs"
		}
		return ""
	}
	keep, drop := adoption(all, Spec{"tiny": 2, "big": 2}, stale)
	if !slices.Equal(keep["tiny"], []string{"a", "b"}) || !slices.Equal(keep["big"], []string{"g", "i"}) || len(keep) != 2 {
		t.Errorf("keep = %v", keep)
	}
	if !slices.Equal(drop, []string{"c", "d", "e", "h"}) {
		t.Errorf("drop = %v", drop)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Concurrent claims never share a member; the pool refills to its number.
func TestClaimConcurrent(t *testing.T) {
	f := newFake()
	f.add("old-1", "tiny", "running")
	p := New(f, Spec{"tiny": 3}, quiet())
	p.Settle = 0
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); p.Wait() }()
	p.Start(ctx)
	waitFor(t, "3 idle", func() bool { return len(p.Idle("tiny")) == 3 })
	if p.Idle("tiny")[0] != "old-1" {
		t.Errorf("an adopted member is not the first to be claimed: %v", p.Idle("tiny"))
	}

	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg, ok := p.Claim(ctx, sandbox.CreateOptions{Template: "tiny", NoWorkspace: true, Owner: "k", AccessToken: fmt.Sprint(i)})
			if ok {
				mu.Lock()
				got[cfg.Name]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for name, n := range got {
		if n != 1 {
			t.Errorf("%s claimed %d times", name, n)
		}
	}
	if len(got) < 3 {
		t.Errorf("only %d of 8 concurrent claims got a member of a pool of 3", len(got))
	}
	waitFor(t, "the pool refilled", func() bool { return len(p.Idle("tiny")) == 3 })
	if _, ok := p.Claim(ctx, sandbox.CreateOptions{Template: "debian", NoWorkspace: true}); ok {
		t.Error("a claim of a template without a pool succeeded")
	}
	if _, ok := p.Claim(ctx, sandbox.CreateOptions{Template: "tiny", NoWorkspace: true, CPUs: 1}); ok {
		t.Error("a create with its own size claimed a clone")
	}
}

// A member that cannot be claimed (removed by hand) is skipped and
// removed; the next one serves.
func TestClaimSkipsDeadMember(t *testing.T) {
	f := newFake()
	f.add("a", "tiny", "running")
	f.add("b", "tiny", "running")
	p := New(f, Spec{"tiny": 2}, quiet())
	p.adopt(context.Background())
	f.mu.Lock()
	f.boxes["a"].State, f.boxes["a"].Reason = sandbox.StateBroken, "qemu exited"
	f.mu.Unlock()
	cfg, ok := p.claim(context.Background(), "tiny", sandbox.ClaimOptions{Owner: "k", AccessToken: "t"})
	if !ok || cfg.Name != "b" {
		t.Fatalf("claim = %+v, %v; want b", cfg, ok)
	}
	waitFor(t, "a removed", func() bool { _, err := f.Inspect("a"); return err != nil })
	// A member another claim won is not removed.
	f.add("c", "tiny", "running")
	p.mu.Lock()
	p.idle["tiny"] = []string{"c"}
	p.mu.Unlock()
	f.Claim(context.Background(), "c", sandbox.ClaimOptions{Owner: "other", AccessToken: "x"})
	if _, ok := p.claim(context.Background(), "tiny", sandbox.ClaimOptions{Owner: "k", AccessToken: "t2"}); ok {
		t.Fatal("claimed a member another claim had won")
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := f.Inspect("c"); err != nil {
		t.Error("a member another claim won was removed")
	}
}

// Failed boots are retried with a growing wait; the loop ends with ctx.
func TestRefillBackoff(t *testing.T) {
	f := newFake()
	f.failBoot = 3
	p := New(f, Spec{"tiny": 1}, quiet())
	p.MinBackoff, p.MaxBackoff = time.Millisecond, 4*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	p.Start(ctx)
	waitFor(t, "1 idle after 3 failed boots", func() bool { return len(p.Idle("tiny")) == 1 })
	cancel()
	p.Wait()
	if f.boots != 4 {
		t.Errorf("%d boots, want 4", f.boots)
	}
}

// The check drops idle members that stopped running, and removes them.
func TestCheck(t *testing.T) {
	f := newFake()
	f.add("a", "tiny", "running")
	f.add("b", "tiny", "running")
	p := New(f, Spec{"tiny": 2}, quiet())
	p.adopt(context.Background())
	f.mu.Lock()
	f.boxes["a"].State = sandbox.StateStopped
	delete(f.boxes, "b")
	f.mu.Unlock()
	p.check(context.Background(), "tiny")
	if idle := p.Idle("tiny"); len(idle) != 0 {
		t.Errorf("idle after the check: %v", idle)
	}
	if !slices.Equal(f.removed, []string{"a"}) {
		t.Errorf("removed %v, want [a]", f.removed)
	}
}
