package sandbox

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
)

// CreateOptions are the settings of a new sandbox. Zero values take the
// defaults documented on the create command.
type CreateOptions struct {
	Name      string
	Workspace string
	// Mounts are more host folders to sync, HOSTDIR[:GUESTDIR][:ro|:rw]
	// (see ParseMount).
	Mounts   []string
	Template string
	CPUs     int
	Memory   string // "2G"
	Env      []string
	Accel    string
	// Cold boots the kernel instead of restoring the template's saved VM.
	Cold bool
	// Disk is the root disk's size ("20G"): at least the template's image
	// ("" keeps the image's size) and at most the free space under
	// PADDOCK_HOME.
	Disk string
	// NoShareMemory restores into private memory (see store.SandboxConfig).
	NoShareMemory bool
	// Policy is the network policy (nil: the default preset, balanced).
	Policy *netpolicy.Policy
	// From forks the sandbox from a checkpoint: template, cpus and memory
	// are the checkpoint's.
	From string
	// NoWorkspace makes a sandbox without a host folder (Workspace is
	// ignored): the API's default.
	NoWorkspace bool
	// TTL, when not 0, is how long the sandbox lives: its supervisor
	// removes it at the deadline.
	TTL time.Duration
	// Metadata and Owner are the API's labels and key name; AccessToken
	// guards the sandbox's services in the API.
	Metadata    map[string]string
	Owner       string
	AccessToken string
	// AutoPause pauses the sandbox at its deadline instead of removing it.
	AutoPause bool
	// User names the guest's default user (default agent), whose home is
	// /home/USER. A sandbox without a workspace gives any other name uid
	// 1001, so the template's agent (1000) stays a user of its own; with
	// a workspace the user is the workspace owner's uid as always.
	User string
	// Pool marks the sandbox an idle member of that template's warm pool
	// (store.SandboxConfig.Pool).
	Pool string
	// Secrets names host-side secrets to bind (create --secret): the guest
	// gets their placeholders, the host puts their values into requests
	// for their hosts.
	Secrets []string
	// CAFiles are PEM files of certificate authorities the guest trusts
	// (create --ca); TrustHostCA adds the host's own beyond its
	// distribution's (--trust-host-ca). See trust.go.
	CAFiles     []string
	TrustHostCA bool
}

// maxTTL bounds --ttl: a sandbox meant to live longer should have none.
const maxTTL = 30 * 24 * time.Hour

// bootAllowance is added to a new sandbox's deadline until it is ready.
const bootAllowance = 10 * time.Minute

const (
	defaultTemplate = "debian"
	defaultMemory   = 2 << 30
	minMemory       = 128 << 20
)

// validate checks every option, gathering all problems, and returns the
// sandbox config they describe.
func (m *Manager) validate(o CreateOptions) (store.SandboxConfig, error) {
	var errs []error
	cfg := store.SandboxConfig{Name: o.Name, Template: o.Template, CPUs: o.CPUs, Env: o.Env, Accel: o.Accel, Cold: o.Cold, NoShareMemory: o.NoShareMemory, Created: time.Now().UTC()}
	if cfg.Name == "" {
		cfg.Name = store.GenerateName()
	}
	if err := store.ValidateName(cfg.Name); err != nil {
		errs = append(errs, err)
	}
	if cfg.Template == "" {
		cfg.Template = defaultTemplate
	}
	errs = append(errs, validateMachine(o, &cfg))
	errs = append(errs, m.validateDisk(o, &cfg))
	errs = append(errs, m.validateSecrets(o.Secrets, &cfg))
	errs = append(errs, m.validateCAs(o, &cfg)) // trust.go
	for _, e := range cfg.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("invalid --env %q: use KEY=VALUE", e))
		}
	}
	errs = append(errs, m.validateFolders(o, &cfg))
	switch {
	case o.TTL < 0 || o.TTL > maxTTL:
		errs = append(errs, fmt.Errorf("invalid --ttl %s: between 1s and %s, or none", o.TTL, maxTTL))
	case o.TTL > 0:
		d := time.Now().Add(o.TTL).UTC()
		cfg.Deadline = &d
	}
	cfg.Metadata, cfg.Owner, cfg.AccessToken, cfg.Pool, cfg.AutoPause = o.Metadata, o.Owner, o.AccessToken, o.Pool, o.AutoPause
	errs = append(errs, validatePolicy(o.Policy))
	errs = append(errs, validateUser(o, &cfg))
	cfg.MachineID = newMachineID()
	return cfg, errors.Join(errs...)
}

