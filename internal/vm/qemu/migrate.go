package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Migration streams go through unix sockets rather than "exec:" URIs:
// QEMU runs with -sandbox spawn=deny, so it may not start a process.

// SetIgnoreShared turns the x-ignore-shared migration capability on or
// off: with it, RAM mapped from a shared memory-backend file is not
// written to (or expected in) the migration stream.
func (m *Monitor) SetIgnoreShared(on bool) error {
	_, err := m.Execute("migrate-set-capabilities", map[string]any{
		"capabilities": []map[string]any{{"capability": "x-ignore-shared", "state": on}},
	})
	return err
}

// SetMaxBandwidth lifts QEMU's default migration bandwidth cap (32 MiB/s),
// which would otherwise make a save of a few hundred MiB take seconds.
func (m *Monitor) SetMaxBandwidth() error {
	_, err := m.Execute("migrate-set-parameters", map[string]any{"max-bandwidth": int64(1) << 40})
	return err
}

// Save stops the VM and writes its migration stream to path. The stream
// goes over a socket pair whose QEMU end is passed over QMP (getfd), so
// QEMU needs no path of its own to reach.
func (m *Monitor) Save(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	ours, theirs, err := m.passSocket()
	if err != nil {
		return err
	}
	defer ours.Close()
	if err := m.SetMaxBandwidth(); err != nil {
		return err
	}
	if _, err := m.Execute("stop", nil); err != nil {
		return err
	}
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(f, ours)
		copied <- err
	}()
	_, err = m.Execute("migrate", map[string]any{"uri": "fd:" + migrationFD})
	theirs.Close()
	if err != nil {
		return err
	}
	if err := m.waitMigration(ctx); err != nil {
		return err
	}
	select {
	case err := <-copied:
		if err != nil {
			return fmt.Errorf("save vm state: %w", err)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	return f.Sync()
}

// Restore feeds the migration stream in path to a QEMU started with
// Incoming, over a socket pair passed as in Save, and waits until loaded.
func (m *Monitor) Restore(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	ours, theirs, err := m.passSocket()
	if err != nil {
		return err
	}
	_, err = m.Execute("migrate-incoming", map[string]any{"uri": "fd:" + migrationFD})
	theirs.Close()
	if err != nil {
		ours.Close()
		return err
	}
	_, err = io.Copy(ours, f)
	ours.Close()
	if err != nil {
		return fmt.Errorf("send vm state: %w", err)
	}
	return m.waitMigration(ctx)
}

// migrationFD is the name under which QEMU holds the migration socket.
const migrationFD = "migration"

// passSocket makes a socket pair and hands one end to QEMU (getfd) under
// the name migrationFD; the caller closes both of the returned ends.
func (m *Monitor) passSocket() (ours, theirs *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("migration socket: %w", err)
	}
	ours, theirs = os.NewFile(uintptr(fds[0]), "migration"), os.NewFile(uintptr(fds[1]), "migration-qemu")
	if _, err := m.execute("getfd", map[string]any{"fdname": migrationFD}, theirs); err != nil {
		ours.Close()
		theirs.Close()
		return nil, nil, err
	}
	return ours, theirs, nil
}

// waitMigration polls query-migrate until the migration completes or fails.
func (m *Monitor) waitMigration(ctx context.Context) error {
	delay := time.Millisecond
	for {
		raw, err := m.Execute("query-migrate", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return err
		}
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			if st.ErrorDesc == "" {
				st.ErrorDesc = st.Status
			}
			return errors.New("migration " + st.Status + ": " + st.ErrorDesc)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("migration %s: %w", st.Status, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
}
