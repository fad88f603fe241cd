package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/store"
)

// maxTTL bounds ttl_s, as create --ttl is bounded.
const maxTTL = 30 * 24 * time.Hour

type createIn struct {
	Name       string   `json:"name,omitempty" jsonschema:"the new sandbox's name: 1-63 of a-z, 0-9 and '-'; generated when absent"`
	Template   string   `json:"template,omitempty" jsonschema:"the template to boot: tiny (busybox, boots fastest) or debian (a Debian system with apt, git, curl); default debian"`
	Policy     string   `json:"policy,omitempty" jsonschema:"network policy preset: balanced (package registries, git hosts and AI APIs; the default), deny-all, allow-all or learn"`
	AllowHosts []string `json:"allow_hosts,omitempty" jsonschema:"hosts to allow beyond the preset: NAME or *.SUFFIX, :PORT optional (default ports 80 and 443, :* any)"`
	Workspace  string   `json:"workspace,omitempty" jsonschema:"an absolute host folder to share as the sandbox's workspace; only under the server's --allow-workspace-root, and only when it has one"`
	CPUs       int      `json:"cpus,omitempty" jsonschema:"virtual CPUs (default 2, at most the host's)"`
	Memory     string   `json:"memory,omitempty" jsonschema:"memory, e.g. 512M or 2G (default 2G)"`
	TTLSeconds int      `json:"ttl_s,omitempty" jsonschema:"seconds the sandbox lives before it is removed; 0: until sandbox_remove"`
}

// sandboxOut is a sandbox as the tools describe it.
type sandboxOut struct {
	Name      string     `json:"name"`
	Status    string     `json:"status"`
	Template  string     `json:"template"`
	Workspace string     `json:"workspace,omitempty" jsonschema:"the host folder shared at the guest's workspace, if any"`
	Created   time.Time  `json:"created"`
	Deadline  *time.Time `json:"deadline,omitempty" jsonschema:"when the sandbox is removed, if it has a time to live"`
	From      string     `json:"from,omitempty" jsonschema:"the checkpoint it was forked from"`
}

func describe(info sandbox.Info) sandboxOut {
	return sandboxOut{Name: info.Name, Status: info.Summary(), Template: info.Template, Workspace: info.Workspace, Created: info.Created, Deadline: info.Deadline, From: info.From}
}

// createOptions checks a create's arguments, gathering every problem, and
// returns the options they describe.
func (t *tools) createOptions(in createIn, owner string) (sandbox.CreateOptions, error) {
	o := sandbox.CreateOptions{Name: in.Name, Template: in.Template, CPUs: in.CPUs, Memory: in.Memory, Owner: owner, NoWorkspace: true}
	var errs []error
	if in.Name != "" {
		if err := store.ValidateName(in.Name); err != nil {
			errs = append(errs, fmt.Errorf("name: %w", err))
		}
	}
	if in.TTLSeconds < 0 || time.Duration(in.TTLSeconds)*time.Second > maxTTL {
		errs = append(errs, fmt.Errorf("ttl_s %d: give 1 to %d seconds, or 0 for none", in.TTLSeconds, int(maxTTL.Seconds())))
	}
	o.TTL = time.Duration(in.TTLSeconds) * time.Second
	if in.CPUs < 0 {
		errs = append(errs, fmt.Errorf("cpus %d: give a positive number, or leave it out", in.CPUs))
	}
	if p, err := policyOf(in.Policy, in.AllowHosts); err != nil {
		errs = append(errs, err)
	} else {
		o.Policy = p
	}
	if in.Workspace != "" {
		ws, err := t.workspace(in.Workspace)
		if err != nil {
			errs = append(errs, err)
		}
		o.Workspace, o.NoWorkspace = ws, ws == ""
	}
	return o, errors.Join(errs...)
}

