package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/secret"
	"github.com/paddock-dev/paddock/internal/store"
)

// Start boots a stopped sandbox again on its existing disk.
func (m *Manager) Start(ctx context.Context, name string) error {
	l, lock, err := m.lockComplete(name)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if supervisorAlive(l) {
		return fmt.Errorf("sandbox %q is already running", name)
	}
	if err := checkFreeSpace(m.Home); err != nil {
		return fmt.Errorf("start %q: %w", name, err)
	}
	_, err = m.spawn(ctx, name)
	return err
}

// Stop shuts a running sandbox down cleanly, forcing it off after timeout.
// It reports whether it had to force.
func (m *Manager) Stop(ctx context.Context, name string, timeout time.Duration) (forced bool, err error) {
	l, err := m.existing(name)
	if err != nil {
		return false, err
	}
	if !supervisorAlive(l) {
		return false, fmt.Errorf("sandbox %q is not running", name)
	}
	c, err := dialSocket(l.Socket())
	if err != nil {
		return false, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer cancel()
	resp, err := c.Supervisor.Stop(ctx, &supervisorv1.StopRequest{TimeoutMs: timeout.Milliseconds()})
	if err != nil {
		return false, fmt.Errorf("stop %q: %w", name, err)
	}
	// The supervisor exits right after answering; wait for its lock.
	if err := waitWhile(ctx, timeout+10*time.Second, func() bool { return runLockHeld(l) }); err != nil {
		return resp.Forced, fmt.Errorf("stop %q: the supervisor did not exit", name)
	}
	return resp.Forced, nil
}

// Pause stops a running sandbox's vCPUs, keeping its memory.
func (m *Manager) Pause(ctx context.Context, name string) error {
	c, err := m.Dial(name)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Supervisor.Pause(ctx, &supervisorv1.PauseRequest{})
	return err
}

// Resume continues a paused sandbox.
func (m *Manager) Resume(ctx context.Context, name string) error {
	c, err := m.Dial(name)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Supervisor.Resume(ctx, &supervisorv1.ResumeRequest{})
	return err
}

// SetDeadline moves the time at which sandbox name is removed (nil: never).
// A running sandbox's supervisor takes it at once; a stopped sandbox's is
// recorded for its next start.
func (m *Manager) SetDeadline(ctx context.Context, name string, d *time.Time) error {
	l, err := m.existing(name)
	if err != nil {
		return err
	}
	if supervisorAlive(l) {
		c, err := m.Dial(name)
		if err != nil {
			return err
		}
		defer c.Close()
		var ns int64
		if d != nil {
			ns = d.UnixNano()
		}
		_, err = c.Supervisor.SetDeadline(ctx, &supervisorv1.SetDeadlineRequest{UnixNano: ns})
		return err
	}
	return m.editConfig(name, l, func(cfg *store.SandboxConfig) error {
		cfg.Deadline = d
		return nil
	})
}

// Remove deletes a sandbox. A running one is refused unless force, in
// which case its supervisor and QEMU are killed first.
func (m *Manager) Remove(ctx context.Context, name string, force bool) error {
	l, err := m.existing(name)
	if err != nil {
		return err
	}
	if supervisorAlive(l) {
		if !force {
			return fmt.Errorf("sandbox %q is running: stop it first or use paddock rm -f", name)
		}
	}
	lock, err := store.LockFile(l.Lock(), true)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := killProcesses(ctx, l); err != nil {
		return fmt.Errorf("remove %q: %w", name, err)
	}
	if err := removeGroup(l); err != nil {
		return fmt.Errorf("remove %q: %w", name, err)
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		return fmt.Errorf("remove %q: %w", name, err)
	}
	if err := secret.Open(m.Home).RemoveSandbox(name); err != nil {
		return fmt.Errorf("remove %q: its own secrets: %w", name, err)
	}
	return nil
}

// Reset puts a sandbox's root filesystem and memory back to the template's
// saved state, keeping its name, settings and workspace. A running sandbox
// is killed first (its processes and unsaved root changes are discarded);
// it runs again afterwards.
func (m *Manager) Reset(ctx context.Context, name string) error {
	l, lock, err := m.lockComplete(name)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := killProcesses(ctx, l); err != nil {
		return fmt.Errorf("reset %q: %w", name, err)
	}
	for _, p := range []string{l.Disk(), l.BaseDisk()} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reset %q: %w", name, err)
		}
	}
	_, err = m.spawn(ctx, name)
	return err
}

// lockComplete takes the lifecycle lock of an existing sandbox whose
// create finished (it has a config), for start and reset.
func (m *Manager) lockComplete(name string) (store.Layout, *store.Lock, error) {
	l, err := m.existing(name)
	if err != nil {
		return l, nil, err
	}
	lock, err := store.LockFile(l.Lock(), false)
	if err != nil {
		return l, nil, err
	}
	if _, err := os.Stat(l.Config()); err != nil {
		lock.Unlock()
		return l, nil, fmt.Errorf("sandbox %q is incomplete (no config): remove it with paddock rm %s", name, name)
	}
	return l, lock, nil
}

// killProcesses kills the sandbox's supervisor and QEMU, if alive, and
// waits until they are gone and the run lock is free for a new supervisor.
func killProcesses(ctx context.Context, l store.Layout) error {
	for _, pidPath := range []string{l.SupervisorPid(), l.QEMUPid()} {
		if pf, err := store.ReadPidFile(pidPath); err == nil && pf.Alive() {
			pf.Kill(syscall.SIGKILL)
			if err := waitWhile(ctx, 10*time.Second, pf.Alive); err != nil {
				return fmt.Errorf("process %d did not exit after SIGKILL", pf.Pid)
			}
		}
	}
	if err := waitWhile(ctx, 10*time.Second, func() bool { return runLockHeld(l) }); err != nil {
		return fmt.Errorf("its run lock is still held after its processes were killed (another supervisor without a pid file?): %w", err)
	}
	return nil
}

// runLockHeld reports whether a process holds the sandbox's run lock, the
// one a new supervisor takes. A killed supervisor's main thread shows as a
// zombie while its other threads, still exiting, hold the lock's file:
// waiting for the process alone let a reset start the new supervisor too
// early ("already running").
func runLockHeld(l store.Layout) bool {
	lk, err := store.LockFile(l.RunLock(), false)
	if err != nil {
		return errors.Is(err, store.ErrLocked)
	}
	lk.Unlock()
	return false
}

// waitWhile polls cond until it is false, for at most timeout; the error
// is the context's when it is not.
func waitWhile(ctx context.Context, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func (m *Manager) existing(name string) (store.Layout, error) {
	if err := store.ValidateName(name); err != nil {
		return store.Layout{}, err
	}
	l := m.Home.Sandbox(name)
	if _, err := os.Stat(l.Dir); errors.Is(err, os.ErrNotExist) {
		return l, fmt.Errorf("no such sandbox %q (see paddock ls)", name)
	}
	return l, nil
}
