package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/cgroup"
	"github.com/paddock-dev/paddock/internal/inject"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
	"github.com/paddock-dev/paddock/internal/vm"
	"github.com/paddock-dev/paddock/internal/vm/qemu"
)

// consoleMax is where the console log rotates.
const consoleMax = 8 << 20

// bootTimeout bounds a cold boot until the agent answers. TCG boots take
// 5-7 s on an idle machine; a loaded one can take several times that.
const bootTimeout = 120 * time.Second

// Options configure one supervisor run.
type Options struct {
	Home      store.Home
	Name      string
	AgentPath string         // the guest agent binary, for the initramfs
	Ready     io.WriteCloser // told "ok\n" or the error once the sandbox answers; may be nil
	Logger    *slog.Logger
}

// sup is the state of one run. Fields set before serving are read-only
// afterwards; mu guards the rest.
type sup struct {
	opts   Options
	layout store.Layout
	cfg    store.SandboxConfig
	log    *slog.Logger

	vms     backend // makes and reaches the VM: QEMU, or a fake in tests
	accel   string
	qemu    vm.Process
	monitor vm.Monitor
	console *consoleWatch // the console log QEMU's serial output goes to
	started time.Time
	version string // guarded by mu
	mode    string // "cold", "restore" or "fork"
	link    agentLink

	mu       sync.Mutex
	paused   bool
	stopping bool // a Stop is in progress or done: QEMU's exit is clean
	// checkpointing is set while a checkpoint saves the VM: its own
	// state, in which execs, pause and resume are refused.
	checkpointing bool
	// deadlineMoved is closed and replaced when SetDeadline or Claim
	// changes cfg.Deadline. mu guards the fields of cfg those two change
	// (Deadline; Env, Owner, Metadata, AccessToken, Pool).
	deadlineMoved chan struct{}

	net     *sandboxNet   // the user-space network (network.go); set before QEMU starts
	secrets *boundSecrets // the bound secrets (secrets.go)
	ca      *inject.CA    // the install's authority (network.go); set before QEMU starts

	group cgroup.Record // the host cgroup (cgroup.go); set before anything starts

	// The synced folders (workspace.go): the workspace and those mount
	// add gave. foldersMu guards the slice.
	foldersMu sync.Mutex
	folders   []*folder
	owners    owners
}

// Run supervises the sandbox until its VM stops. It returns an error when
// the sandbox could not be started or the VM ended unexpectedly.
func Run(ctx context.Context, opts Options) (err error) {
	s := &sup{opts: opts, layout: opts.Home.Sandbox(opts.Name), log: opts.Logger, vms: qemuBackend{}, deadlineMoved: make(chan struct{})}
	s.secrets = newBoundSecrets(s)
	ready := func(err error) {
		if opts.Ready == nil {
			return
		}
		if err != nil {
			fmt.Fprintf(opts.Ready, "%v\n", err)
		} else {
			io.WriteString(opts.Ready, "ok\n")
		}
		opts.Ready.Close()
		opts.Ready = nil
	}
	lock, err := store.LockFile(s.layout.RunLock(), false)
	if err != nil {
		err = fmt.Errorf("sandbox %q is already running", opts.Name)
		ready(err)
		return err
	}
	defer lock.Unlock()
	defer func() {
		clean := err == nil
		reason := "stopped"
		if err != nil {
			reason = err.Error()
		}
		store.WriteJSON(s.layout.LastExit(), store.ExitRecord{Time: time.Now(), Clean: clean, Reason: reason})
		os.Remove(s.layout.Socket())
		ready(err)
	}()
	os.Remove(s.layout.LastExit())
	logCtx, stopLog := context.WithCancel(context.Background())
	defer stopLog()
	go keepLogSmall(logCtx, s.layout.SupervisorLog())
	if err := store.WritePidFile(s.layout.SupervisorPid(), os.Getpid()); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := store.ReadJSON(s.layout.Config(), &s.cfg); err != nil {
		return fmt.Errorf("read sandbox config: %w", err)
	}
	s.joinGroup()
	defer s.leaveGroup()

	srv, err := s.boot(ctx)
	if err != nil {
		if s.qemu != nil {
			s.qemu.Kill()
			<-s.qemu.Done()
		}
		return err
	}
	if err := dropCapabilities(); err != nil {
		s.log.Warn("running on with capabilities", "err", err)
	}
	ready(nil)
	s.log.Info("sandbox ready", "name", s.cfg.Name, "accel", s.accel)
	go s.watchDeadline()
	return s.waitForExit(srv)
}

