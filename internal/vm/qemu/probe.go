package qemu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// ProbeArgs is the argv of the KVM probe: the guest kernel with no
// initramfs and no disk, which under a working KVM boots in well under a
// second and panics for want of a root file system.
func ProbeArgs(kernel string) []string {
	return []string{
		"-M", "microvm,x-option-roms=off,isa-serial=on,rtc=off,acpi=on",
		"-accel", "kvm", "-cpu", "host", "-m", "128M", "-smp", "1",
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-kernel", kernel,
		"-append", "console=ttyS0 panic=-1 reboot=t",
		"-serial", "stdio",
		"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
	}
}

// probeVerdict reads one console line of the probe guest: done reports
// that the probe is over, with err nil when the kernel ran to the point of
// looking for its root file system.
func probeVerdict(line string) (done bool, err error) {
	switch {
	case strings.Contains(line, "KVM internal error"), strings.Contains(line, "emulation failure"):
		return true, errors.New(strings.TrimSpace(line))
	case strings.Contains(line, "Kernel panic"), strings.Contains(line, "VFS: Unable to mount root"),
		strings.Contains(line, "No working init found"):
		return true, nil
	}
	return false, nil
}

// ProbeKVM boots kernel (a path as the confined QEMU reaches it) under KVM
// for at most timeout, confined by c, and reports whether it ran.
func ProbeKVM(ctx context.Context, kernel string, c Confinement, timeout time.Duration) error {
	bin, err := exec.LookPath(Binary)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, ProbeArgs(kernel)...)
	cmd.SysProcAttr = c.sysProcAttr()
	cmd.ExtraFiles = c.Files
	cmd.Dir = "/"
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout // QEMU prints KVM errors on stderr
	// As in Start: the filter is loaded on a locked thread, which lives
	// until the probe is over (PDEATHSIG fires when it exits).
	started, over := make(chan error, 1), make(chan struct{})
	defer close(over)
	go func() {
		runtime.LockOSThread() // never unlocked
		if err := loadFileFilter(); err != nil {
			started <- err
			return
		}
		started <- cmd.Start()
		<-over
	}()
	if err := <-started; err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if done, err := probeVerdict(sc.Text()); done {
			return err
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("the guest did not boot within %s", timeout)
	}
	return errors.New("qemu exited before the guest booted")
}
