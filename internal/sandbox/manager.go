package sandbox

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/store"
)

// Manager runs lifecycle operations against one PADDOCK_HOME.
type Manager struct {
	Home store.Home
	// Exe is the paddock binary, started in its hidden supervisor mode.
	Exe string
	// AgentPath is the guest agent binary built into each initramfs.
	AgentPath string
	Logger    *slog.Logger
	// Trust is what every sandbox this Manager creates trusts besides
	// its create's own CAs: paddock serve and mcp set it from the user's
	// config file and their flags (DefaultTrust), as the CLI's create
	// applies the file to each create (ApplyUserTrust).
	Trust Trust
}

// Trust is a set of extra certificate authorities for guests: PEM files,
// and whether the host's own (HostCAFiles) are added.
type Trust struct {
	CAFiles     []string
	TrustHostCA bool
}

// NewManager returns a Manager for home using the running executable as
// the supervisor and the agent found beside it (or $PADDOCK_AGENT).
func NewManager(home store.Home, logger *slog.Logger) (*Manager, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	agent, err := FindAgent(exe)
	if err != nil {
		return nil, err
	}
	return &Manager{Home: home, Exe: exe, AgentPath: agent, Logger: logger}, nil
}

// FindAgent locates the guest agent binary: $PADDOCK_AGENT, else
// paddock-agent beside the paddock executable.
func FindAgent(exe string) (string, error) {
	if p := os.Getenv("PADDOCK_AGENT"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("PADDOCK_AGENT: %w", err)
		}
		return filepath.Abs(p)
	}
	p := filepath.Join(filepath.Dir(exe), "paddock-agent")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("guest agent not found at %s: build it with \"make build\" or set PADDOCK_AGENT", p)
	}
	return p, nil
}

// Client is a connection to a running sandbox's supervisor.
type Client struct {
	conn       *grpc.ClientConn
	Agent      agentv1.AgentClient
	Supervisor supervisorv1.SupervisorClient
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Dial connects to sandbox name's supervisor. It fails at once when the
// sandbox does not exist or is not running.
func (m *Manager) Dial(name string) (*Client, error) {
	if err := store.ValidateName(name); err != nil {
		return nil, err
	}
	l := m.Home.Sandbox(name)
	if _, err := os.Stat(l.Dir); err != nil {
		return nil, fmt.Errorf("no such sandbox %q (see paddock ls)", name)
	}
	if !supervisorAlive(l) {
		st := m.status(name)
		return nil, fmt.Errorf("sandbox %q is not running (%s)", name, st.Summary())
	}
	return dialSocket(l.Socket())
}

func dialSocket(path string) (*Client, error) {
	conn, err := grpc.NewClient("passthrough:///supervisor",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}),
	)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, Agent: agentv1.NewAgentClient(conn), Supervisor: supervisorv1.NewSupervisorClient(conn)}, nil
}

// supervisorAlive reports whether a supervisor holds the sandbox's run lock.
func supervisorAlive(l store.Layout) bool {
	lk, err := store.LockFile(l.RunLock(), false)
	if err != nil {
		// Held by a live supervisor (or unreadable: treat as alive if its
		// pid file says so).
		pf, perr := store.ReadPidFile(l.SupervisorPid())
		return perr != nil || pf.Alive()
	}
	lk.Unlock()
	return false
}

var defaultTimeout = 5 * time.Second
