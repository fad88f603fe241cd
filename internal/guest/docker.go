package guest

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Docker Engine in the guest. A template whose root filesystem has dockerd
// (the debian template carries Debian's docker.io) gets a private Docker
// daemon per sandbox, started by the agent at boot, right after the root
// switch:
//
//   - It runs as root with Debian's defaults: data in /var/lib/docker on the
//     sandbox's own disk (the qcow2 overlay), socket /run/docker.sock owned
//     by group docker (the template's agent user is in it), containerd
//     started by dockerd itself, iptables over nf_tables (the modules come
//     from the initramfs), cgroup2 at /sys/fs/cgroup (mountRuntimeFS).
//   - The host's Docker socket is never involved: nothing of the host but the
//     workspace is shared into the VM.
//   - Started at boot, dockerd is part of a template's saved VM; every clone
//     restored from it resumes the same daemon, whose state is all in the
//     clone's RAM and disk. Configure resets the clock after a restore;
//     dockerd's timers run on the monotonic clock, which a restore carries
//     over. /usr/local/bin/docker (written by the template build) waits for
//     the socket, so a docker command right after create does not race a
//     daemon that is still starting.
//   - If dockerd exits it is started again (at most dockerRestarts times, a
//     second apart); its output goes to /var/log/dockerd.log.
//   - dockerd verifies registries with the system CA bundle, which it
//     reads once, at its first registry connection. Configure adds the
//     sandbox's CAs to the bundle before any user command can pull; when
//     it adds CAs to a guest that ran with others (a fork given more), it
//     restarts an idle dockerd so the next pull reads them (trust.go).

// Paths of Docker Engine in the guest.
const (
	dockerdPath    = "/usr/sbin/dockerd"
	dockerLog      = "/var/log/dockerd.log"
	dockerSocket   = "/run/docker.sock"
	dockerRestarts = 5
)

// Dockerd is the guest's Docker daemon as StartDocker keeps it running.
// Invariants: mu guards pid (0 while none runs) and restarting (the
// running daemon was asked to stop so that it starts again).
type Dockerd struct {
	mu         sync.Mutex
	pid        int
	restarting bool
}

// StartDocker starts dockerd in the background when the root filesystem has
// it, and keeps it running. It returns at once; nil when there is no
// dockerd.
func StartDocker(log *slog.Logger, r *Reaper) *Dockerd {
	if _, err := os.Stat(dockerdPath); err != nil {
		return nil
	}
	d := &Dockerd{}
	go func() {
		for try := 0; try <= dockerRestarts; {
			start := time.Now()
			ws, err := d.run(r)
			if err != nil {
				log.Error("dockerd did not start", "err", err)
				return
			}
			d.mu.Lock()
			asked := d.restarting
			d.pid, d.restarting = 0, false
			d.mu.Unlock()
			if asked {
				continue
			}
			log.Warn("dockerd exited", "status", ws.ExitStatus(), "signal", ws.Signal(), "ran", time.Since(start).Round(time.Millisecond), "log", dockerLog)
			try++
			time.Sleep(time.Second)
		}
		log.Error("dockerd keeps exiting: not restarting it", "log", dockerLog)
	}()
	log.Info("dockerd started", "log", dockerLog)
	return d
}

// restartIdle stops dockerd (SIGTERM) so that it starts again, unless a
// container runs: it would stop with the daemon. The new daemon reads the
// system CA bundle again at its first registry connection. It returns at
// once; the docker wrapper waits for the new daemon's socket.
func (d *Dockerd) restartIdle(log *slog.Logger, why string) {
	if d == nil {
		return
	}
	if shims := containerShims(); shims > 0 {
		log.Warn("dockerd not restarted while containers run: registries signed by the new CAs need a restart of dockerd", "why", why, "shims", shims)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pid == 0 || d.restarting {
		return
	}
	if err := unix.Kill(d.pid, unix.SIGTERM); err != nil {
		log.Warn("restart dockerd", "err", err)
		return
	}
	d.restarting = true
	// The docker wrapper waits for the socket: gone now, it waits for
	// the new daemon's instead of reaching the one shutting down (which
	// unlinks it too; the new one starts after it has exited).
	os.Remove(dockerSocket)
	log.Info("restarting dockerd", "why", why)
}

// containerShims counts the containerd shims running: one per running
// container (or pod) of dockerd's containerd.
func containerShims() int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && strings.HasPrefix(string(comm), "containerd-shim") {
			n++
		}
	}
	return n
}

// run runs dockerd in its own session until it exits.
func (d *Dockerd) run(r *Reaper) (unix.WaitStatus, error) {
	if err := os.MkdirAll(filepath.Dir(dockerLog), 0o755); err != nil {
		return 0, err
	}
	out, err := os.OpenFile(dockerLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	attr := &os.ProcAttr{
		Dir:   "/",
		Env:   []string{"PATH=" + DefaultPath, "HOME=/root"},
		Files: []*os.File{null, out, out},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	p, exit, err := r.Start(dockerdPath, []string{"dockerd"}, attr)
	if err != nil {
		return 0, err
	}
	d.mu.Lock()
	d.pid = p.Pid
	d.mu.Unlock()
	return <-exit, nil
}