// validateMachine checks the accelerator, CPUs and memory asked for and
// fills them, or their defaults, into cfg.
func validateMachine(o CreateOptions, cfg *store.SandboxConfig) error {
	var errs []error
	if cfg.Accel == "" {
		cfg.Accel = "auto"
	}
	if cfg.Accel != "auto" && cfg.Accel != "kvm" && cfg.Accel != "tcg" {
		errs = append(errs, fmt.Errorf("invalid --accel %q: use auto, kvm or tcg", cfg.Accel))
	}
	host := runtime.NumCPU()
	switch {
	case cfg.CPUs == 0:
		cfg.CPUs = min(2, host)
	case cfg.CPUs < 0 || cfg.CPUs > host:
		errs = append(errs, fmt.Errorf("invalid --cpus %d: this host has %d", cfg.CPUs, host))
	}
	cfg.MemoryBytes = defaultMemory
	if o.Memory != "" {
		n, err := store.ParseSize(o.Memory)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--memory: %w", err))
		case n < minMemory:
			errs = append(errs, fmt.Errorf("invalid --memory %s: at least 128M is needed", o.Memory))
		case n > hostMemory():
			errs = append(errs, fmt.Errorf("invalid --memory %s: more than this host's %s", o.Memory, store.FormatSize(hostMemory())))
		default:
			cfg.MemoryBytes = n &^ (1<<20 - 1)
		}
	}
	return errors.Join(errs...)
}

// validateFolders checks the workspace and the --mount folders and fills
// their resolved paths into cfg.
func (m *Manager) validateFolders(o CreateOptions, cfg *store.SandboxConfig) error {
	var errs []error
	if !o.NoWorkspace {
		ws, err := m.validateFolder("workspace", o.Workspace)
		if err != nil {
			errs = append(errs, err)
		}
		cfg.Workspace = ws
	}
	for _, spec := range o.Mounts {
		mt, err := ParseMount(spec)
		if err == nil {
			mt, err = m.resolveMount(mt)
		}
		if err == nil {
			err = overlapping(cfg, mt.Guest)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("--mount %s: %w", spec, err))
			continue
		}
		cfg.Mounts = append(cfg.Mounts, mt)
	}
	return errors.Join(errs...)
}

// validateUser fills in the guest user: the workspace owner's, or o.User
// (ids 1001 without a workspace).
func validateUser(o CreateOptions, cfg *store.SandboxConfig) error {
	var errs []error
	cfg.User = workspaceUser(cfg.Workspace)
	if o.User != "" && o.User != cfg.User.Name {
		if err := store.ValidateName(o.User); err != nil {
			errs = append(errs, fmt.Errorf("user: %w", err))
		}
		cfg.User.Name, cfg.User.Home = o.User, "/home/"+o.User
		if cfg.Workspace == "" {
			cfg.User.UID, cfg.User.GID = 1001, 1001
		}
	}
	return errors.Join(errs...)
}

// validateFolder checks a host folder to sync into a sandbox (kind names
// it in errors: workspace, folder) and answers its resolved path.
func (m *Manager) validateFolder(kind, dir string) (string, error) {
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", kind, dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%s %s does not exist", kind, abs)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s %s is not a directory", kind, abs)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", kind, abs, err)
	}
	if real == "/" {
		return "", fmt.Errorf("%s %s is the host's root directory: share a project folder instead", kind, abs)
	}
	home, _ := filepath.EvalSymlinks(string(m.Home))
	if home == "" {
		home = string(m.Home)
	}
	if contains(real, home) {
		return "", fmt.Errorf("%s %s contains paddock's state (%s): share a folder that does not", kind, abs, m.Home)
	}
	if contains(home, real) {
		return "", fmt.Errorf("%s %s is inside paddock's state (%s): share a project folder", kind, abs, m.Home)
	}
	if err := m.notNested(real); err != nil {
		return "", fmt.Errorf("%s %s: %w", kind, abs, err)
	}
	// The resolved path is what every start opens, one component at a
	// time without following symlinks (supervisor.openWorkspace).
	return real, nil
}

