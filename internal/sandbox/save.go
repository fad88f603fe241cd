package sandbox

import (
	"context"
	"fmt"
	"io"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
)

// SaveTemplate makes template tpl from sandbox name's root filesystem. A
// running sandbox is synced and paused for the copy and then resumed; the
// new template gets its own saved VM state on first use.
func (m *Manager) SaveTemplate(ctx context.Context, name, tpl string, progress io.Writer) (*template.Template, error) {
	l, err := m.existing(name)
	if err != nil {
		return nil, err
	}
	var cfg store.SandboxConfig
	if err := store.ReadJSON(l.Config(), &cfg); err != nil {
		return nil, fmt.Errorf("sandbox %q is incomplete: %w", name, err)
	}
	from, err := template.Open(string(m.Home), cfg.Template)
	if err != nil {
		return nil, err
	}
	if supervisorAlive(l) {
		c, err := m.Dial(name)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		if err := syncGuest(ctx, c); err != nil {
			return nil, fmt.Errorf("sync %q before saving: %w", name, err)
		}
		if _, err := c.Supervisor.Pause(ctx, &supervisorv1.PauseRequest{}); err != nil {
			return nil, err
		}
		defer c.Supervisor.Resume(context.WithoutCancel(ctx), &supervisorv1.ResumeRequest{})
	}
	return template.Save(ctx, template.SaveOptions{
		Home: string(m.Home), Name: tpl, From: from, Disk: l.Disk(), Sandbox: name, Progress: progress,
	})
}

// syncGuest flushes the guest's file systems to its disk.
func syncGuest(ctx context.Context, c *Client) error {
	exit, err := c.Run(ctx, &agentv1.ExecRequest{Argv: []string{"sync"}, User: "root", Cwd: "/"}, Streams{Stdout: io.Discard, Stderr: io.Discard}, nil)
	if err == nil && exit.Code != 0 {
		err = fmt.Errorf("sync exited %d %s", exit.Code, exit.Error)
	}
	return err
}