// workspace checks a create's host folder against the server's root.
func (t *tools) workspace(dir string) (string, error) {
	if t.cfg.WorkspaceRoot == "" {
		return "", errors.New("workspace: this server shares no host folders (it was started without --allow-workspace-root DIR); leave workspace out and copy files in with sandbox_write_file")
	}
	ws, err := sandbox.UnderRoot(t.cfg.WorkspaceRoot, dir)
	if err != nil {
		return "", fmt.Errorf("workspace %w", err)
	}
	return ws, nil
}

// policyOf is a create's network policy: nil for the default, else the
// preset with the allow rules.
func policyOf(preset string, allow []string) (*netpolicy.Policy, error) {
	if preset == "" && len(allow) == 0 {
		return nil, nil
	}
	if preset == "" {
		preset = netpolicy.DefaultPreset
	}
	var errs []error
	if !slices.Contains(netpolicy.Presets, preset) {
		errs = append(errs, fmt.Errorf("policy %q: use one of balanced, deny-all, allow-all, learn", preset))
	}
	p := netpolicy.Policy{Preset: preset}
	for _, h := range allow {
		r, err := netpolicy.ParseRule(h)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("allow_hosts %q: %w", h, err))
		case r.IsCIDR():
			errs = append(errs, fmt.Errorf("allow_hosts %q: an address range, not a host: addresses are opened on the host (paddock policy allow)", h))
		default:
			p.AddRule(true, h)
		}
	}
	return &p, errors.Join(errs...)
}

func (t *tools) create(ctx context.Context, req *mcp.CallToolRequest, in createIn) (*mcp.CallToolResult, sandboxOut, error) {
	owner, err := t.caller(req.Extra)
	if err != nil {
		return nil, sandboxOut{}, err
	}
	o, err := t.createOptions(in, owner)
	if err != nil {
		return nil, sandboxOut{}, err
	}
	return t.start(ctx, owner, o)
}

// start creates the sandbox o describes for owner, once Admit lets it.
func (t *tools) start(ctx context.Context, owner string, o sandbox.CreateOptions) (*mcp.CallToolResult, sandboxOut, error) {
	if t.cfg.Admit != nil {
		if err := t.cfg.Admit(owner); err != nil {
			return nil, sandboxOut{}, err
		}
	}
	cfg, err := t.m.Create(ctx, o)
	if err != nil {
		t.cfg.Logger.Warn("mcp create", "owner", owner, "err", err)
		return nil, sandboxOut{}, fmt.Errorf("create sandbox: %w", err)
	}
	info, err := t.m.Inspect(cfg.Name)
	if err != nil {
		return nil, sandboxOut{}, err
	}
	return nil, describe(info), nil
}

type listIn struct{}

type listOut struct {
	Sandboxes []sandboxOut `json:"sandboxes"`
}

func (t *tools) list(ctx context.Context, req *mcp.CallToolRequest, _ listIn) (*mcp.CallToolResult, listOut, error) {
	owner, err := t.caller(req.Extra)
	if err != nil {
		return nil, listOut{}, err
	}
	all, err := t.m.List()
	if err != nil {
		return nil, listOut{}, err
	}
	out := listOut{Sandboxes: []sandboxOut{}}
	for _, info := range all {
		if t.visible(owner, info) && info.Pool == "" {
			out.Sandboxes = append(out.Sandboxes, describe(info))
		}
	}
	return nil, out, nil
}

type nameIn struct {
	Name string `json:"name" jsonschema:"the sandbox's name"`
}

type removeOut struct {
	Removed string `json:"removed"`
}

func (t *tools) remove(ctx context.Context, req *mcp.CallToolRequest, in nameIn) (*mcp.CallToolResult, removeOut, error) {
	info, err := t.sandbox(req.Extra, in.Name)
	if err != nil {
		return nil, removeOut{}, err
	}
	if err := t.m.Remove(ctx, info.Name, true); err != nil {
		return nil, removeOut{}, err
	}
	return nil, removeOut{Removed: info.Name}, nil
}