// notNested refuses a folder to sync (a workspace, or a mount add) strictly
// inside another sandbox's workspace or read-write folder, or holding
// one: the guest of the outer sandbox could replace a folder on the inner
// one's path. Sandboxes on the same folder are fine.
func (m *Manager) notNested(dir string) error {
	entries, _ := os.ReadDir(m.Home.SandboxesDir())
	for _, e := range entries {
		var cfg store.SandboxConfig
		if store.ReadJSON(m.Home.Sandbox(e.Name()).Config(), &cfg) != nil {
			continue
		}
		for _, w := range writableFolders(cfg) {
			switch {
			case w.path == dir:
			case contains(w.path, dir):
				return fmt.Errorf("it is inside sandbox %q's %s %s, whose guest could replace a folder on this path: share %s itself, or a folder outside it", cfg.Name, w.kind, w.path, w.path)
			case contains(dir, w.path):
				return fmt.Errorf("it holds sandbox %q's %s %s, whose path this sandbox's guest could change: share a folder that does not", cfg.Name, w.kind, w.path)
			}
		}
	}
	return nil
}

// hostFolder is a host folder a sandbox syncs, and what it is to it.
type hostFolder struct{ kind, path string }

// writableFolders are the host folders whose changes cfg's guest writes
// back: its workspace and its read-write mounts.
func writableFolders(cfg store.SandboxConfig) []hostFolder {
	var fs []hostFolder
	if cfg.Workspace != "" {
		fs = append(fs, hostFolder{"workspace", cfg.Workspace})
	}
	for _, mt := range cfg.Mounts {
		if !mt.ReadOnly {
			fs = append(fs, hostFolder{"read-write folder", mt.Host})
		}
	}
	return fs
}

