package guest

import (
	"log/slog"
	"os"
	"path/filepath"
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

// Paths of Docker Engine in the guest.
const (
	dockerdPath    = "/usr/sbin/dockerd"
	dockerLog      = "/var/log/dockerd.log"
	dockerRestarts = 5
)

// StartDocker starts dockerd in the background when the root filesystem has
// it, and keeps it running. It returns at once.
func StartDocker(log *slog.Logger, r *Reaper) {
	if _, err := os.Stat(dockerdPath); err != nil {
		return
	}
	go func() {
		for try := 0; try <= dockerRestarts; try++ {
			if try > 0 {
				time.Sleep(time.Second)
			}
			start := time.Now()
			ws, err := runDockerd(r)
			if err != nil {
				log.Error("dockerd did not start", "err", err)
				return
			}
			log.Warn("dockerd exited", "status", ws.ExitStatus(), "signal", ws.Signal(), "ran", time.Since(start).Round(time.Millisecond), "log", dockerLog)
		}
		log.Error("dockerd keeps exiting: not restarting it", "log", dockerLog)
	}()
	log.Info("dockerd started", "log", dockerLog)
}

// runDockerd runs dockerd in its own session until it exits.
func runDockerd(r *Reaper) (unix.WaitStatus, error) {
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
	_, exit, err := r.Start(dockerdPath, []string{"dockerd"}, attr)
	if err != nil {
		return 0, err
	}
	return <-exit, nil
}
