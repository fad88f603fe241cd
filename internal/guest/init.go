package guest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// ReadyLine is written to the console when the agent starts serving.
const ReadyLine = "paddock-agent: ready"

// RunInit is the life of PID 1: boot, then serve the control port for ever.
// It never returns; on a fatal error it logs and powers the VM off (an exit
// of PID 1 would panic the kernel).
func RunInit(version string) {
	console := openConsole()
	log := ConsoleLogger(console, bootLogLevel())
	log.Info("starting", "version", version, "kernel", kernelRelease())
	keepSignals(log)
	reaper := NewReaper()
	ctx := context.Background()

	port, err := Boot(ctx, log)
	if err != nil {
		fatal(log, err)
	}
	docker := StartDocker(log, reaper) // nil without dockerd; see docker.go
	agent := NewAgent(version, log, reaper, GuestSystem{})
	agent.Docker = docker
	srv := NewServer(agent)
	// A new host session usually follows a restore, after which every code
	// path is new to TCG's translator: with a second vCPU, run a trivial
	// command beside the handshake and Configure, so the first real exec
	// finds its paths translated.
	warm := func() {
		if runtime.NumCPU() > 1 {
			agent.warmUp("/")
		}
	}
	detached := func() {
		if token := agent.takeDetach(); token != "" {
			fmt.Fprintln(console, DetachedLine, token)
		}
	}
	err = ServePort(ctx, log, port, srv, func() { fmt.Fprintln(console, ReadyLine) }, warm, detached)
	fatal(log, fmt.Errorf("serve %s: %w", port, err))
}

// RunListener serves the agent on l without booting anything: development
// and host-side tests, as any user, changing nothing system-wide.
func RunListener(ctx context.Context, version string, log *slog.Logger, l net.Listener) error {
	reaper := NewReaper()
	defer reaper.Stop()
	agent := NewAgent(version, log, reaper, NoopSystem{Log: log.Info})
	srv := NewServer(agent)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return srv.Serve(ctx, l)
}

// NewServer returns a ttrpc server with the agent registered.
func NewServer(a *Agent) *ttrpc.Server {
	srv, err := ttrpc.NewServer()
	if err != nil {
		panic(err) // only a bad option fails
	}
	agentv1.RegisterTTRPCAgentService(srv, a)
	return srv
}

// openConsole opens /dev/console, mounting devtmpfs first if the initramfs
// has no device node; stderr is the fallback.
func openConsole() *os.File {
	f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		_ = mountOnce("devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755")
		f, err = os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0)
	}
	if err != nil {
		return os.Stderr
	}
	return f
}

// keepSignals catches the signals whose default action would end the
// process: for PID 1 that would panic the kernel. They are caught rather
// than ignored because an ignored signal stays ignored in exec'd children.
func keepSignals(log *slog.Logger) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPIPE)
	go func() {
		for s := range ch {
			log.Info("signal ignored", "signal", s)
		}
	}()
}

// fatal logs err and powers off.
func fatal(log *slog.Logger, err error) {
	log.Error("fatal: powering off", "err", err)
	time.Sleep(500 * time.Millisecond) // let the console drain
	powerOff()
	select {}
}

// bootLogLevel is debug when the kernel command line has paddock.debug=1.
func bootLogLevel() slog.Level {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, w := range strings.Fields(string(b)) {
		if w == "paddock.debug=1" {
			return slog.LevelDebug
		}
	}
	return slog.LevelInfo
}