// waitForExit serves until QEMU exits, stopping the VM on SIGTERM or
// SIGINT, and reports an exit nobody asked for as an error.
func (s *sup) waitForExit(srv *grpc.Server) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	select {
	case <-s.qemu.Done():
	case sig := <-sigs:
		s.log.Info("signal, stopping", "signal", sig.String())
		s.stop(10 * time.Second)
	}
	<-s.qemu.Done()
	// Let a Stop call in flight send its reply.
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		srv.Stop()
	}
	s.link.drop()
	os.Remove(s.layout.QEMUPid())
	s.mu.Lock()
	clean := s.stopping
	s.mu.Unlock()
	if !clean {
		return fmt.Errorf("qemu exited unexpectedly (%v); see paddock logs %s", s.qemu.Err(), s.cfg.Name)
	}
	return nil
}

// createOverlay makes a qcow2 overlay at path on base, size bytes long (0:
// base's size).
func createOverlay(ctx context.Context, base, baseFormat, path string, size int64) error {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		return errors.New("qemu-img not found: install it with \"apt-get install qemu-utils\" (or run make deps)")
	}
	args := []string{"create", "-q", "-f", "qcow2", "-F", baseFormat, "-b", base, path}
	if size > 0 {
		args = append(args, strconv.FormatInt(size, 10))
	}
	out, err := exec.CommandContext(ctx, "qemu-img", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("create disk overlay: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (s *sup) startQEMU(spec stateSpec, st savedState) error {
	logFile, err := openRotating(s.layout.ConsoleLog(), consoleMax)
	if err != nil {
		return err
	}
	console := newConsoleWatch(logFile)
	// Under TCG, QEMU's code buffer on huge pages costs an idle sandbox
	// ~3.5 MiB more (docs/BENCHMARKS.md).
	adjust := func(cfg *qemu.Config) {
		cfg.NoHugePages = spec.Accel == "tcg"
		cfg.Incoming = s.mode == "fork" || s.mode == "restore"
	}
	ram := ""
	if s.mode == "restore" {
		ram = st.RAM()
		if s.cfg.NoShareMemory {
			// A private copy of the RAM file: no page of this VM is
			// shared with another sandbox.
			ram = s.layout.PrivateRAM()
			if err := copySparse(st.RAM(), ram); err != nil {
				return fmt.Errorf("copy vm memory: %w", err)
			}
		}
	}
	for _, p := range []string{s.layout.ControlSocket(), s.layout.QMPSocket()} {
		os.Remove(p)
	}
	p, err := s.vms.start(s.vmKey(), s.layout.VM(), spec, ram, adjust, console, stderrLog)
	if err != nil {
		return err
	}
	s.qemu, s.console = p, console
	return store.WritePidFile(s.layout.QEMUPid(), p.Pid())
}

func (s *sup) waitAgent(ctx context.Context) error {
	s.link = s.vms.dialAgent(s.layout.ControlSocket())
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	go func() {
		select {
		case <-s.qemu.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	if s.mode != "cold" {
		// A restored agent is already serving: Configure, next, is the
		// handshake (one call fewer on the path of every create), and it
		// answers with the agent's version.
		return nil
	}
	resp, err := s.link.waitAgent(ctx)
	if err != nil {
		select {
		case <-s.qemu.Done():
			return fmt.Errorf("qemu exited during boot (%v); see paddock logs %s", s.qemu.Err(), s.cfg.Name)
		default:
		}
		return fmt.Errorf("the guest agent did not answer within %s: %w; see paddock logs %s", bootTimeout, err, s.cfg.Name)
	}
	s.mu.Lock()
	s.version = resp.Version
	s.mu.Unlock()
	return nil
}

func (s *sup) configure(ctx context.Context) error {
	entropy := make([]byte, 64)
	rand.Read(entropy)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	agent, err := s.link.agent(ctx)
	if err != nil {
		return err
	}
	resp, err := agent.Configure(ctx, &agentv1.ConfigureRequest{
		Hostname:     s.cfg.Name,
		TimeUnixNano: time.Now().UnixNano(),
		Entropy:      entropy,
		MachineId:    s.machineID(),
		User: &agentv1.User{
			Name: s.cfg.User.Name, Uid: s.cfg.User.UID, Gid: s.cfg.User.GID, Home: s.cfg.User.Home,
		},
		Network: guestNetwork(),
		CaCerts: s.guestCAs(), // trust.go
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.version = resp.Version
	s.mu.Unlock()
	s.log.Info("guest configured", "steps", formatSteps(resp.Steps))
	return nil
}

// formatSteps renders Configure's steps as "clock=5ms mount /w=83ms ...",
// each with the time from the start of the call to its end.
func formatSteps(steps []*agentv1.ConfigureStep) string {
	var b strings.Builder
	for i, st := range steps {
		if i > 0 {
			b.WriteByte(' ')
		}
		d := time.Duration(st.GetDoneUs()) * time.Microsecond
		fmt.Fprintf(&b, "%s=%s", st.GetName(), d.Round(100*time.Microsecond))
	}
	return b.String()
}

// machineID is the sandbox's machine id; sandboxes made before it was
// recorded get one per run.
func (s *sup) machineID() string {
	if s.cfg.MachineID == "" {
		id := make([]byte, 16)
		rand.Read(id)
		s.cfg.MachineID = hex.EncodeToString(id)
	}
	return s.cfg.MachineID
}

func (s *sup) serve() (*grpc.Server, error) {
	l, err := store.ListenUnix(s.layout.Socket())
	if err != nil {
		return nil, err
	}
	audit, err := openAudit(s.layout.ExecLog())
	if err != nil {
		l.Close()
		return nil, err
	}
	srv := grpc.NewServer()
	agentv1.RegisterAgentServer(srv, &agentProxy{s: s, audit: audit})
	supervisorv1.RegisterSupervisorServer(srv, &api{s: s})
	go srv.Serve(l)
	return srv, nil
}

// stop shuts the guest down, forcing QEMU off after timeout. It returns
// whether it had to force.
func (s *sup) stop(timeout time.Duration) (forced bool) {
	s.mu.Lock()
	s.stopping = true
	paused := s.paused
	s.mu.Unlock()
	if paused {
		s.monitor.Execute("cont", nil)
	}
	deadline := time.After(timeout)
	// The guest's last workspace changes reach the host before it goes.
	sctx, scancel := context.WithTimeout(context.Background(), timeout)
	s.stopSync(sctx)
	scancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	agent, err := s.link.agent(ctx)
	if err == nil {
		_, err = agent.Shutdown(ctx, &agentv1.ShutdownRequest{})
	}
	cancel()
	if err != nil {
		s.log.Warn("agent shutdown failed, asking qemu", "err", err)
		s.monitor.Execute("system_powerdown", nil)
	}
	select {
	case <-s.qemu.Done():
		return false
	case <-deadline:
	}
	s.log.Warn("guest did not power off in time, killing qemu", "timeout", timeout)
	if _, err := s.monitor.Execute("quit", nil); err != nil {
		s.qemu.Kill()
	}
	select {
	case <-s.qemu.Done():
	case <-time.After(2 * time.Second):
		s.qemu.Kill()
		<-s.qemu.Done()
	}
	return true
}

func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// checkTemplateBuild refuses to boot a disk made on another build of the
// template (its overlay would read the new image's blocks as its own), and
// records the build a new disk is made on.
func (s *sup) checkTemplateBuild(tpl *template.Template, diskExists bool) error {
	build := template.BuildID(tpl)
	if diskExists {
		if s.cfg.TemplateBuild != "" && s.cfg.TemplateBuild != build {
			return fmt.Errorf("template %q was rebuilt after this sandbox's disk was made on it: "+
				"run paddock reset %s to start over on the new template (root filesystem changes are lost; the workspace stays)", s.cfg.Template, s.cfg.Name)
		}
		return nil
	}
	if s.cfg.TemplateBuild == build {
		return nil
	}
	s.cfg.TemplateBuild = build
	return store.WriteJSON(s.layout.Config(), s.cfg)
}
