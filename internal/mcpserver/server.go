// Package mcpserver serves paddock's sandboxes to agents over the Model
// Context Protocol: tools that create, run commands in, read and write
// files of, police, checkpoint, fork and remove sandboxes, and resources
// for their logs. It is a face over sandbox.Manager, like package e2bapi:
// it checks arguments, enforces ownership and renders; the behaviour lives
// below. paddock mcp serves it over stdio (as the local user, who sees
// every sandbox); paddock serve over streamable HTTP at /mcp, where each
// API key sees only the sandboxes it made.
package mcpserver

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/store"
)

// Config is what a server needs.
type Config struct {
	Manager *sandbox.Manager
	// WorkspaceRoot, when set, is the host folder under which
	// sandbox_create may share a folder as the workspace; empty: no
	// sandbox gets a host folder.
	WorkspaceRoot string
	// PerKey makes every request's bearer token name its API key (set by
	// the HTTP transport's authentication, auth.TokenInfo.UserID): a key
	// creates sandboxes it owns and sees no others. Without it the caller
	// is the local user and sees every sandbox.
	PerKey bool
	// Admit, when not nil, is asked before a create or fork on behalf of
	// owner; its error is the tool's (a cap on a key's sandboxes).
	Admit   func(owner string) error
	Logger  *slog.Logger
	Version string
}

// New returns an MCP server with paddock's tools and log resources.
func New(cfg Config) *mcp.Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "paddock", Title: "paddock sandboxes", Version: cfg.Version}, &mcp.ServerOptions{
		Instructions: instructions,
		Logger:       cfg.Logger,
	})
	t := &tools{cfg: cfg, m: cfg.Manager}
	t.register(s)
	t.registerResources(s)
	return s
}

const instructions = `paddock runs each sandbox in its own QEMU microVM: a Linux machine of its own
whose network passes a policy enforced on the host. Create one with sandbox_create
(it returns its name), run shell commands with sandbox_exec, move text with
sandbox_read_file and sandbox_write_file, and remove it with sandbox_remove when
done. A request the policy denies shows in sandbox_policy (action show) and in the
resource paddock://sandbox/NAME/logs/net; allow a host with sandbox_policy.`

// tools holds the handlers; it has no state of its own beyond its config.
type tools struct {
	cfg Config
	m   *sandbox.Manager
}

// errNoName is the error of a tool called without the sandbox's name.
var errNoName = errors.New("name is required: the sandbox's name, as sandbox_create returned it (sandbox_list shows them)")

// caller is who a request acts for: an API key's name, or "" for the
// local user.
func (t *tools) caller(extra *mcp.RequestExtra) (string, error) {
	if !t.cfg.PerKey {
		return "", nil
	}
	if extra == nil || extra.TokenInfo == nil || extra.TokenInfo.UserID == "" {
		return "", errors.New("this request carries no API key: send one as Authorization: Bearer KEY")
	}
	return extra.TokenInfo.UserID, nil
}

// visible reports whether the caller may see and use a sandbox.
func (t *tools) visible(owner string, info sandbox.Info) bool {
	return !t.cfg.PerKey || info.Owner == owner
}

// sandbox returns the caller's sandbox name: an error that says what to
// do when it is missing, not the caller's, or not there.
func (t *tools) sandbox(extra *mcp.RequestExtra, name string) (sandbox.Info, error) {
	owner, err := t.caller(extra)
	if err != nil {
		return sandbox.Info{}, err
	}
	if name == "" {
		return sandbox.Info{}, errNoName
	}
	if err := store.ValidateName(name); err != nil {
		return sandbox.Info{}, err
	}
	info, err := t.m.Inspect(name)
	if err != nil || !t.visible(owner, info) {
		return sandbox.Info{}, fmt.Errorf("no sandbox %q: sandbox_list shows the sandboxes you have, sandbox_create makes one", name)
	}
	return info, nil
}

// running is sandbox for a tool that needs the sandbox to run.
func (t *tools) running(extra *mcp.RequestExtra, name string) (sandbox.Info, error) {
	info, err := t.sandbox(extra, name)
	if err != nil {
		return info, err
	}
	switch info.State {
	case sandbox.StateRunning:
	case sandbox.StatePaused, sandbox.StateCheckpointing, sandbox.StateStarting:
		return info, fmt.Errorf("sandbox %q is %s, not running: try again in a moment (a paused one continues with paddock resume %s on the host)", name, info.Summary(), name)
	default:
		return info, fmt.Errorf("sandbox %q is %s, not running: sandbox_remove it and sandbox_create a new one", name, info.Summary())
	}
	return info, nil
}