// contains reports whether dir is p or holds it.
func contains(dir, p string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// workspaceUser is the guest's agent user: the owner the workspace's files
// have in the guest, so agent owns them. When paddock runs as root, QEMU
// runs unprivileged in a user namespace in which it, and so the owner of
// the workspace's files, is 1000 (internal/supervisor/vmview.go); files
// agent creates are the owner's on the host. When paddock runs as a plain
// user, QEMU runs as that user and the guest sees the host's ids.
func workspaceUser(ws string) store.User {
	u := store.User{Name: "agent", UID: 1000, GID: 1000, Home: "/home/agent"}
	var st syscall.Stat_t
	if os.Geteuid() != 0 && ws != "" && syscall.Stat(ws, &st) == nil && st.Uid != 0 {
		u.UID, u.GID = st.Uid, st.Gid
	}
	return u
}

func newMachineID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func hostMemory() int64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 1 << 40
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// undo is a stack of cleanup steps registered as resources are acquired;
// on failure they run newest first.
type undo []func() error

func (u *undo) add(f func() error) { *u = append(*u, f) }

func (u undo) run() error {
	var errs []error
	for i := len(u) - 1; i >= 0; i-- {
		errs = append(errs, u[i]())
	}
	return errors.Join(errs...)
}

// Create makes a sandbox and boots it, returning once its agent answers.
// On any failure nothing of it remains.
func (m *Manager) Create(ctx context.Context, o CreateOptions) (cfg store.SandboxConfig, err error) {
	if o.From != "" {
		if o, err = m.forkOptions(o); err != nil {
			return cfg, err
		}
	}
	cfg, err = m.validate(o)
	if err != nil {
		return cfg, err
	}
	cfg.From = o.From
	if _, err := template.Open(string(m.Home), cfg.Template); err != nil {
		return cfg, err
	}
	l := m.Home.Sandbox(cfg.Name)
	if longest := slices.MaxFunc(l.Sockets(), func(a, b string) int { return len(a) - len(b) }); len(longest) > 107 {
		return cfg, fmt.Errorf("PADDOCK_HOME %s is too deep for unix sockets with name %q: use a shorter PADDOCK_HOME or name", m.Home, cfg.Name)
	}
	if err := checkFreeSpace(m.Home); err != nil {
		return cfg, err
	}
	if err := os.MkdirAll(m.Home.SandboxesDir(), 0o700); err != nil {
		return cfg, err
	}
	// Mkdir is the atomic claim on the name: of two concurrent creates,
	// exactly one succeeds here.
	if err := os.Mkdir(l.Dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return cfg, fmt.Errorf("sandbox %q already exists", cfg.Name)
		}
		return cfg, err
	}
	var u undo
	u.add(func() error { return os.RemoveAll(l.Dir) })
	defer func() {
		if err != nil {
			if uerr := u.run(); uerr != nil {
				err = errors.Join(err, fmt.Errorf("cleanup: %w", uerr))
			}
		}
	}()
	lock, err := store.LockFile(l.Lock(), false)
	if err != nil {
		return cfg, err
	}
	defer lock.Unlock()
	if cfg.Deadline != nil {
		// Until it is ready the deadline leaves room for a slow boot; it
		// only bounds a sandbox whose create was killed half way.
		d := cfg.Deadline.Add(bootAllowance)
		cfg.Deadline = &d
	}
	if err := store.WriteJSON(l.Config(), cfg); err != nil {
		return cfg, err
	}
	if err := writePolicy(l, o.Policy); err != nil {
		return cfg, err
	}
	stop, err := m.spawn(ctx, cfg.Name)
	if err != nil {
		return cfg, err
	}
	u.add(stop)
	if o.TTL > 0 {
		// The time to live counts from when the sandbox is ready, however
		// long a loaded host took to boot it.
		d := time.Now().Add(o.TTL).UTC()
		if err := m.SetDeadline(ctx, cfg.Name, &d); err != nil {
			return cfg, err
		}
		cfg.Deadline = &d
	}
	return cfg, nil
}

// spawn starts the sandbox's supervisor, detached in its own session, and
// waits until it reports the sandbox ready or fails. The returned func
// kills it (for undo).
func (m *Manager) spawn(ctx context.Context, name string) (func() error, error) {
	l := m.Home.Sandbox(name)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	logf, err := os.OpenFile(l.SupervisorLog(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		w.Close()
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(m.Exe, SuperviseVerb, "--home", string(m.Home), "--agent", m.AgentPath, name)
	cmd.Env = supervisorEnv(os.Environ())
	// The supervisor names every file by its absolute path; its working
	// directory is its own folder, never the caller's (a workspace it
	// would keep busy).
	cmd.Dir = l.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w} // fd 3: the ready pipe
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start supervisor: %w", err)
	}
	w.Close()
	kill := func() error {
		cmd.Process.Kill()
		cmd.Wait()
		return nil
	}
	msg := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		msg <- strings.TrimSpace(line)
	}()
	select {
	case <-ctx.Done():
		kill()
		return nil, ctx.Err()
	case line := <-msg:
		if line == "ok" {
			go cmd.Wait() // reap it if it exits while we still run
			return kill, nil
		}
		kill()
		if line == "" {
			line = "the supervisor exited without a word; see " + l.SupervisorLog()
		}
		return nil, fmt.Errorf("start sandbox %q: %s", name, line)
	}
}

// SuperviseVerb is the hidden paddock command a supervisor runs as.
const SuperviseVerb = "__supervise"

// supervisorEnv is the supervisor's environment: the caller's, with
// GOMAXPROCS=1 unless the caller set GOMAXPROCS. A supervisor serves one
// sandbox, and its work (frames between QEMU and the network stack, a few
// RPCs) is I/O-bound; each further P keeps its own partly used heap spans
// and threads. Set at exec, not with runtime.GOMAXPROCS, because the
// runtime starts its Ps before main runs. See docs/BENCHMARKS.md.
func supervisorEnv(env []string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "GOMAXPROCS=") {
			return env
		}
	}
	return append(env, "GOMAXPROCS=1")
}
