package sandbox

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/status"

	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/store"
)

// ParseMount reads HOSTDIR[:GUESTDIR][:ro|:rw]: the guest path defaults
// to the host's, and a folder is read-only unless :rw says otherwise.
func ParseMount(spec string) (store.Mount, error) {
	m := store.Mount{ReadOnly: true}
	parts := strings.Split(spec, ":")
	switch last := parts[len(parts)-1]; {
	case len(parts) > 1 && last == "ro":
		parts = parts[:len(parts)-1]
	case len(parts) > 1 && last == "rw":
		m.ReadOnly = false
		parts = parts[:len(parts)-1]
	}
	switch len(parts) {
	case 1:
		m.Host = parts[0]
	case 2:
		m.Host, m.Guest = parts[0], parts[1]
	default:
		return m, fmt.Errorf("invalid folder %q: use HOSTDIR[:GUESTDIR][:ro|:rw]", spec)
	}
	if m.Host == "" {
		return m, fmt.Errorf("invalid folder %q: no host folder", spec)
	}
	return m, nil
}

// resolveMount checks m's host folder (as a workspace is checked) and
// guest path, filling the guest path in.
func (m *Manager) resolveMount(mt store.Mount) (store.Mount, error) {
	host, err := m.validateFolder("folder", mt.Host)
	if err != nil {
		return mt, err
	}
	mt.Host = host
	if mt.Guest == "" {
		mt.Guest = host
	}
	if err := store.CheckGuestPath(mt.Guest); err != nil {
		return mt, err
	}
	return mt, nil
}

// overlapping refuses a guest path inside or holding the workspace's or
// another folder's.
func overlapping(cfg *store.SandboxConfig, g string) error {
	paths := []string{}
	if cfg.Workspace != "" {
		paths = append(paths, cfg.Workspace)
	}
	for _, x := range cfg.Mounts {
		paths = append(paths, x.Guest)
	}
	for _, p := range paths {
		if contains(p, g) || contains(g, p) {
			return fmt.Errorf("guest path %s overlaps %s, already synced into the sandbox", g, p)
		}
	}
	return nil
}

// AddMount syncs another host folder into sandbox name: at once when it
// runs (returning after the folder's first sync), from its next start
// otherwise.
func (m *Manager) AddMount(ctx context.Context, name string, mt store.Mount) (store.Mount, error) {
	l, err := m.existing(name)
	if err != nil {
		return mt, err
	}
	if mt, err = m.resolveMount(mt); err != nil {
		return mt, err
	}
	var cfg store.SandboxConfig
	if err := store.ReadJSON(l.Config(), &cfg); err != nil {
		return mt, err
	}
	if err := overlapping(&cfg, mt.Guest); err != nil {
		return mt, err
	}
	if supervisorAlive(l) {
		c, err := m.Dial(name)
		if err != nil {
			return mt, err
		}
		defer c.Close()
		_, err = c.Supervisor.AddMount(ctx, &supervisorv1.AddMountRequest{Host: mt.Host, Guest: mt.Guest, ReadOnly: mt.ReadOnly})
		return mt, plainStatus(err)
	}
	return mt, m.editConfig(name, l, func(cfg *store.SandboxConfig) error {
		if err := overlapping(cfg, mt.Guest); err != nil {
			return err
		}
		cfg.Mounts = append(cfg.Mounts, mt)
		return nil
	})
}

// RemoveMount stops syncing the folder added at guest path (or from host
// path) target, and removes its copy from a running guest.
func (m *Manager) RemoveMount(ctx context.Context, name, target string) error {
	l, err := m.existing(name)
	if err != nil {
		return err
	}
	var cfg store.SandboxConfig
	if err := store.ReadJSON(l.Config(), &cfg); err != nil {
		return err
	}
	guest := ""
	for _, x := range cfg.Mounts {
		if x.Guest == target || x.Host == target {
			guest = x.Guest
		}
	}
	if guest == "" {
		return fmt.Errorf("sandbox %q has no folder added at %s (paddock mount ls %s)", name, target, name)
	}
	if supervisorAlive(l) {
		c, err := m.Dial(name)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Supervisor.RemoveMount(ctx, &supervisorv1.RemoveMountRequest{Guest: guest})
		return plainStatus(err)
	}
	return m.editConfig(name, l, func(cfg *store.SandboxConfig) error {
		var rest []store.Mount
		for _, x := range cfg.Mounts {
			if x.Guest != guest {
				rest = append(rest, x)
			}
		}
		cfg.Mounts = rest
		return nil
	})
}

// editConfig changes a stopped sandbox's config under its lock.
func (m *Manager) editConfig(name string, l store.Layout, edit func(*store.SandboxConfig) error) error {
	lock, err := store.LockFile(l.Lock(), false)
	if err != nil {
		return fmt.Errorf("sandbox %q is busy (another paddock command holds it): try again", name)
	}
	defer lock.Unlock()
	var cfg store.SandboxConfig
	if err := store.ReadJSON(l.Config(), &cfg); err != nil {
		return err
	}
	if err := edit(&cfg); err != nil {
		return err
	}
	return store.WriteJSON(l.Config(), cfg)
}

// plainStatus turns a supervisor's status error into its message.
func plainStatus(err error) error {
	if st, ok := status.FromError(err); ok && err != nil {
		return fmt.Errorf("%s", st.Message())
	}
	return err
}

// Config answers sandbox name's settings.
func (m *Manager) Config(name string) (store.SandboxConfig, error) {
	var cfg store.SandboxConfig
	l, err := m.existing(name)
	if err != nil {
		return cfg, err
	}
	return cfg, store.ReadJSON(l.Config(), &cfg)
}
