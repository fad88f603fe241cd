package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"

	"google.golang.org/grpc/status"

	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/secret"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
)

// Checkpoint saves the full state of running sandbox name (memory,
// devices, and the root disk, which holds the workspace's synced copy) as
// checkpoint ckpt. The sandbox's supervisor makes and fills the
// checkpoint's folder. The sandbox keeps running.
func (m *Manager) Checkpoint(ctx context.Context, name, ckpt string) (store.CheckpointMeta, error) {
	meta := store.CheckpointMeta{Name: ckpt, Sandbox: name}
	if err := store.ValidateName(ckpt); err != nil {
		return meta, fmt.Errorf("checkpoint %w", err)
	}
	if _, err := m.existing(name); err != nil {
		return meta, err
	}
	ck := m.Home.Checkpoint(ckpt)
	if _, err := os.Lstat(ck.Dir); err == nil {
		return meta, fmt.Errorf("checkpoint %q already exists", ckpt)
	}
	c, err := m.Dial(name)
	if err != nil {
		return meta, err
	}
	defer c.Close()
	if _, err := c.Supervisor.Checkpoint(ctx, &supervisorv1.CheckpointRequest{Name: ckpt}); err != nil {
		if st, ok := status.FromError(err); ok {
			return meta, fmt.Errorf("checkpoint %q of %q: %s", ckpt, name, st.Message())
		}
		return meta, err
	}
	err = store.ReadJSON(ck.Meta(), &meta)
	return meta, err
}

// CheckpointInfo is what checkpoint ls shows.
type CheckpointInfo struct {
	store.CheckpointMeta
	DiskBytes int64  `json:"disk_bytes"` // host blocks used by memory and disk
	State     string `json:"state"`      // CheckpointReady or CheckpointIncomplete
	Reason    string `json:"reason,omitempty"`
}

// A checkpoint's states: ready to fork from, or interrupted while saving.
const (
	CheckpointReady      = "ready"
	CheckpointIncomplete = "incomplete"
)

// Checkpoints lists every checkpoint, sorted by name.
func (m *Manager) Checkpoints() ([]CheckpointInfo, error) {
	entries, err := os.ReadDir(m.Home.CheckpointsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []CheckpointInfo
	for _, e := range entries {
		if !e.IsDir() || store.ValidateName(e.Name()) != nil {
			continue
		}
		ck := m.Home.Checkpoint(e.Name())
		info := CheckpointInfo{State: CheckpointReady}
		if err := store.ReadJSON(ck.Meta(), &info.CheckpointMeta); err != nil {
			info.Name = e.Name()
			info.State = CheckpointIncomplete
			info.Reason = "interrupted while saving; remove it with paddock checkpoint rm " + e.Name()
		}
		info.DiskBytes = allocated(ck.Memory()) + allocated(ck.Disk())
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// RemoveCheckpoint deletes a checkpoint. Sandboxes forked from it keep
// working: they own a copy of its disk.
func (m *Manager) RemoveCheckpoint(name string) error {
	if err := store.ValidateName(name); err != nil {
		return err
	}
	ck := m.Home.Checkpoint(name)
	if _, err := os.Stat(ck.Dir); err != nil {
		return fmt.Errorf("no such checkpoint %q (see paddock checkpoint ls)", name)
	}
	return os.RemoveAll(ck.Dir)
}

// WithCheckpoint checkpoints running sandbox name under a name of its own,
// calls use with that name, and removes the checkpoint after (a sandbox
// made from it keeps its own copy): how a sandbox is forked as it is now.
// It returns the checkpoint's error, or use's; a failure to remove the
// checkpoint is logged.
func (m *Manager) WithCheckpoint(ctx context.Context, name string, use func(ckpt string) error) error {
	ckpt := "fork-" + store.GenerateName()
	if _, err := m.Checkpoint(ctx, name, ckpt); err != nil {
		return err
	}
	defer func() {
		if err := m.RemoveCheckpoint(ckpt); err != nil && m.Logger != nil {
			m.Logger.Warn("fork: remove its checkpoint", "checkpoint", ckpt, "err", err)
		}
	}()
	return use(ckpt)
}

// forkOptions fills a fork's options from its checkpoint. Settings the
// checkpoint fixes (template, cpus, memory) may not be changed.
func (m *Manager) forkOptions(o CreateOptions) (CreateOptions, error) {
	if err := store.ValidateName(o.From); err != nil {
		return o, fmt.Errorf("--from: %w", err)
	}
	var meta store.CheckpointMeta
	if err := store.ReadJSON(m.Home.Checkpoint(o.From).Meta(), &meta); err != nil {
		return o, fmt.Errorf("no usable checkpoint %q (see paddock checkpoint ls)", o.From)
	}
	src := meta.Config
	var errs []error
	if o.Template != "" && o.Template != src.Template {
		errs = append(errs, fmt.Errorf("--template %s: a fork of %q runs its template %s", o.Template, o.From, src.Template))
	}
	if o.CPUs != 0 && o.CPUs != src.CPUs {
		errs = append(errs, fmt.Errorf("--cpus %d: a fork of %q has its %d cpus", o.CPUs, o.From, src.CPUs))
	}
	if o.Memory != "" {
		if n, err := store.ParseSize(o.Memory); err != nil || n&^(1<<20-1) != src.MemoryBytes {
			errs = append(errs, fmt.Errorf("--memory %s: a fork of %q has its %s of memory", o.Memory, o.From, store.FormatSize(src.MemoryBytes)))
		}
	}
	if o.Disk == "" && src.DiskBytes != 0 {
		o.Disk = strconv.FormatInt(src.DiskBytes, 10)
	} else if n, err := store.ParseSize(o.Disk); o.Disk != "" && err == nil && n < src.DiskBytes {
		errs = append(errs, fmt.Errorf("--disk %s: a fork of %q has its %s of disk or more (a disk only grows)", o.Disk, o.From, store.FormatSize(src.DiskBytes)))
	}
	if o.Cold {
		errs = append(errs, errors.New("--cold and --from exclude each other: a fork continues the checkpoint's processes"))
	}
	if t, err := template.Open(string(m.Home), src.Template); err != nil {
		errs = append(errs, err)
	} else if src.TemplateBuild != "" && template.BuildID(t) != src.TemplateBuild {
		errs = append(errs, fmt.Errorf("template %q was rebuilt after checkpoint %q was taken: the checkpoint cannot be used any more", src.Template, o.From))
	}
	o.Template, o.CPUs, o.Memory = src.Template, src.CPUs, strconv.FormatInt(src.MemoryBytes, 10)
	if o.Accel == "" || o.Accel == "auto" {
		o.Accel = src.Accel
	}
	o.Env = append(append([]string(nil), src.Env...), o.Env...)
	// The checkpoint's processes hold its secrets' placeholders: the fork
	// keeps the bindings the store still has.
	if kept, _, err := secret.Open(m.Home).Lookup(src.Secrets); err == nil {
		for _, d := range kept {
			o.Secrets = append(o.Secrets, d.Name)
		}
	}
	if o.User == "" {
		o.User = src.User.Name // the checkpoint's guest has it configured
	}
	if o.Policy == nil && meta.Policy != "" {
		p, err := netpolicy.Parse([]byte(meta.Policy))
		if err != nil {
			errs = append(errs, fmt.Errorf("checkpoint %q: its network policy: %w", o.From, err))
		} else {
			o.Policy = &p
		}
	}
	return o, errors.Join(errs...)
}
