package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/vm"
	"github.com/paddock-dev/paddock/internal/vm/qemu"
	"github.com/paddock-dev/paddock/internal/vm/vmtest"
)

// fakeBackend starts no VM: its disks are small files, its processes and
// monitors internal/vm/vmtest's, its agent a fakeAgent.
type fakeBackend struct {
	agent *fakeAgent

	mu       sync.Mutex
	disks    []string // the bases of the disks made, in order
	incoming []bool   // per start: whether the VM waited for a state
	procs    []*vmtest.Process
	mons     []*vmtest.Monitor
	// failRestore, when set, makes the first monitor's restore fail (a
	// state QEMU refuses: made for another device set).
	failRestore error
}

func (f *fakeBackend) createDisk(ctx context.Context, base, baseFormat, path string, size int64) error {
	f.mu.Lock()
	f.disks = append(f.disks, base)
	f.mu.Unlock()
	return os.WriteFile(path, []byte("fake overlay on "+base), 0o600)
}

func (f *fakeBackend) start(key string, files store.VMFiles, sp stateSpec, ram string, adjust func(*qemu.Config), console, stderr io.Writer) (vm.Process, error) {
	var cfg qemu.Config
	if adjust != nil {
		adjust(&cfg)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.incoming = append(f.incoming, cfg.Incoming)
	// A real pid: the supervisor writes qemu.pid with its start time.
	p := vmtest.NewProcess(os.Getpid())
	f.procs = append(f.procs, p)
	f.agent.setConsole(console)
	return p, nil
}

func (f *fakeBackend) dialMonitor(ctx context.Context, path string) (vm.Monitor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	status := "running"
	if f.incoming[len(f.incoming)-1] {
		status = "inmigrate"
	}
	m := vmtest.NewMonitor(f.procs[len(f.procs)-1], status)
	if len(f.mons) == 0 && f.failRestore != nil {
		m.FailOn("migrate-incoming", f.failRestore)
	}
	f.mons = append(f.mons, m)
	return m, nil
}

func (f *fakeBackend) dialAgent(path string) agentLink { return &fakeLink{fake: f.agent} }

// fakeLink is an agent link that is always up.
type fakeLink struct {
	fake *fakeAgent

	mu    sync.Mutex
	drops int
}

func (l *fakeLink) agent(ctx context.Context) (agentv1.TTRPCAgentClient, error) { return l.fake, nil }

func (l *fakeLink) drop() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drops++
	return true
}

func (l *fakeLink) waitAgent(ctx context.Context) (*agentv1.PingResponse, error) {
	return l.fake.Ping(ctx, &agentv1.PingRequest{})
}

// fakeAgent answers the calls the supervisor makes of the guest agent
// and records them by name. A call it does not script panics (the
// embedded nil client).
type fakeAgent struct {
	agentv1.TTRPCAgentClient

	mu      sync.Mutex
	calls   []string
	fail    map[string]error
	console io.Writer // where Detach's confirmation goes (the VM's console)
	execs   map[string]*fakeExec
	// onExec scripts an exec; it is given the stream the proxy reads.
	onExec func(e *fakeExec)
}

func newFakeAgent() *fakeAgent {
	return &fakeAgent{fail: map[string]error{}, execs: map[string]*fakeExec{}}
}

func (a *fakeAgent) setConsole(w io.Writer) {
	a.mu.Lock()
	a.console = w
	a.mu.Unlock()
}

// call records the call named name and returns its scripted failure.
func (a *fakeAgent) call(name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, name)
	return a.fail[name]
}

func (a *fakeAgent) failOn(name string, err error) {
	a.mu.Lock()
	a.fail[name] = err
	a.mu.Unlock()
}

func (a *fakeAgent) Calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

func (a *fakeAgent) Ping(ctx context.Context, _ *agentv1.PingRequest) (*agentv1.PingResponse, error) {
	if err := a.call("Ping"); err != nil {
		return nil, err
	}
	return &agentv1.PingResponse{Version: "fake"}, nil
}

func (a *fakeAgent) Configure(ctx context.Context, req *agentv1.ConfigureRequest) (*agentv1.ConfigureResponse, error) {
	if err := a.call("Configure " + req.Hostname); err != nil {
		return nil, err
	}
	return &agentv1.ConfigureResponse{Version: "fake"}, nil
}

func (a *fakeAgent) Quiesce(ctx context.Context, _ *agentv1.QuiesceRequest) (*agentv1.QuiesceResponse, error) {
	if err := a.call("Quiesce"); err != nil {
		return nil, err
	}
	return &agentv1.QuiesceResponse{}, nil
}

// Detach confirms on the console at once, as the agent does once the
// host's connection is gone.
func (a *fakeAgent) Detach(ctx context.Context, req *agentv1.DetachRequest) (*agentv1.DetachResponse, error) {
	if err := a.call("Detach"); err != nil {
		return nil, err
	}
	a.mu.Lock()
	console := a.console
	a.mu.Unlock()
	fmt.Fprintf(console, "%s %s\n", detachedLine, req.Token)
	return &agentv1.DetachResponse{}, nil
}

// newTestSup is a supervisor of sandbox "t" in a new PADDOCK_HOME, with
// the fake backend, a deny-all network policy, and its log in the returned buffer.
func newTestSup(t *testing.T) (*sup, *fakeBackend, *syncBuffer) {
	home := store.Home(t.TempDir())
	layout := home.Sandbox("t")
	if err := os.MkdirAll(layout.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(layout.Policy(), netpolicy.Policy{Preset: netpolicy.DenyAll}.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	be := &fakeBackend{agent: newFakeAgent()}
	s := &sup{
		opts:   Options{Home: home, Name: "t", Logger: slog.New(slog.NewTextHandler(logs, nil))},
		layout: layout,
		cfg: store.SandboxConfig{
			Name: "t", Template: "tiny", CPUs: 1, MemoryBytes: 256 << 20, DiskBytes: 2 << 30,
			User: store.User{Name: "agent", UID: 1000, GID: 1000, Home: "/home/agent"},
		},
		log:           slog.New(slog.NewTextHandler(logs, nil)),
		vms:           be,
		deadlineMoved: make(chan struct{}),
	}
	s.secrets = newBoundSecrets(s)
	t.Cleanup(func() {
		if s.net != nil {
			s.net.net.Close()
		}
	})
	return s, be, logs
}

// testRootfs writes a stand-in for a template's root image.
func testRootfs(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "root.ext4")
	if err := os.WriteFile(p, []byte("root image"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// hasCalls reports whether want occur in calls in that order (others may
// come between).
func hasCalls(calls []string, want ...string) bool {
	i := 0
	for _, c := range calls {
		if i < len(want) && c == want[i] {
			i++
		}
	}
	return i == len(want)
}

var errTest = errors.New("injected failure")

// mustContain fails t when s lacks any of subs.
func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q lacks %q", what, s, sub)
		}
	}
}
