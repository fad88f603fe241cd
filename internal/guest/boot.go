package guest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Paths inside the initramfs and the new root.
const (
	newRoot       = "/newroot"
	modulesDir    = "/lib/modules"
	waitForDevice = 10 * time.Second
)

// step is one named boot step.
type step struct {
	name string
	run  func() error
}

// Boot turns the initramfs into the running guest: kernel file systems,
// modules, root switch, runtime mounts, loopback, control port. It returns
// the path of the control port device. Each step is logged with its
// duration; the first failure stops the boot.
func Boot(ctx context.Context, log *slog.Logger) (port string, err error) {
	var cfg BootConfig
	steps := []step{
		{"mount-kernel-fs", mountKernelFS},
		{"load-modules", func() error {
			n, err := loadModules(ModuleListFile, filepath.Join(modulesDir, kernelRelease()))
			log.Debug("modules loaded", "count", n)
			return err
		}},
		{"read-cmdline", func() (err error) {
			cfg, err = readCmdline("/proc/cmdline")
			return err
		}},
		{"wait-root-device", func() error { return waitForPath(ctx, cfg.Root, waitForDevice) }},
		{"switch-root", func() error { return switchRoot(cfg) }},
		{"mount-runtime-fs", mountRuntimeFS},
		{"loopback-up", func() error { return linkUp("lo") }},
		{"find-control-port", func() (err error) {
			port, err = waitForPort(ctx, "/sys/class/virtio-ports", cfg.Port, waitForDevice)
			return err
		}},
	}
	start := time.Now()
	for _, s := range steps {
		t := time.Now()
		if err := s.run(); err != nil {
			log.Error("boot step failed", "step", s.name, "duration", time.Since(t), "err", err)
			return "", fmt.Errorf("boot step %s: %w", s.name, err)
		}
		log.Info("boot step", "step", s.name, "duration", time.Since(t))
	}
	log.Info("boot done", "duration", time.Since(start), "port", port)
	return port, nil
}

// mountKernelFS mounts /proc, /sys and /dev in the initramfs.
func mountKernelFS() error {
	const nosuid = unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV
	return errors.Join(
		mountOnce("proc", "/proc", "proc", nosuid, ""),
		mountOnce("sysfs", "/sys", "sysfs", nosuid, ""),
		mountOnce("devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"),
	)
}

// switchRoot mounts the root disk at /newroot, moves the kernel file
// systems into it and makes it /. The initramfs stays in memory under it
// (the agent binary keeps running from there); it is small.
func switchRoot(cfg BootConfig) error {
	if err := os.MkdirAll(newRoot, 0o755); err != nil {
		return err
	}
	// noatime: with atimes on, every clone of a saved VM rewrites the
	// access time of each file it reads (the template VM read them with
	// its clock at 1970, and relatime updates atimes over a day old), and
	// each such write brings in the journal, writeback and block I/O.
	if err := unix.Mount(cfg.Root, newRoot, cfg.RootFSType, unix.MS_NOATIME, cfg.RootFlags); err != nil {
		return fmt.Errorf("mount root %s (%s): %w", cfg.Root, cfg.RootFSType, err)
	}
	for _, dir := range []string{"/dev", "/proc", "/sys"} {
		target := filepath.Join(newRoot, dir)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(dir, target, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s into the root: %w", dir, err)
		}
	}
	if err := unix.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move the root to /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

// mountRuntimeFS mounts what a userland expects in the new root.
func mountRuntimeFS() error {
	const nosuid = unix.MS_NOSUID | unix.MS_NODEV
	err := errors.Join(
		mountOnce("devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "gid=5,mode=620,ptmxmode=666"),
		mountOnce("tmpfs", "/dev/shm", "tmpfs", nosuid, "mode=1777"),
		mountOnce("tmpfs", "/run", "tmpfs", nosuid, "mode=0755"),
	)
	// cgroup2 is optional: a kernel without it still runs plain processes.
	_ = mountOnce("cgroup2", "/sys/fs/cgroup", "cgroup2", nosuid|unix.MS_NOEXEC, "")
	if e := os.MkdirAll("/tmp", 0o1777); e != nil {
		err = errors.Join(err, e)
	} else if e := os.Chmod("/tmp", 0o1777|os.ModeSticky); e != nil {
		err = errors.Join(err, e)
	}
	// /dev/ptmx must reach the devpts instance for PTYs to work.
	if _, e := os.Lstat("/dev/ptmx"); e != nil {
		_ = os.Symlink("pts/ptmx", "/dev/ptmx")
	}
	return err
}

// waitForPath waits until path exists.
func waitForPath(ctx context.Context, path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %s: is the device attached and its driver in %s?", path, limit, ModuleListFile)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// kernelRelease is uname -r.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// findPort looks up the device of the virtio-serial port called name in a
// /sys/class/virtio-ports style directory: a NAME/name file holding name
// means /dev/NAME.
func findPort(classDir, name string) (string, error) {
	entries, err := os.ReadDir(classDir)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(classDir, e.Name(), "name"))
		if err != nil {
			continue
		}
		if strings.TrimSpace(string(b)) == name {
			return "/dev/" + e.Name(), nil
		}
	}
	return "", os.ErrNotExist
}

// waitForPort waits until the port called name and its device node exist.
func waitForPort(ctx context.Context, classDir, name string, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if dev, err := findPort(classDir, name); err == nil {
			if _, err := os.Stat(dev); err == nil {
				return dev, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no virtio-serial port named %q within %s: the host must add -device virtserialport,name=%s and load virtio_console", name, limit, name)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(delay):
		}
	}
}
