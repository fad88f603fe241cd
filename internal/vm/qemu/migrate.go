package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
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

// Save stops the VM and writes its migration stream to path. sock is a
// unix socket path (relative to QEMU's directory) used for the transfer.
func (m *Monitor) Save(ctx context.Context, sock, path string) error {
	os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	defer os.Remove(sock)
	defer l.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := m.SetMaxBandwidth(); err != nil {
		return err
	}
	if _, err := m.Execute("stop", nil); err != nil {
		return err
	}
	copied := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			copied <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(f, c)
		copied <- err
	}()
	if _, err := m.Execute("migrate", map[string]any{"uri": "unix:" + sock}); err != nil {
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
// Incoming, waits until it is loaded, and leaves the VM paused.
func (m *Monitor) Restore(ctx context.Context, sock, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	os.Remove(sock)
	if _, err := m.Execute("migrate-incoming", map[string]any{"uri": "unix:" + sock}); err != nil {
		return err
	}
	defer os.Remove(sock)
	var c net.Conn
	for {
		c, err = net.Dial("unix", sock)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to qemu's incoming migration socket: %w", err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	_, err = io.Copy(c, f)
	c.Close()
	if err != nil {
		return fmt.Errorf("send vm state: %w", err)
	}
	return m.waitMigration(ctx)
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
